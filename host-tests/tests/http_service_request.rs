//! `http_service`: the request the auth server gets, side by side with native's in the same Envoy.
//! Which request headers go (the legacy `authorization_request.allowed_headers` with the headers
//! native always adds, the top-level `allowed_headers` and `disallowed_headers`, or all), how a
//! repeated header is joined, and the body with `x-envoy-auth-partial-body`.

use host_tests::backend::RecordedRequest;
use host_tests::envoy::{native_ext_authz, wasm_filter, wasm_filter_for_bodies, HTTP_AUTH_CLUSTER};
use host_tests::{compare, Harness, Listener, Request};
use serde_json::{json, Value};

fn service(authorization_request: Value) -> Value {
    json!({
        "server_uri": {"uri": "http://authz.local", "cluster": HTTP_AUTH_CLUSTER, "timeout": "2s"},
        "path_prefix": "/check",
        "authorization_request": authorization_request,
    })
}

fn keep() -> Value {
    json!({"patterns": [{"exact": "x-case"}, {"prefix": "x-keep"}]})
}

/// Patterns in upper case, and one with `ignore_case`, against lower-case header names.
fn upper() -> Value {
    json!({"patterns": [{"exact": "X-Keep-A"}, {"prefix": "X-OTH", "ignore_case": true}]})
}

/// The configs under test, by listener name.
fn configs() -> Vec<(&'static str, Value, bool)> {
    vec![
        (
            "legacy",
            json!({"http_service": service(json!({"allowed_headers": keep()}))}),
            false,
        ),
        (
            "top",
            json!({"http_service": service(json!({})), "allowed_headers": keep(),
                   "disallowed_headers": {"patterns": [{"exact": "x-keep-not"}]}}),
            false,
        ),
        (
            "legacy_upper",
            json!({"http_service": service(json!({"allowed_headers": upper()}))}),
            false,
        ),
        (
            "top_upper",
            json!({"http_service": service(json!({})), "allowed_headers": upper()}),
            false,
        ),
        (
            "unset",
            json!({"http_service": service(json!({})),
                   "disallowed_headers": {"patterns": [{"exact": "x-drop"}]}}),
            false,
        ),
        (
            "unauthorized",
            json!({"http_service": service(json!({})),
                   "disallowed_headers": {"patterns": [{"exact": "authorization"}]}}),
            false,
        ),
        (
            "body",
            json!({"http_service": service(json!({})),
                   "with_request_body": {"max_request_bytes": 4, "allow_partial_message": true}}),
            true,
        ),
    ]
}

fn harness() -> &'static Harness {
    host_tests::shared(|| {
        configs()
            .into_iter()
            .flat_map(|(name, config, body)| {
                let wasm = if body {
                    wasm_filter_for_bodies(&config)
                } else {
                    wasm_filter(&config)
                };
                [
                    Listener::new(&format!("native_{name}"), vec![native_ext_authz(&config)]),
                    Listener::new(&format!("wasm_{name}"), vec![wasm]),
                ]
            })
            .collect()
    })
}

/// Sends `request` through `native_<config>` and `wasm_<config>`; asserts that the auth server got
/// the same from both, and returns what it got from the wasm filter.
fn asked(config: &str, name: &str, request: &Request) -> RecordedRequest {
    let h = harness();
    let mut seen = Vec::new();
    for side in ["native", "wasm"] {
        let case = h.case(&format!("{name}-{side}"));
        // The case also in the query, for configs that do not send `x-case`.
        let mut request = request.clone().case(&case);
        request.path = format!("{}&case={case}", request.path);
        h.send(&format!("{side}_{config}"), &request);
        let mut asked = h.http_auth.requests(&case);
        for asked in &mut asked {
            asked.path = asked.path.replace(&format!("&case={case}"), "");
        }
        assert_eq!(asked.len(), 1, "{name}: {side} asked once: {asked:?}");
        seen.push(asked);
    }
    assert_eq!(
        compare::requests(&seen[1]),
        compare::requests(&seen[0]),
        "{name}: the authorization requests differ (left wasm, right native)"
    );
    seen.swap_remove(1).swap_remove(0)
}

fn headers() -> Request {
    Request::get("/api/pets/1?q=1")
        .header("authorization", "Bearer t")
        .header("x-keep-a", "one")
        .header("x-keep-a", "two")
        .header("x-keep-not", "no")
        .header("x-drop", "d")
        .header("x-other", "o")
        .header("user-agent", "test-agent")
        .header("x-envoy-auth-partial-body", "spoofed")
}

#[test]
fn legacy_allowed_headers_add_what_native_always_sends() {
    let asked = asked("legacy", "legacy", &headers());
    assert_eq!(asked.header("authorization").as_deref(), Some("Bearer t"));
    assert_eq!(asked.header("x-keep-a").as_deref(), Some("one,two"));
    assert_eq!(asked.header("x-other"), None);
    assert_eq!(asked.path, "/check/api/pets/1?q=1");
}

#[test]
fn top_level_allowed_and_disallowed_headers_apply() {
    let asked = asked("top", "top", &headers());
    assert_eq!(asked.header("x-keep-a").as_deref(), Some("one,two"));
    assert_eq!(asked.header("x-keep-not"), None, "disallowed wins");
    assert_eq!(asked.header("x-other"), None);
}

#[test]
fn upper_case_patterns_match_as_natives_do() {
    let legacy = asked("legacy_upper", "legacy-upper", &headers());
    let top = asked("top_upper", "top-upper", &headers());
    // Whatever native does, both levels agree with it (asked() compares); ignore_case matches.
    assert_eq!(legacy.header("x-other").as_deref(), Some("o"));
    assert_eq!(top.header("x-other").as_deref(), Some("o"));
}

#[test]
fn without_allowed_headers_only_what_native_always_sends_goes() {
    let asked = asked("unset", "all", &headers());
    assert_eq!(asked.header("authorization").as_deref(), Some("Bearer t"));
    assert_eq!(asked.header("x-other"), None);
    assert_eq!(asked.header("user-agent"), None);
    assert_eq!(asked.header("x-keep-a"), None);
}

#[test]
fn disallowed_headers_hold_for_authorization_too() {
    let asked = asked("unauthorized", "unauthorized", &headers());
    assert_eq!(asked.header("authorization"), None);
}

#[test]
fn a_body_goes_with_the_partial_body_header() {
    let asked_partial = asked(
        "body",
        "partial",
        &headers()
            .header("content-type", "text/plain")
            .body("payload"),
    );
    assert_eq!(asked_partial.body, b"payl");
    assert_eq!(
        asked_partial.header("x-envoy-auth-partial-body").as_deref(),
        Some("true")
    );
    let whole = asked(
        "body",
        "whole",
        &Request::new("POST", "/api/pets/1?q=2").body("pay"),
    );
    assert_eq!(whole.body, b"pay");
    assert_eq!(
        whole.header("x-envoy-auth-partial-body").as_deref(),
        Some("false")
    );
    // No body at all: no body and, as from native, no partial-body header.
    let bodiless = asked("body", "bodiless", &headers());
    assert!(bodiless.body.is_empty());
    assert_eq!(bodiless.header("x-envoy-auth-partial-body"), None);
}
