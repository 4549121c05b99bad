//! How many frames an animated GIF, WebP or AVIF holds, and how many times it plays, read from the file's block or chunk
//! structure without decoding a pixel: the worker bounds an animation's frames × pixels before it decodes the first
//! frame, and sizes its memory estimate by it.
//!
//! Walked by hand: the `image` crate's decoders give frames but neither the count nor the loop count, and walking
//! them means decoding every frame. A GIF is a list of blocks whose data comes in length-prefixed sub-blocks, a
//! WebP a list of RIFF chunks: both can be counted by skipping lengths. An AVIF sequence counts its samples in
//! its track's sample table.

use super::heif::{boxes, find_box};
use crate::task::SourceFormat;

/// What an animation's structure says (GIF, WebP, AVIF sequences).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Animation {
    /// Its frames (at least 2: a single frame is a still image).
    pub frames: u32,
    /// How many times it plays; 0: for ever. A GIF's loop extension counts repeats after the first play (none: it
    /// plays once), a WebP's `ANIM` chunk counts plays, as browsers read them.
    pub plays: u16,
}

/// The animation `bytes` hold, for GIF, WebP and AVIF; `None` for a still image, another format, or a file whose
/// structure cannot be walked (its first frame is then all that is used).
pub fn animation(bytes: &[u8], format: SourceFormat) -> Option<Animation> {
    let animation = match format {
        SourceFormat::Gif => gif(bytes)?,
        SourceFormat::Webp => webp(bytes)?,
        SourceFormat::Avif => avif_sequence(bytes)?,
        _ => return None,
    };
    (animation.frames > 1).then_some(animation)
}

/// Counts a GIF's image descriptors and reads its `NETSCAPE2.0` loop extension; stops at the trailer, the end of
/// the bytes, or an unknown block (a truncated or corrupt file has the frames before it).
fn gif(bytes: &[u8]) -> Option<Animation> {
    if !bytes.starts_with(b"GIF8") || bytes.len() < 13 {
        return None;
    }
    let colour_table = |packed: u8| if packed & 0x80 != 0 { 3 << ((packed & 7) + 1) } else { 0 };
    let mut at = 13 + colour_table(bytes[10]);
    let (mut frames, mut repeats) = (0u32, None);
    while let Some(&block) = bytes.get(at) {
        match block {
            // An extension: a label, then sub-blocks.
            0x21 => {
                let (Some(&label), Some(first)) = (bytes.get(at + 1), bytes.get(at + 2..)) else { break };
                let is_loop = label == 0xFF
                    && first.len() >= 16
                    && first[0] == 11
                    && matches!(&first[1..12], b"NETSCAPE2.0" | b"ANIMEXTS1.0")
                    && first[12] == 3
                    && first[13] == 1;
                if is_loop {
                    repeats = Some(u16::from_le_bytes([first[14], first[15]]));
                }
                let Some(next) = skip_sub_blocks(bytes, at + 2) else { break };
                at = next;
            }
            // An image: a descriptor, its local colour table, the LZW code size, then sub-blocks.
            0x2C => {
                let Some(&packed) = bytes.get(at + 9) else { break };
                let Some(next) = skip_sub_blocks(bytes, at + 10 + colour_table(packed) + 1) else { break };
                frames += 1;
                at = next;
            }
            _ => break,
        }
    }
    let plays = match repeats {
        None => 1,
        Some(0) => 0,
        Some(n) => n.saturating_add(1),
    };
    Some(Animation { frames, plays })
}

/// The offset after the sub-blocks starting at `at` (each a length byte and that many bytes, ended by a zero length);
/// `None` when the bytes end first.
fn skip_sub_blocks(bytes: &[u8], mut at: usize) -> Option<usize> {
    loop {
        let length = usize::from(*bytes.get(at)?);
        at += 1 + length;
        if length == 0 {
            return Some(at);
        }
    }
}

