//! A bad plugin configuration is refused when Envoy loads it, with one log line that names the
//! field and the reason; no request ever meets it.

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
