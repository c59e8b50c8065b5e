//! The few protobuf wire-format primitives the CheckRequest encoder needs.
//!
//! The CheckRequest is written straight from the host's header buffer, without building owned
//! messages first: one growing buffer and no per-header allocation.

const WIRE_VARINT: u32 = 0;
const WIRE_FIXED64: u32 = 1;
const WIRE_LEN: u32 = 2;

/// A `bool` field written even when false (inside a oneof, where presence matters).
pub fn bool_field(buf: &mut Vec<u8>, field: u32, value: bool) {
    tag(buf, field, WIRE_VARINT);
    buf.push(u8::from(value));
}

pub fn varint(buf: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        buf.push((value as u8) | 0x80);
        value >>= 7;
    }
    buf.push(value as u8);
}

fn tag(buf: &mut Vec<u8>, field: u32, wire_type: u32) {
    varint(buf, u64::from(field << 3 | wire_type));
}

/// A `string` field; left out when empty. Bytes that are not UTF-8 become `!`, one per byte, as
/// native ext_authz coerces them (a strict decoder would otherwise refuse the whole request).
pub fn string_field(buf: &mut Vec<u8>, field: u32, value: &[u8]) {
    bytes_field(buf, field, value);
    let value_start = buf.len() - value.len();
    coerce_utf8(&mut buf[value_start..]);
}

/// Replaces every byte of an invalid UTF-8 sequence with `!`, in place: the length never changes,
/// so it can run over bytes already written behind their length prefix.
pub fn coerce_utf8(bytes: &mut [u8]) {
    // Headers are nearly always ASCII, which a word at a time proves cheaper than a UTF-8 check.
    if bytes.is_ascii() {
        return;
    }
    let mut at = 0;
    while let Err(error) = std::str::from_utf8(&bytes[at..]) {
        let bad = at + error.valid_up_to();
        let end = error.error_len().map_or(bytes.len(), |len| bad + len);
        bytes[bad..end].fill(b'!');
        at = end;
    }
}

/// A `bytes` field (or a string known to be UTF-8); left out when empty, as proto3 does.
pub fn bytes_field(buf: &mut Vec<u8>, field: u32, value: &[u8]) {
    if value.is_empty() {
        return;
    }
    tag(buf, field, WIRE_LEN);
    varint(buf, value.len() as u64);
    buf.extend_from_slice(value);
}

/// An `int64`/`uint32` field; left out when zero, as proto3 does.
pub fn varint_field(buf: &mut Vec<u8>, field: u32, value: u64) {
    if value == 0 {
        return;
    }
    tag(buf, field, WIRE_VARINT);
    varint(buf, value);
}

/// A nested message written in place by `write`, then given its length prefix.
///
/// One byte is reserved for the length; longer messages are shifted right once to make room,
/// which costs one `memmove` instead of an intermediate buffer per level.
///
/// Generic only in `write`: the tag and the length are written by [`open_message`] and
/// [`close_message`], once in the module rather than once per caller (20 of them).
pub fn message_field(buf: &mut Vec<u8>, field: u32, write: impl FnOnce(&mut Vec<u8>)) {
    let length_at = open_message(buf, field);
    write(buf);
    close_message(buf, length_at);
}

/// Writes the tag and one byte reserved for the length; answers where that byte is.
#[inline(never)]
fn open_message(buf: &mut Vec<u8>, field: u32) -> usize {
    tag(buf, field, WIRE_LEN);
    buf.push(0);
    buf.len() - 1
}

/// Writes the length of what follows `length_at`, shifting it right when it needs more bytes.
#[inline(never)]
fn close_message(buf: &mut Vec<u8>, length_at: usize) {
    let start = length_at + 1;
    let length = buf.len() - start;
    if length < 0x80 {
        buf[length_at] = length as u8;
        return;
    }
    // The length's varint, built on the stack.
    let mut prefix = [0u8; 10];
    let mut size = 0;
    let mut rest = length;
    while rest >= 0x80 {
        prefix[size] = (rest as u8) | 0x80;
        rest >>= 7;
        size += 1;
    }
    prefix[size] = rest as u8;
    size += 1;
    let extra = size - 1;
    buf.resize(buf.len() + extra, 0);
    buf.copy_within(start..start + length, start + extra);
    buf[length_at..length_at + size].copy_from_slice(&prefix[..size]);
}

