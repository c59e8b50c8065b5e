//! The config read from its JSON tree by hand: each raw type names its fields once (the
//! [`message!`] table beside it), and one walk over the tree fills them, collecting every error
//! at its field's path as it goes.
//!
//! It replaces serde's derived visitors, whose code per type and per deserializer was about a
//! third of the module (bench/NOTES.md, "Module size"). The derives stay on the raw types only as
//! the JSON Schema's source (`schema` feature); generic and never called, they cost the module
//! nothing, and a test checks that they and the tables name the same fields.
//!
//! Protobuf JSON's rules, as Envoy reads a native config: each field in snake_case or
//! lowerCamelCase; `null` is a field at its default; an array is never a message; integers may be
//! written as strings (`"403"`) or integral floats (`403.0`, `1e3`), booleans as `"true"`.
//! Objects are walked in their key order, so errors come in the order serde_json's reading gave
//! them.

use std::collections::BTreeMap;

use serde_json::Value;

use super::advice;
use super::error::{ConfigError, ConfigErrors};
use super::every_error::{Removals, MAX_ERRORS};
use super::json_path::{self, Segment};

/// Where the walk is, and where its errors go.
pub(super) struct Reader<'a> {
    path: Vec<Segment>,
    removals: &'a mut Removals,
    errors: &'a mut ConfigErrors,
}

impl<'a> Reader<'a> {
    pub(super) fn new(removals: &'a mut Removals, errors: &'a mut ConfigErrors) -> Self {
        Self {
            path: Vec::new(),
            removals,
            errors,
        }
    }

    /// Reads `value` as a `T` at the document's top.
    pub(super) fn read<T: FromJson>(&mut self, value: &Value) -> Option<T> {
        T::from_json(value, self)
    }

    /// Reads `value` into `slot`; false (the slot left as it was) if it is refused.
    pub(super) fn set<T: FromJson>(&mut self, slot: &mut T, value: &Value) -> bool {
        match T::from_json(value, self) {
            Some(read) => {
                *slot = read;
                true
            }
            None => false,
        }
    }

    /// Refuses the value here: an error at this path, which is then taken for absent.
    pub(super) fn refuse<T>(&mut self, reason: impl Into<String>) -> Option<T> {
        let field = self.path.clone();
        self.report(&field, reason.into());
        self.drop_here();
        None
    }

    /// Refuses the value here for not being of the kind `expected` names.
    pub(super) fn refuse_kind<T>(&mut self, value: &Value, expected: &str) -> Option<T> {
        self.refuse(format!(
            "invalid type: {}, expected {expected}",
            unexpected(value)
        ))
    }

    /// Reads a protobuf enum: the index in `names` of the name `value` gives, or of its number.
    pub(super) fn enumerated(
        &mut self,
        value: &Value,
        names: &'static [&'static str],
    ) -> Option<usize> {
        let index = match value {
            Value::String(name) => names.iter().position(|n| n == name),
            Value::Number(number) => number.as_u64().and_then(|i| usize::try_from(i).ok()),
            _ => return self.refuse_kind(value, "a string"),
        };
        match index {
            Some(index) if index < names.len() => Some(index),
            _ => {
                let name = match value {
                    Value::String(name) => name.clone(),
                    other => other.to_string(),
                };
                self.refuse(advice::unknown_value(&name, names))
            }
        }
    }

    fn report(&mut self, field: &[Segment], reason: String) {
        if self.errors.len() < MAX_ERRORS {
            self.errors
                .push(ConfigError::new(json_path::render(field), reason));
        }
    }

    /// Takes the value here for absent, with no error of its own (its error was inside it), so
    /// that what its absence causes is excused.
    fn drop_here(&mut self) {
        self.removals.removed.push(self.path.clone());
    }

    /// Runs `read` one step further down.
    fn within<T>(&mut self, segment: Segment, read: impl FnOnce(&mut Self) -> T) -> T {
        self.path.push(segment);
        let read = read(self);
        self.path.pop();
        read
    }
}

/// A value read from its JSON, or refused with its error reported.
pub(super) trait FromJson: Sized {
    fn from_json(value: &Value, reader: &mut Reader) -> Option<Self>;

    /// What `null` is as an element of a list or a map: a scalar at its default, as protobuf
    /// JSON reads it; for the rest, refused. (A field that is `null` is simply not given.)
    fn from_null() -> Option<Self> {
        None
    }
}

/// `value` as a list's or map's element.
fn element<T: FromJson>(value: &Value, reader: &mut Reader) -> Option<T> {
    match (value, T::from_null()) {
        (Value::Null, Some(default)) => Some(default),
        _ => T::from_json(value, reader),
    }
}

/// A protobuf message as a raw type: its fields by their snake_case names, in the order they are
/// declared, and which of them must be given. [`message!`] writes it.
pub(super) trait Message: Default {
    const FIELDS: &'static [&'static str];
    const REQUIRED: &'static [bool];
    /// Reads `value` into the field at `index` of [`Message::FIELDS`]; false if it is refused.
    fn read_field(&mut self, index: usize, value: &Value, reader: &mut Reader) -> bool;
}

/// Implements [`Message`] and [`FromJson`] for a raw type from its fields' table:
/// `"json_name" => field` or `"json_name" => field required`.
macro_rules! message {
    ($ty:ty { $($name:literal => $field:ident $($required:ident)?,)* }) => {
        impl super::reader::Message for $ty {
            const FIELDS: &'static [&'static str] = &[$($name),*];
            const REQUIRED: &'static [bool] = &[$(super::reader::message!(@required $($required)?)),*];
            fn read_field(
                &mut self,
                index: usize,
                value: &serde_json::Value,
                reader: &mut super::reader::Reader,
            ) -> bool {
                let mut at = 0usize;
                $(
                    if index == at {
                        return reader.set(&mut self.$field, value);
                    }
                    at += 1;
                )*
                let _ = at;
                false
            }
        }
        impl super::reader::FromJson for $ty {
            fn from_json(
                value: &serde_json::Value,
                reader: &mut super::reader::Reader,
            ) -> Option<Self> {
                super::reader::read_message(value, reader)
            }
        }
    };
    (@required required) => { true };
    (@required) => { false };
}
pub(super) use message;

