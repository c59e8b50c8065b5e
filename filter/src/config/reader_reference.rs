//! The reference `config::reader` is tested against (tests only): serde's derived reading of the
//! config brought closer to protobuf JSON's, as Envoy reads a native
//! ext_authz config: a JSON array is never a message (serde's derived struct visitors would take
//! `["ext_authz"]` as `{"cluster_name": "ext_authz"}`), and `null` is a scalar field left at its
//! default (`"stat_prefix": null` is `""`).
//!
//! A wrapper around any serde `Deserializer`: it changes how scalars and messages are read and
//! hands everything else through, wrapping each nested deserializer, visitor and access so the
//! rules hold at every depth. Errors keep serde's wording; `serde_path_to_error` places them.

use std::fmt;

use serde::de::{
    self, DeserializeSeed, Deserializer, EnumAccess, IgnoredAny, MapAccess, SeqAccess, Unexpected,
    VariantAccess, Visitor,
};

/// A deserializer, visitor, seed or access that reads by protobuf JSON's rules.
pub struct ProtoJson<T>(pub T);

/// Forwards `deserialize_*` methods, the visitor wrapped.
macro_rules! forward_deserialize {
    ($($method:ident($($arg:ident: $ty:ty),*);)*) => {$(
        fn $method<V: Visitor<'de>>(self, $($arg: $ty,)* visitor: V) -> Result<V::Value, D::Error> {
            self.0.$method($($arg,)* ProtoJson(visitor))
        }
    )*};
}

