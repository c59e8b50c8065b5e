//! How strictly the config is read, against how native ext_authz reads the same JSON.
//!
//! Each row of [`NATIVE`] was run through Envoy 1.40's own parser as the typed_config of
//! `envoy.filters.http.ext_authz` (`envoy --mode validate`, with the `@type` line added) on this
//! machine; `native` is whether Envoy accepted it. The filter must agree, except on the rows
//! listed in [`DIFFERENCES`], each with the reason.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use ext_authz_filter::config::Config;

const SERVICE: &str = r#""grpc_service": {"envoy_grpc": {"cluster_name": "ext_authz"}}"#;

/// `(name, the config's JSON, whether native 1.40 accepts it)`.
const NATIVE: &[(&str, &str, bool)] = &[
    (
        "base",
        r#"{"grpc_service": {"envoy_grpc": {"cluster_name": "ext_authz"}, "timeout": "0.5s"}}"#,
        true,
    ),
    (
        "an array for a message",
        r#"{"grpc_service": {"envoy_grpc": ["ext_authz"]}}"#,
        false,
    ),
    (
        "an array for a string",
        r#"{"grpc_service": {"envoy_grpc": {"cluster_name": ["ext_authz"]}}}"#,
        false,
    ),
    (
        "a number for a string",
        r#"{SERVICE, "stat_prefix": 5}"#,
        false,
    ),
    (
        "null for a message",
        r#"{SERVICE, "status_on_error": null}"#,
        true,
    ),
    (
        "null for a string",
        r#"{SERVICE, "stat_prefix": null}"#,
        true,
    ),
    (
        "null for a bool",
        r#"{SERVICE, "failure_mode_allow": null}"#,
        true,
    ),
    (
        "null for an integer",
        r#"{SERVICE, "with_request_body": {"max_request_bytes": null}}"#,
        false,
    ),
    (
        "a key twice",
        r#"{SERVICE, "failure_mode_allow": true, "failure_mode_allow": false}"#,
        true,
    ),
    (
        "a key under both spellings",
        r#"{SERVICE, "failure_mode_allow": true, "failureModeAllow": false}"#,
        true,
    ),
    (
        "a negative duration",
        r#"{"grpc_service": {"envoy_grpc": {"cluster_name": "ext_authz"}, "timeout": "-1s"}}"#,
        false,
    ),
    (
        "a duration as a number",
        r#"{"grpc_service": {"envoy_grpc": {"cluster_name": "ext_authz"}, "timeout": 1}}"#,
        false,
    ),
    (
        "a duration with ten decimals",
        r#"{"grpc_service": {"envoy_grpc": {"cluster_name": "ext_authz"}, "timeout": "0.0000000001s"}}"#,
        false,
    ),
    (
        "a duration with a plus",
        r#"{"grpc_service": {"envoy_grpc": {"cluster_name": "ext_authz"}, "timeout": "+1s"}}"#,
        false,
    ),
    (
        "a duration ending in a dot",
        r#"{"grpc_service": {"envoy_grpc": {"cluster_name": "ext_authz"}, "timeout": "1.s"}}"#,
        false,
    ),
    (
        "a duration starting with a dot",
        r#"{"grpc_service": {"envoy_grpc": {"cluster_name": "ext_authz"}, "timeout": ".5s"}}"#,
        false,
    ),
    (
        "a duration past protobuf's range",
        r#"{"grpc_service": {"envoy_grpc": {"cluster_name": "ext_authz"}, "timeout": "315576000001s"}}"#,
        false,
    ),
    (
        "timeout 0s",
        r#"{"grpc_service": {"envoy_grpc": {"cluster_name": "ext_authz"}, "timeout": "0s"}}"#,
        true,
    ),
    (
        "timeout 1ns",
        r#"{"grpc_service": {"envoy_grpc": {"cluster_name": "ext_authz"}, "timeout": "0.000000001s"}}"#,
        true,
    ),
    (
        "timeout 5,000,000s",
        r#"{"grpc_service": {"envoy_grpc": {"cluster_name": "ext_authz"}, "timeout": "5000000s"}}"#,
        true,
    ),
    (
        "an integer as a string",
        r#"{SERVICE, "status_on_error": {"code": "403"}}"#,
        true,
    ),
    (
        "an enum by name",
        r#"{SERVICE, "status_on_error": {"code": "Forbidden"}}"#,
        true,
    ),
    (
        "an integer as an integral float",
        r#"{SERVICE, "status_on_error": {"code": 403.0}}"#,
        true,
    ),
    (
        "an integer in exponent form",
        r#"{SERVICE, "with_request_body": {"max_request_bytes": 1e3}}"#,
        true,
    ),
    (
        "an integer with a fraction",
        r#"{SERVICE, "with_request_body": {"max_request_bytes": 10.5}}"#,
        false,
    ),
    (
        "a negative unsigned integer",
        r#"{SERVICE, "with_request_body": {"max_request_bytes": -1}}"#,
        false,
    ),
    (
        "a bool as a string",
        r#"{SERVICE, "failure_mode_allow": "true"}"#,
        true,
    ),
    (
        "an object for a list",
        r#"{"grpc_service": {"envoy_grpc": {"cluster_name": "ext_authz"}, "initial_metadata": {"key": "a", "value": "b"}}}"#,
        true,
    ),
];

