//! Image formats and fit modes. Each format type owns its vocabulary in one place: its name, its file extension,
//! its content type and its `image` crate counterpart.

use image::ImageFormat;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// How the image is fitted into the requested box.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Fit {
    /// Scale to cover the box and centre-crop to exactly width×height.
    #[default]
    Cover,
    /// Scale to fit inside the box, keeping the aspect ratio; one side may be shorter.
    Contain,
    /// Stretch to exactly width×height, ignoring the aspect ratio.
    Fill,
}

/// The format of a thumbnail.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum OutputFormat {
    /// PNG, lossless, keeps transparency.
    Png,
    /// JPEG, lossy, no transparency (`jpg`, its file extension, is accepted for it too).
    #[serde(alias = "jpg")]
    Jpeg,
    /// WebP, lossy (or lossless on request), keeps transparency.
    Webp,
    /// AVIF (AV1 still image, by rav1e), lossy, keeps transparency: the smallest at a given quality, the slowest to
    /// encode.
    Avif,
    /// GIF, 256 colours a frame, one-bit transparency: for an animation (`animated=true`) where a client needs GIF;
    /// animated WebP is a third of its size.
    Gif,
}

impl OutputFormat {
    /// Every output format.
    pub const ALL: [Self; 5] = [Self::Png, Self::Jpeg, Self::Webp, Self::Avif, Self::Gif];

    /// The lower-case name, as requests, records and errors spell it (`jpeg`, not `jpg`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Png => "png",
            Self::Jpeg => "jpeg",
            Self::Webp => "webp",
            Self::Avif => "avif",
            Self::Gif => "gif",
        }
    }

    /// The file extension used in thumbnail names.
    pub fn extension(self) -> &'static str {
        match self {
            Self::Png => "png",
            Self::Jpeg => "jpg",
            Self::Webp => "webp",
            Self::Avif => "avif",
            Self::Gif => "gif",
        }
    }

    /// The HTTP `Content-Type` of the thumbnail.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Png => "image/png",
            Self::Jpeg => "image/jpeg",
            Self::Webp => "image/webp",
            Self::Avif => "image/avif",
            Self::Gif => "image/gif",
        }
    }

    /// The `image` crate's counterpart.
    pub fn image_format(self) -> ImageFormat {
        match self {
            Self::Png => ImageFormat::Png,
            Self::Jpeg => ImageFormat::Jpeg,
            Self::Webp => ImageFormat::WebP,
            Self::Avif => ImageFormat::Avif,
            Self::Gif => ImageFormat::Gif,
        }
    }

    /// Whether it takes a quality (JPEG, WebP, AVIF); PNG and GIF have none.
    pub fn is_lossy(self) -> bool {
        matches!(self, Self::Jpeg | Self::Webp | Self::Avif)
    }

    /// Whether it can hold an animation (`animated=true`): WebP and GIF.
    pub fn can_animate(self) -> bool {
        matches!(self, Self::Webp | Self::Gif)
    }

    /// The format a source is converted to when the client names none: itself when it can be written, JPEG for a
    /// HEIC photo or a video's poster, else PNG.
    pub fn default_for(source: SourceFormat) -> Self {
        match source {
            SourceFormat::Jpeg => Self::Jpeg,
            SourceFormat::Webp => Self::Webp,
            SourceFormat::Avif => Self::Avif,
            // HEIC is a phone's photo format, and a video's frame a photo: JPEG, as a phone would share them.
            SourceFormat::Heic | SourceFormat::Mp4 | SourceFormat::Webm => Self::Jpeg,
            _ => Self::Png,
        }
    }

    /// The format an animation (`animated=true`) is made in when the client names none: a GIF stays a GIF (what a
    /// client that sent one can show), anything else becomes animated WebP.
    pub fn default_animated_for(source: SourceFormat) -> Self {
        if source == SourceFormat::Gif { Self::Gif } else { Self::Webp }
    }
}

/// The `format` an upload asks for: one format, or `auto`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum FormatChoice {
    /// PNG.
    Png,
    /// JPEG (`jpg` too).
    #[serde(alias = "jpg")]
    Jpeg,
    /// WebP.
    Webp,
    /// AVIF.
    Avif,
    /// GIF.
    Gif,
    /// AVIF, WebP and a fallback (JPEG, or PNG where the source may have alpha) from one decode; the thumbnail's
    /// URL serves the best one the client's `Accept` allows.
    Auto,
}

impl FormatChoice {
    /// The one format asked for; `None` for `auto`.
    pub fn fixed(self) -> Option<OutputFormat> {
        match self {
            Self::Png => Some(OutputFormat::Png),
            Self::Jpeg => Some(OutputFormat::Jpeg),
            Self::Webp => Some(OutputFormat::Webp),
            Self::Avif => Some(OutputFormat::Avif),
            Self::Gif => Some(OutputFormat::Gif),
            Self::Auto => None,
        }
    }

    /// The fallback of `format=auto`, for clients that take neither AVIF nor WebP: PNG where the source may have
    /// transparency, JPEG otherwise.
    pub fn auto_fallback(may_have_alpha: bool) -> OutputFormat {
        if may_have_alpha { OutputFormat::Png } else { OutputFormat::Jpeg }
    }
}