/// Reads a message: each key in turn, then whether a required field is missing. `None` if it is
/// not an object, or a field it cannot do without is missing or refused.
pub(super) fn read_message<M: Message>(value: &Value, reader: &mut Reader) -> Option<M> {
    let mut read = M::default();
    // The walk itself is not generic: one copy of it serves every message.
    let whole = read_fields(
        value,
        reader,
        M::FIELDS,
        M::REQUIRED,
        &mut |index, value, reader| read.read_field(index, value, reader),
    );
    whole.then_some(read)
}

/// [`read_message`]'s walk over the keys of `value`, `field` reading each known one.
fn read_fields(
    value: &Value,
    reader: &mut Reader,
    fields: &'static [&'static str],
    required: &'static [bool],
    field: &mut dyn FnMut(usize, &Value, &mut Reader) -> bool,
) -> bool {
    let Value::Object(object) = value else {
        reader.refuse_kind::<()>(value, "an object");
        return false;
    };
    let mut seen = vec![false; fields.len()];
    let mut whole = true;
    for (key, value) in object {
        let Some(index) = fields.iter().position(|name| spelled(key, name)) else {
            if reader.errors.len() >= MAX_ERRORS {
                // No more errors are reported: no advice to work out for one.
                reader.within(Segment::Key(key.clone()), Reader::drop_here);
                continue;
            }
            let (reason, meant) = advice::unknown_field(key, fields);
            reader.within(Segment::Key(key.clone()), |reader| {
                if let Some(meant) = meant {
                    let mut field = reader.path.clone();
                    field.pop();
                    field.push(Segment::Key(meant.to_owned()));
                    reader.removals.meant.push(field);
                }
                reader.refuse::<()>(reason)
            });
            continue;
        };
        if seen[index] {
            // About the object (the second spelling is dropped): as serde_json said it.
            let object_path = reader.path.clone();
            reader.report(&object_path, format!("duplicate field `{}`", fields[index]));
            reader.within(Segment::Key(key.clone()), Reader::drop_here);
            continue;
        }
        seen[index] = true;
        if value.is_null() {
            continue;
        }
        let ok = reader.within(Segment::Key(key.clone()), |reader| {
            field(index, value, reader)
        });
        whole &= ok || !required[index];
    }
    let missing = fields
        .iter()
        .zip(required.iter().zip(&seen))
        .find(|(_, (required, seen))| **required && !**seen);
    if let Some((name, _)) = missing {
        let mut wanted = reader.path.clone();
        wanted.push(Segment::Key((*name).to_owned()));
        // A field an unknown key was taken for, or one taken out, is not also missing.
        if !reader.removals.excuses(&wanted, "") {
            let object_path = reader.path.clone();
            reader.report(&object_path, format!("missing field `{name}`"));
        }
        whole = false;
    }
    if !whole {
        reader.drop_here();
    }
    whole
}

/// Whether `key` is `name` (snake_case) or its lowerCamelCase spelling.
fn spelled(key: &str, name: &str) -> bool {
    if key == name {
        return true;
    }
    let mut camel = key.bytes();
    let mut upper = false;
    for b in name.bytes() {
        if b == b'_' {
            upper = true;
            continue;
        }
        let want = if upper { b.to_ascii_uppercase() } else { b };
        upper = false;
        if camel.next() != Some(want) {
            return false;
        }
    }
    camel.next().is_none()
}

/// What a refused value was, in serde's words.
fn unexpected(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("boolean `{b}`"),
        Value::Number(n) if n.is_f64() => format!("floating point `{n}`"),
        Value::Number(n) => format!("integer `{n}`"),
        Value::String(s) => format!("string {s:?}"),
        Value::Array(_) => "sequence".into(),
        Value::Object(_) => "map".into(),
    }
}

impl<T: FromJson> FromJson for Option<T> {
    fn from_json(value: &Value, reader: &mut Reader) -> Option<Self> {
        T::from_json(value, reader).map(Some)
    }
}

/// A list; an element refused is left out (its index kept in later errors by `Removals`).
impl<T: FromJson> FromJson for Vec<T> {
    fn from_json(value: &Value, reader: &mut Reader) -> Option<Self> {
        let Value::Array(items) = value else {
            return reader.refuse_kind(value, "a list");
        };
        let mut read = Vec::with_capacity(items.len());
        for (index, item) in items.iter().enumerate() {
            if let Some(item) =
                reader.within(Segment::Index(index), |reader| element::<T>(item, reader))
            {
                read.push(item);
            }
        }
        Some(read)
    }
}

/// A map with string keys (protobuf's `map<string, T>`); an entry refused is left out.
impl<T: FromJson> FromJson for BTreeMap<String, T> {
    fn from_json(value: &Value, reader: &mut Reader) -> Option<Self> {
        let Value::Object(object) = value else {
            return reader.refuse_kind(value, "an object");
        };
        let mut read = BTreeMap::new();
        for (key, item) in object {
            if let Some(item) = reader.within(Segment::Key(key.clone()), |reader| {
                element::<T>(item, reader)
            }) {
                read.insert(key.clone(), item);
            }
        }
        Some(read)
    }
}

mod scalars;
#[cfg(test)]
mod tests;