/// The rows where the filter refuses what native accepts, and why (the README's text).
const DIFFERENCES: &[(&str, &str)] = &[
    ("a key under both spellings", "which of the two wins is not defined; the filter names the field instead of guessing"),
    ("timeout 0s", "native then waits for the server without a deadline; a wasm filter's host call needs one"),
    ("timeout 1ns", "native counts whole milliseconds and takes 0 ms as no deadline; the filter refuses below 1 ms"),
    ("timeout 5,000,000s", "the host takes the timeout as a u32 of milliseconds (at most 4294967.295s)"),
    ("an enum by name", "HTTP status codes are read as numbers only; write 403"),
    ("an object for a list", "a repeated field takes a JSON array only"),
];

fn config(json: &str) -> String {
    json.replace("SERVICE", SERVICE)
}

#[test]
fn the_config_is_read_as_native_reads_it_but_for_the_listed_differences() {
    for &(name, json, native) in NATIVE {
        let json = config(json);
        let ours = Config::parse(json.as_bytes());
        let differs = DIFFERENCES.iter().any(|(row, _)| *row == name);
        if differs {
            assert!(native, "{name}: a listed difference is one native accepts");
            assert!(
                ours.is_err(),
                "{name}: now accepted as native does; take it off DIFFERENCES"
            );
        } else {
            assert_eq!(ours.is_ok(), native, "{name}: {json} gives {ours:?}");
        }
        if let Err(error) = &ours {
            // A refusal names the field, except a key given twice, which is about its object.
            assert!(
                !error.field.is_empty() || name.starts_with("a key"),
                "{name}: {error} names no field"
            );
        }
    }
    for (row, _) in DIFFERENCES {
        assert!(
            NATIVE.iter().any(|(name, ..)| name == row),
            "{row} is no row"
        );
    }
}

#[track_caller]
fn refused_at(json: &str, field: &str, reason_part: &str) {
    let json = config(json);
    match Config::parse(json.as_bytes()) {
        Ok(config) => panic!("{json} was accepted: {config:?}"),
        Err(error) => {
            assert_eq!(error.field, field, "{json}: {error}");
            assert!(error.reason.contains(reason_part), "{json}: {error}");
        }
    }
}

#[test]
fn an_array_is_never_a_message() {
    // serde's derived visitors would read each of these as the message's fields in order.
    refused_at(
        r#"{"grpc_service": {"envoy_grpc": ["ext_authz"]}}"#,
        "grpc_service.envoy_grpc",
        "invalid type: sequence, expected an object",
    );
    refused_at(
        r#"{"grpc_service": {"envoy_grpc": []}}"#,
        "grpc_service.envoy_grpc",
        "sequence",
    );
    refused_at(
        r#"{"grpc_service": [{"cluster_name": "ext_authz"}]}"#,
        "grpc_service",
        "sequence",
    );
    refused_at(
        r#"{SERVICE, "status_on_error": [403]}"#,
        "status_on_error",
        "sequence",
    );
    refused_at(
        r#"{SERVICE, "with_request_body": []}"#,
        "with_request_body",
        "sequence",
    );
    refused_at(
        r#"{"grpc_service": {"envoy_grpc": {"cluster_name": "c"}, "initial_metadata": [["k", "v"]]}}"#,
        "grpc_service.initial_metadata[0]",
        "sequence",
    );
    refused_at(r#"[{"grpc_service": {}}]"#, "", "must be a JSON object");
}

#[test]
fn null_is_a_field_at_its_default() {
    let parse = |json: &str| Config::parse(config(json).as_bytes()).unwrap();
    let base = parse(&format!("{{{SERVICE}}}"));
    assert_eq!(parse(r#"{SERVICE, "stat_prefix": null}"#), base);
    assert_eq!(parse(r#"{SERVICE, "failure_mode_allow": null}"#), base);
    assert_eq!(parse(r#"{SERVICE, "status_on_error": null}"#), base);
    // An integer left null is 0, which `max_request_bytes` may not be, as native refuses it.
    let refusal = |json: &str| Config::parse(config(json).as_bytes()).unwrap_err();
    assert_eq!(
        refusal(r#"{SERVICE, "with_request_body": {"max_request_bytes": null}}"#),
        refusal(r#"{SERVICE, "with_request_body": {"max_request_bytes": 0}}"#),
    );
    // A required field left null is still missing.
    refused_at(
        r#"{"grpc_service": {"envoy_grpc": {"cluster_name": null}}}"#,
        "grpc_service.envoy_grpc.cluster_name",
        "must not be empty",
    );
}
