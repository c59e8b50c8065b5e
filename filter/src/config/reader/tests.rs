//! The reader against its references: serde's derives (the JSON Schema's source) name the same
//! fields as the tables, and serde's own reading of a broken config, by the same protobuf JSON
//! rules, finds its first error at the same place and of the same kind.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::cell::Cell;

use serde::de::{self, Deserialize, Deserializer, Visitor};
use serde_json::{json, Value};

use super::super::decision_cache::{RawCacheKey, RawDecisionCache};
use super::super::every_error::Removals;
use super::super::filter_enabled::{
    RawFractionalPercent, RawRuntimeFeatureFlag, RawRuntimeFractionalPercent,
};
use super::super::grpc_service::{RawEnvoyGrpc, RawGrpcService};
use super::super::http_service::{
    RawAuthorizationRequest, RawAuthorizationResponse, RawHttpService, RawHttpUri,
};
use super::super::messages::{
    RawHeaderValue, RawListStringMatcher, RawRegexMatcher, RawStringMatcher, RawWithRequestBody,
};
use super::super::mutation_rules::RawHeaderMutationRules;
use super::super::raw::{RawConfig, RawHttpStatus, RawMetadata};
use super::super::reader_reference::ProtoJson;
use super::super::refused::to_snake_case;
use super::super::retry::{RawBackoffStrategy, RawRetryPolicy};
use super::super::route::{
    RawCheckSettings, RawHeaderMatcher, RawQueryParameterMatcher, RawRoute, RawRouteMatch,
};
use super::super::steps::{RawRequiredHeader, RawStep};
use super::*;

/// A deserializer that only records the field names serde's derive asks a struct for.
struct FieldsOf<'a>(&'a Cell<&'static [&'static str]>);

impl<'de> Deserializer<'de> for FieldsOf<'_> {
    type Error = serde_json::Error;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
        Err(de::Error::custom("not a struct"))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        fields: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.set(fields);
        Err(de::Error::custom("fields taken"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
        ignored_any
    }
}

/// serde's field names of `T`, in snake_case, each once.
fn serde_fields<T: for<'de> Deserialize<'de>>() -> Vec<String> {
    let cell = Cell::new(&[][..]);
    let _ = T::deserialize(FieldsOf(&cell));
    let mut names: Vec<String> = Vec::new();
    for name in cell.get().iter().map(|n| to_snake_case(n)) {
        if !names.contains(&name) {
            names.push(name);
        }
    }
    names
}

fn table<T: Message>() -> Vec<String> {
    T::FIELDS.iter().map(|n| (*n).to_owned()).collect()
}

macro_rules! same_fields {
    ($($ty:ty),* $(,)?) => {$(
        assert_eq!(table::<$ty>(), serde_fields::<$ty>(), stringify!($ty));
    )*};
}

#[test]
fn the_tables_name_the_fields_the_schema_names() {
    same_fields!(
        RawConfig,
        RawHttpStatus,
        RawMetadata,
        RawGrpcService,
        RawEnvoyGrpc,
        RawDecisionCache,
        RawCacheKey,
        RawRegexMatcher,
        RawStringMatcher,
        RawListStringMatcher,
        RawHeaderValue,
        RawWithRequestBody,
        RawRuntimeFractionalPercent,
        RawFractionalPercent,
        RawRuntimeFeatureFlag,
        RawHttpService,
        RawHttpUri,
        RawAuthorizationRequest,
        RawAuthorizationResponse,
        RawRetryPolicy,
        RawBackoffStrategy,
        RawHeaderMutationRules,
        RawStep,
        RawRequiredHeader,
        RawRoute,
        RawRouteMatch,
        RawHeaderMatcher,
        RawQueryParameterMatcher,
        RawCheckSettings,
    );
}

/// The errors of reading `value` as a `RawConfig`, as `field: reason`.
fn read(value: &Value) -> (Option<RawConfig>, Vec<String>) {
    let mut removals = Removals::default();
    let mut errors = ConfigErrors::default();
    let read = Reader::new(&mut removals, &mut errors).read::<RawConfig>(value);
    (read, errors.into_iter().map(|e| e.to_string()).collect())
}

