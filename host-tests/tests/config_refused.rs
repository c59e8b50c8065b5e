//! A bad plugin configuration is refused when Envoy loads it, with one log line per problem that
//! names the field and the reason; no request ever meets it.

use host_tests::envoy::{bootstrap, wasm_filter, Envoy, Listener};
use serde_json::{json, Value};

/// Starts an Envoy whose only listener carries the plugin with `config`; returns the log of its
/// refusal.
fn refusal(config: &Value) -> String {
    let listeners = [Listener::new("refused", vec![wasm_filter(config)])];
    let access_log =
        std::env::temp_dir().join(format!("ext-authz-refused-{}.log", std::process::id()));
    Envoy::start_expecting_refusal(&bootstrap(&listeners, 1, 1, 1, &access_log))
}

fn assert_refused(config: Value, field_and_reason: &str) {
    let log = refusal(&config);
    let line = log
        .lines()
        .find(|l| l.contains("ext_authz: invalid plugin configuration"))
        .unwrap_or_else(|| panic!("no refusal line for {config}; log:\n{log}"));
    assert!(
        line.contains(field_and_reason),
        "expected {field_and_reason:?} in: {line}"
    );
}

#[test]
fn not_json() {
    // A StringValue holding text that is not JSON.
    let log = refusal(&json!("grpc_service: {cluster: x}"));
    assert!(
        log.contains("ext_authz: invalid plugin configuration"),
        "{log}"
    );
}

#[test]
fn unknown_field() {
    assert_refused(
        json!({"grpc_service": {"envoy_grpc": {"cluster_name": "ext_authz"}}, "failure_mode": true}),
        "unknown field `failure_mode`",
    );
}

#[test]
fn negative_timeout() {
    assert_refused(
        json!({"grpc_service": {"envoy_grpc": {"cluster_name": "ext_authz"}, "timeout": "-1s"}}),
        "grpc_service.timeout: duration \"-1s\" must not be negative",
    );
}

#[test]
fn status_outside_200_599() {
    assert_refused(
        json!({"grpc_service": {"envoy_grpc": {"cluster_name": "ext_authz"}}, "status_on_error": {"code": 99}}),
        "status_on_error.code: 99 is not an HTTP status between 200 and 599",
    );
}

#[test]
fn empty_cluster_name() {
    assert_refused(
        json!({"grpc_service": {"envoy_grpc": {"cluster_name": ""}}}),
        "grpc_service.envoy_grpc.cluster_name: must not be empty",
    );
}

#[test]
fn wrong_type() {
    assert_refused(
        json!({"grpc_service": {"envoy_grpc": {"cluster_name": "ext_authz"}}, "failure_mode_allow": "yes"}),
        "failure_mode_allow: invalid type: string \"yes\", expected a boolean",
    );
}

#[test]
fn native_field_not_supported_here() {
    assert_refused(
        json!({"grpc_service": {"envoy_grpc": {"cluster_name": "ext_authz"}}, "bootstrap_metadata_labels_key": "labels"}),
        "bootstrap_metadata_labels_key: is not supported: a wasm filter cannot read bootstrap labels",
    );
}

#[test]
fn zero_max_request_bytes() {
    assert_refused(
        json!({"grpc_service": {"envoy_grpc": {"cluster_name": "ext_authz"}}, "with_request_body": {"max_request_bytes": 0}}),
        "with_request_body.max_request_bytes: must be greater than 0",
    );
}

#[test]
fn bad_route() {
    assert_refused(
        json!({"grpc_service": {"envoy_grpc": {"cluster_name": "ext_authz"}},
               "routes": [{"match": {"prefix": "/"}}, {"match": {"safe_regex": {"regex": "("}}, "disabled": true}]}),
        "routes[1].match.safe_regex: \"(\" is not a valid regex",
    );
}

#[test]
fn bad_step() {
    assert_refused(
        json!({"steps": [{"required_header": {"name": "x-key"}}, {"required_header": {"name": "x"}, "config": {"a": 1}}]}),
        "steps[1].config: goes with grpc_service only",
    );
}

#[test]
fn allowed_headers_at_both_levels_of_an_http_service_as_native() {
    let config = json!({
        "http_service": {
            "server_uri": {"uri": "http://authz", "cluster": "ext_authz_http", "timeout": "1s"},
            "authorization_request": {"allowed_headers": {"patterns": [{"exact": "x-a"}]}}
        },
        "allowed_headers": {"patterns": [{"exact": "x-b"}]}
    });
    assert_refused(
        config.clone(),
        "allowed_headers: Invalid duplicate configuration for allowed_headers.",
    );
    let listeners = [Listener::new(
        "native",
        vec![host_tests::envoy::native_ext_authz(&config)],
    )];
    let access_log =
        std::env::temp_dir().join(format!("ext-authz-refused-n-{}.log", std::process::id()));
    let log = Envoy::start_expecting_refusal(&bootstrap(&listeners, 1, 1, 1, &access_log));
    assert!(
        log.contains("Invalid duplicate configuration for allowed_headers."),
        "{log}"
    );
}

#[test]
fn every_problem_gets_its_own_line_with_what_was_meant() {
    let log = refusal(&json!({
        "grpc_service": {"envoy_grpc": {"cluster_name": "ext_authz"}, "timeout": "0.25"},
        "failure_mode_alow": true,
        "status_on_error": {"code": 700}
    }));
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("ext_authz: invalid plugin configuration"))
        .collect();
    let expected = [
        "ext_authz: invalid plugin configuration (1 of 3): failure_mode_alow: unknown field `failure_mode_alow`: did you mean `failure_mode_allow`?",
        "ext_authz: invalid plugin configuration (2 of 3): grpc_service.timeout: duration \"0.25\" is not a protobuf JSON duration: durations are seconds with up to nine decimals and end in \"s\", such as \"0.25s\"",
        "ext_authz: invalid plugin configuration (3 of 3): status_on_error.code: 700 is not an HTTP status between 200 and 599",
    ];
    assert_eq!(lines.len(), expected.len(), "log:\n{log}");
    for (line, expected) in lines.iter().zip(expected) {
        assert!(
            line.ends_with(expected),
            "expected {expected:?} at the end of: {line}"
        );
    }
}
