//! `google.protobuf.Struct` to and from JSON: a step's `config` and `metadata_context` go to the
//! auth server as Structs (encoded once, at configure); a CheckResponse's `dynamic_metadata`
//! comes back as one and is handed on as JSON text.

use serde_json::{Map, Value};

use super::wire::{bool_field, bytes_field, double_field, map_entry_message, message_field};

// google/protobuf/struct.proto
const STRUCT_FIELDS: u32 = 1;
const VALUE_NULL: u32 = 1;
const VALUE_NUMBER: u32 = 2;
const VALUE_STRING: u32 = 3;
const VALUE_BOOL: u32 = 4;
const VALUE_STRUCT: u32 = 5;
const VALUE_LIST: u32 = 6;
const LIST_VALUES: u32 = 1;

/// Encodes a JSON object as a `Struct`.
pub fn encode_struct(object: &Map<String, Value>) -> Vec<u8> {
    let mut buf = Vec::new();
    write_struct(&mut buf, object);
    buf
}

fn write_struct(buf: &mut Vec<u8>, object: &Map<String, Value>) {
    for (key, value) in object {
        let mut encoded = Vec::new();
        write_value(&mut encoded, value);
        map_entry_message(buf, STRUCT_FIELDS, key.as_bytes(), &encoded);
    }
}

fn write_value(buf: &mut Vec<u8>, value: &Value) {
    match value {
        // NullValue is an enum whose only value is 0; written so the oneof is set.
        Value::Null => {
            buf.push((VALUE_NULL << 3) as u8);
            buf.push(0);
        }
        Value::Bool(b) => bool_field(buf, VALUE_BOOL, *b),
        Value::Number(n) => double_field(buf, VALUE_NUMBER, n.as_f64().unwrap_or_default()),
        Value::String(s) => {
            if s.is_empty() {
                // An empty string still sets the oneof.
                buf.push((VALUE_STRING << 3 | 2) as u8);
                buf.push(0);
            } else {
                bytes_field(buf, VALUE_STRING, s.as_bytes());
            }
        }
        Value::Array(items) => message_field(buf, VALUE_LIST, |buf| {
            for item in items {
                message_field(buf, LIST_VALUES, |buf| write_value(buf, item));
            }
        }),
        Value::Object(object) => message_field(buf, VALUE_STRUCT, |buf| write_struct(buf, object)),
    }
}

/// Decodes an encoded `Struct` as a JSON object; `None` when the bytes are not one.
pub fn decode_struct(bytes: &[u8]) -> Option<Map<String, Value>> {
    let mut object = Map::new();
    for field in Fields(bytes) {
        let (STRUCT_FIELDS, Wire::Len(entry)) = field? else {
            continue;
        };
        let (mut key, mut value) = (String::new(), Value::Null);
        for part in Fields(entry) {
            match part? {
                (1, Wire::Len(k)) => key = String::from_utf8(k.to_vec()).ok()?,
                (2, Wire::Len(v)) => value = decode_value(v)?,
                _ => {}
            }
        }
        object.insert(key, value);
    }
    Some(object)
}

fn decode_value(bytes: &[u8]) -> Option<Value> {
    let mut value = Value::Null;
    for field in Fields(bytes) {
        value = match field? {
            (VALUE_NULL, _) => Value::Null,
            (VALUE_NUMBER, Wire::Fixed64(bits)) => {
                serde_json::Number::from_f64(f64::from_bits(bits))
                    .map_or(Value::Null, Value::Number)
            }
            (VALUE_STRING, Wire::Len(s)) => Value::String(String::from_utf8(s.to_vec()).ok()?),
            (VALUE_BOOL, Wire::Varint(b)) => Value::Bool(b != 0),
            (VALUE_STRUCT, Wire::Len(s)) => Value::Object(decode_struct(s)?),
            (VALUE_LIST, Wire::Len(list)) => {
                let mut items = Vec::new();
                for item in Fields(list) {
                    if let (LIST_VALUES, Wire::Len(v)) = item? {
                        items.push(decode_value(v)?);
                    }
                }
                Value::Array(items)
            }
            _ => continue,
        };
    }
    Some(value)
}

