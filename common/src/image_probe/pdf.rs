//! A PDF's size, as the API sees it: the aspect of the first `/MediaBox` in the file at the vector size
//! ([`super::svg::SIDE`] pixels on the longer side), or a square when none is found before [`SCAN`] bytes. A guess
//! (the first box written need not be the first page's, and a page may be turned): the worker asks its PDF renderer for the
//! first page's real size before it plans the thumbnail. By hand because a PDF parser in the API would be a large
//! attack surface for a hint.

use super::svg::{SIDE, at_side};

/// How far into the file the first media box is looked for.
const SCAN: usize = 1 << 20;

/// The width and height the API gives a PDF.
pub fn size(bytes: &[u8]) -> Result<(u32, u32), String> {
    let head = &bytes[..bytes.len().min(SCAN)];
    let media_box = head.windows(9).position(|w| w == b"/MediaBox").and_then(|at| numbers(&head[at + 9..]));
    Ok(match media_box {
        Some([x0, y0, x1, y1]) if (x1 - x0).abs() > 0.0 && (y1 - y0).abs() > 0.0 => {
            at_side((x1 - x0).abs(), (y1 - y0).abs())
        }
        _ => (SIDE, SIDE),
    })
}

/// The four numbers of an array `[a b c d]` at the start of `bytes` (after white space).
fn numbers(bytes: &[u8]) -> Option<[f64; 4]> {
    let text = std::str::from_utf8(&bytes[..bytes.len().min(128)]).ok().or_else(|| {
        let end = bytes.iter().take(128).position(|b| *b == b']')?;
        std::str::from_utf8(&bytes[..=end]).ok()
    })?;
    let inside = text.trim_start().strip_prefix('[')?.split(']').next()?;
    let values: Vec<f64> = inside.split_whitespace().map(str::parse).collect::<Result<_, _>>().ok()?;
    let values: [f64; 4] = values.try_into().ok()?;
    values.iter().all(|v| v.is_finite()).then_some(values)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_media_box_gives_the_aspect() {
        assert_eq!(size(b"%PDF-1.4\n3 0 obj << /Type /Page /MediaBox [0 0 612 792] >>"), Ok((1583, 2048)));
        assert_eq!(size(b"%PDF-1.7\n<< /MediaBox[ 0 0 841.89 595.28 ]>>"), Ok((2048, 1448)));
        assert_eq!(size(b"%PDF-1.7\n no box here"), Ok((2048, 2048)), "a square when none is found");
        assert_eq!(size(b"%PDF-1.7\n/MediaBox [0 0 0 10]"), Ok((2048, 2048)));
    }
}
