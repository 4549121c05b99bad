//! Video (MP4, MOV, WebM, MKV) through Debian's FFmpeg: a poster frame, the first keyframe at or after 1 s (or the
//! first frame of a shorter clip), turned as the file says and scaled by FFmpeg to the size the thumbnail needs.
//! `ffprobe` tells the picture's real size and turn first (the API only guesses).
//!
//! FFmpeg reaches nothing but the upload: it is given a temporary file of it by a `file:` URL, the demuxer forced
//! from the sniffed format (`mov` or `matroska`, so a playlist or a concat list is never read as one), and
//! `-protocol_whitelist file` (no network protocol, no `concat:`, no `subfile:`); the MOV demuxer's external
//! references stay off (its default). Each run is a child process under CPU and memory limits (`child.rs`).

use image::{DynamicImage, RgbaImage};
use thumbq_common::{image_probe::Probe, task::SourceFormat};

use super::{
    Codec, Header, PipelineError, Request,
    child::{run, run_capped},
    drawn_size,
};

/// Makes poster frames with FFmpeg.
pub struct Video;

/// What the worker counts for FFmpeg beside the frame: its decoders' buffers for a 4K stream, typically.
pub const FFMPEG_BYTES: u64 = 256 << 20;

/// The upload as a temporary file, with the arguments that make FFmpeg read it as `format` and nothing else.
struct Input {
    file: tempfile::NamedTempFile,
    demuxer: &'static str,
}

impl Input {
    fn new(bytes: &[u8], format: SourceFormat) -> Result<Self, String> {
        let demuxer = if format == SourceFormat::Webm { "matroska" } else { "mov" };
        let mut file = tempfile::Builder::new().prefix("thumbq-video-").tempfile().map_err(|e| e.to_string())?;
        std::io::Write::write_all(&mut file, bytes).map_err(|e| format!("the video cannot be staged: {e}"))?;
        Ok(Self { file, demuxer })
    }

    /// The input options and the input itself, `before` the input (decoder and seek options) in between.
    fn args<'a>(&'a self, url: &'a str, before: &[&'a str]) -> Vec<&'a str> {
        let mut args = vec!["-v", "error", "-protocol_whitelist", "file", "-f", self.demuxer];
        args.extend_from_slice(before);
        args.extend(["-i", url]);
        args
    }

    fn url(&self) -> String {
        format!("file:{}", self.file.path().display())
    }
}

/// The first video stream's width and height, turned as it is shown.
fn picture_size(input: &Input) -> Result<(u32, u32), String> {
    let url = input.url();
    let mut args = input.args(&url, &[]);
    args.extend(["-select_streams", "v:0", "-show_entries", "stream=width,height:stream_side_data=rotation"]);
    args.extend(["-of", "default=noprint_wrappers=1"]);
    let info = run("ffprobe", &args, None)?;
    let info = String::from_utf8_lossy(&info);
    let field = |name: &str| info.lines().find_map(|l| l.strip_prefix(name)).and_then(|v| v.trim().parse::<i64>().ok());
    let (width, height) = field("width=").zip(field("height=")).ok_or("the file has no video stream")?;
    let (width, height) = (u32::try_from(width).unwrap_or(0), u32::try_from(height).unwrap_or(0));
    let turned = field("rotation=").is_some_and(|r| r.rem_euclid(180) == 90);
    Ok(if turned { (height, width) } else { (width, height) })
}

/// The frame FFmpeg makes at `width`×`height` from `input`, seeking past the first second first when `seek`; an
/// empty PNG when the clip has no such frame.
fn frame(input: &Input, width: u32, height: u32, seek: bool) -> Result<Vec<u8>, String> {
    let url = input.url();
    let before: &[&str] = if seek { &["-skip_frame", "nokey", "-ss", "1"] } else { &[] };
    let scale = format!("scale={width}:{height}");
    let mut args = input.args(&url, before);
    args.extend(["-map", "0:v:0", "-frames:v", "1", "-an", "-sn", "-dn", "-vf", &scale]);
    args.extend(["-f", "image2pipe", "-c:v", "png", "-"]);
    run("ffmpeg", &args, None)
}

