//! What an upload is, from its first bytes: the signatures of every format thumbq knows, accepted or not. Never
//! from a file name or a content type. The `image` crate's `guess_format` knows the raster formats it decodes; the
//! containers and documents it does not (ISO-BMFF brands, JPEG XL, PDF, SVG, EBML, PSD, JPEG 2000) are told here.

use image::ImageFormat;

use crate::task::SourceFormat;

/// What the first bytes say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sniffed {
    /// A format thumbq decodes.
    Accepted(SourceFormat),
    /// A format thumbq knows and declines, by the name errors give it.
    Declined(&'static str),
    /// Nothing thumbq knows.
    Unknown,
}

/// How far into the bytes an SVG's root element is looked for (past an XML declaration, comments, a doctype).
const SVG_SCAN: usize = 4096;

/// Tells the format of `bytes` from their signature.
pub fn sniff(bytes: &[u8]) -> Sniffed {
    if let Some(brands) = iso_bmff_brands(bytes) {
        return iso_bmff(brands);
    }
    if bytes.starts_with(&[0xFF, 0x0A]) || bytes.starts_with(b"\0\0\0\x0CJXL \x0D\x0A\x87\x0A") {
        return Sniffed::Accepted(SourceFormat::Jxl);
    }
    if bytes.starts_with(b"%PDF-") {
        return Sniffed::Accepted(SourceFormat::Pdf);
    }
    if bytes.starts_with(&[0x1A, 0x45, 0xDF, 0xA3]) {
        return Sniffed::Accepted(SourceFormat::Webm);
    }
    if bytes.starts_with(b"8BPS") {
        return Sniffed::Declined("PSD");
    }
    if bytes.starts_with(b"\0\0\0\x0CjP  \x0D\x0A\x87\x0A") || bytes.starts_with(&[0xFF, 0x4F, 0xFF, 0x51]) {
        return Sniffed::Declined("JPEG 2000");
    }
    if svg_root(bytes).is_some() {
        return Sniffed::Accepted(SourceFormat::Svg);
    }
    // BigTIFF (64-bit offsets), which libtiff reads and `guess_format` does not know.
    if bytes.starts_with(b"II+\0") || bytes.starts_with(b"MM\0+") {
        return Sniffed::Accepted(SourceFormat::Tiff);
    }
    match image::guess_format(bytes) {
        Ok(format) => SourceFormat::from_image_format(format)
            .map_or_else(|| Sniffed::Declined(declined_name(format)), Sniffed::Accepted),
        Err(_) => Sniffed::Unknown,
    }
}

/// The name of a format the `image` crate recognises and thumbq declines.
fn declined_name(format: ImageFormat) -> &'static str {
    format.extensions_str().first().map_or("unknown", |ext| match *ext {
        "tga" => "TGA",
        "exr" => "OpenEXR",
        "hdr" => "Radiance HDR",
        "dds" => "DDS",
        "ff" | "farbfeld" => "farbfeld",
        _ => "this image format",
    })
}

/// The major and compatible brands of an ISO base media file (HEIF, AVIF, MP4, MOV), from its leading `ftyp` box;
/// `None` when the bytes do not start with one.
fn iso_bmff_brands(bytes: &[u8]) -> Option<impl Iterator<Item = &[u8]>> {
    if bytes.get(4..8)? != b"ftyp" {
        return None;
    }
    let size = u32::from_be_bytes(bytes.get(..4)?.try_into().ok()?) as usize;
    // Major brand, minor version, then compatible brands up to the box's end (or what has arrived of it).
    let ftyp = bytes.get(8..size.clamp(16, 4096).min(bytes.len()))?;
    let major = ftyp.get(..4)?;
    Some(std::iter::once(major).chain(ftyp.get(8..).unwrap_or_default().chunks_exact(4)))
}

