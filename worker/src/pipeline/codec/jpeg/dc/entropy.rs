//! Entropy-coded data of the DC scans: the DC Huffman tables and a bit reader that knows stuffed bytes and
//! restart markers.

/// A DC Huffman table in the form of the JPEG standard's decoding procedure (F.2.2.3).
#[derive(Clone, Default)]
pub struct Huffman {
    /// The largest code of each length (index 1-16), -1 when none.
    max_code: [i32; 17],
    /// The index in `values` of the first code of each length, minus that code.
    offset: [i32; 17],
    values: Vec<u8>,
}

impl Huffman {
    pub fn new(counts: &[u8], values: &[u8]) -> Self {
        let mut table = Self { max_code: [-1; 17], offset: [0; 17], values: values.to_vec() };
        let (mut code, mut index) = (0i32, 0i32);
        for length in 1..=16 {
            let count = i32::from(counts[length - 1]);
            table.offset[length] = index - code;
            if count > 0 {
                table.max_code[length] = code + count - 1;
            }
            code = (code + count) << 1;
            index += count;
        }
        table
    }

    pub fn decode(&self, bits: &mut Bits<'_>) -> Option<u8> {
        let mut code = 0i32;
        for length in 1..=16 {
            code = (code << 1) | bits.bit()? as i32;
            if code <= self.max_code[length] {
                return self.values.get(usize::try_from(code + self.offset[length]).ok()?).copied();
            }
        }
        None
    }
}

/// A reader of entropy-coded bits: stuffed `FF 00` bytes are data; a marker ends the data.
pub struct Bits<'a> {
    data: &'a [u8],
    position: usize,
    buffer: u64,
    count: u32,
    /// Bytes read past the data. A valid scan never needs any (its last byte is padded with ones); a few are let
    /// through as libjpeg-turbo does, more mean a broken or hostile file, left to libjpeg-turbo and its scan limit.
    past_end: u32,
}

impl<'a> Bits<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Self { data, position: 0, buffer: 0, count: 0, past_end: 0 }
    }

    pub fn bit(&mut self) -> Option<u32> {
        if self.count == 0 {
            let byte = match (self.data.get(self.position), self.data.get(self.position + 1)) {
                (Some(0xFF), Some(0x00)) => {
                    self.position += 2;
                    0xFF
                }
                // A marker: the data is over.
                (Some(0xFF), _) | (None, _) => {
                    self.past_end += 1;
                    if self.past_end > 4 {
                        return None;
                    }
                    0
                }
                (Some(&byte), _) => {
                    self.position += 1;
                    byte
                }
            };
            self.buffer = u64::from(byte);
            self.count = 8;
        }
        self.count -= 1;
        Some(((self.buffer >> self.count) & 1) as u32)
    }

    pub fn bits(&mut self, count: u8) -> Option<i32> {
        (0..count).try_fold(0i32, |value, _| Some((value << 1) | self.bit()? as i32))
    }

    /// Skips to just after the next restart marker and drops the bits left of the current byte.
    pub fn restart(&mut self) {
        self.count = 0;
        self.past_end = 0;
        while let Some(window) = self.data.get(self.position..self.position + 2) {
            self.position += 1;
            if window[0] == 0xFF && (0xD0..=0xD7).contains(&window[1]) {
                self.position += 1;
                return;
            }
        }
    }
}