/// The formats thumbq accepts as input, sniffed from the bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SourceFormat {
    /// JPEG.
    Jpeg,
    /// PNG.
    Png,
    /// WebP (lossy or lossless): the first frame of an animation, or every frame with `animated=true`.
    Webp,
    /// GIF: the first frame, or every frame with `animated=true`.
    Gif,
    /// BMP.
    Bmp,
    /// TIFF.
    Tiff,
    /// ICO (Windows icons): the largest picture it holds.
    Ico,
    /// PNM: PBM, PGM, PPM and PAM.
    Pnm,
    /// QOI.
    Qoi,
    /// HEIF with HEVC pictures (HEIC, as phones write it), or with other codings libheif reads.
    Heic,
    /// AVIF (HEIF with AV1 pictures): the still image, or an animation's first frame.
    Avif,
    /// JPEG XL, bare codestream or container: the first frame.
    Jxl,
    /// SVG, rendered at the size the thumbnail needs.
    Svg,
    /// PDF: its first page, rendered at the size the thumbnail needs.
    Pdf,
    /// MP4 or QuickTime video: a poster frame.
    Mp4,
    /// WebM or Matroska video: a poster frame.
    Webm,
}

impl SourceFormat {
    /// Every accepted format.
    pub const ALL: [Self; 16] = [
        Self::Jpeg,
        Self::Png,
        Self::Webp,
        Self::Gif,
        Self::Bmp,
        Self::Tiff,
        Self::Ico,
        Self::Pnm,
        Self::Qoi,
        Self::Heic,
        Self::Avif,
        Self::Jxl,
        Self::Svg,
        Self::Pdf,
        Self::Mp4,
        Self::Webm,
    ];

    /// The lower-case name, as records and errors spell it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Jpeg => "jpeg",
            Self::Png => "png",
            Self::Webp => "webp",
            Self::Gif => "gif",
            Self::Bmp => "bmp",
            Self::Tiff => "tiff",
            Self::Ico => "ico",
            Self::Pnm => "pnm",
            Self::Qoi => "qoi",
            Self::Heic => "heic",
            Self::Avif => "avif",
            Self::Jxl => "jxl",
            Self::Svg => "svg",
            Self::Pdf => "pdf",
            Self::Mp4 => "mp4",
            Self::Webm => "webm",
        }
    }

    /// The name people know it by, as error messages spell it.
    pub fn label(self) -> &'static str {
        match self {
            Self::Jpeg => "JPEG",
            Self::Png => "PNG",
            Self::Webp => "WebP",
            Self::Gif => "GIF",
            Self::Bmp => "BMP",
            Self::Tiff => "TIFF",
            Self::Ico => "ICO",
            Self::Pnm => "PNM",
            Self::Qoi => "QOI",
            Self::Heic => "HEIC/HEIF",
            Self::Avif => "AVIF",
            Self::Jxl => "JPEG XL",
            Self::Svg => "SVG",
            Self::Pdf => "PDF",
            Self::Mp4 => "MP4/MOV",
            Self::Webm => "WebM/Matroska",
        }
    }

    /// Every accepted format's label, for error messages: `JPEG, PNG, …`.
    pub fn accepted() -> String {
        Self::ALL.map(Self::label).join(", ")
    }

    /// The `image` crate's counterpart, for the formats it reads (the others have a library of their own).
    pub fn image_format(self) -> Option<ImageFormat> {
        Some(match self {
            Self::Jpeg => ImageFormat::Jpeg,
            Self::Png => ImageFormat::Png,
            Self::Webp => ImageFormat::WebP,
            Self::Gif => ImageFormat::Gif,
            Self::Bmp => ImageFormat::Bmp,
            Self::Tiff => ImageFormat::Tiff,
            Self::Ico => ImageFormat::Ico,
            Self::Pnm => ImageFormat::Pnm,
            Self::Qoi => ImageFormat::Qoi,
            // libheif, jxl-oxide, resvg, hayro and FFmpeg decode these; the `image` crate is built without an AVIF
            // decoder.
            Self::Heic | Self::Avif | Self::Jxl | Self::Svg | Self::Pdf | Self::Mp4 | Self::Webm => return None,
        })
    }

    /// The accepted format that is `format`, if any.
    pub fn from_image_format(format: ImageFormat) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.image_format() == Some(format))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_format_maps_both_ways_and_names_match_serde() {
        for format in SourceFormat::ALL {
            if let Some(image_format) = format.image_format() {
                assert_eq!(SourceFormat::from_image_format(image_format), Some(format));
            }
            assert_eq!(serde_json::to_string(&format).unwrap(), format!("\"{}\"", format.name()));
        }
        for format in OutputFormat::ALL {
            assert_eq!(serde_json::to_string(&format).unwrap(), format!("\"{}\"", format.name()));
            assert!(format.image_format().extensions_str().contains(&format.extension()));
            assert_eq!(format.content_type(), format.image_format().to_mime_type());
        }
        assert_eq!(SourceFormat::from_image_format(ImageFormat::Tga), None);
        for format in OutputFormat::ALL {
            let choice: FormatChoice = serde_json::from_str(&format!("\"{}\"", format.name())).unwrap();
            assert_eq!(choice.fixed(), Some(format), "every output format may be asked for by its name");
        }
        assert_eq!(serde_json::from_str::<FormatChoice>("\"auto\"").unwrap().fixed(), None);
    }
}
