//! A HEIF or AVIF file's displayed size, from its `meta` box alone: the primary item's `ispe` (image spatial
//! extents), cut by its `clap` (clean aperture) and turned by its `irot` (a quarter turn swaps width and height), in
//! the order its properties are listed, as the format says transforms apply. By hand because it is three boxes deep and
//! the API must not link libheif to check an upload's pixel count; the worker's libheif reads the same boxes and the
//! codec refuses a disagreement. ISO/IEC 14496-12 (boxes) and 23008-12 (items and their properties).

/// One box: its four-character type and its payload.
pub(crate) struct Box<'a> {
    pub(crate) kind: [u8; 4],
    pub(crate) body: &'a [u8],
}

/// The boxes in `bytes`, one after another, up to the first that does not fit (a file cut short still shows the
/// boxes that arrived).
pub(crate) fn boxes(mut bytes: &[u8]) -> impl Iterator<Item = Box<'_>> {
    std::iter::from_fn(move || {
        let size = u32::from_be_bytes(bytes.get(..4)?.try_into().ok()?);
        let kind: [u8; 4] = bytes.get(4..8)?.try_into().ok()?;
        let (header, size) = match size {
            0 => (8, bytes.len()),
            1 => (16, usize::try_from(u64::from_be_bytes(bytes.get(8..16)?.try_into().ok()?)).ok()?),
            size => (8, size as usize),
        };
        let body = bytes.get(header..size)?;
        bytes = &bytes[size..];
        Some(Box { kind, body })
    })
}

/// The first box of `kind` in `bytes` (also JPEG XL's container, which is made of the same boxes).
pub(crate) fn find_box<'a>(bytes: &'a [u8], kind: &[u8; 4]) -> Option<&'a [u8]> {
    boxes(bytes).find(|b| &b.kind == kind).map(|b| b.body)
}

fn u16_at(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from(u16::from_be_bytes(bytes.get(at..at + 2)?.try_into().ok()?)))
}

fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

/// The width and height the file's primary image is shown at, or why they cannot be told.
pub fn size(bytes: &[u8]) -> Result<(u32, u32), String> {
    // `meta` is a full box: a version and flags come before its children.
    let meta = find_box(bytes, b"meta").and_then(|m| m.get(4..)).ok_or("it has no meta box")?;
    let pitm = find_box(meta, b"pitm").ok_or("it names no primary image")?;
    let primary = if pitm.first() == Some(&0) { u16_at(pitm, 4) } else { u32_at(pitm, 4) };
    let primary = primary.ok_or("its primary item box is cut short")?;
    let iprp = find_box(meta, b"iprp").ok_or("it has no item properties")?;
    let properties: Vec<Box<'_>> = find_box(iprp, b"ipco").map(|ipco| boxes(ipco).collect()).unwrap_or_default();
    let mut size: Option<(u32, u32)> = None;
    for index in associations(iprp, primary) {
        // Property indexes count from 1; 0 means none.
        let Some(property) = index.checked_sub(1).and_then(|i| properties.get(i as usize)) else { continue };
        let body = property.body;
        size = match (&property.kind, size) {
            (b"ispe", _) => Some(u32_at(body, 4).zip(u32_at(body, 8)).ok_or("its size property is cut short")?),
            (b"irot", Some((w, h))) if body.first().is_some_and(|angle| angle & 1 == 1) => Some((h, w)),
            (b"clap", Some((w, h))) => Some((clean(body, 0).unwrap_or(w).min(w), clean(body, 8).unwrap_or(h).min(h))),
            (_, size) => size,
        };
    }
    size.ok_or_else(|| "its primary image has no size property (ispe)".to_owned())
}

/// A clean aperture's side, at `at` in its `clap` box: a fraction, rounded as libheif rounds it.
fn clean(clap: &[u8], at: usize) -> Option<u32> {
    let (numerator, denominator) = (u32_at(clap, at)?, u32_at(clap, at + 4)?);
    (denominator != 0)
        .then(|| ((f64::from(numerator) / f64::from(denominator)).round()) as u32)
        .filter(|side| *side > 0)
}

