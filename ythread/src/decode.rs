//! Decoding an [`Encoded`] whose large byte strings travelled apart: a reader of postcard's
//! format of its own, because postcard's decoder lends every byte string to the visitor as a
//! slice, and a `serde_bytes::ByteBuf` or `String` then copies it into a fresh `Vec`. This one
//! hands a byte string that arrived apart, already in its own `Vec`, to `visit_byte_buf` or
//! `visit_string`: no copy at all.
//!
//! It reads the rest and the pieces as one stream, exactly as postcard would read the whole
//! encoding, so any type decodes, whatever its `Deserialize` asks for: a piece that is not
//! exactly one byte string (a `Vec<u8>` read element by element, a cut in the middle of a
//! number) is read through, byte by byte, at the cost of the copy it would have cost anyway.
//! What postcard does not support (self-describing `deserialize_any`, identifiers) this does
//! not either; the tests check it decodes what postcard encodes, for every way of cutting it.

use std::fmt;

use serde::de::{self, DeserializeOwned, DeserializeSeed, IntoDeserializer, Visitor};

use crate::encoded::{Apart, Encoded};

/// Decodes `encoded` as a `T`: by postcard itself when it is all in one piece.
pub(crate) fn decode<T: DeserializeOwned>(encoded: Encoded<'_>) -> Result<T> {
    if !encoded.has_apart() {
        return postcard::from_bytes(encoded.rest()).map_err(|e| DecodeError(e.to_string()));
    }
    let (rest, apart) = encoded.into_parts();
    let mut reader = Reader {
        rest,
        pos: 0,
        apart_left: apart.iter().map(|gap| gap.bytes.len()).sum(),
        apart: apart.into_iter(),
        current: None,
    };
    let value = T::deserialize(&mut reader)?;
    // Empty pieces at the very end hold nothing to read: postcard would accept them.
    reader.enter_piece();
    match reader.apart.len() + usize::from(reader.current.is_some()) {
        0 => Ok(value),
        left => Err(DecodeError(format!(
            "{left} piece(s) of bytes sent apart were left over after decoding"
        ))),
    }
}

impl Encoded<'_> {
    /// Decodes this encoding as a `T`, as a strategy decodes a result: by postcard when it is
    /// all in one piece, otherwise handing each byte string that travelled apart to the value
    /// without a copy. The time it takes grows with the bytes and the pieces, linearly.
    ///
    /// # Errors
    ///
    /// A [`Codec`](crate::ErrorKind::Codec) error if the bytes are not a postcard encoding of
    /// a `T`, or pieces are left over.
    pub fn decode<T: DeserializeOwned>(self) -> std::result::Result<T, crate::Error> {
        decode(self).map_err(|e| crate::Error::codec("decode an encoding", e))
    }
}

/// Why an encoding did not decode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DecodeError(String);

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DecodeError {}

impl de::Error for DecodeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        DecodeError(msg.to_string())
    }
}

type Result<T, E = DecodeError> = std::result::Result<T, E>;

fn bad(what: &str) -> DecodeError {
    DecodeError(what.to_owned())
}

const ENDED: &str = "the encoding ended early";

/// The stream of the rest and its pieces, in order.
struct Reader<'de> {
    rest: &'de [u8],
    /// The next byte of `rest` to read.
    pos: usize,
    /// The pieces not reached yet, in order.
    apart: std::vec::IntoIter<Apart>,
    /// The bytes of `apart`, kept as the pieces are entered, so that checking what is left
    /// costs the same however many pieces there are.
    apart_left: usize,
    /// A piece being read through, and how far.
    current: Option<(Vec<u8>, usize)>,
}

/// Bytes taken from the stream.
enum Taken<'de> {
    Borrowed(&'de [u8]),
    Owned(Vec<u8>),
}

impl<'de> Reader<'de> {
    /// Where the next piece of the rest ends: at the next gap, or at its end.
    fn rest_run_end(&self) -> usize {
        self.apart
            .as_slice()
            .first()
            .map_or(self.rest.len(), |gap| gap.at)
    }

    /// Bytes left in the stream.
    fn remaining(&self) -> usize {
        let current = self
            .current
            .as_ref()
            .map_or(0, |(bytes, at)| bytes.len() - at);
        self.rest.len() - self.pos + current + self.apart_left
    }