#[test]
fn each_spelling_and_protobuf_json_form_is_read() {
    let (config, errors) = read(&json!({
        "grpcService": {"envoyGrpc": {"clusterName": "c"}, "timeout": "0.5s"},
        "failure_mode_allow": "true",
        "statusOnError": {"code": "503"},
        "with_request_body": {"max_request_bytes": 1e3, "pack_as_bytes": null},
        "filter_enabled": {"default_value": {"numerator": 5.0, "denominator": 1}},
        "stat_prefix": null,
    }));
    assert!(errors.is_empty(), "{errors:?}");
    let config = config.unwrap();
    assert_eq!(
        config
            .grpc_service
            .unwrap()
            .envoy_grpc
            .unwrap()
            .cluster_name,
        "c"
    );
    assert!(config.failure_mode_allow);
    assert_eq!(config.status_on_error.unwrap().code, 503);
    assert_eq!(config.with_request_body.unwrap().max_request_bytes, 1000);
    let percent = config.filter_enabled.unwrap().default_value;
    assert_eq!(percent.numerator, 5);
    assert!(matches!(
        percent.denominator,
        super::super::filter_enabled::RawDenominator::TenThousand
    ));
}

#[test]
fn spellings_are_snake_case_or_its_lower_camel_case_only() {
    assert!(spelled("grpc_service", "grpc_service"));
    assert!(spelled("grpcService", "grpc_service"));
    assert!(spelled("match", "match"));
    assert!(!spelled("GrpcService", "grpc_service"));
    assert!(!spelled("grpc_Service", "grpc_service"));
    assert!(!spelled("grpcservice", "grpc_service"));
    assert!(!spelled("grpcServic", "grpc_service"));
    assert!(!spelled("grpcServicee", "grpc_service"));
}

#[test]
fn refused_values_say_what_would_be_accepted() {
    for (value, error) in [
        (
            json!({"max_denied_response_body_bytes": -1}),
            "max_denied_response_body_bytes: invalid value: integer `-1`, expected a whole number from 0 to 4294967295",
        ),
        (
            json!({"max_denied_response_body_bytes": 10.5}),
            "max_denied_response_body_bytes: invalid type: floating point `10.5`, expected a whole number from 0 to 4294967295",
        ),
        (
            json!({"max_denied_response_body_bytes": "four"}),
            "max_denied_response_body_bytes: invalid type: string \"four\", expected a whole number from 0 to 4294967295",
        ),
        (
            json!({"max_denied_response_body_bytes": "4294967296"}),
            "max_denied_response_body_bytes: invalid value: integer `4294967296`, expected a whole number from 0 to 4294967295",
        ),
        (
            json!({"status_on_error": {"code": 1e300}}),
            "status_on_error.code: invalid type: floating point `1e+300`, expected a whole number from -9223372036854775808 to 9223372036854775807",
        ),
        (
            json!({"shadow_mode": 1}),
            "shadow_mode: invalid type: integer `1`, expected a boolean",
        ),
        (
            json!({"routes": {}}),
            "routes: invalid type: map, expected a list",
        ),
        (
            json!({"filter_enabled": {"default_value": {"denominator": "TEN_THOUSANDS"}}}),
            "filter_enabled.default_value.denominator: unknown value `TEN_THOUSANDS`: did you mean `TEN_THOUSAND`? (accepted: HUNDRED, TEN_THOUSAND, MILLION)",
        ),
        (
            json!({"filter_enabled": {"default_value": {"denominator": 3}}}),
            "filter_enabled.default_value.denominator: unknown value `3`; accepted: HUNDRED, TEN_THOUSAND, MILLION",
        ),
        (
            json!({"steps": [{"config": []}]}),
            "steps[0].config: invalid type: sequence, expected an object",
        ),
    ] {
        assert_eq!(read(&value).1, [error], "{value}");
    }
}

