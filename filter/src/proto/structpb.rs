//! `google.protobuf.Struct` to and from JSON: a step's `config` and `metadata_context` go to the
//! auth server as Structs (encoded once, at configure); a CheckResponse's `dynamic_metadata`
//! comes back as one and is handed on as JSON text. The decoder reads as prost does, to the same
//! depth, and can check bytes without building anything.

use serde_json::{Map, Value};

use super::reader::{Reader, Result};
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

/// Decodes an encoded `Struct` as a JSON object; `None` when prost would refuse the bytes as one,
/// nested too deep included, so the tree built is never deeper than
/// [`super::reader::RECURSION_LIMIT`].
pub fn decode_struct(bytes: &[u8]) -> Option<Map<String, Value>> {
    let mut object = Map::new();
    merge_struct(&mut Reader::new(bytes), Some(&mut object)).ok()?;
    Some(object)
}

/// Checks the rest of `r` is a `Struct` prost would decode at `r`'s depth, without building it.
pub(crate) fn check_struct(r: &mut Reader<'_>) -> Result<()> {
    merge_struct(r, None)
}

// The readers below follow prost's merge rules, building JSON only when given somewhere to put
// it: map entries keep the last of a key, a `Value`'s oneof merges into the same variant and
// starts afresh on another, a list appends. A `Value` with no kind, or a NaN or infinite number,
// which JSON cannot carry, is null.

fn merge_struct(r: &mut Reader<'_>, mut object: Option<&mut Map<String, Value>>) -> Result<()> {
    while let Some((field, wire)) = r.key()? {
        if field != STRUCT_FIELDS {
            r.skip(field, wire)?;
            continue;
        }
        let mut entry = r.map_entry()?;
        let mut key = "";
        let mut value = object.is_some().then_some(Value::Null);
        while let Some((field, wire)) = entry.key()? {
            match field {
                1 => key = entry.str(wire)?,
                2 => merge_value(&mut entry.nested(wire)?, value.as_mut())?,
                _ => entry.skip(field, wire)?,
            }
        }
        if let (Some(object), Some(value)) = (object.as_deref_mut(), value) {
            object.insert(key.to_owned(), value);
        }
    }
    Ok(())
}

fn merge_value(r: &mut Reader<'_>, mut value: Option<&mut Value>) -> Result<()> {
    while let Some((field, wire)) = r.key()? {
        let scalar = match field {
            VALUE_NULL => r.int32(wire).map(|_| Value::Null)?,
            VALUE_NUMBER => {
                let number = f64::from_bits(r.fixed64(wire)?);
                serde_json::Number::from_f64(number).map_or(Value::Null, Value::Number)
            }
            VALUE_STRING => {
                let text = r.str(wire)?;
                match value {
                    Some(_) => Value::String(text.to_owned()),
                    None => continue,
                }
            }
            VALUE_BOOL => Value::Bool(r.varint(wire)? != 0),
            VALUE_STRUCT => {
                let mut inner = r.nested(wire)?;
                let object = value.as_deref_mut().map(|value| {
                    if !value.is_object() {
                        *value = Value::Object(Map::new());
                    }
                    value.as_object_mut()
                });
                merge_struct(&mut inner, object.flatten())?;
                continue;
            }
            VALUE_LIST => {
                let mut inner = r.nested(wire)?;
                let items = value.as_deref_mut().map(|value| {
                    if !value.is_array() {
                        *value = Value::Array(Vec::new());
                    }
                    value.as_array_mut()
                });
                merge_list(&mut inner, items.flatten())?;
                continue;
            }
            _ => {
                r.skip(field, wire)?;
                continue;
            }
        };
        if let Some(value) = value.as_deref_mut() {
            *value = scalar;
        }
    }
    Ok(())
}

fn merge_list(r: &mut Reader<'_>, mut items: Option<&mut Vec<Value>>) -> Result<()> {
    while let Some((field, wire)) = r.key()? {
        if field != LIST_VALUES {
            r.skip(field, wire)?;
            continue;
        }
        let mut inner = r.nested(wire)?;
        match items.as_deref_mut() {
            Some(items) => {
                let mut item = Value::Null;
                merge_value(&mut inner, Some(&mut item))?;
                items.push(item);
            }
            None => merge_value(&mut inner, None)?,
        }
    }
    Ok(())
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