/// One entry of a `map<string, string>` field: a message with key = 1 and value = 2.
///
/// Unlike plain proto3 fields, an empty value is still written, so a header whose value is
/// empty arrives as present.
pub fn map_entry(buf: &mut Vec<u8>, field: u32, key: &[u8], value: &[u8]) {
    map_entry_parts(buf, field, key, &[value]);
}

/// A map entry whose value is an encoded message (or bytes) written as it is.
pub fn map_entry_message(buf: &mut Vec<u8>, field: u32, key: &[u8], value: &[u8]) {
    message_field(buf, field, |buf| {
        tag(buf, 1, WIRE_LEN);
        varint(buf, key.len() as u64);
        buf.extend_from_slice(key);
        tag(buf, 2, WIRE_LEN);
        varint(buf, value.len() as u64);
        buf.extend_from_slice(value);
    });
}

/// A `double` field; left out when zero.
pub fn double_field(buf: &mut Vec<u8>, field: u32, value: f64) {
    tag(buf, field, WIRE_FIXED64);
    buf.extend_from_slice(&value.to_le_bytes());
}

/// A map entry whose value is the parts joined with `,`: repeated headers, joined without a copy.
pub fn map_entry_parts(buf: &mut Vec<u8>, field: u32, key: &[u8], parts: &[&[u8]]) {
    map_entry_values(buf, field, key, parts.iter().copied());
}

/// [`map_entry_parts`] over any (cheaply cloned) sequence of parts.
pub fn map_entry_values<'v>(
    buf: &mut Vec<u8>,
    field: u32,
    key: &[u8],
    parts: impl Iterator<Item = &'v [u8]> + Clone,
) {
    let (count, bytes) = parts
        .clone()
        .fold((0usize, 0usize), |(n, len), p| (n + 1, len + p.len()));
    let value_len: usize = bytes + count.saturating_sub(1);
    let entry_len =
        1 + varint_len(key.len() as u64) + key.len() + 1 + varint_len(value_len as u64) + value_len;
    tag(buf, field, WIRE_LEN);
    varint(buf, entry_len as u64);
    tag(buf, 1, WIRE_LEN);
    varint(buf, key.len() as u64);
    buf.extend_from_slice(key);
    tag(buf, 2, WIRE_LEN);
    varint(buf, value_len as u64);
    let value_start = buf.len();
    for (i, part) in parts.enumerate() {
        if i > 0 {
            buf.push(b',');
        }
        buf.extend_from_slice(part);
    }
    coerce_utf8(&mut buf[value_start..]);
}

fn varint_len(value: u64) -> usize {
    let bits = 64 - (value | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varint_lengths_match_encoding() {
        for value in [
            0u64,
            1,
            127,
            128,
            16_383,
            16_384,
            u64::from(u32::MAX),
            u64::MAX,
        ] {
            let mut buf = Vec::new();
            varint(&mut buf, value);
            assert_eq!(buf.len(), varint_len(value), "{value}");
        }
    }

    #[test]
    fn invalid_utf8_becomes_one_bang_per_byte() {
        let mut bytes = vec![b'a', 0xe9, b'b', 0xc3, 0xa9, 0xff, 0xe2, 0x82];
        coerce_utf8(&mut bytes);
        assert_eq!(bytes, [b'a', b'!', b'b', 0xc3, 0xa9, b'!', b'!', b'!']);
    }

    #[test]
    fn long_nested_message_gets_a_multi_byte_length() {
        let mut buf = Vec::new();
        message_field(&mut buf, 1, |b| bytes_field(b, 2, &[7u8; 300]));
        // tag, two length bytes (303 = 0xaf 0x02), then the inner field.
        assert_eq!(&buf[..3], &[0x0a, 0xaf, 0x02]);
        assert_eq!(buf.len(), 3 + 303);
        assert_eq!(&buf[3..6], &[0x12, 0xac, 0x02]);
    }
}
