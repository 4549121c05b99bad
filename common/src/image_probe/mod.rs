//! Reading what an upload is from its first bytes and its header alone: the format is sniffed from the magic bytes
//! (never from a file name or content type) and the dimensions come from the header, so an oversized image or a
//! decompression bomb is refused before any pixel is allocated. The API validates uploads with it; the worker checks
//! again before decoding.

use std::io::Cursor;

mod alpha;
mod animation;
pub(crate) mod heif;
mod jpeg;
mod jxl;
mod pdf;
mod sniff;
pub mod svg;
pub mod tiff;
mod video;

pub use alpha::may_have_alpha;
pub use animation::{Animation, animation};
use image::{ImageReader, Limits};
pub use sniff::{Sniffed, sniff};

use crate::task::{ImageInfo, SourceFormat};

/// What the header says about an image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Probe {
    /// The sniffed format.
    pub format: SourceFormat,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
}

impl Probe {
    /// The image's info for the task record, given its encoded length.
    pub fn info(&self, bytes: usize) -> ImageInfo {
        ImageInfo {
            format: self.format.name().to_owned(),
            width: self.width,
            height: self.height,
            bytes: bytes as u64,
            thumbhash: None,
            frames: None,
        }
    }
}

/// Why bytes are not an image thumbq will process.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProbeError {
    /// Zero bytes.
    #[error("the image is empty")]
    Empty,
    /// The bytes start like no known image format.
    #[error("the upload is not an image (its first bytes match no known image format)")]
    NotAnImage,
    /// A known image format thumbq does not accept.
    #[error("unsupported image format {0}; accepted: {accepted}", accepted = SourceFormat::accepted())]
    Unsupported(String),
    /// The format is known but its header cannot be read.
    #[error("the {format} header cannot be read: {reason}")]
    Unreadable {
        /// The sniffed format.
        format: &'static str,
        /// The decoder's complaint.
        reason: String,
    },
    /// More pixels than the configured limit.
    #[error("the image is {width}x{height} pixels, over the limit of {max_pixels} pixels")]
    TooLarge {
        /// Width claimed by the header.
        width: u32,
        /// Height claimed by the header.
        height: u32,
        /// The configured limit.
        max_pixels: u64,
    },
}

/// The most a header read may allocate: enough for any real ICC profile or EXIF block (a few hundred KB), far from
/// what a compressed metadata chunk can inflate to (a 400 KB PNG can carry an `iCCP` chunk of 400 MB).
pub const HEADER_ALLOC_LIMIT: u64 = 8 << 20;

/// A reader of `bytes` as `format` whose decoders may allocate at most `max_alloc` bytes (one that fails, for a
/// format the `image` crate does not read).
pub fn limited_reader(bytes: &[u8], format: SourceFormat, max_alloc: u64) -> ImageReader<Cursor<&[u8]>> {
    let mut reader = ImageReader::new(Cursor::new(bytes));
    if let Some(format) = format.image_format() {
        reader.set_format(format);
    }
    let mut limits = Limits::default();
    limits.max_alloc = Some(max_alloc);
    reader.limits(limits);
    reader
}

/// Whether [`probe`] is quick on `bytes`, so that an async task may call it: a JPEG's header is read up to its first
/// scan ([`header_bytes`]), a WebP's from its first chunks, neither inflates anything, and at most 1 MiB is looked
/// at (a copy of it is the worst case, about 0.1 ms). Other formats may inflate compressed metadata (a PNG's `iCCP`,
/// up to [`HEADER_ALLOC_LIMIT`]) or read a TIFF's directories wherever they are: CPU work for a blocking thread.
pub fn is_quick(bytes: &[u8]) -> bool {
    bytes.len() <= 1 << 20
        && matches!(image::guess_format(bytes), Ok(image::ImageFormat::Jpeg | image::ImageFormat::WebP))
}

