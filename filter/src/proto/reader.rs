//! Reading the protobuf wire format as prost 0.14 reads it: the same checks (varints of at most
//! ten bytes, keys within u32, field 0 and wire types 6 and 7 refused, lengths within the bytes
//! present, UTF-8 strings) and the same nesting limit.
//!
//! Every nested message, map entry and unknown group takes one level of [`RECURSION_LIMIT`], as
//! prost's `DecodeContext` counts: the message decoded at the top and 100 levels under it are
//! read; one more is refused. Nothing here allocates by a length read from the wire: a length is
//! checked against the bytes actually present before it is used.

use std::fmt;

/// Bytes that are not the message they should be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError(pub(crate) &'static str);

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "failed to decode Protobuf message: {}", self.0)
    }
}

impl std::error::Error for DecodeError {}

pub(crate) type Result<T> = std::result::Result<T, DecodeError>;

pub(crate) const VARINT: u8 = 0;
pub(crate) const FIXED64: u8 = 1;
pub(crate) const LEN: u8 = 2;
const START_GROUP: u8 = 3;
const END_GROUP: u8 = 4;
pub(crate) const FIXED32: u8 = 5;
/// prost's (and protobuf C++'s) limit on nesting.
pub const RECURSION_LIMIT: u32 = 100;

/// The unread rest of a message, and how much deeper prost would still go.
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
    depth_left: u32,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Self {
            bytes,
            depth_left: RECURSION_LIMIT,
        }
    }

    /// The bytes not read yet.
    pub(crate) fn rest(&self) -> &'a [u8] {
        self.bytes
    }

    /// A length-delimited field, as the reader of the message inside it.
    pub(crate) fn nested(&mut self, wire: u8) -> Result<Reader<'a>> {
        if self.depth_left == 0 {
            return Err(DecodeError("recursion limit reached"));
        }
        Ok(Reader {
            bytes: self.len_delimited(wire)?,
            depth_left: self.depth_left - 1,
        })
    }

    fn varint_raw(&mut self) -> Result<u64> {
        let mut value = 0u64;
        for i in 0..10 {
            let Some((&byte, rest)) = self.bytes.split_first() else {
                return Err(DecodeError("invalid varint"));
            };
            self.bytes = rest;
            // The tenth byte may only carry the top bit of a u64.
            if i == 9 && byte > 1 {
                return Err(DecodeError("invalid varint"));
            }
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte < 0x80 {
                return Ok(value);
            }
        }
        Err(DecodeError("invalid varint"))
    }

    /// The next field's number and wire type, or `None` at the end.
    pub(crate) fn key(&mut self) -> Result<Option<(u32, u8)>> {
        if self.bytes.is_empty() {
            return Ok(None);
        }
        let key = self.varint_raw()?;
        let key = u32::try_from(key).map_err(|_| DecodeError("invalid key value"))?;
        let wire = (key & 0x07) as u8;
        if wire > FIXED32 {
            return Err(DecodeError("invalid wire type value"));
        }
        let field = key >> 3;
        if field == 0 {
            return Err(DecodeError("invalid tag value: 0"));
        }
        Ok(Some((field, wire)))
    }

    fn expect(wire: u8, expected: u8) -> Result<()> {
        if wire == expected {
            Ok(())
        } else {
            Err(DecodeError("invalid wire type"))
        }
    }

    pub(crate) fn varint(&mut self, wire: u8) -> Result<u64> {
        Self::expect(wire, VARINT)?;
        self.varint_raw()
    }

    pub(crate) fn int32(&mut self, wire: u8) -> Result<i32> {
        Ok(self.varint(wire)? as i32)
    }

    pub(crate) fn take(&mut self, len: u64) -> Result<&'a [u8]> {
        let len = usize::try_from(len).map_err(|_| DecodeError("buffer underflow"))?;
        if len > self.bytes.len() {
            return Err(DecodeError("buffer underflow"));
        }
        let (taken, rest) = self.bytes.split_at(len);
        self.bytes = rest;
        Ok(taken)
    }

    pub(crate) fn len_delimited(&mut self, wire: u8) -> Result<&'a [u8]> {
        Self::expect(wire, LEN)?;
        let len = self.varint_raw()?;
        self.take(len)
    }

    pub(crate) fn string(&mut self, wire: u8) -> Result<String> {
        self.str(wire).map(str::to_owned)
    }

    /// A `string` field, borrowed.
    pub(crate) fn str(&mut self, wire: u8) -> Result<&'a str> {
        let bytes = self.len_delimited(wire)?;
        std::str::from_utf8(bytes)
            .map_err(|_| DecodeError("invalid string value: data is not UTF-8 encoded"))
    }

    /// A `double` (or `fixed64`) field's bits.
    pub(crate) fn fixed64(&mut self, wire: u8) -> Result<u64> {
        Self::expect(wire, FIXED64)?;
        let bytes = self.take(8)?;
        let mut bits = [0u8; 8];
        bits.copy_from_slice(bytes);
        Ok(u64::from_le_bytes(bits))
    }

    /// A map entry, as the reader of the entry's key and value. Like prost, the entry's wire type
    /// is not checked: it is read as a length either way.
    pub(crate) fn map_entry(&mut self) -> Result<Reader<'a>> {
        self.nested(LEN)
    }

    /// Skips a field this decoder does not read; a group whole, field by field, as prost does.
    pub(crate) fn skip(&mut self, field: u32, wire: u8) -> Result<()> {
        self.skip_within(field, wire, self.depth_left)
    }

    fn skip_within(&mut self, field: u32, wire: u8, depth_left: u32) -> Result<()> {
        if depth_left == 0 {
            return Err(DecodeError("recursion limit reached"));
        }
        match wire {
            VARINT => self.varint_raw().map(|_| ()),
            FIXED64 => self.take(8).map(|_| ()),
            LEN => {
                let len = self.varint_raw()?;
                self.take(len).map(|_| ())
            }
            START_GROUP => loop {
                let (inner, inner_wire) = self.key()?.ok_or(DecodeError("invalid varint"))?;
                if inner_wire == END_GROUP {
                    return if inner == field {
                        Ok(())
                    } else {
                        Err(DecodeError("unexpected end group tag"))
                    };
                }
                self.skip_within(inner, inner_wire, depth_left - 1)?;
            },
            FIXED32 => self.take(4).map(|_| ()),
            _ => Err(DecodeError("unexpected end group tag")),
        }
    }
}