/// The property indexes the `ipma` boxes of `iprp` associate with `item`.
fn associations(iprp: &[u8], item: u32) -> Vec<u32> {
    let mut found = Vec::new();
    for ipma in boxes(iprp).filter(|b| &b.kind == b"ipma").map(|b| b.body) {
        let (Some(&version), Some(&flags)) = (ipma.first(), ipma.get(3)) else { continue };
        let (id_len, index_len) = (if version < 1 { 2 } else { 4 }, if flags & 1 == 1 { 2 } else { 1 });
        let Some(entries) = u32_at(ipma, 4) else { continue };
        let mut at = 8;
        for _ in 0..entries {
            let id = if id_len == 2 { u16_at(ipma, at) } else { u32_at(ipma, at) };
            let (Some(id), Some(&count)) = (id, ipma.get(at + id_len)) else { break };
            at += id_len + 1;
            for _ in 0..count {
                // The top bit says whether the property is essential; the rest is its index.
                let index = if index_len == 2 {
                    u16_at(ipma, at).map(|i| i & 0x7FFF)
                } else {
                    ipma.get(at).map(|i| u32::from(i & 0x7F))
                };
                at += index_len;
                if let (true, Some(index)) = (id == item, index) {
                    found.push(index);
                }
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bx(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut out = ((body.len() + 8) as u32).to_be_bytes().to_vec();
        out.extend_from_slice(kind);
        out.extend_from_slice(body);
        out
    }

    /// A HEIF header whose primary item 2 has an `ispe` of 4032x3024, a `clap` of 4000x3000 and an `irot` of `turns`;
    /// item 1 has another size.
    fn heif(turns: u8) -> Vec<u8> {
        let ispe = |w: u32, h: u32| bx(b"ispe", &[&[0; 4][..], &w.to_be_bytes(), &h.to_be_bytes()].concat());
        let fraction = |n: u32, d: u32| [n.to_be_bytes(), d.to_be_bytes()].concat();
        let clap = bx(b"clap", &[fraction(8000, 2), fraction(3000, 1), fraction(0, 1), fraction(0, 1)].concat());
        let ipco = bx(b"ipco", &[ispe(512, 512), ispe(4032, 3024), clap, bx(b"irot", &[turns])].concat());
        // Version 0, flags 0: 16-bit item ids, 8-bit indexes. Item 1 → property 1; item 2 → properties 2, 3 and 4.
        let ipma = bx(b"ipma", &[0, 0, 0, 0, 0, 0, 0, 2, 0, 1, 1, 0x81, 0, 2, 3, 0x82, 3, 4]);
        let meta = bx(
            b"meta",
            &[&[0; 4][..], &bx(b"pitm", &[0, 0, 0, 0, 0, 2]), &bx(b"iprp", &[ipco, ipma].concat())].concat(),
        );
        [bx(b"ftyp", b"heic\0\0\0\0mif1heic"), meta, bx(b"mdat", b"")].concat()
    }

    #[test]
    fn the_primary_items_size_cut_by_its_aperture_and_turned_by_its_rotation() {
        assert_eq!(size(&heif(0)), Ok((4000, 3000)), "cropped");
        assert_eq!(size(&heif(1)), Ok((3000, 4000)), "cropped, then a quarter turn");
        assert_eq!(size(&heif(2)), Ok((4000, 3000)));
    }

    #[test]
    fn a_header_without_its_boxes_says_which_is_missing() {
        assert_eq!(size(b"\0\0\0\x10ftypheic\0\0\0\0"), Err("it has no meta box".into()));
        let cut = heif(0);
        assert!(size(&cut[..cut.len() - 60]).is_err());
        let oversized = [&u32::MAX.to_be_bytes()[..], b"meta"].concat();
        assert!(size(&oversized).is_err());
    }
}
