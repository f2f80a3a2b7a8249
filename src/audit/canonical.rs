//! The canonical byte encoding that the hash chain covers (format version 1).
//!
//! The encoding is written by hand so that the bytes of an event never depend on a library's
//! choices (map ordering, float formatting, whitespace, escaping). It is a plain concatenation of
//! fields in a fixed order; every variable-length value carries its length, so two different
//! field lists can never encode to the same bytes.
//!
//! | type | bytes |
//! |---|---|
//! | `u8` | 1 byte |
//! | `u32`, `i32` | 4 bytes, big-endian (two's complement for `i32`) |
//! | `u64`, `i64` | 8 bytes, big-endian (two's complement for `i64`) |
//! | `bool` | 1 byte: `0x00` false, `0x01` true |
//! | `str` | `u64` byte length, then the UTF-8 bytes |
//! | `bytes` | `u64` length, then the bytes |
//! | `option<T>` | `0x00` for none; `0x01` then `T` |
//! | `list<T>` | `u64` item count, then each `T` |
//!
//! Enumerations (statuses, outcomes) are written as `str` holding their documented `snake_case`
//! name, never as a numeric index, so adding a variant cannot change the meaning of old bytes.
//! This module must not change: a new encoding gets a new format version (see `chain`).

use std::fmt;

/// Appends canonical values to a byte buffer.
#[derive(Debug, Default)]
pub(crate) struct Encoder {
    bytes: Vec<u8>,
}

impl Encoder {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    pub(crate) fn finish(self) -> Vec<u8> {
        self.bytes
    }

    pub(crate) fn u8(&mut self, value: u8) -> &mut Self {
        self.bytes.push(value);
        self
    }

    pub(crate) fn u32(&mut self, value: u32) -> &mut Self {
        self.bytes.extend_from_slice(&value.to_be_bytes());
        self
    }

    pub(crate) fn i32(&mut self, value: i32) -> &mut Self {
        self.bytes.extend_from_slice(&value.to_be_bytes());
        self
    }

    pub(crate) fn u64(&mut self, value: u64) -> &mut Self {
        self.bytes.extend_from_slice(&value.to_be_bytes());
        self
    }

    pub(crate) fn i64(&mut self, value: i64) -> &mut Self {
        self.bytes.extend_from_slice(&value.to_be_bytes());
        self
    }

    pub(crate) fn bool(&mut self, value: bool) -> &mut Self {
        self.u8(u8::from(value))
    }

    pub(crate) fn bytes(&mut self, value: &[u8]) -> &mut Self {
        self.u64(value.len() as u64);
        self.bytes.extend_from_slice(value);
        self
    }

    pub(crate) fn str(&mut self, value: &str) -> &mut Self {
        self.bytes(value.as_bytes())
    }

    /// Writes `option<T>`, with `write` encoding the value when there is one.
    pub(crate) fn option<T>(
        &mut self,
        value: Option<T>,
        write: impl FnOnce(&mut Self, T),
    ) -> &mut Self {
        match value {
            None => self.u8(0),
            Some(value) => {
                self.u8(1);
                write(self, value);
                self
            }
        }
    }

    /// Writes `list<T>`, with `write` encoding each item.
    pub(crate) fn list<T>(
        &mut self,
        items: &[T],
        mut write: impl FnMut(&mut Self, &T),
    ) -> &mut Self {
        self.u64(items.len() as u64);
        for item in items {
            write(self, item);
        }
        self
    }
}

/// Why canonical bytes could not be read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DecodeError(pub(crate) String);

impl fmt::Display for DecodeError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.0)
    }
}

/// Reads canonical values back, in the order they were written.
#[derive(Debug)]
pub(crate) struct Decoder<'a> {
    bytes: &'a [u8],
}

