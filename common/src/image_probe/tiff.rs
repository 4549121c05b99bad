//! A TIFF's first directory, walked by hand before any decoder reads it.

/// Whether every tag of a TIFF's first directory claims no more data than the file holds. Checked by hand because
/// the `tiff` crate (0.10) reads that directory before any limit can be set and sizes a tag's buffer from its
/// claimed count, up to 256 MiB: the fuzzer made a 3.8 KB TIFF allocate 33 MB in the header read this way. A file
/// this walk cannot follow is left to the decoder, which refuses it.
pub(super) fn values_fit(bytes: &[u8]) -> bool {
    let little = match bytes.get(..2) {
        Some(b"II") => true,
        Some(b"MM") => false,
        _ => return true,
    };
    let read = |at: usize, len: usize| -> Option<u64> {
        let field = bytes.get(at..at.checked_add(len)?)?;
        let fold = |acc: u64, b: &u8| (acc << 8) | u64::from(*b);
        Some(if little { field.iter().rev().fold(0, fold) } else { field.iter().fold(0, fold) })
    };
    let big = read(2, 2) == Some(43);
    // Classic TIFF: u32 offsets, u16 entry count, 12-byte entries; BigTIFF: u64, u64, 20-byte entries.
    let (offset, count_len, entry_len, field_len) = if big { (read(8, 8), 8, 20, 8) } else { (read(4, 4), 2, 12, 4) };
    let Some(ifd) = offset.and_then(|o| usize::try_from(o).ok()) else { return true };
    let Some(entries) = read(ifd, count_len) else { return true };
    for i in 0..entries.min(4096) as usize {
        let entry = ifd + count_len + i * entry_len;
        let (Some(kind), Some(count)) = (read(entry + 2, 2), read(entry + 4, field_len)) else { return true };
        let size = match kind {
            3 | 8 => 2,
            4 | 9 | 11 | 13 => 4,
            5 | 10 | 12 | 16..=18 => 8,
            _ => 1,
        };
        // A tag with no values at all is malformed too (the `tiff` crate indexes its first value).
        if count == 0 || count.saturating_mul(size) > bytes.len() as u64 {
            return false;
        }
    }
    true
}