/// An ISO base media file by its brands: an AVIF or HEIF image, else a video.
fn iso_bmff<'a>(brands: impl Iterator<Item = &'a [u8]>) -> Sniffed {
    let brands: Vec<&[u8]> = brands.collect();
    let any = |names: &[&[u8; 4]]| brands.iter().any(|b| names.iter().any(|n| b == n));
    if any(&[b"avif", b"avis"]) {
        Sniffed::Accepted(SourceFormat::Avif)
    } else if any(&[b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1"]) {
        Sniffed::Accepted(SourceFormat::Heic)
    } else {
        Sniffed::Accepted(SourceFormat::Mp4)
    }
}

/// The root element's start tag onwards when `bytes` are an XML document whose root element is `svg`: past a
/// byte-order mark, an XML declaration, comments, processing instructions and a doctype, the first element is `<svg`
/// (or `<prefix:svg`) within the first 4 KiB.
pub(super) fn svg_root(bytes: &[u8]) -> Option<&[u8]> {
    let head = &bytes[..bytes.len().min(SVG_SCAN)];
    let mut rest = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
    loop {
        rest = rest.trim_ascii_start();
        let skip_to = |rest: &[u8], end: &[u8]| rest.windows(end.len()).position(|w| w == end).map(|i| i + end.len());
        let next = if rest.starts_with(b"<?") {
            skip_to(rest, b"?>")
        } else if rest.starts_with(b"<!--") {
            skip_to(rest, b"-->")
        } else if rest.starts_with(b"<!") {
            // A doctype, perhaps with an internal subset in brackets (an entity declared there is refused later).
            match rest.iter().position(|b| *b == b'[' || *b == b'>') {
                Some(at) if rest[at] == b'[' => {
                    skip_to(rest, b"]").and_then(|end| Some(end + skip_to(&rest[end..], b">")?))
                }
                other => other.map(|at| at + 1),
            }
        } else {
            let name = rest.strip_prefix(b"<")?;
            let end = name.iter().position(|b| b.is_ascii_whitespace() || *b == b'>' || *b == b'/');
            let name = &name[..end.unwrap_or(name.len())];
            let root = bytes.len() - head.len() + (head.len() - rest.len());
            return (name == b"svg" || name.ends_with(b":svg")).then(|| &bytes[root..]);
        };
        rest = &rest[next?..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ftyp(major: &[u8; 4], compatible: &[&[u8; 4]]) -> Vec<u8> {
        let mut b = ((16 + 4 * compatible.len()) as u32).to_be_bytes().to_vec();
        b.extend_from_slice(b"ftyp");
        b.extend_from_slice(major);
        b.extend_from_slice(&[0; 4]);
        compatible.iter().for_each(|c| b.extend_from_slice(*c));
        b.extend_from_slice(b"\0\0\0\x08free");
        b
    }

    #[test]
    fn iso_media_files_are_told_apart_by_their_brands() {
        assert_eq!(sniff(&ftyp(b"heic", &[b"mif1", b"heic"])), Sniffed::Accepted(SourceFormat::Heic));
        assert_eq!(sniff(&ftyp(b"mif1", &[b"heic"])), Sniffed::Accepted(SourceFormat::Heic));
        assert_eq!(sniff(&ftyp(b"avif", &[b"mif1", b"miaf"])), Sniffed::Accepted(SourceFormat::Avif));
        assert_eq!(
            sniff(&ftyp(b"mif1", &[b"avif"])),
            Sniffed::Accepted(SourceFormat::Avif),
            "a compatible brand counts"
        );
        assert_eq!(sniff(&ftyp(b"isom", &[b"iso2", b"mp41"])), Sniffed::Accepted(SourceFormat::Mp4));
        assert_eq!(sniff(&ftyp(b"qt  ", &[])), Sniffed::Accepted(SourceFormat::Mp4));
    }

    #[test]
    fn documents_and_codestreams_are_told_by_their_signatures() {
        assert_eq!(sniff(b"\xFF\x0A\xFA\x7F"), Sniffed::Accepted(SourceFormat::Jxl));
        assert_eq!(sniff(b"\0\0\0\x0CJXL \x0D\x0A\x87\x0A\0\0\0\x14ftypjxl "), Sniffed::Accepted(SourceFormat::Jxl));
        assert_eq!(sniff(b"%PDF-1.7\n"), Sniffed::Accepted(SourceFormat::Pdf));
        assert_eq!(sniff(b"\x1A\x45\xDF\xA3\x9F\x42\x86\x81"), Sniffed::Accepted(SourceFormat::Webm));
        assert_eq!(sniff(b"8BPS\0\x01"), Sniffed::Declined("PSD"));
        assert_eq!(sniff(b"\0\0\0\x0CjP  \x0D\x0A\x87\x0A"), Sniffed::Declined("JPEG 2000"));
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n"), Sniffed::Accepted(SourceFormat::Png));
        assert_eq!(sniff(b"II+\0\x08\0\0\0"), Sniffed::Accepted(SourceFormat::Tiff), "BigTIFF");
        assert_eq!(sniff(b"MM\0+\0\x08\0\0"), Sniffed::Accepted(SourceFormat::Tiff), "BigTIFF");
        assert_eq!(sniff(b"hello"), Sniffed::Unknown);
        assert_eq!(sniff(b"#EXTM3U\n#EXT-X-VERSION:3\nhttp://127.0.0.1/a.ts\n"), Sniffed::Unknown, "a playlist");
    }

    #[test]
    fn an_svg_is_an_xml_document_whose_root_is_svg() {
        assert_eq!(sniff(b"<svg xmlns='http://www.w3.org/2000/svg'/>"), Sniffed::Accepted(SourceFormat::Svg));
        let long = b"\xEF\xBB\xBF<?xml version=\"1.0\"?>\n<!-- made by hand -->\n<!DOCTYPE svg [<!ENTITY a \"b\">]>\n<svg:svg>";
        assert_eq!(sniff(long), Sniffed::Accepted(SourceFormat::Svg));
        assert!(svg_root(long).is_some_and(|root| root.starts_with(b"<svg:svg>")));
        assert_eq!(sniff(b"<?xml version=\"1.0\"?><html><svg/></html>"), Sniffed::Unknown, "root is html");
        assert_eq!(sniff(b"<svgfoo/>"), Sniffed::Unknown);
        assert_eq!(sniff(b"<!-- never closed <svg>"), Sniffed::Unknown);
    }
}