    /// Moves into the next piece if the rest is read up to its gap.
    fn enter_piece(&mut self) {
        while self.current.is_none()
            && self
                .apart
                .as_slice()
                .first()
                .is_some_and(|gap| gap.at == self.pos)
            && let Some(gap) = self.apart.next()
        {
            self.apart_left -= gap.bytes.len();
            if !gap.bytes.is_empty() {
                self.current = Some((gap.bytes, 0));
            }
        }
    }

    fn pop(&mut self) -> Result<u8> {
        self.enter_piece();
        if let Some((bytes, at)) = &mut self.current {
            let byte = bytes[*at];
            *at += 1;
            if *at == bytes.len() {
                self.current = None;
            }
            return Ok(byte);
        }
        let byte = *self.rest.get(self.pos).ok_or_else(|| bad(ENDED))?;
        self.pos += 1;
        Ok(byte)
    }

    /// Takes `n` bytes: borrowed from the rest, a whole piece as it came, or (across a
    /// boundary) gathered into a new `Vec`.
    fn take(&mut self, n: usize) -> Result<Taken<'de>> {
        self.enter_piece();
        match &self.current {
            Some((bytes, 0)) if bytes.len() == n => {
                let (bytes, _) = self.current.take().expect("matched above");
                return Ok(Taken::Owned(bytes));
            }
            None if self
                .pos
                .checked_add(n)
                .is_some_and(|end| end <= self.rest_run_end()) =>
            {
                let taken = &self.rest[self.pos..self.pos + n];
                self.pos += n;
                return Ok(Taken::Borrowed(taken));
            }
            _ => {}
        }
        if n > self.remaining() {
            return Err(bad(ENDED));
        }
        let mut gathered = Vec::with_capacity(n);
        while gathered.len() < n {
            self.enter_piece();
            let want = n - gathered.len();
            if let Some((bytes, at)) = &mut self.current {
                let end = (*at + want).min(bytes.len());
                gathered.extend_from_slice(&bytes[*at..end]);
                *at = end;
                if end == bytes.len() {
                    self.current = None;
                }
            } else {
                let end = (self.pos + want).min(self.rest_run_end());
                gathered.extend_from_slice(&self.rest[self.pos..end]);
                self.pos = end;
            }
        }
        Ok(Taken::Owned(gathered))
    }

    fn take_array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut out = [0; N];
        for byte in &mut out {
            *byte = self.pop()?;
        }
        Ok(out)
    }

    /// A varint of a `bits`-wide unsigned integer, checked as postcard checks it.
    fn varint(&mut self, bits: u32) -> Result<u128> {
        let max_bytes = bits.div_ceil(7);
        let last_max = (1u16 << (bits - 7 * (max_bytes - 1))) - 1;
        let mut out = 0u128;
        for i in 0..max_bytes {
            let byte = self.pop()?;
            if i == max_bytes - 1 && u16::from(byte) > last_max {
                return Err(bad("a varint is out of range for its type"));
            }
            out |= u128::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                return Ok(out);
            }
        }
        Err(bad("a varint is out of range for its type"))
    }

    fn length(&mut self) -> Result<usize> {
        usize::try_from(self.varint(64)?).map_err(|_| bad("a length is too large"))
    }

    fn utf8(taken: Taken<'de>) -> Result<StrTaken<'de>> {
        match taken {
            Taken::Borrowed(bytes) => std::str::from_utf8(bytes)
                .map(StrTaken::Borrowed)
                .map_err(|_| bad("a string is not valid UTF-8")),
            Taken::Owned(bytes) => String::from_utf8(bytes)
                .map(StrTaken::Owned)
                .map_err(|_| bad("a string is not valid UTF-8")),
        }
    }
}

enum StrTaken<'de> {
    Borrowed(&'de str),
    Owned(String),
}

fn unzigzag(n: u128) -> i128 {
    ((n >> 1) as i128) ^ -((n & 1) as i128)
}

macro_rules! unsigned {
    ($method:ident, $visit:ident, $ty:ty, $bits:expr) => {
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
            visitor.$visit(self.varint($bits)? as $ty)
        }
    };
}

macro_rules! signed {
    ($method:ident, $visit:ident, $ty:ty, $bits:expr) => {
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
            visitor.$visit(unzigzag(self.varint($bits)?) as $ty)
        }
    };
}

