//! `steps` in a real Envoy: a required header (Gloo's RequiredHeader plugin), then two gRPC
//! checks, then an HTTP one, run in order. An allowing step's headers reach the later steps and
//! the upstream; a gRPC step's `dynamic_metadata` and `config` reach the later steps as Gloo's
//! passthrough hands them on; the first denial ends the chain; the chain has one deadline.

use std::time::{Duration, Instant};

use envoy_types::pb::envoy::service::auth::v3::{CheckRequest, OkHttpResponse};
use envoy_types::pb::google::protobuf::{value::Kind, Struct, Value as PbValue};
use host_tests::auth_server::{allow_with, deny, set_header};
use host_tests::envoy::{wasm_filter, AUTH_CLUSTER, HTTP_AUTH_CLUSTER};
use host_tests::{AuthAction, Harness, Listener, Request};
use serde_json::json;

fn harness() -> &'static Harness {
    host_tests::shared(|| {
        let grpc = json!({"envoy_grpc": {"cluster_name": AUTH_CLUSTER}, "timeout": "2s"});
        let chain = json!({
            "stat_prefix": "chain",
            "context_extensions": {"tenant": "top"},
            "steps": [
                {"required_header": {"name": "my-header", "allowed_values": ["foo", "bar"]}},
                {"grpc_service": grpc, "context_extensions": {"step": "first"}, "config": {"tenant": "acme", "level": 2}},
                {"grpc_service": grpc, "context_extensions": {"step": "second"}},
                {"http_service": {
                    "server_uri": {"uri": "http://authz.local", "cluster": HTTP_AUTH_CLUSTER, "timeout": "2s"},
                    "authorization_request": {"allowed_headers": {"patterns": [{"exact": "x-case"}, {"exact": "x-user"}, {"prefix": "x-auth-"}]}},
                    "authorization_response": {"allowed_upstream_headers": {"patterns": [{"exact": "x-http-step"}]}}
                }}
            ]
        });
        let bounded = json!({
            "timeout": "0.3s",
            "steps": [
                {"grpc_service": grpc, "context_extensions": {"step": "first"}},
                {"grpc_service": grpc, "context_extensions": {"step": "second"}}
            ]
        });
        // The same chain under a stat prefix of its own, for the one test that counts.
        let mut counted = chain.clone();
        counted["stat_prefix"] = json!("counted");
        vec![
            Listener::new("chain", vec![wasm_filter(&chain)]),
            Listener::new("counted", vec![wasm_filter(&counted)]),
            Listener::new("bounded", vec![wasm_filter(&bounded)]),
        ]
    })
}

fn step_of(request: &CheckRequest) -> String {
    request
        .attributes
        .as_ref()
        .and_then(|a| a.context_extensions.get("step"))
        .cloned()
        .unwrap_or_default()
}

fn filter_metadata<'a>(request: &'a CheckRequest, namespace: &str) -> Option<&'a Struct> {
    request
        .attributes
        .as_ref()?
        .metadata_context
        .as_ref()?
        .filter_metadata
        .get(namespace)
}

fn string(s: &Struct, key: &str) -> Option<String> {
    match s.fields.get(key)?.kind.as_ref()? {
        Kind::StringValue(v) => Some(v.clone()),
        _ => None,
    }
}

/// The first gRPC step allows, adds `x-user: alice` and returns `{"user": "alice"}` as
/// dynamic metadata; the second allows.
fn script_allowing_grpc_steps(h: &Harness, case: &str) {
    h.auth.script(case, |request| {
        if step_of(request) == "first" {
            let mut response = allow_with(OkHttpResponse {
                headers: vec![set_header("x-user", "alice")],
                ..Default::default()
            });
            let mut metadata = Struct::default();
            metadata.fields.insert(
                "user".into(),
                PbValue {
                    kind: Some(Kind::StringValue("alice".into())),
                },
            );
            response.dynamic_metadata = Some(metadata);
            AuthAction::respond(response)
        } else {
            AuthAction::respond(allow_with(OkHttpResponse::default()))
        }
    });
}

