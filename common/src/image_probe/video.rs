//! A video's size, as the API sees it: the first track with a picture size in an MP4/MOV's `moov` box (`tkhd`
//! width and height, ISO/IEC 14496-12 8.3.2), else a square guess (a Matroska file, or an MP4 whose `moov` comes
//! after its media and is not found in the upload's head). The worker asks FFmpeg for the real size, turn included,
//! before it plans the thumbnail; the API reads boxes by hand because linking FFmpeg there would be a large attack
//! surface for a hint.

use super::{
    heif::{boxes, find_box},
    svg::SIDE,
};

/// The width and height the API gives an MP4/MOV: its first visual track's, or a square.
pub fn mp4_size(bytes: &[u8]) -> Result<(u32, u32), String> {
    let tracks = find_box(bytes, b"moov").map(|moov| boxes(moov).filter(|b| &b.kind == b"trak").collect::<Vec<_>>());
    let size = tracks.unwrap_or_default().into_iter().find_map(|trak| {
        let tkhd = find_box(trak.body, b"tkhd")?;
        // Version 1 has 64-bit times: the size (16.16 fixed point) sits 12 bytes further in.
        let at = if tkhd.first() == Some(&1) { 88 } else { 76 };
        let fixed = |at: usize| Some(u32::from_be_bytes(tkhd.get(at..at + 4)?.try_into().ok()?) >> 16);
        Some((fixed(at)?, fixed(at + 4)?)).filter(|(w, h)| *w > 0 && *h > 0)
    });
    Ok(size.unwrap_or((SIDE, SIDE)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bx(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
        [&((body.len() + 8) as u32).to_be_bytes()[..], kind, body].concat()
    }

    #[test]
    fn the_first_visual_tracks_size() {
        let tkhd = |w: u32, h: u32| {
            let mut body = vec![0u8; 76];
            body.extend((w << 16).to_be_bytes());
            body.extend((h << 16).to_be_bytes());
            bx(b"tkhd", &body)
        };
        let moov =
            bx(b"moov", &[bx(b"mvhd", &[0; 100]), bx(b"trak", &tkhd(0, 0)), bx(b"trak", &tkhd(1920, 1080))].concat());
        let file = [bx(b"ftyp", b"isom\0\0\0\0mp41"), moov].concat();
        assert_eq!(mp4_size(&file), Ok((1920, 1080)), "the sound track has no size");
        assert_eq!(mp4_size(&bx(b"ftyp", b"isom\0\0\0\0mp41")), Ok((SIDE, SIDE)), "no moov yet: a square");
    }
}