/// The first `count` frames of the first picture stream of `bytes` (an AVIF sequence: libheif 1.15 reads only its
/// still), scaled by FFmpeg to `width`×`height`, each with how long it shows (ms, from the packets' durations; 100
/// where none). Frames pass through as they are stored (`-fps_mode passthrough`: no frame is repeated to fill a gap
/// in the timestamps, which a file could make hours long), and FFmpeg's output is cut at `count` frames' bytes.
pub fn frames(
    bytes: &[u8],
    format: SourceFormat,
    (width, height): (u32, u32),
    count: u32,
) -> Result<Frames, PipelineError> {
    let input = Input::new(bytes, format).map_err(PipelineError::Decode)?;
    let url = input.url();
    let mut args = input.args(&url, &[]);
    args.extend(["-select_streams", "v:0", "-show_entries", "packet=duration_time", "-of", "csv=p=0"]);
    let durations = run("ffprobe", &args, None).map_err(PipelineError::Decode)?;
    let durations: Vec<u32> = String::from_utf8_lossy(&durations)
        .lines()
        .map(|line| line.trim().parse::<f64>().map_or(100, |seconds| (seconds * 1000.0).round() as u32))
        .collect();
    let (scale, frames) = (format!("scale={width}:{height}"), count.to_string());
    let mut args = input.args(&url, &[]);
    args.extend(["-map", "0:v:0", "-an", "-sn", "-dn", "-fps_mode", "passthrough", "-frames:v", &frames]);
    args.extend(["-vf", &scale, "-f", "rawvideo", "-pix_fmt", "rgba", "-"]);
    let frame_bytes = width as usize * height as usize * 4;
    let raw =
        run_capped("ffmpeg", &args, None, frame_bytes.saturating_mul(count as usize)).map_err(PipelineError::Decode)?;
    let frames: Frames = raw
        .chunks_exact(frame_bytes)
        .enumerate()
        .filter_map(|(i, pixels)| {
            let image = RgbaImage::from_raw(width, height, pixels.to_vec())?;
            Some((image, durations.get(i).copied().unwrap_or(100)))
        })
        .collect();
    if frames.is_empty() {
        return Err(PipelineError::Decode("the sequence has no frame FFmpeg can decode".into()));
    }
    Ok(frames)
}

/// Frames with how long each shows, in ms.
pub type Frames = Vec<(RgbaImage, u32)>;

impl Codec for Video {
    fn refine(&self, bytes: &[u8], probe: Probe) -> Result<Probe, PipelineError> {
        let input = Input::new(bytes, probe.format).map_err(PipelineError::Decode)?;
        let (width, height) = picture_size(&input).map_err(PipelineError::Decode)?;
        if width == 0 || height == 0 {
            return Err(PipelineError::Decode(format!("the video's picture is {width}x{height}")));
        }
        Ok(Probe { width, height, ..probe })
    }

    fn header(&self, _bytes: &[u8], _format: SourceFormat) -> Header {
        // FFmpeg turns the frame as the file says and converts it to sRGB's primaries' 8-bit RGB.
        Header::upright_srgb()
    }

    fn may_have_alpha(&self) -> bool {
        false
    }

    fn decode_peak(&self, bytes: &[u8], probe: &Probe, reduction: f64) -> u64 {
        let (width, height) = drawn_size(probe, reduction);
        // The frame's PNG and its pixels, and FFmpeg (a separate process, on the same machine's memory).
        u64::from(width) * u64::from(height) * 4 + bytes.len() as u64 + FFMPEG_BYTES
    }

    fn decode(&self, bytes: &[u8], probe: &Probe, request: Request<'_>) -> Result<DynamicImage, PipelineError> {
        let input = Input::new(bytes, probe.format).map_err(PipelineError::Decode)?;
        let (width, height) = drawn_size(probe, request.reduction);
        let mut png = frame(&input, width, height, true).map_err(PipelineError::Decode)?;
        if png.is_empty() {
            // Shorter than a second, or no keyframe after it: the first frame.
            png = frame(&input, width, height, false).map_err(PipelineError::Decode)?;
        }
        if png.is_empty() {
            return Err(PipelineError::Decode("the video has no frame FFmpeg can decode".into()));
        }
        let frame = image::load_from_memory_with_format(&png, image::ImageFormat::Png)
            .map_err(|e| PipelineError::Decode(format!("FFmpeg's frame does not decode: {e}")))?;
        Ok(DynamicImage::ImageRgb8(frame.into_rgb8()))
    }
}

#[cfg(test)]
mod tests;
