//! A bounds-checked cursor over input bytes (crate-internal).
//!
//! Callers check the total length first and get a precise error for it; the reader still
//! returns the caller's error instead of panicking should a length ever disagree.

/// Reads fixed-size big-endian fields from the front of a byte slice.
pub(crate) struct Reader<'a, E: Copy> {
    data: &'a [u8],
    pos: usize,
    on_short: E,
}

impl<'a, E: Copy> Reader<'a, E> {
    /// A reader that fails with `on_short` when a field runs past the end.
    pub(crate) fn new(data: &'a [u8], on_short: E) -> Self {
        Self {
            data,
            pos: 0,
            on_short,
        }
    }

    /// Offset of the next byte from the start of the input.
    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    /// The next `N` bytes.
    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N], E> {
        let (head, tail) = self.data.split_first_chunk::<N>().ok_or(self.on_short)?;
        self.data = tail;
        self.pos += N;
        Ok(*head)
    }

    /// One byte.
    pub(crate) fn u8(&mut self) -> Result<u8, E> {
        self.array::<1>().map(|[b]| b)
    }

    /// A 2-byte big-endian integer.
    pub(crate) fn u16(&mut self) -> Result<u16, E> {
        self.array().map(u16::from_be_bytes)
    }

    /// A 3-byte big-endian integer.
    pub(crate) fn u24(&mut self) -> Result<u32, E> {
        self.array::<3>()
            .map(|[a, b, c]| u32::from_be_bytes([0, a, b, c]))
    }

    /// A 4-byte big-endian integer.
    pub(crate) fn u32(&mut self) -> Result<u32, E> {
        self.array().map(u32::from_be_bytes)
    }

    /// Everything not read yet.
    pub(crate) fn rest(&mut self) -> &'a [u8] {
        let rest = self.data;
        self.pos += rest.len();
        self.data = &[];
        rest
    }
}

/// The low 24 bits of `value`, big-endian (3-byte limits on the wire).
pub(crate) fn u24_bytes(value: u32) -> [u8; 3] {
    let [_, a, b, c] = value.to_be_bytes();
    [a, b, c]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_fields_in_order_and_reports_shortfall() {
        let data = [
            0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0A, 0x0B,
        ];
        let mut r = Reader::new(&data, "short");
        assert_eq!(r.u8(), Ok(0x01));
        assert_eq!(r.u16(), Ok(0x0203));
        assert_eq!(r.u24(), Ok(0x04_0506));
        assert_eq!(r.pos(), 6);
        assert_eq!(r.u32(), Ok(0x0708_090A));
        assert_eq!(r.u16(), Err("short"));
        assert_eq!(r.rest(), &[0x0B]);
        assert_eq!(r.pos(), 11);
        assert_eq!(r.u8(), Err("short"));
    }

    #[test]
    fn u24_keeps_low_bits() {
        assert_eq!(u24_bytes(0x00AB_CDEF), [0xAB, 0xCD, 0xEF]);
        assert_eq!(u24_bytes(0x12AB_CDEF), [0xAB, 0xCD, 0xEF]);
    }
}
