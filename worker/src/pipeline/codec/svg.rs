//! SVG through resvg (the reference renderer in Rust), drawn at the size the thumbnail needs: the probe gives an SVG
//! its aspect at 2048 pixels, and the plan's reduction from that is the scale it is drawn at.
//!
//! An upload is hostile until drawn, and an SVG is a document that can point elsewhere. Here it cannot:
//! - no file is read and nothing is fetched: an `<image>` whose `href` is not a `data:` URL is left out (usvg's
//!   default would read it from disk; it never fetches), and so is an SVG inside a `data:` URL (it could be
//!   gzip-compressed, which usvg inflates without a bound); CSS imports, external `<use>` and web fonts are not
//!   supported by usvg at all;
//! - a document declaring an entity is refused before it is parsed (the billion laughs and every other entity
//!   trick), and one of more than [`MAX_NODES`] XML nodes is refused by the parser;
//! - text is set in the machine's own fonts, loaded once.

use std::sync::{Arc, LazyLock};

use image::{DynamicImage, RgbaImage};
use resvg::{
    tiny_skia::{Pixmap, Transform},
    usvg::{self, ImageHrefResolver, ImageKind, roxmltree},
};
use thumbq_common::{image_probe::Probe, task::SourceFormat};

use super::{Codec, Header, PipelineError, Request, drawn_size, unpremultiply};

/// Renders SVG with resvg.
pub struct Svg;

/// The most XML nodes (elements, text, comments) a document may have: a detailed map is tens of thousands.
pub const MAX_NODES: u32 = 200_000;
/// Bytes of the parsed tree per byte of the document, at most (usvg's tree of paths, measured near 20).
const TREE_BYTES_PER_BYTE: u64 = 32;

/// The machine's fonts, read once (a scan of the font folders costs tens of milliseconds).
static FONTS: LazyLock<Arc<usvg::fontdb::Database>> = LazyLock::new(|| {
    let mut fonts = usvg::fontdb::Database::new();
    fonts.load_system_fonts();
    Arc::new(fonts)
});

/// Parses the document with nothing outside it reachable.
fn parse(bytes: &[u8]) -> Result<usvg::Tree, String> {
    if bytes.windows(8).any(|w| w == b"<!ENTITY") {
        return Err("SVG documents that declare entities are refused".into());
    }
    let text = std::str::from_utf8(bytes).map_err(|_| "the SVG is not UTF-8".to_owned())?;
    let options = roxmltree::ParsingOptions { allow_dtd: true, nodes_limit: MAX_NODES };
    let document = roxmltree::Document::parse_with_options(text, options).map_err(|e| e.to_string())?;
    let raster = |mime: &str, data: Arc<Vec<u8>>, _: &usvg::Options<'_>| match mime {
        "image/jpg" | "image/jpeg" => Some(ImageKind::JPEG(data)),
        "image/png" => Some(ImageKind::PNG(data)),
        "image/gif" => Some(ImageKind::GIF(data)),
        "image/webp" => Some(ImageKind::WEBP(data)),
        _ => None,
    };
    let options = usvg::Options {
        resources_dir: None,
        image_href_resolver: ImageHrefResolver {
            resolve_data: Box::new(raster),
            resolve_string: Box::new(|_, _| None),
        },
        fontdb: FONTS.clone(),
        ..usvg::Options::default()
    };
    usvg::Tree::from_xmltree(&document, &options).map_err(|e| e.to_string())
}

impl Codec for Svg {
    fn header(&self, _bytes: &[u8], _format: SourceFormat) -> Header {
        // resvg draws in sRGB; an SVG has no orientation.
        Header::upright_srgb()
    }

    fn decode_peak(&self, bytes: &[u8], probe: &Probe, reduction: f64) -> u64 {
        let (width, height) = drawn_size(probe, reduction);
        // The drawing (premultiplied RGBA) and its straight copy, and the parsed tree.
        u64::from(width) * u64::from(height) * 8 + bytes.len() as u64 * TREE_BYTES_PER_BYTE
    }

    fn decode(&self, bytes: &[u8], probe: &Probe, request: Request<'_>) -> Result<DynamicImage, PipelineError> {
        let tree = parse(bytes).map_err(PipelineError::Decode)?;
        let (width, height) = drawn_size(probe, request.reduction);
        let mut pixmap = Pixmap::new(width, height).ok_or_else(|| PipelineError::Decode("an empty drawing".into()))?;
        let size = tree.size();
        let scale = Transform::from_scale(width as f32 / size.width(), height as f32 / size.height());
        resvg::render(&tree, scale, &mut pixmap.as_mut());
        let mut pixels = pixmap.take();
        unpremultiply(&mut pixels);
        let image = RgbaImage::from_raw(width, height, pixels).expect("sized for the drawing");
        Ok(DynamicImage::ImageRgba8(image))
    }
}

#[cfg(test)]
mod tests;
