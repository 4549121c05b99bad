//! An SVG's size, from its root element's `width`, `height` and `viewBox` (SVG 2, 8.2 and 8.6): the aspect it is
//! drawn at. A vector image has no pixels of its own, so its size for thumbq is that aspect at [`SIDE`] pixels on
//! its longer side, and the worker renders it at the size each thumbnail needs (a 16-pixel icon makes as sharp a
//! 400-pixel thumbnail as a poster does, and a poster's nominal 100,000 pixels are not a decompression bomb). By
//! hand because it is three attributes of one tag and the API must not link an SVG renderer to read them.

use super::sniff::svg_root;

/// The longer side of an SVG's size, in pixels: larger than any thumbnail thumbq makes.
pub const SIDE: u32 = 2048;

/// The value of attribute `name` in the start tag `tag`.
fn attribute<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    let mut rest = tag;
    while let Some(at) = rest.find(name) {
        let before = rest[..at].chars().next_back();
        let after = rest[at + name.len()..].trim_start();
        rest = &rest[at + name.len()..];
        if !before.is_some_and(char::is_whitespace) {
            continue;
        }
        let Some(value) = after.strip_prefix('=').map(str::trim_start) else { continue };
        let quote = value.chars().next().filter(|q| *q == '"' || *q == '\'')?;
        return value[1..].split(quote).next();
    }
    None
}

/// A length in CSS pixels (`12`, `12px`, `3in`, `10mm`…); `None` for a percentage or what cannot be read.
fn length(value: &str) -> Option<f64> {
    let value = value.trim();
    let unit_at = value.find(|c: char| c.is_ascii_alphabetic() || c == '%').unwrap_or(value.len());
    let number: f64 = value[..unit_at].trim().parse().ok()?;
    let scale = match &value[unit_at..] {
        "" | "px" => 1.0,
        "in" => 96.0,
        "cm" => 96.0 / 2.54,
        "mm" => 96.0 / 25.4,
        "pt" => 4.0 / 3.0,
        "pc" => 16.0,
        "em" | "ex" => 16.0,
        _ => return None,
    };
    Some(number * scale).filter(|n| n.is_finite() && *n > 0.0)
}

/// `width` by `height` (any unit) as thumbq sizes a vector picture: the same aspect at [`SIDE`] pixels on the
/// longer side. PDF pages are sized so too.
pub fn at_side(width: f64, height: f64) -> (u32, u32) {
    let scale = f64::from(SIDE) / width.max(height);
    let side = |length: f64| ((length * scale).round() as u32).clamp(1, SIDE);
    (side(width), side(height))
}

/// The width and height thumbq gives the SVG: its aspect, at [`SIDE`] pixels on the longer side.
pub fn size(bytes: &[u8]) -> Result<(u32, u32), String> {
    let root = svg_root(bytes).ok_or("it has no svg root element")?;
    let end = root.iter().position(|b| *b == b'>').ok_or("its svg tag is cut short")?;
    let tag = std::str::from_utf8(&root[..end]).map_err(|_| "its svg tag is not UTF-8".to_owned())?;
    let view_box: Option<Vec<f64>> = attribute(tag, "viewBox")
        .map(|v| v.split(|c: char| c.is_whitespace() || c == ',').filter(|s| !s.is_empty()).map(str::parse).collect())
        .and_then(Result::ok);
    let view_box = view_box.filter(|v| v.len() == 4 && v[2] > 0.0 && v[3] > 0.0).map(|v| (v[2], v[3]));
    let width = attribute(tag, "width").and_then(length);
    let height = attribute(tag, "height").and_then(length);
    // As renderers do: both lengths when given, one and the view box's aspect, the view box, else 100 by 100.
    let (width, height) = match (width, height, view_box) {
        (Some(w), Some(h), _) => (w, h),
        (Some(w), None, Some((vw, vh))) => (w, w * vh / vw),
        (None, Some(h), Some((vw, vh))) => (h * vw / vh, h),
        (_, _, Some((vw, vh))) => (vw, vh),
        _ => (100.0, 100.0),
    };
    Ok(at_side(width, height))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_aspect_at_the_fixed_side() {
        let svg =
            |attributes: &str| format!("<?xml version='1.0'?>\n<svg xmlns='http://www.w3.org/2000/svg' {attributes}/>");
        assert_eq!(size(svg("width='16' height='8'").as_bytes()), Ok((2048, 1024)), "an icon is drawn large");
        assert_eq!(size(svg("width=\"100000px\" height=\"50000\"").as_bytes()), Ok((2048, 1024)), "a poster small");
        assert_eq!(size(svg("viewBox='0 0 300 600'").as_bytes()), Ok((1024, 2048)));
        assert_eq!(
            size(svg("width='3in' viewBox='0,0,30,10'").as_bytes()),
            Ok((2048, 683)),
            "one length and the aspect"
        );
        assert_eq!(size(svg("width='100%' height='50%' viewBox='0 0 40 10'").as_bytes()), Ok((2048, 512)));
        assert_eq!(size(svg("").as_bytes()), Ok((2048, 2048)), "no size at all: 100 by 100");
        assert_eq!(size(svg("data-width='5' width='20mm' height='10mm'").as_bytes()), Ok((2048, 1024)));
        assert!(size(b"<svg width='10'").is_err(), "cut short");
    }
}
