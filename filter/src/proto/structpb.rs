//! JSON to `google.protobuf.Struct`, for a step's `config` (sent to the auth server under
//! `metadata_context.filter_metadata["solo.auth.passthrough.config"]`). Encoded once, at configure.

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
}