impl<'a> Decoder<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Self { bytes }
    }

    fn take(&mut self, count: usize) -> Result<&'a [u8], DecodeError> {
        if self.bytes.len() < count {
            return Err(DecodeError(format!(
                "needs {count} more bytes, {} left",
                self.bytes.len()
            )));
        }
        let (head, rest) = self.bytes.split_at(count);
        self.bytes = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut array = [0; N];
        array.copy_from_slice(self.take(N)?);
        Ok(array)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.array::<1>()?[0])
    }

    pub(crate) fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    pub(crate) fn i32(&mut self) -> Result<i32, DecodeError> {
        Ok(i32::from_be_bytes(self.array()?))
    }

    pub(crate) fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    #[cfg_attr(
        not(test),
        expect(
            dead_code,
            reason = "part of the encoding; no version-1 body field is an i64"
        )
    )]
    pub(crate) fn i64(&mut self) -> Result<i64, DecodeError> {
        Ok(i64::from_be_bytes(self.array()?))
    }

    pub(crate) fn bool(&mut self) -> Result<bool, DecodeError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            other => Err(DecodeError(format!("bool byte {other:#04x}"))),
        }
    }

    pub(crate) fn bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let length = self.u64()?;
        let length = usize::try_from(length)
            .map_err(|_| DecodeError(format!("length {length} does not fit in memory")))?;
        self.take(length)
    }

    pub(crate) fn str(&mut self) -> Result<String, DecodeError> {
        let bytes = self.bytes()?;
        String::from_utf8(bytes.to_vec()).map_err(|error| DecodeError(format!("{error}")))
    }

    pub(crate) fn option<T>(
        &mut self,
        read: impl FnOnce(&mut Self) -> Result<T, DecodeError>,
    ) -> Result<Option<T>, DecodeError> {
        match self.u8()? {
            0 => Ok(None),
            1 => read(self).map(Some),
            other => Err(DecodeError(format!("option byte {other:#04x}"))),
        }
    }

    pub(crate) fn list<T>(
        &mut self,
        mut read: impl FnMut(&mut Self) -> Result<T, DecodeError>,
    ) -> Result<Vec<T>, DecodeError> {
        let count = self.u64()?;
        // Every item takes at least one byte, so a count beyond the remaining bytes is a lie;
        // checking first keeps a forged count from allocating gigabytes.
        if count > self.bytes.len() as u64 {
            return Err(DecodeError(format!(
                "list of {count} items in {} bytes",
                self.bytes.len()
            )));
        }
        let mut items = Vec::with_capacity(count as usize);
        for _ in 0..count {
            items.push(read(self)?);
        }
        Ok(items)
    }

    /// Fails unless every byte was read: trailing bytes mean the body is not what it claims.
    pub(crate) fn finish(self) -> Result<(), DecodeError> {
        if self.bytes.is_empty() {
            Ok(())
        } else {
            Err(DecodeError(format!("{} trailing bytes", self.bytes.len())))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Decoder, Encoder};

    #[test]
    fn values_round_trip_in_order() {
        let mut encoder = Encoder::new();
        encoder
            .u8(7)
            .u32(0x0102_0304)
            .i32(-2)
            .u64(u64::MAX)
            .i64(-1)
            .bool(true)
            .str("héllo")
            .option(Some("x"), |encoder, value| {
                encoder.str(value);
            })
            .option(None::<u32>, |encoder, value| {
                encoder.u32(value);
            })
            .list(&["a", "bc"], |encoder, item| {
                encoder.str(item);
            });
        let bytes = encoder.finish();
        assert_eq!(&bytes[1..5], &[1, 2, 3, 4], "u32 is big-endian");
        let mut decoder = Decoder::new(&bytes);
        assert_eq!(decoder.u8(), Ok(7));
        assert_eq!(decoder.u32(), Ok(0x0102_0304));
        assert_eq!(decoder.i32(), Ok(-2));
        assert_eq!(decoder.u64(), Ok(u64::MAX));
        assert_eq!(decoder.i64(), Ok(-1));
        assert_eq!(decoder.bool(), Ok(true));
        assert_eq!(decoder.str().as_deref(), Ok("héllo"));
        assert_eq!(decoder.option(Decoder::str), Ok(Some("x".to_owned())));
        assert_eq!(decoder.option(Decoder::u32), Ok(None));
        assert_eq!(
            decoder.list(Decoder::str),
            Ok(vec!["a".to_owned(), "bc".to_owned()])
        );
        assert!(decoder.finish().is_ok());
    }

    #[test]
    fn length_prefixes_keep_adjacent_strings_apart() {
        let mut first = Encoder::new();
        first.str("ab").str("c");
        let mut second = Encoder::new();
        second.str("a").str("bc");
        assert_ne!(first.finish(), second.finish());
    }

    #[test]
    fn truncated_forged_and_trailing_bytes_are_errors() {
        assert!(Decoder::new(&[0, 0, 0]).u32().is_err());
        let mut huge_list = Encoder::new();
        huge_list.u64(u64::MAX);
        assert!(Decoder::new(&huge_list.finish()).list(Decoder::u8).is_err());
        assert!(Decoder::new(&[2]).bool().is_err());
        let mut decoder = Decoder::new(&[1, 2]);
        assert_eq!(decoder.u8(), Ok(1));
        assert!(decoder.finish().is_err());
    }
}
