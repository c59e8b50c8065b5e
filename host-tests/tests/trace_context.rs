//! Trace context: the gRPC and the HTTP auth server get the request's W3C and B3 context as a
//! child span's (same trace, a new span id, the request's span as parent, sampling kept);
//! malformed values and `propagate_trace_context: false` send none. Native ext_authz without a
//! tracer sends none either (the last test shows it, in the same Envoy).

use std::collections::HashMap;

use host_tests::envoy::{native_ext_authz, wasm_filter, AUTH_CLUSTER, HTTP_AUTH_CLUSTER};
use host_tests::{Harness, Listener, Request};
use serde_json::{json, Value};

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const SPAN: &str = "b7ad6b7169203331";
const B3_TRACE: &str = "463ac35c9f6413ad48485a3953bb6124";
const B3_SPAN: &str = "a2fb4a1d1a96d312";

const NAMES: [&str; 8] = [
    "traceparent",
    "tracestate",
    "x-b3-traceid",
    "x-b3-spanid",
    "x-b3-parentspanid",
    "x-b3-sampled",
    "x-b3-flags",
    "b3",
];

fn grpc(extra: Value) -> Value {
    let mut config =
        json!({"grpc_service": {"envoy_grpc": {"cluster_name": AUTH_CLUSTER}, "timeout": "5s"}});
    for (key, value) in extra.as_object().into_iter().flatten() {
        config[key] = value.clone();
    }
    config
}

fn http() -> Value {
    json!({"http_service": {
        "server_uri": {"uri": "http://authz.local", "cluster": HTTP_AUTH_CLUSTER, "timeout": "5s"},
        "authorization_request": {"allowed_headers": {"patterns": [{"exact": "x-case"}]}}
    }})
}

fn harness() -> &'static Harness {
    host_tests::shared(|| {
        vec![
            Listener::new("grpc", vec![wasm_filter(&grpc(json!({})))]),
            Listener::new(
                "grpc_off",
                vec![wasm_filter(&grpc(
                    json!({"propagate_trace_context": false}),
                ))],
            ),
            Listener::new("native_grpc", vec![native_ext_authz(&grpc(json!({})))]),
            Listener::new("http", vec![wasm_filter(&http())]),
        ]
    })
}

fn traced() -> Request {
    Request::get("/")
        .header("traceparent", format!("00-{TRACE}-{SPAN}-01"))
        .header("tracestate", "congo=t61rcWkgMzE")
        .header("x-b3-traceid", B3_TRACE)
        .header("x-b3-spanid", B3_SPAN)
        .header("x-b3-sampled", "1")
        .header("b3", format!("{B3_TRACE}-{B3_SPAN}-1"))
}

/// The trace headers the gRPC server got as metadata for a request sent to `listener`.
fn grpc_metadata(listener: &str, request: Request) -> HashMap<String, String> {
    let h = harness();
    let case = h.case(listener);
    let response = h.send(listener, &request.case(&case));
    assert_eq!(response.status, 200);
    let checks = h.auth.checks(&case);
    assert_eq!(checks.len(), 1);
    checks[0]
        .metadata
        .iter()
        .filter(|(k, _)| NAMES.contains(&k.as_str()))
        .cloned()
        .collect()
}

/// Checks that `seen` is a child of [`traced`]'s context and returns its span ids (W3C, B3).
fn assert_child(seen: &HashMap<String, String>) -> (String, String) {
    let get = |name: &str| seen.get(name).cloned().unwrap_or_default();
    let traceparent = get("traceparent");
    let fields: Vec<&str> = traceparent.split('-').collect();
    assert_eq!(fields.len(), 4, "{traceparent:?}");
    assert_eq!((fields[0], fields[1], fields[3]), ("00", TRACE, "01"));
    let w3c_span = fields[2].to_owned();
    assert!(w3c_span.len() == 16 && w3c_span != SPAN && w3c_span != "0".repeat(16));
    assert_eq!(get("tracestate"), "congo=t61rcWkgMzE");
    assert_eq!(get("x-b3-traceid"), B3_TRACE);
    assert_eq!(get("x-b3-parentspanid"), B3_SPAN);
    assert_eq!(get("x-b3-sampled"), "1");
    let b3_span = get("x-b3-spanid");
    assert!(b3_span.len() == 16 && b3_span != B3_SPAN);
    assert_eq!(get("b3"), format!("{B3_TRACE}-{b3_span}-1-{B3_SPAN}"));
    (w3c_span, b3_span)
}

#[test]
fn the_grpc_server_gets_a_child_context_with_a_new_span_each_time() {
    let first = assert_child(&grpc_metadata("grpc", traced()));
    let second = assert_child(&grpc_metadata("grpc", traced()));
    assert_ne!(first, second, "a new span id per check");
}

#[test]
fn the_http_server_gets_a_child_context_as_headers() {
    let h = harness();
    let case = h.case("http");
    h.send("http", &traced().case(&case));
    let asked = h.http_auth.requests(&case);
    assert_eq!(asked.len(), 1);
    let seen: HashMap<String, String> = NAMES
        .iter()
        .filter_map(|name| Some(((*name).to_owned(), asked[0].header(name)?)))
        .collect();
    assert_child(&seen);
}

#[test]
fn malformed_or_switched_off_context_is_not_sent() {
    let malformed = Request::get("/")
        .header("traceparent", format!("00-{TRACE}-{SPAN}-1"))
        .header("tracestate", "congo=t61rcWkgMzE")
        .header("x-b3-traceid", "not-hex")
        .header("x-b3-spanid", B3_SPAN)
        .header("b3", "garbage");
    assert_eq!(grpc_metadata("grpc", malformed), HashMap::new());
    assert_eq!(grpc_metadata("grpc_off", traced()), HashMap::new());
}

#[test]
fn native_without_a_tracer_sends_no_trace_metadata() {
    assert_eq!(grpc_metadata("native_grpc", traced()), HashMap::new());
}
