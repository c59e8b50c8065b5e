//! The scalars of the config as protobuf JSON writes them: booleans (`true`, or `"true"`),
//! strings, whole numbers (a number, integral if written as a float, or a string holding one),
//! durations (`"0.25s"`), and JSON passed on as it is (a Struct's fields).

use serde_json::{Map, Value};

use super::super::duration::{self, ProtoDuration};
use super::super::proto_integer;
use super::{FromJson, Reader};

impl FromJson for bool {
    fn from_null() -> Option<Self> {
        Some(Self::default())
    }

    fn from_json(value: &Value, reader: &mut Reader) -> Option<Self> {
        match value {
            Value::Bool(b) => Some(*b),
            Value::String(s) if s == "true" => Some(true),
            Value::String(s) if s == "false" => Some(false),
            _ => reader.refuse_kind(value, "a boolean"),
        }
    }
}

impl FromJson for String {
    fn from_null() -> Option<Self> {
        Some(Self::default())
    }

    fn from_json(value: &Value, reader: &mut Reader) -> Option<Self> {
        match value {
            Value::String(s) => Some(s.clone()),
            _ => reader.refuse_kind(value, "a string"),
        }
    }
}

impl FromJson for u32 {
    fn from_null() -> Option<Self> {
        Some(Self::default())
    }

    fn from_json(value: &Value, reader: &mut Reader) -> Option<Self> {
        whole(value, reader, "0 to 4294967295")
    }
}

impl FromJson for i64 {
    fn from_null() -> Option<Self> {
        Some(Self::default())
    }

    fn from_json(value: &Value, reader: &mut Reader) -> Option<Self> {
        whole(value, reader, "-9223372036854775808 to 9223372036854775807")
    }
}

/// A whole number in `range`, the range `T` holds.
fn whole<T: TryFrom<i128>>(value: &Value, reader: &mut Reader, range: &str) -> Option<T> {
    let n = integer(value, reader, range)?;
    T::try_from(n).ok().or_else(|| {
        reader.refuse(format!(
            "invalid value: integer `{n}`, expected a whole number from {range}"
        ))
    })
}

/// A whole number as protobuf JSON writes one: a number, integral if written as a float, or a
/// string holding one.
fn integer(value: &Value, reader: &mut Reader, range: &str) -> Option<i128> {
    let read = match value {
        Value::Number(n) => n
            .as_i64()
            .map(i128::from)
            .or_else(|| n.as_u64().map(i128::from))
            .or_else(|| n.as_f64().and_then(integral)),
        Value::String(s) => proto_integer::parse(s),
        _ => None,
    };
    read.or_else(|| reader.refuse_kind(value, &format!("a whole number from {range}")))
}

/// `f` if it is a whole number that an i128 holds exactly.
fn integral(f: f64) -> Option<i128> {
    // 2^64: every whole f64 below it in magnitude converts exactly.
    const LIMIT: f64 = 18_446_744_073_709_551_616.0;
    (f.fract() == 0.0 && f.abs() < LIMIT).then_some(f as i128)
}

impl FromJson for ProtoDuration {
    fn from_json(value: &Value, reader: &mut Reader) -> Option<Self> {
        let Value::String(text) = value else {
            return reader.refuse_kind(value, "a string");
        };
        match duration::parse(text) {
            Ok(read) => Some(ProtoDuration(read)),
            Err(error) => reader.refuse(error.to_string()),
        }
    }
}

impl FromJson for Value {
    fn from_json(value: &Value, _: &mut Reader) -> Option<Self> {
        Some(value.clone())
    }
}

impl FromJson for Map<String, Value> {
    fn from_json(value: &Value, reader: &mut Reader) -> Option<Self> {
        match value {
            Value::Object(object) => Some(object.clone()),
            _ => reader.refuse_kind(value, "an object"),
        }
    }
}