/// One field's payload on the wire.
enum Wire<'a> {
    Varint(u64),
    Fixed64(u64),
    Len(&'a [u8]),
    Fixed32,
}

/// The fields of an encoded message, in order; an `Err`-like `None` item ends a malformed one.
struct Fields<'a>(&'a [u8]);

impl<'a> Iterator for Fields<'a> {
    type Item = Option<(u32, Wire<'a>)>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.0.is_empty() {
            return None;
        }
        let field = self.read();
        if field.is_none() {
            self.0 = &[];
        }
        Some(field)
    }
}

impl<'a> Fields<'a> {
    fn varint(&mut self) -> Option<u64> {
        let mut value = 0u64;
        for (i, &byte) in self.0.iter().enumerate().take(10) {
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte < 0x80 {
                self.0 = &self.0[i + 1..];
                return Some(value);
            }
        }
        None
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let bytes = self.0.get(..n)?;
        self.0 = &self.0[n..];
        Some(bytes)
    }

    fn read(&mut self) -> Option<(u32, Wire<'a>)> {
        let tag = self.varint()?;
        let field = u32::try_from(tag >> 3).ok()?;
        let wire = match tag & 7 {
            0 => Wire::Varint(self.varint()?),
            1 => Wire::Fixed64(u64::from_le_bytes(self.take(8)?.try_into().ok()?)),
            2 => {
                let len = usize::try_from(self.varint()?).ok()?;
                Wire::Len(self.take(len)?)
            }
            5 => {
                self.take(4)?;
                Wire::Fixed32
            }
            _ => return None,
        };
        Some((field, wire))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use envoy_types::pb::google::protobuf::{value::Kind, Struct};
    use prost::Message;

    #[test]
    fn decodes_as_a_struct() {
        let json: Value = serde_json::json!({
            "name": "acme", "empty": "", "n": 1.5, "on": true, "off": false, "none": null,
            "list": [1, "two", {"three": 3}], "nested": {"k": "v"}
        });
        let Value::Object(object) = &json else {
            unreachable!()
        };
        let decoded = Struct::decode(encode_struct(object).as_slice()).unwrap();
        let kind = |k: &str| decoded.fields[k].kind.clone().unwrap();
        assert_eq!(kind("name"), Kind::StringValue("acme".into()));
        assert_eq!(kind("empty"), Kind::StringValue(String::new()));
        assert_eq!(kind("n"), Kind::NumberValue(1.5));
        assert_eq!(kind("on"), Kind::BoolValue(true));
        assert_eq!(kind("off"), Kind::BoolValue(false));
        assert_eq!(kind("none"), Kind::NullValue(0));
        let Kind::ListValue(list) = kind("list") else {
            panic!("a list")
        };
        assert_eq!(list.values.len(), 3);
        let Kind::StructValue(nested) = kind("nested") else {
            panic!("a struct")
        };
        assert_eq!(nested.fields["k"].kind, Some(Kind::StringValue("v".into())));
    }

    #[test]
    fn decodes_back_to_the_same_json() {
        let json: Value = serde_json::json!({
            "name": "acme", "n": 1.5, "on": true, "none": null,
            "list": [1.0, "two", {"three": 3.0}], "nested": {"k": "v"}
        });
        let Value::Object(object) = &json else {
            unreachable!()
        };
        assert_eq!(decode_struct(&encode_struct(object)), Some(object.clone()));
    }

    #[test]
    fn malformed_bytes_are_refused_not_trusted() {
        let Value::Object(object) = serde_json::json!({"k": "a long enough value"}) else {
            unreachable!()
        };
        let bytes = encode_struct(&object);
        for cut in 1..bytes.len() {
            assert_eq!(decode_struct(&bytes[..cut]), None, "cut at {cut}");
        }
        assert_eq!(decode_struct(&[0xff; 12]), None);
    }
}
