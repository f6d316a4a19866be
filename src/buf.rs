//! A fixed-capacity byte writer over a borrowed buffer.
//!
//! Writes past the end are cut off, never a panic: callers size buffers so that does not
//! happen (see the capacity constants next to each buffer) and a cut log line is better than a
//! crashed server.

/// Appends bytes to a borrowed buffer.
pub struct Buf<'a> {
    bytes: &'a mut [u8],
    len: usize,
}

impl<'a> Buf<'a> {
    /// An empty writer over `bytes`.
    pub fn new(bytes: &'a mut [u8]) -> Self {
        Buf { bytes, len: 0 }
    }

    /// A writer over `bytes` whose first `len` bytes are already written.
    pub fn resume(bytes: &'a mut [u8], len: usize) -> Self {
        let len = len.min(bytes.len());
        Buf { bytes, len }
    }

    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when nothing is written yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Room left.
    pub fn remaining(&self) -> usize {
        self.bytes.len() - self.len
    }

    /// The written bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }

    /// Appends as much of `s` as fits.
    // size: never inlined. s390x's inliner favours a function whose argument is only copied
    // from and inlined it at every call site (4,184 bytes); elsewhere it changes nothing.
    #[inline(never)]
    pub fn push(&mut self, s: &[u8]) {
        let n = s.len().min(self.remaining());
        self.bytes[self.len..self.len + n].copy_from_slice(&s[..n]);
        self.len += n;
    }

    /// Appends one byte if it fits.
    pub fn byte(&mut self, b: u8) {
        self.push(&[b]);
    }

    /// Appends `n` in decimal.
    pub fn num(&mut self, n: u64) {
        self.padded(n, 0);
    }

    /// Appends `n` in decimal with at least `width` digits (zero-padded): the date
    /// and time fields, and the log's fraction of a millisecond.
    pub fn padded(&mut self, n: u64, width: usize) {
        let mut b = itoa::Buffer::new();
        let digits = b.format(n).as_bytes();
        for _ in digits.len()..width {
            self.byte(b'0');
        }
        self.push(digits);
    }
}

#[cfg(test)]
mod test {
    use super::Buf;

    #[test]
    fn cuts_instead_of_overflowing() {
        let mut a = [0u8; 5];
        let mut b = Buf::new(&mut a);
        b.push(b"abc");
        b.num(1234);
        assert_eq!(b.as_bytes(), b"abc12");
        assert_eq!(b.remaining(), 0);
    }

    #[test]
    fn pads_numbers() {
        let mut a = [0u8; 16];
        let mut b = Buf::new(&mut a);
        b.padded(7, 2);
        b.padded(123, 2);
        b.padded(0, 3);
        assert_eq!(b.as_bytes(), b"07123000");
    }

    #[test]
    fn writes_the_extremes() {
        let mut a = [0u8; 32];
        let mut b = Buf::new(&mut a);
        b.num(0);
        b.byte(b' ');
        b.num(u64::MAX);
        assert_eq!(b.as_bytes(), b"0 18446744073709551615");
    }
}