/// Sniffs the format of `bytes` and reads the dimensions from the header, refusing images over `max_pixels`.
/// Allocates at most [`HEADER_ALLOC_LIMIT`]; CPU-bound for compressed metadata, so async callers run it on a
/// blocking thread.
pub fn probe(bytes: &[u8], max_pixels: u64) -> Result<Probe, ProbeError> {
    if bytes.is_empty() {
        return Err(ProbeError::Empty);
    }
    let format = match sniff(bytes) {
        Sniffed::Accepted(format) => format,
        Sniffed::Declined(name) => return Err(ProbeError::Unsupported(name.to_owned())),
        Sniffed::Unknown => return Err(ProbeError::NotAnImage),
    };
    if format == SourceFormat::Tiff && !tiff::values_fit(bytes) {
        let reason = "a tag of its first directory claims more data than the file holds".to_owned();
        return Err(ProbeError::Unreadable { format: format.name(), reason });
    }
    let unreadable = |reason: String| ProbeError::Unreadable { format: format.name(), reason };
    let header = header_bytes(bytes, format);
    let (width, height) = without_panics(|| dimensions(header, format)).map_err(unreadable)?.map_err(unreadable)?;
    if width == 0 || height == 0 {
        let reason = format!("it claims {width}x{height} pixels");
        return Err(ProbeError::Unreadable { format: format.name(), reason });
    }
    if u64::from(width) * u64::from(height) > max_pixels {
        return Err(ProbeError::TooLarge { width, height, max_pixels });
    }
    Ok(Probe { format, width, height })
}

/// The width and height `format`'s header claims, read by the library that decodes it.
fn dimensions(header: &[u8], format: SourceFormat) -> Result<(u32, u32), String> {
    match format {
        SourceFormat::Jpeg => jpeg::size(header),
        SourceFormat::Tiff => tiff::first_directory(header)
            .map(|d| (d.width, d.height))
            .ok_or_else(|| "its first directory has no width and height".to_owned()),
        SourceFormat::Heic | SourceFormat::Avif => heif::size(header),
        SourceFormat::Jxl => jxl::size(header),
        SourceFormat::Svg => svg::size(header),
        SourceFormat::Pdf => pdf::size(header),
        SourceFormat::Mp4 => video::mp4_size(header),
        // Matroska's sizes are deep in variable-length elements: a square guess, made exact by the worker.
        SourceFormat::Webm => Ok((svg::SIDE, svg::SIDE)),
        SourceFormat::Png
        | SourceFormat::Webp
        | SourceFormat::Gif
        | SourceFormat::Bmp
        | SourceFormat::Ico
        | SourceFormat::Pnm
        | SourceFormat::Qoi => {
            limited_reader(header, format, HEADER_ALLOC_LIMIT).into_dimensions().map_err(|e| e.to_string())
        }
    }
}

/// The part of `bytes` a header read needs. For a JPEG, the segments up to and including the first scan's header
/// (the frame, EXIF and ICC segments all come before it): the `image` crate's JPEG decoder copies all the input it is
/// given before reading a marker, a 16 MB copy of a 16 MB photo for its dimensions alone. Other formats, and a JPEG
/// whose markers cannot be walked, are given whole.
pub fn header_bytes(bytes: &[u8], format: SourceFormat) -> &[u8] {
    match format {
        SourceFormat::Jpeg => jpeg::header_end(bytes).and_then(|end| bytes.get(..end)).unwrap_or(bytes),
        _ => bytes,
    }
}

