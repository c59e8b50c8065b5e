//! Config errors a person can act on, on real configs: every error of a config at once, each at
//! its field; an unknown field names the field probably meant; a bad value says what would be
//! accepted; and no error that only the reading's own removals caused.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use ext_authz_filter::config::{Config, ConfigErrors};

/// Every error of `json`, as `field: reason`.
fn errors(json: &str) -> Vec<String> {
    match Config::parse_all(json.as_bytes()) {
        Ok(config) => panic!("{json} was accepted: {config:?}"),
        Err(errors) => {
            // The first error is the one `parse` gives.
            let first = Config::parse(json.as_bytes()).unwrap_err();
            assert_eq!(errors.errors()[0], first, "{json}");
            errors.errors().iter().map(ToString::to_string).collect()
        }
    }
}

const DURATION: &str =
    r#"durations are seconds with up to nine decimals and end in "s", such as "0.25s""#;

#[test]
fn a_typo_and_a_bad_duration_are_both_reported() {
    let json = r#"{
        "grpc_service": {"envoy_grpc": {"cluster_name": "ext_authz"}, "timeout": "0.25"},
        "failure_mode_alow": true
    }"#;
    assert_eq!(
        errors(json),
        [
            "failure_mode_alow: unknown field `failure_mode_alow`: did you mean `failure_mode_allow`?".to_owned(),
            format!(r#"grpc_service.timeout: duration "0.25" is not a protobuf JSON duration: {DURATION}"#),
        ]
    );
}

#[test]
fn typos_in_nested_fields_name_the_field_meant() {
    assert_eq!(
        errors(r#"{"grpc_service": {"envoy_grpc": {"clustr_name": "ext_authz"}, "timeot": "1s"}}"#),
        [
            // Not also "missing field `cluster_name`": that is the typo.
            "grpc_service.envoy_grpc.clustr_name: unknown field `clustr_name`: did you mean `cluster_name`?",
            "grpc_service.timeot: unknown field `timeot`: did you mean `timeout`?",
        ]
    );
    assert_eq!(
        errors(
            r#"{"grpc_service": {"envoy_grpc": {"cluster_name": "c"}},
                "routes": [{"match": {"prefx": "/a"}}, {"match": {"path": "/b"}, "check_settings": {"with_request_body": {"max_request_byte": 4}}}]}"#
        ),
        [
            "routes[0].match.prefx: unknown field `prefx`: did you mean `prefix`?",
            "routes[1].check_settings.with_request_body.max_request_byte: unknown field `max_request_byte`: did you mean `max_request_bytes`?",
        ]
    );
}

#[test]
fn camel_case_typos_are_folded_and_answered_in_snake_case() {
    assert_eq!(
        errors(
            r#"{"grpcService": {"envoyGrpc": {"clusterNme": "c"}}, "failureModeAlow": true, "grpcservice": {}}"#
        ),
        [
            "failureModeAlow: unknown field `failureModeAlow`: did you mean `failure_mode_allow`?",
            "grpcService.envoyGrpc.clusterNme: unknown field `clusterNme`: did you mean `cluster_name`?",
            // Folded alike but spelled neither way the config reads: unknown, and meant.
            "grpcservice: unknown field `grpcservice`: did you mean `grpc_service`?",
        ]
    );
    // A typo of the one required service is not also "grpc_service is required".
    assert_eq!(
        errors(r#"{"grpcservice": {"envoy_grpc": {"cluster_name": "c"}}}"#),
        ["grpcservice: unknown field `grpcservice`: did you mean `grpc_service`?"]
    );
}

#[test]
fn nothing_close_lists_the_fields_once_in_snake_case() {
    let found = errors(r#"{"grpc_service": {"envoy_grpc": {"cluster_name": "c"}, "zzzz": 1}}"#);
    assert_eq!(
        found,
        ["grpc_service.zzzz: unknown field `zzzz`; the fields here are envoy_grpc, timeout, initial_metadata, retry_policy"]
    );
    let top = errors(r#"{"grpc_service": {"envoy_grpc": {"cluster_name": "c"}}, "qqqq": 1}"#);
    let list = top[0].split("the fields here are ").nth(1).unwrap();
    let names: Vec<&str> = list.split(", ").collect();
    assert!(
        names.contains(&"failure_mode_allow") && names.contains(&"grpc_service"),
        "{list}"
    );
    assert!(
        names
            .iter()
            .all(|n| !n.chars().any(|c| c.is_ascii_uppercase())),
        "{list}"
    );
    let mut unique = names.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), names.len(), "{list}");
}

#[test]
fn bad_values_say_what_would_be_accepted() {
    assert_eq!(
        errors(
            r#"{"grpc_service": {"envoy_grpc": {"cluster_name": "c"}},
                "status_on_error": {"code": 99},
                "with_request_body": {"max_request_bytes": -1},
                "transport_api_version": "V2"}"#
        ),
        [
            "with_request_body.max_request_bytes: invalid value: integer `-1`, expected a whole number from 0 to 4294967295",
            "status_on_error.code: 99 is not an HTTP status between 200 and 599",
            "transport_api_version: \"V2\" is not supported: only \"V3\" exists",
        ]
    );
    // The duration's own value with the `s` it lacks, when that is all it lacks.
    assert_eq!(
        errors(
            r#"{"http_service": {"server_uri": {"uri": "http://a", "cluster": "a", "timeout": "2"}}}"#
        ),
        [
            r#"http_service.server_uri.timeout: duration "2" is not a protobuf JSON duration: durations are seconds with up to nine decimals and end in "s", such as "2s""#
        ]
    );
}