impl<'de> de::Deserializer<'de> for &mut Reader<'de> {
    type Error = DecodeError;

    fn is_human_readable(&self) -> bool {
        false
    }

    fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value> {
        Err(bad(
            "postcard does not describe its own types (deserialize_any); give the type exactly",
        ))
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self.pop()? {
            0 => visitor.visit_bool(false),
            1 => visitor.visit_bool(true),
            _ => Err(bad("a bool is neither 0 nor 1")),
        }
    }

    fn deserialize_i8<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        visitor.visit_i8(self.pop()? as i8)
    }

    fn deserialize_u8<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        visitor.visit_u8(self.pop()?)
    }

    unsigned!(deserialize_u16, visit_u16, u16, 16);
    unsigned!(deserialize_u32, visit_u32, u32, 32);
    unsigned!(deserialize_u64, visit_u64, u64, 64);
    unsigned!(deserialize_u128, visit_u128, u128, 128);
    signed!(deserialize_i16, visit_i16, i16, 16);
    signed!(deserialize_i32, visit_i32, i32, 32);
    signed!(deserialize_i64, visit_i64, i64, 64);
    signed!(deserialize_i128, visit_i128, i128, 128);

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        visitor.visit_f32(f32::from_le_bytes(self.take_array()?))
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        visitor.visit_f64(f64::from_le_bytes(self.take_array()?))
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        let len = self.length()?;
        if len > 4 {
            return Err(bad("a char is longer than 4 bytes"));
        }
        let text = match Reader::utf8(self.take(len)?)? {
            StrTaken::Borrowed(text) => text.chars().next(),
            StrTaken::Owned(text) => text.chars().next(),
        };
        visitor.visit_char(text.ok_or_else(|| bad("a char is empty"))?)
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        let len = self.length()?;
        match Reader::utf8(self.take(len)?)? {
            StrTaken::Borrowed(text) => visitor.visit_borrowed_str(text),
            StrTaken::Owned(text) => visitor.visit_string(text),
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.deserialize_str(visitor)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        let len = self.length()?;
        match self.take(len)? {
            Taken::Borrowed(bytes) => visitor.visit_borrowed_bytes(bytes),
            Taken::Owned(bytes) => visitor.visit_byte_buf(bytes),
        }
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.deserialize_bytes(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self.pop()? {
            0 => visitor.visit_none(),
            1 => visitor.visit_some(self),
            _ => Err(bad("an option's tag is neither 0 nor 1")),
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        visitor.visit_unit()
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value> {
        visitor.visit_unit()
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        let len = self.length()?;
        visitor.visit_seq(Elements { reader: self, len })
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value> {
        visitor.visit_seq(Elements { reader: self, len })
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value> {
        self.deserialize_tuple(len, visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        let len = self.length()?;
        visitor.visit_map(Elements { reader: self, len })
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value> {
        self.deserialize_tuple(fields.len(), visitor)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value> {
        visitor.visit_enum(self)
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value> {
        Err(bad("postcard does not encode identifiers"))
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value> {
        Err(bad(
            "postcard cannot skip a value it does not know the type of",
        ))
    }
}

/// The elements of a sequence, tuple or map, `len` of them (pairs, for a map).
struct Elements<'a, 'de> {
    reader: &'a mut Reader<'de>,
    len: usize,
}

impl<'de> de::SeqAccess<'de> for Elements<'_, 'de> {
    type Error = DecodeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>> {
        if self.len == 0 {
            return Ok(None);
        }
        self.len -= 1;
        seed.deserialize(&mut *self.reader).map(Some)
    }

    fn size_hint(&self) -> Option<usize> {
        // A hint larger than the bytes left would let a bad length allocate without bound.
        (self.len <= self.reader.remaining()).then_some(self.len)
    }
}

impl<'de> de::MapAccess<'de> for Elements<'_, 'de> {
    type Error = DecodeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>> {
        de::SeqAccess::next_element_seed(self, seed)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value> {
        seed.deserialize(&mut *self.reader)
    }

    fn size_hint(&self) -> Option<usize> {
        de::SeqAccess::size_hint(self)
    }
}

impl<'de> de::EnumAccess<'de> for &mut Reader<'de> {
    type Error = DecodeError;
    type Variant = Self;

    fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> Result<(V::Value, Self)> {
        let index = self.varint(32)? as u32;
        let value = seed.deserialize(index.into_deserializer())?;
        Ok((value, self))
    }
}

impl<'de> de::VariantAccess<'de> for &mut Reader<'de> {
    type Error = DecodeError;

    fn unit_variant(self) -> Result<()> {
        Ok(())
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value> {
        seed.deserialize(self)
    }

    fn tuple_variant<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value> {
        de::Deserializer::deserialize_tuple(self, len, visitor)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value> {
        de::Deserializer::deserialize_tuple(self, fields.len(), visitor)
    }
}

#[cfg(test)]
mod tests;
