//! PDF through poppler (Debian's `poppler-utils`), its first page only, rendered at the size the thumbnail needs:
//! `pdfinfo` tells the first page's size and turn (the API's probe only guesses), `pdftoppm` draws it.
//!
//! Each runs as a child process, fed the upload on its standard input and never given a file name, under kernel
//! limits set between fork and exec: [`CPU_SECONDS`] of CPU (then the kernel kills it) and [`ADDRESS_SPACE`] bytes
//! of memory (its allocations fail past it). A crash in poppler is a failed decode, not a dead worker. poppler runs
//! no JavaScript, opens no other file the document names and fetches nothing; only the first page is ever read.
//! Processes rather than a binding: poppler's C++ API has no maintained Rust binding on crates.io that builds
//! against Debian 12's poppler, and a process is the isolation a document renderer deserves anyway.
#![allow(unsafe_code)]

use std::{
    io::Write,
    os::unix::process::CommandExt,
    process::{Command, Stdio},
};

use image::{DynamicImage, metadata::Orientation};
use thumbq_common::{
    image_probe::{Probe, svg::at_side},
    task::SourceFormat,
};

use super::{Codec, Header, PipelineError, Request};

/// Renders the first page of a PDF with poppler.
pub struct Pdf;

/// CPU seconds a poppler process may use.
pub const CPU_SECONDS: u64 = 20;
/// Bytes of address space a poppler process may map (its code and libraries take about 100 MB of it).
pub const ADDRESS_SPACE: u64 = 1 << 30;
/// What the worker counts for a render beside its pixels: poppler's own memory for a page, typically.
const POPPLER_BYTES: u64 = 128 << 20;

/// Runs `program` with `args` on `input` (its standard input) under the limits; its standard output.
fn run(program: &str, args: &[&str], input: &[u8]) -> Result<Vec<u8>, String> {
    let mut command = Command::new(program);
    command.args(args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    // SAFETY: between fork and exec only async-signal-safe calls are allowed; setrlimit is one, and the closure
    // touches nothing but its two constant limits.
    unsafe {
        command.pre_exec(|| {
            for (resource, limit) in [(libc::RLIMIT_CPU, CPU_SECONDS), (libc::RLIMIT_AS, ADDRESS_SPACE)] {
                let limit = libc::rlimit { rlim_cur: limit, rlim_max: limit };
                if libc::setrlimit(resource, &limit) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    let mut child = command.spawn().map_err(|e| format!("{program} cannot start (poppler-utils): {e}"))?;
    let mut stdin = child.stdin.take().expect("piped");
    // poppler reads the whole document before it writes, and its messages go to a pipe read at the same time.
    let output = std::thread::scope(|scope| {
        scope.spawn(move || stdin.write_all(input));
        child.wait_with_output()
    })
    .map_err(|e| format!("{program} failed: {e}"))?;
    if !output.status.success() {
        let message = String::from_utf8_lossy(&output.stderr);
        let reason = message.lines().find(|l| !l.trim().is_empty()).unwrap_or("no message");
        return Err(match output.status.code() {
            Some(code) => format!("poppler could not read the PDF ({code}): {reason}"),
            None => format!("poppler was stopped past its CPU or memory limit: {reason}"),
        });
    }
    Ok(output.stdout)
}

/// The first page's width and height in points, turned as it is shown.
fn first_page(bytes: &[u8]) -> Result<(f64, f64), String> {
    let info = run("pdfinfo", &["-f", "1", "-l", "1", "-"], bytes)?;
    let info = String::from_utf8_lossy(&info);
    let field = |name: &str| info.lines().find_map(|l| l.strip_prefix(name)).map(str::trim);
    let size = field("Page    1 size:").ok_or("the PDF has no first page")?;
    let mut numbers = size.split_whitespace().filter_map(|s| s.parse::<f64>().ok());
    let (width, height) = numbers.next().zip(numbers.next()).ok_or("the first page has no size")?;
    let turned = field("Page    1 rot:").and_then(|r| r.parse::<i64>().ok()).is_some_and(|r| r.rem_euclid(180) == 90);
    Ok(if turned { (height, width) } else { (width, height) })
}

/// The longer side the page is drawn at for `probe` and `reduction`.
fn drawn_side(probe: &Probe, reduction: f64) -> u32 {
    ((f64::from(probe.width.max(probe.height)) / reduction.max(1.0)).round() as u32).max(1)
}

impl Codec for Pdf {
    fn refine(&self, bytes: &[u8], probe: Probe) -> Result<Probe, PipelineError> {
        let (width, height) = first_page(bytes).map_err(PipelineError::Decode)?;
        if !(width > 0.0 && height > 0.0) {
            return Err(PipelineError::Decode(format!("the first page is {width}x{height} points")));
        }
        let (width, height) = at_side(width, height);
        Ok(Probe { width, height, ..probe })
    }

    fn header(&self, _bytes: &[u8], _format: SourceFormat) -> Header {
        // poppler draws in sRGB, turned as the page says.
        Header { orientation: Orientation::NoTransforms, icc: None }
    }

    fn may_have_alpha(&self) -> bool {
        false
    }

    fn decode_peak(&self, bytes: &[u8], probe: &Probe, reduction: f64) -> u64 {
        let side = u64::from(drawn_side(probe, reduction));
        // The page's PNG as it arrives and its decoded pixels, the document's copy in the pipe, and poppler.
        side * side * 4 + bytes.len() as u64 + POPPLER_BYTES
    }

    fn decode(&self, bytes: &[u8], probe: &Probe, request: Request<'_>) -> Result<DynamicImage, PipelineError> {
        let side = drawn_side(probe, request.reduction).to_string();
        let args = ["-f", "1", "-l", "1", "-singlefile", "-png", "-scale-to", &side, "-"];
        let png = run("pdftoppm", &args, bytes).map_err(PipelineError::Decode)?;
        let page = image::load_from_memory_with_format(&png, image::ImageFormat::Png)
            .map_err(|e| PipelineError::Decode(format!("poppler's page does not decode: {e}")))?;
        Ok(DynamicImage::ImageRgb8(page.into_rgb8()))
    }
}

#[cfg(test)]
mod tests;