/// Every JSON object written in the config tests, each broken every way (a value of the wrong
/// kind, an unknown key, a key taken away, a key given in both spellings): the reader's first
/// error is where serde's derived reading, by the same protobuf JSON rules
/// (`config::reader_reference`), finds its first, and of the same kind.
#[test]
fn the_first_error_is_where_serde_finds_it() {
    let sources = [
        include_str!("../tests.rs"),
        include_str!("../route/tests.rs"),
        include_str!("../../../tests/config_errors.rs"),
    ];
    let mut seeds: Vec<Value> = Vec::new();
    for source in sources {
        for literal in source.split("r#\"").skip(1) {
            let Some(end) = literal.find("\"#") else {
                continue;
            };
            if let Ok(value @ Value::Object(_)) = serde_json::from_str(&literal[..end]) {
                seeds.push(value);
            }
        }
    }
    assert!(seeds.len() > 20, "only {} seeds", seeds.len());
    let mut compared = 0;
    for seed in &seeds {
        for broken in breakages(seed) {
            let serde = serde_path_to_error::deserialize::<_, RawConfig>(ProtoJson(broken.clone()))
                .err()
                .map(|e| {
                    let path = e.path().to_string();
                    let path = if path == "." { String::new() } else { path };
                    (path, kind(&e.into_inner().to_string()))
                });
            let mut removals = Removals::default();
            let mut errors = ConfigErrors::default();
            Reader::new(&mut removals, &mut errors).read::<RawConfig>(&broken);
            // serde's derives refuse a `null` list, map or message; protobuf JSON, and the
            // reader, take it for the field at its default.
            if serde
                .as_ref()
                .is_some_and(|(_, kind)| kind == "invalid type: null")
            {
                continue;
            }
            let ours = errors
                .into_iter()
                .next()
                .map(|e| (e.field.clone(), kind(&e.reason)));
            assert_eq!(ours, serde, "{broken}");
            compared += 1;
        }
    }
    assert!(compared > 1000, "only {compared} documents compared");
}

/// What an error is, in words both readers use: its kind, and what was refused.
fn kind(reason: &str) -> String {
    for kind in ["invalid type: ", "invalid value: "] {
        if let Some(rest) = reason.strip_prefix(kind) {
            let got = rest.split(", expected").next().unwrap_or_default();
            return format!("{kind}{got}");
        }
    }
    // `unknown field `x``, `missing field `x``, `duplicate field `x``, a duration's reason.
    match reason.match_indices('`').nth(1) {
        Some((end, _)) => reason[..=end].to_owned(),
        None => reason.to_owned(),
    }
}

/// `value` broken in one place, every way, at every place.
fn breakages(value: &Value) -> Vec<Value> {
    let mut out = Vec::new();
    let kinds = [
        json!(7),
        json!(-1),
        json!(1.5),
        json!("x"),
        json!(true),
        json!(null),
        json!([]),
        json!([1]),
        json!({}),
    ];
    match value {
        Value::Object(map) => {
            let mut unknown = map.clone();
            unknown.insert("bogus".into(), json!(1));
            out.push(Value::Object(unknown));
            for (key, inner) in map {
                let other = if key.contains('_') {
                    camel(key)
                } else {
                    to_snake_case(key)
                };
                if other != *key {
                    let mut twice = map.clone();
                    twice.insert(other, inner.clone());
                    out.push(Value::Object(twice));
                }
                let mut without = map.clone();
                without.remove(key);
                out.push(Value::Object(without));
                for kind in &kinds {
                    let mut changed = map.clone();
                    changed.insert(key.clone(), kind.clone());
                    out.push(Value::Object(changed));
                }
                for broken in breakages(inner) {
                    let mut changed = map.clone();
                    changed.insert(key.clone(), broken);
                    out.push(Value::Object(changed));
                }
            }
        }
        Value::Array(items) => {
            for (i, inner) in items.iter().enumerate() {
                for broken in breakages(inner) {
                    let mut changed = items.clone();
                    changed[i] = broken;
                    out.push(Value::Array(changed));
                }
            }
        }
        _ => {}
    }
    out
}

fn camel(snake: &str) -> String {
    let mut parts = snake.split('_');
    let first = parts.next().unwrap_or_default().to_owned();
    parts.fold(first, |mut name, part| {
        let mut chars = part.chars();
        if let Some(c) = chars.next() {
            name.push(c.to_ascii_uppercase());
            name.push_str(chars.as_str());
        }
        name
    })
}

/// 20,000 unknown keys of 2,000 bytes: advice is worked out for the twenty reported only, and
/// never as a table of edits against a name far longer than any field (without both, this read
/// would take hours).
#[test]
fn many_unknown_long_keys_are_read_and_twenty_reported() {
    let mut top = serde_json::Map::new();
    for i in 0..20_000 {
        top.insert(format!("{i:05}{}", "k".repeat(2_000)), json!(1));
    }
    let (_, errors) = read(&Value::Object(top));
    assert_eq!(errors.len(), MAX_ERRORS);
    assert!(errors[0].contains("unknown field"), "{}", errors[0]);
}