/// Runs a third-party decoder, turning a panic into an error. Decoders are fuzzed, but a bug left in one must cost
/// a bad upload its `422`, not the server a `500` (the fuzzer found the `tiff` crate indexing an empty list).
pub fn without_panics<T>(decode: impl FnOnce() -> T) -> Result<T, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(decode)).map_err(|panic| {
        let message =
            panic.downcast_ref::<&str>().map(|s| (*s).to_owned()).or_else(|| panic.downcast_ref::<String>().cloned());
        format!("the decoder failed: {}", message.unwrap_or_else(|| "panic".into()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{png_header, png_with_icc_bomb, sample_image};
    use image::ImageFormat;

    fn png(width: u32, height: u32) -> Vec<u8> {
        sample_image(ImageFormat::Png, width, height)
    }

    #[test]
    fn a_jpeg_header_is_read_from_the_segments_before_its_first_scan() {
        let jpeg = sample_image(ImageFormat::Jpeg, 300, 200);
        let header = header_bytes(&jpeg, SourceFormat::Jpeg);
        assert!(header.len() < jpeg.len() / 2, "{} of {} bytes", header.len(), jpeg.len());
        assert_eq!(&header[header.len() - 14..header.len() - 12], [0xFF, 0xDA], "ends with the scan header");
        assert_eq!(probe(&jpeg, 1_000_000).unwrap(), Probe { format: SourceFormat::Jpeg, width: 300, height: 200 });
        assert_eq!(header_bytes(&png(30, 20), SourceFormat::Png).len(), png(30, 20).len());
        assert_eq!(header_bytes(b"\xFF\xD8\xFF", SourceFormat::Jpeg).len(), 3, "no markers to walk: whole");
    }

    #[test]
    fn only_a_jpeg_or_webp_head_of_at_most_1_mib_is_probed_on_the_async_executor() {
        let mut jpeg = sample_image(ImageFormat::Jpeg, 30, 20);
        assert!(is_quick(&jpeg));
        assert!(is_quick(&sample_image(ImageFormat::WebP, 30, 20)));
        assert!(!is_quick(&png(30, 20)), "a PNG may inflate its iCCP chunk");
        assert!(!is_quick(&png_with_icc_bomb(1 << 20)));
        assert!(!is_quick(&sample_image(ImageFormat::Tiff, 30, 20)));
        jpeg.resize((1 << 20) + 1, 0);
        assert!(!is_quick(&jpeg), "past 1 MiB");
    }

    #[test]
    fn reads_format_and_size_from_the_header() {
        let probe = probe(&png(30, 20), 1000).unwrap();
        assert_eq!(probe, Probe { format: SourceFormat::Png, width: 30, height: 20 });
    }

    #[test]
    fn refuses_what_is_not_a_usable_image() {
        assert_eq!(probe(b"", 100), Err(ProbeError::Empty));
        assert_eq!(probe(b"hello, I am text in a file named x.png", 100), Err(ProbeError::NotAnImage));
        assert!(matches!(probe(b"\x89PNG\r\n\x1a\ngarbage", 100), Err(ProbeError::Unreadable { .. })));
        assert!(
            matches!(probe(b"\0\0\x01\0\x01\0\x10\x10", 100), Err(ProbeError::Unreadable { .. })),
            "an ICO cut short"
        );
        assert!(
            matches!(probe(b"8BPS\0\x01\0\0\0\0\0\0\0\x03", 100), Err(ProbeError::Unsupported(_))),
            "PSD is declined"
        );
    }

    #[test]
    fn refuses_a_decompression_bomb_from_its_header() {
        let err = probe(&png_header(100_000, 100_000), 50_000_000).unwrap_err();
        assert_eq!(err, ProbeError::TooLarge { width: 100_000, height: 100_000, max_pixels: 50_000_000 });
        assert!(probe(&png(10, 10), 99).is_err());
    }

    #[test]
    fn a_tiff_tag_that_claims_more_than_the_file_is_refused_before_the_decoder_sizes_a_buffer_by_it() {
        let mut tiff = sample_image(ImageFormat::Tiff, 40, 30);
        assert!(probe(&tiff, 10_000).is_ok());
        // Little-endian classic TIFF: the first entry of the first directory gets a count of a million.
        let ifd = u32::from_le_bytes(tiff[4..8].try_into().unwrap()) as usize;
        tiff[ifd + 2 + 4..ifd + 2 + 8].copy_from_slice(&1_048_579u32.to_le_bytes());
        let err = probe(&tiff, 10_000).unwrap_err();
        assert!(matches!(&err, ProbeError::Unreadable { reason, .. } if reason.contains("claims more")), "{err}");
    }

    #[test]
    fn a_tiff_tag_without_values_is_refused_and_a_decoder_panic_is_an_error() {
        let mut tiff = sample_image(ImageFormat::Tiff, 40, 30);
        let ifd = u32::from_le_bytes(tiff[4..8].try_into().unwrap()) as usize;
        tiff[ifd + 2 + 4..ifd + 2 + 8].copy_from_slice(&0u32.to_le_bytes());
        assert!(matches!(probe(&tiff, 10_000), Err(ProbeError::Unreadable { .. })));
        let caught = without_panics(|| -> u8 { panic!("a decoder bug") });
        assert_eq!(caught, Err("the decoder failed: a decoder bug".to_owned()));
    }

    /// The process's peak resident memory so far, in KiB.
    fn peak_rss_kib() -> u64 {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    #[test]
    fn a_metadata_chunk_that_inflates_to_400_mb_costs_the_probe_a_few_mb_at_most() {
        let bomb = png_with_icc_bomb(400 << 20);
        assert!(bomb.len() < 1 << 20, "the bomb is small: {} bytes", bomb.len());
        let before = peak_rss_kib();
        assert_eq!(probe(&bomb, 50_000_000).map(|p| (p.width, p.height)), Ok((1, 1)));
        let grown = peak_rss_kib() - before;
        assert!(grown < 32 << 10, "the probe grew peak memory by {grown} KiB");
    }
}