#[test]
fn every_step_allows_and_hands_on_headers_and_state() {
    let h = harness();
    let case = h.case("chain-allow");
    script_allowing_grpc_steps(h, &case);
    let request = Request::get("/api/pets/1")
        .case(&case)
        .header("my-header", "foo")
        .header("x-user", "mallory")
        .header("x-auth-echo-x-http-step", "done");
    let response = h.send("chain", &request);
    assert_eq!(response.status, 200);

    let checks = h.auth.checks(&case);
    let steps: Vec<String> = checks.iter().map(|c| step_of(&c.request)).collect();
    assert_eq!(steps, ["first", "second"], "the gRPC steps ran in order");
    let (first, second) = (&checks[0].request, &checks[1].request);

    let config = filter_metadata(first, "solo.auth.passthrough.config").expect("the step's config");
    assert_eq!(string(config, "tenant").as_deref(), Some("acme"));
    assert_eq!(config.fields["level"].kind, Some(Kind::NumberValue(2.0)));
    assert!(
        filter_metadata(first, "solo.auth.passthrough").is_none(),
        "nothing to pass on yet"
    );
    let tenant = first
        .attributes
        .as_ref()
        .and_then(|a| a.context_extensions.get("tenant"))
        .cloned();
    assert_eq!(
        tenant.as_deref(),
        Some("top"),
        "top-level extensions stay under the step's own"
    );

    let passed = filter_metadata(second, "solo.auth.passthrough")
        .expect("the first step's dynamic_metadata");
    assert_eq!(string(passed, "user").as_deref(), Some("alice"));
    assert!(
        filter_metadata(second, "solo.auth.passthrough.config").is_none(),
        "the second step has no config"
    );
    assert_eq!(
        checks[1].header("x-user"),
        Some("alice"),
        "the first step's header replaced the client's for the second"
    );

    let http = h.http_auth.requests(&case);
    assert_eq!(http.len(), 1, "the HTTP step ran last");
    assert_eq!(http[0].header("x-user").as_deref(), Some("alice"));

    let upstream = h.backend.requests(&case);
    assert_eq!(upstream.len(), 1);
    assert_eq!(upstream[0].header("x-user").as_deref(), Some("alice"));
    assert_eq!(upstream[0].header("x-http-step").as_deref(), Some("done"));
}

#[test]
fn a_missing_or_wrong_required_header_stops_the_chain_locally() {
    let h = harness();
    for value in [None, Some("baz")] {
        let case = h.case("chain-required");
        let mut request = Request::get("/api/pets/1").case(&case);
        if let Some(value) = value {
            request = request.header("my-header", value);
        }
        let response = h.send("chain", &request);
        assert_eq!((response.status, response.body.len()), (403, 0));
        assert!(
            h.auth.checks(&case).is_empty(),
            "no network hop for a local denial"
        );
        assert!(h.http_auth.requests(&case).is_empty());
        assert!(h.backend.requests(&case).is_empty());
    }
}

#[test]
fn the_first_denial_ends_the_chain() {
    let h = harness();
    let case = h.case("chain-grpc-deny");
    h.auth.script(&case, |request| {
        if step_of(request) == "second" {
            AuthAction::respond(deny(401, vec![set_header("x-denied-by", "second")], "no"))
        } else {
            AuthAction::respond(allow_with(OkHttpResponse::default()))
        }
    });
    let response = h.send(
        "chain",
        &Request::get("/api/pets/1")
            .case(&case)
            .header("my-header", "bar"),
    );
    assert_eq!(
        (response.status, response.header("x-denied-by").as_deref()),
        (401, Some("second"))
    );
    assert!(
        h.http_auth.requests(&case).is_empty(),
        "the HTTP step never ran"
    );
    assert!(h.backend.requests(&case).is_empty());

    // The HTTP step denies what the Gloo sample's server denies.
    let case = h.case("chain-http-deny");
    script_allowing_grpc_steps(h, &case);
    let response = h.send(
        "chain",
        &Request::get("/api/pets/2")
            .case(&case)
            .header("my-header", "foo"),
    );
    assert_eq!(
        (response.status, response.header("x-server").as_deref()),
        (401, Some("pythonauth"))
    );
    assert_eq!(h.auth.checks(&case).len(), 2);
    assert!(h.backend.requests(&case).is_empty());
}

#[test]
fn the_chain_has_one_deadline() {
    let h = harness();
    let case = h.case("chain-deadline");
    // Each step alone is within its 2 s timeout; together they pass the chain's 0.3 s.
    h.auth.respond(
        &case,
        AuthAction::Delay(
            Duration::from_millis(200),
            Box::new(AuthAction::respond(allow_with(OkHttpResponse::default()))),
        ),
    );
    let started = Instant::now();
    let response = h.send("bounded", &Request::get("/").case(&case));
    assert_eq!(response.status, 403);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "took {:?}",
        started.elapsed()
    );
    assert!(h.backend.requests(&case).is_empty());
}

#[test]
fn a_chain_that_allows_counts_once() {
    let h = harness();
    let case = h.case("chain-count");
    script_allowing_grpc_steps(h, &case);
    let request = Request::get("/api/pets/1")
        .case(&case)
        .header("my-header", "foo");
    assert_eq!(h.send("counted", &request).status, 200);
    // The listener is this test's alone, so its counters hold this one request only.
    assert_eq!(
        h.plugin_stat("ext_authz.counted.ok"),
        1,
        "one request, one ok, whatever the steps"
    );
    assert_eq!(h.plugin_stat("ext_authz.counted.denied"), 0);
}
