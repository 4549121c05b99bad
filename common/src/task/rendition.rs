//! Renditions: several thumbnails of one upload, made by one task from one decode. A rendition has a short name,
//! which with the task's id names its file, `<uuid>-<name>.<ext>`. Presets are renditions named in configuration
//! (`THUMBQ_PRESETS`); ad-hoc sizes are named by their size (`640x480`).

use std::{fmt, str::FromStr};

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{Fit, ImageInfo, OutputFormat, ResizeArgs};

/// Renditions one upload may ask for at most: each costs a resample and an encode.
pub const MAX_RENDITIONS: usize = 8;

/// The presets used when `THUMBQ_PRESETS` is not set: a square thumbnail and three widths for a `srcset`.
pub const DEFAULT_PRESETS: &str =
    "thumb=160x160:cover,small=320x320:contain,medium=640x640:contain,large=1280x1280:contain";

/// A rendition's name: 1 to 32 of `a-z`, `0-9` and `_`, so it is safe in a file name, a URL and a header.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(try_from = "String", into = "String")]
#[schema(value_type = String, example = "small", pattern = "^[a-z0-9_]{1,32}$")]
pub struct RenditionName(String);

impl RenditionName {
    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RenditionName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for RenditionName {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let valid = (1..=32).contains(&s.len()) && s.bytes().all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_'));
        if valid { Ok(Self(s.to_owned())) } else { Err(format!("{s:?} is not a rendition name (1-32 of a-z, 0-9, _)")) }
    }
}

impl TryFrom<String> for RenditionName {
    type Error = String;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<RenditionName> for String {
    fn from(name: RenditionName) -> Self {
        name.0
    }
}

/// One rendition of a task: what to make and, once made, what it is.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Rendition {
    /// The rendition's name: a preset's name, or `<width>x<height>` for an ad-hoc size.
    pub name: RenditionName,
    /// What to make.
    pub args: ResizeArgs,
    /// The file's name, `<uuid>-<rendition>.<ext>`.
    #[schema(example = "6f1c1c9e-2f4b-4f7e-9d43-3c2a4f0e8b11-small.webp")]
    pub file: String,
    /// The finished rendition, once the task succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<ImageInfo>,
    /// Absolute URL of the rendition (signed when signed URLs are on); with `format=auto` it serves the best format
    /// the client accepts. Added by the API, not stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// With `format=auto`: each format the rendition is made in, with its own URL; added by the API, not stored.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub variants: Vec<Variant>,
}

/// One format of a `format=auto` thumbnail, with its own name and URL.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Variant {
    /// Its format.
    pub format: OutputFormat,
    /// Its file's name.
    #[schema(example = "6f1c1c9e-2f4b-4f7e-9d43-3c2a4f0e8b11.avif")]
    pub file: String,
    /// Its absolute URL (signed when signed URLs are on).
    pub url: String,
}

/// A rendition as configured or asked for: its size, and whichever options it fixes. The upload's own parameters
/// fill the options it leaves open.
#[derive(Clone, Debug, PartialEq)]
pub struct RenditionSpec {
    /// Its name.
    pub name: RenditionName,
    /// Box width.
    pub width: u32,
    /// Box height.
    pub height: u32,
    /// `cover`, `contain` or `fill`, if fixed.
    pub fit: Option<Fit>,
    /// The output format, if fixed.
    pub format: Option<OutputFormat>,
    /// `qN`: the quality, if fixed.
    pub quality: Option<u8>,
    /// `lossless`: lossless WebP.
    pub lossless: bool,
    /// `auto`: an attention crop.
    pub auto_focus: bool,
}

impl RenditionSpec {
    /// An ad-hoc size, `<width>x<height>`, named by the size in its canonical spelling: `01x1` and `1x001` are
    /// the rendition `1x1`, so two spellings of one size are one name (asked for twice, not two files).
    pub fn size(text: &str) -> Result<Self, String> {
        let (width, height) = parse_size(text)?;
        Ok(Self::plain(format!("{width}x{height}").parse()?, width, height))
    }

    /// A preset, `<width>x<height>[:option]...`; options are a fit (`cover`, `contain`, `fill`), a format (`png`,
    /// `jpeg`, `webp`), a quality (`q1`..`q100`), `lossless` and `auto` (the attention crop). Combinations that
    /// can never be made (`png:q80`, `jpeg:lossless`, `contain:auto`) are refused here, at start-up.
    pub fn preset(name: &str, text: &str) -> Result<Self, String> {
        let mut parts = text.split(':');
        let (width, height) = parse_size(parts.next().unwrap_or_default())?;
        let mut spec = Self::plain(name.parse()?, width, height);
        for option in parts {
            let quality = option.strip_prefix('q').and_then(|q| q.parse::<u8>().ok());
            match option {
                "cover" => spec.fit = Some(Fit::Cover),
                "contain" => spec.fit = Some(Fit::Contain),
                "fill" => spec.fit = Some(Fit::Fill),
                "lossless" => spec.lossless = true,
                "auto" => spec.auto_focus = true,
                _ if quality.is_some_and(|q| (1..=100).contains(&q)) => spec.quality = quality,
                _ => {
                    spec.format =
                        Some(OutputFormat::ALL.into_iter().find(|f| f.name() == option).ok_or_else(|| {
                            format!("unknown option {option:?} (expected a fit, a format, q1..q100, lossless or auto)")
                        })?);
                }
            }
        }
        let lossy_only = spec.quality.is_some() && (spec.lossless || spec.format.is_some_and(|f| !f.is_lossy()));
        if lossy_only || (spec.lossless && spec.format.is_some_and(|f| f != OutputFormat::Webp)) {
            return Err("quality needs a lossy format, lossless needs webp".into());
        }
        if spec.auto_focus && spec.fit.is_some_and(|f| f != Fit::Cover) {
            return Err("auto (the attention crop) needs cover".into());
        }
        Ok(spec)
    }