/// An AVIF image sequence (brand `avis`): the samples of its first picture track (`stsz`), playing for ever unless
/// an edit list without the repeat flag says once (FFmpeg writes none; libavif writes one that repeats).
fn avif_sequence(bytes: &[u8]) -> Option<Animation> {
    let ftyp = find_box(bytes, b"ftyp")?;
    // Major brand, minor version, then compatible brands.
    let brands = ftyp.chunks_exact(4).enumerate().filter(|(i, _)| *i != 1).map(|(_, brand)| brand);
    if !brands.into_iter().any(|brand| brand == b"avis") {
        return None;
    }
    let moov = find_box(bytes, b"moov")?;
    let picture_track = boxes(moov).filter(|b| &b.kind == b"trak").map(|b| b.body).find(|trak| {
        let handler = find_box(trak, b"mdia").and_then(|mdia| find_box(mdia, b"hdlr"));
        matches!(handler.and_then(|h| h.get(8..12)), Some(b"pict" | b"vide"))
    })?;
    let stbl = find_box(find_box(find_box(picture_track, b"mdia")?, b"minf")?, b"stbl")?;
    // A full box: version and flags, the common sample size, then the count.
    let frames = u32::from_be_bytes(find_box(stbl, b"stsz")?.get(8..12)?.try_into().ok()?);
    let once = find_box(picture_track, b"edts")
        .and_then(|edts| find_box(edts, b"elst"))
        .is_some_and(|elst| elst.get(3).is_some_and(|flags| flags & 1 == 0));
    Some(Animation { frames, plays: u16::from(once) })
}

/// Counts an extended WebP's `ANMF` chunks and reads the loop count of its `ANIM` chunk.
fn webp(bytes: &[u8]) -> Option<Animation> {
    if bytes.get(..4)? != b"RIFF" || bytes.get(8..12)? != b"WEBP" {
        return None;
    }
    let (mut at, mut frames, mut plays) = (12usize, 0u32, 0u16);
    while let Some(header) = bytes.get(at..at + 8) {
        let length = u32::from_le_bytes(header[4..8].try_into().ok()?) as usize;
        match &header[..4] {
            b"ANIM" => plays = u16::from_le_bytes(bytes.get(at + 12..at + 14)?.try_into().ok()?),
            b"ANMF" => frames += 1,
            _ => {}
        }
        // Chunks are padded to an even length.
        at = at.checked_add(8 + length + (length & 1))?;
    }
    Some(Animation { frames, plays })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{animated_avif, animated_gif, animated_webp, heif_enc, sample_image};

    #[test]
    fn counts_the_frames_and_plays_of_a_gif_and_a_webp_that_other_encoders_wrote() {
        // Pillow writes `loop=0` as the NETSCAPE extension with 0 repeats (for ever), `loop=2` as 2 repeats.
        let gif = animated_gif(40, 30, 5, Some(0));
        assert_eq!(animation(&gif, SourceFormat::Gif), Some(Animation { frames: 5, plays: 0 }));
        let twice_more = animated_gif(40, 30, 3, Some(2));
        assert_eq!(animation(&twice_more, SourceFormat::Gif), Some(Animation { frames: 3, plays: 3 }));
        let once = animated_gif(40, 30, 4, None);
        assert_eq!(animation(&once, SourceFormat::Gif), Some(Animation { frames: 4, plays: 1 }));
        let webp = animated_webp(40, 30, 6, 2);
        assert_eq!(animation(&webp, SourceFormat::Webp), Some(Animation { frames: 6, plays: 2 }));
        // FFmpeg writes no edit list: it plays for ever, as browsers play it.
        let avif = animated_avif(40, 30, 4);
        assert_eq!(animation(&avif, SourceFormat::Avif), Some(Animation { frames: 4, plays: 0 }));
        let still = heif_enc(&sample_image(image::ImageFormat::Png, 40, 30), &["-A"]);
        assert_eq!(animation(&still, SourceFormat::Avif), None, "a still AVIF has no sequence");
    }

    #[test]
    fn a_still_image_a_cut_file_and_garbage_are_no_animation_or_the_frames_before_the_cut() {
        assert_eq!(animation(&animated_gif(40, 30, 1, Some(0)), SourceFormat::Gif), None);
        let gif = animated_gif(40, 30, 5, Some(0));
        let cut = animation(&gif[..gif.len() * 3 / 5], SourceFormat::Gif);
        assert!(cut.is_none_or(|a| a.frames < 5), "{cut:?}");
        assert_eq!(animation(b"GIF89a", SourceFormat::Gif), None);
        assert_eq!(animation(b"RIFF\xff\xff\xff\xffWEBPANMF\xff\xff\xff\xff", SourceFormat::Webp), None);
        assert_eq!(animation(&gif, SourceFormat::Png), None);
        let mut endless = b"GIF89a\x01\0\x01\0\0\0\0".to_vec();
        endless.extend(std::iter::repeat_n([0x21u8, 0xF9, 0xFF], 1000).flatten());
        assert_eq!(animation(&endless, SourceFormat::Gif), None, "sub-blocks running off the end");
    }
}
