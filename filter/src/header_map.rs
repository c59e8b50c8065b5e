//! The proxy-wasm ABI's serialized header map: `[count][key_len, value_len]*[key\0 value\0]*`, all
//! lengths little-endian u32. Read without copying and written for local replies and gRPC metadata.
//! Hostile or truncated input is refused, never trusted.

mod by_name;

pub use by_name::sort_by_name;

/// The values of header `name` (compared without case), in order: one function for every place
/// that collects them, as each iterator chain collected is a few hundred bytes of module.
pub fn values<'a>(headers: &[(&[u8], &'a [u8])], name: &[u8]) -> Vec<&'a [u8]> {
    let mut values = Vec::new();
    for (key, value) in headers {
        if key.eq_ignore_ascii_case(name) {
            values.push(*value);
        }
    }
    values
}

/// Borrows the pairs out of a serialized map, or `None` when the bytes do not hold a map.
pub fn parse(bytes: &[u8]) -> Option<Vec<(&[u8], &[u8])>> {
    let read_u32 = |at: usize| -> Option<usize> {
        let word: [u8; 4] = bytes.get(at..at + 4)?.try_into().ok()?;
        Some(u32::from_le_bytes(word) as usize)
    };
    if bytes.is_empty() {
        return Some(Vec::new());
    }
    let count = read_u32(0)?;
    let mut sizes_at = 4;
    let mut data_at = 4usize.checked_add(count.checked_mul(8)?)?;
    if data_at > bytes.len() {
        return None;
    }
    let mut pairs = Vec::with_capacity(count);
    for _ in 0..count {
        let key_len = read_u32(sizes_at)?;
        let value_len = read_u32(sizes_at + 4)?;
        sizes_at += 8;
        let key_end = data_at.checked_add(key_len)?;
        let key = bytes.get(data_at..key_end)?;
        let value_at = key_end.checked_add(1)?;
        let value_end = value_at.checked_add(value_len)?;
        let value = bytes.get(value_at..value_end)?;
        // Each key and value is followed by a NUL; a map without them is not one Envoy wrote.
        if bytes.get(key_end) != Some(&0) || bytes.get(value_end) != Some(&0) {
            return None;
        }
        data_at = value_end + 1;
        pairs.push((key, value));
    }
    Some(pairs)
}

/// Serializes pairs in the same format, for calls that take a map.
pub fn serialize<K: AsRef<[u8]>, V: AsRef<[u8]>>(pairs: &[(K, V)]) -> Vec<u8> {
    let data: usize = pairs
        .iter()
        .map(|(k, v)| k.as_ref().len() + v.as_ref().len() + 2)
        .sum();
    let mut out = Vec::with_capacity(4 + pairs.len() * 8 + data);
    out.extend_from_slice(&(pairs.len() as u32).to_le_bytes());
    for (key, value) in pairs {
        out.extend_from_slice(&(key.as_ref().len() as u32).to_le_bytes());
        out.extend_from_slice(&(value.as_ref().len() as u32).to_le_bytes());
    }
    for (key, value) in pairs {
        out.extend_from_slice(key.as_ref());
        out.push(0);
        out.extend_from_slice(value.as_ref());
        out.push(0);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let pairs: Vec<(&[u8], &[u8])> = vec![
            (b":path", b"/a?b"),
            (b"x-empty", b""),
            (b"bin", &[0xff, 0xfe]),
        ];
        let bytes = serialize(&pairs);
        assert_eq!(parse(&bytes), Some(pairs));
    }

    #[test]
    fn refuses_truncated_and_hostile_maps() {
        let bytes = serialize(&[(b"key", b"value")]);
        for cut in 1..bytes.len() {
            assert_eq!(parse(&bytes[..cut]), None, "cut at {cut}");
        }
        // A count that would overflow the size table.
        assert_eq!(parse(&u32::MAX.to_le_bytes()), None);
        // A value length pointing past the end.
        let mut long = bytes.clone();
        long[8..12].copy_from_slice(&1000u32.to_le_bytes());
        assert_eq!(parse(&long), None);
    }

    #[test]
    fn empty_buffer_is_an_empty_map() {
        assert_eq!(parse(&[]), Some(vec![]));
        assert_eq!(parse(&0u32.to_le_bytes()), Some(vec![]));
    }
}