    fn plain(name: RenditionName, width: u32, height: u32) -> Self {
        Self { name, width, height, fit: None, format: None, quality: None, lossless: false, auto_focus: false }
    }
}

/// `<width>x<height>`, each side decimal digits (leading zeros allowed, no sign) in 1..=[`ResizeArgs::MAX_SIDE`].
fn parse_size(text: &str) -> Result<(u32, u32), String> {
    // `u32::from_str` takes a `+` sign too; the documented pattern is digits only.
    let digits = |v: &str| v.bytes().all(|b| b.is_ascii_digit());
    let side = |v: &str| v.parse::<u32>().ok().filter(|n| digits(v) && (1..=ResizeArgs::MAX_SIDE).contains(n));
    let parsed = text.split_once('x').and_then(|(w, h)| Some((side(w)?, side(h)?)));
    parsed
        .ok_or_else(|| format!("{text:?} is not a size: expected <width>x<height>, each 1..={}", ResizeArgs::MAX_SIDE))
}

/// Parses `THUMBQ_PRESETS`: `name=<width>x<height>[:option]...`, comma-separated, names unique.
pub fn parse_presets(text: &str) -> Result<Vec<RenditionSpec>, String> {
    let mut presets: Vec<RenditionSpec> = Vec::new();
    for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (name, spec) = entry.split_once('=').ok_or_else(|| format!("{entry:?}: expected name=<width>x<height>"))?;
        let spec = RenditionSpec::preset(name.trim(), spec.trim()).map_err(|e| format!("preset {name:?}: {e}"))?;
        if presets.iter().any(|p| p.name == spec.name) {
            return Err(format!("preset {name:?} is named twice"));
        }
        presets.push(spec);
    }
    Ok(presets)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_parse_with_their_options_and_the_default_list_is_valid() {
        let presets = parse_presets("small=100x100:cover, large=1280x1280:contain:webp:q80,g=64x64:png").unwrap();
        assert_eq!(presets.len(), 3);
        assert_eq!((presets[0].name.as_str(), presets[0].width, presets[0].fit), ("small", 100, Some(Fit::Cover)));
        let large = &presets[1];
        assert_eq!((large.fit, large.format, large.quality), (Some(Fit::Contain), Some(OutputFormat::Webp), Some(80)));
        assert_eq!(presets[2].format, Some(OutputFormat::Png));
        assert_eq!(parse_presets(DEFAULT_PRESETS).unwrap().len(), 4);
        assert_eq!(parse_presets("").unwrap(), vec![]);
    }

    #[test]
    fn bad_presets_are_refused_with_the_reason() {
        for (bad, reason) in [
            ("small", "expected name="),
            ("Small=10x10", "not a rendition name"),
            ("a/b=10x10", "not a rendition name"),
            ("s=10", "not a size"),
            ("s=0x10", "not a size"),
            ("s=10x4000", "not a size"),
            ("s=10x10:huge", "unknown option"),
            ("s=10x10:q0", "unknown option"),
            ("s=10x10:png:q80", "lossy"),
            ("s=10x10:jpeg:lossless", "lossless needs webp"),
            ("s=10x10:contain:auto", "needs cover"),
            ("s=10x10,s=20x20", "named twice"),
        ] {
            let error = parse_presets(bad).unwrap_err();
            assert!(error.contains(reason), "{bad}: {error}");
        }
    }

    #[test]
    fn an_ad_hoc_size_is_named_by_its_canonical_spelling() {
        let spec = RenditionSpec::size("640x480").unwrap();
        assert_eq!((spec.name.as_str(), spec.width, spec.height, spec.fit), ("640x480", 640, 480, None));
        assert!(RenditionSpec::size("640x480:webp").is_err());
        for (text, name) in [("01x1", "1x1"), ("0640x00480", "640x480"), ("1x0001", "1x1")] {
            assert_eq!(RenditionSpec::size(text).unwrap().name.as_str(), name, "{text}");
        }
        assert!(RenditionSpec::size("+64x48").is_err(), "digits only, as documented");
        assert!(serde_json::from_str::<RenditionName>("\"../x\"").is_err());
    }
}