#[test]
fn a_refused_native_field_keeps_its_reason_beside_the_other_errors() {
    assert_eq!(
        errors(
            r#"{"grpc_service": {"envoy_grpc": {"cluster_name": ""}, "google_grpc": {}},
                "filter_enabled_metadata": {}, "failure_mode_allow": "yes"}"#
        ),
        [
            "filter_enabled_metadata: is not supported: a wasm filter cannot match dynamic metadata",
            "grpc_service.google_grpc: is not supported: a wasm filter calls out through Envoy; use envoy_grpc",
            "failure_mode_allow: invalid type: string \"yes\", expected a boolean",
            "grpc_service.envoy_grpc.cluster_name: must not be empty",
        ]
    );
}

#[test]
fn what_taking_a_field_out_causes_is_not_reported() {
    // A required field of the wrong type is not then also missing; nor is its object's absence
    // an error of the object above.
    for json in [
        r#"{"grpc_service": {"envoy_grpc": {"cluster_name": 5}}}"#,
        r#"{"grpc_service": {"envoy_grpc": {"cluster_name": "c"}}, "with_request_body": {"max_request_bytes": "x"}}"#,
        r#"{"grpc_service": {"envoy_grpc": {"cluster_name": "c"}}, "status_on_error": {"code": "x"}}"#,
        r#"{"grpc_service": {"envoy_grpc": {"cluster_name": "c"}}, "allowed_headers": {"patterns": [{"exact": 5}]}}"#,
        r#"{"steps": [{"required_header": {"nam": "x-key"}}]}"#,
        r#"{"grpc_service": "ext_authz"}"#,
    ] {
        assert_eq!(errors(json).len(), 1, "{json}: {:?}", errors(json));
    }
}

#[test]
fn errors_in_a_list_keep_their_index() {
    // [0] is taken out (missing key) and [2] (a number): [1] and [3] keep their numbers.
    let json = r#"{"grpc_service": {"envoy_grpc": {"cluster_name": "c"},
        "initial_metadata": [{"value": "v"}, {"key": "bad key"}, {"key": 5}, {"key": "ok"}]}}"#;
    assert_eq!(
        errors(json),
        [
            "grpc_service.initial_metadata[0]: missing field `key`",
            "grpc_service.initial_metadata[2].key: invalid type: integer `5`, expected a string",
            "grpc_service.initial_metadata[1].key: \"bad key\" is not a valid gRPC metadata key",
        ]
    );
    let json = r#"{"grpc_service": {"envoy_grpc": {"cluster_name": "c"}}, "routes": [
        {"match": {"prefix": 1}},
        {"match": {"safe_regex": {"regex": "("}}},
        {"match": {"path": "/x"}, "disabled": true, "check_settings": {}}]}"#;
    let found = errors(json);
    assert_eq!(found.len(), 3, "{found:?}");
    assert!(
        found[0].starts_with("routes[0].match.prefix: invalid type"),
        "{found:?}"
    );
    assert!(
        found[1].starts_with("routes[1].match.safe_regex: \"(\" is not a valid regex"),
        "{found:?}"
    );
    assert_eq!(
        found[2],
        "routes[2]: takes disabled or check_settings, not both"
    );
}

#[test]
fn routes_are_judged_even_when_the_service_is_refused() {
    assert_eq!(
        errors(
            r#"{"grpc_service": {"envoy_grpc": {"cluster_name": ""}},
                "routes": [{"match": {"methods": ["G T"]}}]}"#
        ),
        [
            "grpc_service.envoy_grpc.cluster_name: must not be empty",
            "routes[0].match.methods[0]: \"G T\" is not an HTTP method",
        ]
    );
}

#[test]
fn at_most_twenty_errors_and_the_log_shows_ten() {
    let fields: Vec<String> = (0..30).map(|i| format!(r#""unknown{i:02}": 1"#)).collect();
    let json = format!(
        r#"{{"grpc_service": {{"envoy_grpc": {{"cluster_name": "c"}}}}, {}}}"#,
        fields.join(", ")
    );
    let errors: ConfigErrors = Config::parse_all(json.as_bytes()).unwrap_err();
    assert_eq!(errors.len(), 20);
    let lines = errors.lines(10);
    assert_eq!(lines.len(), 11);
    assert!(
        lines[0].starts_with("unknown00: unknown field `unknown00`"),
        "{lines:?}"
    );
    assert_eq!(
        lines[10],
        "and 10 more (`ext-authz-config check` lists them all)"
    );
}

#[test]
fn a_field_given_in_both_spellings_is_reported_once_and_reading_goes_on() {
    assert_eq!(
        errors(
            r#"{"grpc_service": {"envoy_grpc": {"cluster_name": "c"}},
                "grpcService": {"envoy_grpc": {"cluster_name": "c"}}, "stat_prefix": 5}"#
        ),
        [
            "duplicate field `grpc_service`",
            "stat_prefix: invalid type: integer `5`, expected a string",
        ]
    );
}
