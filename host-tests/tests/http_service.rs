//! `http_service`: a plain HTTP authorization server (the Gloo custom-auth sample's behaviour:
//! `/api/pets/1` allowed, the rest 401 with `x-server`), called by the native filter and by this
//! one in the same Envoy. The client, the upstream and the auth server must see the same.

use host_tests::backend::RecordedRequest;
use host_tests::envoy::{native_ext_authz, wasm_filter, DOWN_CLUSTER, HTTP_AUTH_CLUSTER};
use host_tests::{compare, Harness, Listener, Request, Response};
use serde_json::{json, Value};

fn config(cluster: &str) -> Value {
    json!({"http_service": {
        "server_uri": {"uri": "http://authz.local", "cluster": cluster, "timeout": "2s"},
        "path_prefix": "/check",
        "authorization_request": {
            "allowed_headers": {"patterns": [{"exact": "x-case"}, {"prefix": "x-auth-"}]},
            "headers_to_add": [{"key": "x-added", "value": "by-filter"}]
        },
        "authorization_response": {
            "allowed_upstream_headers": {"patterns": [{"exact": "x-user"}]},
            "allowed_client_headers": {"patterns": [{"exact": "x-server"}, {"exact": "www-authenticate"}]},
            "allowed_client_headers_on_success": {"patterns": [{"exact": "x-session"}]}
        }
    }})
}

fn harness() -> &'static Harness {
    host_tests::shared(|| {
        vec![
            Listener::new("native", vec![native_ext_authz(&config(HTTP_AUTH_CLUSTER))]),
            Listener::new("wasm", vec![wasm_filter(&config(HTTP_AUTH_CLUSTER))]),
            Listener::new("native_down", vec![native_ext_authz(&config(DOWN_CLUSTER))]),
            Listener::new("wasm_down", vec![wasm_filter(&config(DOWN_CLUSTER))]),
        ]
    })
}

struct Seen {
    response: Response,
    upstream: Vec<RecordedRequest>,
    authorization: Vec<RecordedRequest>,
}

/// Sends `request` through the native and the wasm listener and asserts they agree.
fn same(name: &str, listeners: (&str, &str), request: Request) -> Seen {
    let h = harness();
    let mut seen = Vec::new();
    for listener in [listeners.0, listeners.1] {
        let case = h.case(&format!("{name}-{listener}"));
        let response = h.send(listener, &request.clone().case(&case));
        seen.push(Seen {
            response,
            upstream: h.backend.requests(&case),
            authorization: h.http_auth.requests(&case),
        });
    }
    let (native, wasm) = (&seen[0], &seen[1]);
    assert_eq!(
        compare::response(&wasm.response),
        compare::response(&native.response),
        "{name}: client responses differ"
    );
    assert_eq!(
        compare::requests(&wasm.upstream),
        compare::requests(&native.upstream),
        "{name}: upstream requests differ"
    );
    assert_eq!(
        compare::requests(&wasm.authorization),
        compare::requests(&native.authorization),
        "{name}: authorization requests differ"
    );
    seen.swap_remove(1)
}

#[test]
fn allowed_path_reaches_upstream_with_the_servers_headers() {
    let request = Request::get("/api/pets/1?x=1")
        .header("x-auth-echo-x-user", "alice")
        .header("x-auth-echo-x-session", "s1")
        .header("x-auth-echo-x-secret", "hidden")
        .header("authorization", "Bearer t")
        .header("x-not-sent", "n");
    let seen = same("allow", ("native", "wasm"), request);
    assert_eq!(seen.response.status, 200);
    assert_eq!(seen.response.header("x-session").as_deref(), Some("s1"));
    assert_eq!(seen.upstream.len(), 1);
    assert_eq!(seen.upstream[0].header("x-user").as_deref(), Some("alice"));
    assert_eq!(
        seen.upstream[0].header("x-secret"),
        None,
        "only allowed_upstream_headers cross"
    );
    let asked = &seen.authorization[0];
    assert_eq!(
        (asked.method.as_str(), asked.path.as_str()),
        ("GET", "/check/api/pets/1?x=1")
    );
    assert_eq!(asked.header("authorization").as_deref(), Some("Bearer t"));
    assert_eq!(asked.header("x-added").as_deref(), Some("by-filter"));
    assert_eq!(asked.header("x-not-sent"), None);
}

#[test]
fn other_paths_are_denied_with_the_servers_answer() {
    let seen = same("deny", ("native", "wasm"), Request::get("/api/pets/2"));
    assert_eq!(seen.response.status, 401);
    assert_eq!(
        seen.response.header("x-server").as_deref(),
        Some("pythonauth")
    );
    assert_eq!(seen.response.body_text(), "Not authorized");
    assert!(seen.upstream.is_empty());
}

#[test]
fn a_post_goes_to_the_server_with_its_method() {
    let seen = same(
        "post",
        ("native", "wasm"),
        Request::new("POST", "/api/pets/1").body("payload"),
    );
    assert_eq!(seen.response.status, 200);
    assert_eq!(seen.authorization[0].method, "POST");
    assert_eq!(
        seen.upstream[0].body, b"payload",
        "the body still reaches the upstream whole"
    );
}

#[test]
fn server_errors_and_unreachable_servers_fail_closed() {
    let seen = same(
        "5xx",
        ("native", "wasm"),
        Request::get("/api/pets/1").header("x-auth-status", "503"),
    );
    assert_eq!(seen.response.status, 403);
    assert!(seen.upstream.is_empty());
    let seen = same(
        "down",
        ("native_down", "wasm_down"),
        Request::get("/api/pets/1"),
    );
    assert_eq!(seen.response.status, 403);
    assert!(seen.upstream.is_empty());
}