/// Reads a scalar of `kind`, or `null` for its default.
macro_rules! scalar {
    ($($method:ident => $kind:ident;)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
            self.0.deserialize_option(OrDefault(visitor, Kind::$kind))
        }
    )*};
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for ProtoJson<D> {
    type Error = D::Error;

    forward_deserialize! {
        deserialize_any();
        deserialize_char();
        deserialize_bytes();
        deserialize_byte_buf();
        deserialize_option();
        deserialize_unit();
        deserialize_unit_struct(name: &'static str);
        deserialize_newtype_struct(name: &'static str);
        deserialize_seq();
        deserialize_tuple(len: usize);
        deserialize_tuple_struct(name: &'static str, len: usize);
        deserialize_map();
        deserialize_enum(name: &'static str, variants: &'static [&'static str]);
        deserialize_identifier();
        deserialize_ignored_any();
    }

    scalar! {
        deserialize_bool => Bool;
        deserialize_i8 => Integer;
        deserialize_i16 => Integer;
        deserialize_i32 => Integer;
        deserialize_i64 => Integer;
        deserialize_i128 => Integer;
        deserialize_u8 => Integer;
        deserialize_u16 => Integer;
        deserialize_u32 => Integer;
        deserialize_u64 => Integer;
        deserialize_u128 => Integer;
        deserialize_f32 => Float;
        deserialize_f64 => Float;
        deserialize_str => Text;
        deserialize_string => Text;
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.0.deserialize_struct(name, fields, Message(visitor))
    }

    fn is_human_readable(&self) -> bool {
        self.0.is_human_readable()
    }
}

/// Forwards `visit_*` methods unchanged.
macro_rules! forward_visit {
    ($($method:ident($ty:ty);)*) => {$(
        fn $method<E: de::Error>(self, v: $ty) -> Result<V::Value, E> {
            self.0.$method(v)
        }
    )*};
}

impl<'de, V: Visitor<'de>> Visitor<'de> for ProtoJson<V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.expecting(f)
    }

    forward_visit! {
        visit_bool(bool);
        visit_i64(i64);
        visit_i128(i128);
        visit_u64(u64);
        visit_u128(u128);
        visit_f64(f64);
        visit_char(char);
        visit_str(&str);
        visit_borrowed_str(&'de str);
        visit_string(String);
        visit_bytes(&[u8]);
        visit_borrowed_bytes(&'de [u8]);
        visit_byte_buf(Vec<u8>);
    }

    fn visit_none<E: de::Error>(self) -> Result<V::Value, E> {
        self.0.visit_none()
    }

    fn visit_unit<E: de::Error>(self) -> Result<V::Value, E> {
        self.0.visit_unit()
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<V::Value, D::Error> {
        self.0.visit_some(ProtoJson(d))
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<V::Value, D::Error> {
        self.0.visit_newtype_struct(ProtoJson(d))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<V::Value, A::Error> {
        self.0.visit_seq(ProtoJson(seq))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<V::Value, A::Error> {
        self.0.visit_map(ProtoJson(map))
    }

    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<V::Value, A::Error> {
        self.0.visit_enum(ProtoJson(data))
    }
}

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for ProtoJson<S> {
    type Value = S::Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<S::Value, D::Error> {
        self.0.deserialize(ProtoJson(d))
    }
}

impl<'de, A: SeqAccess<'de>> SeqAccess<'de> for ProtoJson<A> {
    type Error = A::Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, A::Error> {
        self.0.next_element_seed(ProtoJson(seed))
    }

    fn size_hint(&self) -> Option<usize> {
        self.0.size_hint()
    }
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for ProtoJson<A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        self.0.next_key_seed(ProtoJson(seed))
    }

    fn next_value_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<T::Value, A::Error> {
        self.0.next_value_seed(ProtoJson(seed))
    }

    fn size_hint(&self) -> Option<usize> {
        self.0.size_hint()
    }
}

impl<'de, A: EnumAccess<'de>> EnumAccess<'de> for ProtoJson<A> {
    type Error = A::Error;
    type Variant = ProtoJson<A::Variant>;

    fn variant_seed<T: DeserializeSeed<'de>>(
        self,
        seed: T,
    ) -> Result<(T::Value, Self::Variant), A::Error> {
        let (value, variant) = self.0.variant_seed(ProtoJson(seed))?;
        Ok((value, ProtoJson(variant)))
    }
}

impl<'de, A: VariantAccess<'de>> VariantAccess<'de> for ProtoJson<A> {
    type Error = A::Error;

    fn unit_variant(self) -> Result<(), A::Error> {
        self.0.unit_variant()
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, A::Error> {
        self.0.newtype_variant_seed(ProtoJson(seed))
    }

    fn tuple_variant<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, A::Error> {
        self.0.tuple_variant(len, ProtoJson(visitor))
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, A::Error> {
        self.0.struct_variant(fields, ProtoJson(visitor))
    }
}

/// A message: a JSON object, never an array.
struct Message<V>(V);

impl<'de, V: Visitor<'de>> Visitor<'de> for Message<V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.expecting(f)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<V::Value, A::Error> {
        self.0.visit_map(ProtoJson(map))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<V::Value, A::Error> {
        // Read to its end first, so the error is placed after the array: at the field, not at
        // its first element.
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Err(de::Error::invalid_type(Unexpected::Seq, &self.0))
    }
}

#[derive(Clone, Copy)]
enum Kind {
    Bool,
    Integer,
    Float,
    Text,
}

/// A scalar of a kind, or its default for `null`, as protobuf JSON reads a null field.
struct OrDefault<V>(V, Kind);

impl<'de, V: Visitor<'de>> Visitor<'de> for OrDefault<V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.expecting(f)
    }

    fn visit_none<E: de::Error>(self) -> Result<V::Value, E> {
        match self.1 {
            Kind::Bool => self.0.visit_bool(false),
            Kind::Integer => self.0.visit_u64(0),
            Kind::Float => self.0.visit_f64(0.0),
            Kind::Text => self.0.visit_str(""),
        }
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<V::Value, D::Error> {
        // serde_json reads every integer alike, and `str` as `string`.
        let visitor = ProtoJson(self.0);
        match self.1 {
            Kind::Bool => d.deserialize_bool(visitor),
            Kind::Integer => d.deserialize_u64(visitor),
            Kind::Float => d.deserialize_f64(visitor),
            Kind::Text => d.deserialize_string(visitor),
        }
    }
}
