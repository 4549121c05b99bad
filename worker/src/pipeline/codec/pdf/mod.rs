//! PDF through poppler (Debian's `poppler-utils`), its first page only, rendered at the size the thumbnail needs:
//! `pdfinfo` tells the first page's size and turn (the API's probe only guesses), `pdftoppm` draws it.
//!
//! Each runs as a child process ([`super::child`]), fed the upload on its standard input and never given a file
//! name, under CPU and memory limits. A crash in poppler is a failed decode, not a dead worker. poppler runs no
//! JavaScript, opens no other file the document names and fetches nothing; only the first page is ever read.
//! Processes rather than a binding: poppler's C++ API has no maintained Rust binding on crates.io that builds
//! against Debian 12's poppler, and a process is the isolation a document renderer deserves anyway.

use image::DynamicImage;
use thumbq_common::{
    image_probe::{Probe, svg::at_side},
    task::SourceFormat,
};

use super::{Codec, Header, PipelineError, Request, child::run, drawn_size};

/// Renders the first page of a PDF with poppler.
pub struct Pdf;

/// What the worker counts for a render beside its pixels: poppler's own memory for a page, typically.
const POPPLER_BYTES: u64 = 128 << 20;

/// The first page's width and height in points, turned as it is shown.
fn first_page(bytes: &[u8]) -> Result<(f64, f64), String> {
    let info = run("pdfinfo", &["-f", "1", "-l", "1", "-"], Some(bytes))?;
    let info = String::from_utf8_lossy(&info);
    let field = |name: &str| info.lines().find_map(|l| l.strip_prefix(name)).map(str::trim);
    let size = field("Page    1 size:").ok_or("the PDF has no first page")?;
    let mut numbers = size.split_whitespace().filter_map(|s| s.parse::<f64>().ok());
    let (width, height) = numbers.next().zip(numbers.next()).ok_or("the first page has no size")?;
    let turned = field("Page    1 rot:").and_then(|r| r.parse::<i64>().ok()).is_some_and(|r| r.rem_euclid(180) == 90);
    Ok(if turned { (height, width) } else { (width, height) })
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
        Header::upright_srgb()
    }

    fn may_have_alpha(&self) -> bool {
        false
    }

    fn decode_peak(&self, bytes: &[u8], probe: &Probe, reduction: f64) -> u64 {
        let (width, height) = drawn_size(probe, reduction);
        let side = u64::from(width.max(height));
        // The page's PPM as it arrives and its decoded pixels (3 bytes a pixel each), the document's copy in the pipe,
        // and poppler.
        side * side * 6 + bytes.len() as u64 + POPPLER_BYTES
    }

    fn decode(&self, bytes: &[u8], probe: &Probe, request: Request<'_>) -> Result<DynamicImage, PipelineError> {
        let (width, height) = drawn_size(probe, request.reduction);
        let side = width.max(height).to_string();
        // PPM, poppler's default: no compression to spend time on in poppler and undo here (PNG cost about 4 ms a
        // page more, a third of the render).
        let args = ["-f", "1", "-l", "1", "-singlefile", "-scale-to", &side, "-"];
        let ppm = run("pdftoppm", &args, Some(bytes)).map_err(PipelineError::Decode)?;
        let page = image::load_from_memory_with_format(&ppm, image::ImageFormat::Pnm)
            .map_err(|e| PipelineError::Decode(format!("poppler's page does not decode: {e}")))?;
        Ok(DynamicImage::ImageRgb8(page.into_rgb8()))
    }
}

#[cfg(test)]
mod tests;
