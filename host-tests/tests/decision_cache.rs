//! `decision_cache` in a real Envoy with four workers: answers are shared across workers and
//! connections, a hit changes the request and the response as its miss did, denials are kept only
//! under `denied_ttl`, an expired allow stands in for a failing server under `stale_if_error`, and
//! nothing of a request reaches the upstream before its decision on a miss.
//!
//! The key always holds `x-case`, so the tests of this file, which run at once, never share entries.

use std::time::{Duration, Instant};

use envoy_types::pb::envoy::config::core::v3::QueryParameter;
use envoy_types::pb::envoy::service::auth::v3::OkHttpResponse;
use host_tests::auth_server::{allow_with, deny, set_header, Gate};
use host_tests::envoy::{wasm_filter, HTTP_AUTH_CLUSTER};
use host_tests::{compare, AuthAction, Harness, Listener, Request, Response};
use serde_json::{json, Value};

const WORKERS: u32 = 4;

fn grpc(cache: Value) -> Value {
    json!({
        "grpc_service": {"envoy_grpc": {"cluster_name": "ext_authz"}, "timeout": "5s"},
        "decision_cache": cache,
    })
}

fn key() -> Value {
    json!({"headers": ["authorization", "x-case"]})
}

fn harness() -> &'static Harness {
    host_tests::shared_with_workers(WORKERS, || {
        vec![
            Listener::new(
                "cached",
                vec![wasm_filter(&grpc(
                    json!({"key": key(), "debug_header": true}),
                ))],
            ),
            Listener::new(
                "denials_cached",
                vec![wasm_filter(&grpc(
                    json!({"key": key(), "denied_ttl": "30s"}),
                ))],
            ),
            Listener::new(
                "stale",
                vec![wasm_filter(&grpc(json!({
                    "key": key(), "ttl": "1s", "denied_ttl": "1s", "stale_if_error": "60s",
                    "debug_header": true
                })))],
            ),
            Listener::new(
                "http",
                vec![wasm_filter(&json!({
                    "http_service": {
                        "server_uri": {"uri": "http://authz.local", "cluster": HTTP_AUTH_CLUSTER, "timeout": "5s"},
                        "authorization_request": {"allowed_headers": {"patterns": [{"exact": "x-case"}, {"prefix": "x-auth-"}]}},
                        "authorization_response": {"allowed_upstream_headers": {"patterns": [{"exact": "x-user"}]}}
                    },
                    "decision_cache": {"key": {"headers": ["authorization", "x-case", "x-auth-echo-x-user"]}, "debug_header": true}
                }))],
            ),
        ]
    })
}

/// An allow that adds a request header, a response header and a query parameter.
fn rich_allow() -> AuthAction {
    AuthAction::respond(allow_with(OkHttpResponse {
        headers: vec![set_header("x-user", "alice")],
        response_headers_to_add: vec![set_header("x-session", "s1")],
        query_parameters_to_set: vec![QueryParameter {
            key: "tenant".into(),
            value: "acme".into(),
        }],
        ..Default::default()
    }))
}

fn request(case: &str, token: &str) -> Request {
    Request::get("/resource?a=1")
        .header("authorization", token)
        .case(case)
}

/// Sends `count` requests, each on a connection of its own, from four threads at once.
fn send_many(h: &Harness, listener: &str, request: &Request, count: usize) -> Vec<Response> {
    std::thread::scope(|scope| {
        let threads: Vec<_> = (0..4)
            .map(|t| {
                scope.spawn(move || {
                    (t..count)
                        .step_by(4)
                        .map(|_| h.send(listener, request))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        threads
            .into_iter()
            .flat_map(|t| t.join().expect("a sending thread"))
            .collect()
    })
}

#[test]
fn requests_with_one_key_reach_the_server_once_across_workers() {
    let h = harness();
    let case = h.case("once");
    h.auth.respond(&case, rich_allow());
    let first = h.send("cached", &request(&case, "Bearer one"));
    assert_eq!(first.status, 200);
    let hits_before = h.plugin_stat("ext_authz.cache_hit");

    let responses = send_many(h, "cached", &request(&case, "Bearer one"), 40);
    assert!(responses.iter().all(|r| r.status == 200), "{responses:?}");
    assert_eq!(h.auth.checks(&case).len(), 1, "one call for 41 requests");
    // The connections went to several workers (Envoy counts each worker's).
    let prefix = "listener.cached.worker_";
    let workers = h
        .envoy
        .stats()
        .into_iter()
        .filter(|(k, v)| k.starts_with(prefix) && k.ends_with(".downstream_cx_total") && *v > 0)
        .count();
    assert!(workers >= 2, "all 41 connections on {workers} worker");
    assert!(h.plugin_stat("ext_authz.cache_hit") >= hits_before + 40);
    let upstream = h.backend.requests(&case);
    assert_eq!(upstream.len(), 41);
    assert!(upstream
        .iter()
        .all(|r| r.header("x-user").as_deref() == Some("alice")));

    // Another credential is another key.
    let other = h.send("cached", &request(&case, "Bearer two"));
    assert_eq!(other.status, 200);
    assert_eq!(h.auth.checks(&case).len(), 2);
    let absent = h.send("cached", &Request::get("/resource?a=1").case(&case));
    assert_eq!(absent.status, 200);
    assert_eq!(
        h.auth.checks(&case).len(),
        3,
        "no authorization is a key too"
    );
}

#[test]
fn a_hit_changes_the_request_and_response_as_its_miss_did() {
    let h = harness();
    let case = h.case("same");
    h.auth.respond(&case, rich_allow());
    let miss = h.send("cached", &request(&case, "Bearer same"));
    let hit = h.send("cached", &request(&case, "Bearer same"));
    assert_eq!(h.auth.checks(&case).len(), 1);
    assert_eq!(miss.header("x-envoy-auth-cache").as_deref(), Some("miss"));
    assert_eq!(hit.header("x-envoy-auth-cache").as_deref(), Some("hit"));
    let without_debug = |r: &Response| {
        let mut r = r.clone();
        r.headers.retain(|(k, _)| k != "x-envoy-auth-cache");
        compare::response(&r)
    };
    assert_eq!(without_debug(&hit), without_debug(&miss));
    assert_eq!(hit.header("x-session").as_deref(), Some("s1"));
    let upstream = compare::requests(&h.backend.requests(&case));
    assert_eq!(upstream.len(), 2);
    assert_eq!(upstream[0], upstream[1], "the upstream cannot tell a hit");
    assert_eq!(upstream[0].1, "/resource?a=1&tenant=acme");
}

#[test]
fn a_denial_is_kept_only_under_denied_ttl() {
    let h = harness();
    for (listener, calls) in [("cached", 3), ("denials_cached", 1)] {
        let case = h.case(&format!("deny-{listener}"));
        h.auth.respond(
            &case,
            AuthAction::respond(deny(
                401,
                vec![set_header("www-authenticate", "Bearer")],
                "no",
            )),
        );
        let responses: Vec<Response> = (0..3)
            .map(|_| h.send(listener, &request(&case, "Bearer bad")))
            .collect();
        assert_eq!(h.auth.checks(&case).len(), calls, "{listener}");
        for response in &responses {
            assert_eq!(response.status, 401);
            assert_eq!(response.body_text(), "no");
            assert_eq!(
                response.header("www-authenticate").as_deref(),
                Some("Bearer")
            );
        }
        assert!(h.backend.requests(&case).is_empty());
    }
    // Off by default.
    let case = h.case("no-debug");
    let response = h.send("denials_cached", &request(&case, "t"));
    assert_eq!(response.status, 200);
    assert_eq!(response.header("x-envoy-auth-cache"), None);
}

/// Sends until `done` says the answer is the one waited for (the entry's second of freshness
/// ran out), at most 30 s.
fn send_until(h: &Harness, request: &Request, done: impl Fn(&Response) -> bool) -> Response {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let response = h.send("stale", request);
        if done(&response) || Instant::now() > deadline {
            return response;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_failing_server_is_stood_in_for_by_an_expired_allow_never_a_denial() {
    let h = harness();
    let case = h.case("stale");
    h.auth.respond(&case, rich_allow());
    let good = request(&case, "Bearer good");
    assert_eq!(h.send("stale", &good).status, 200);
    h.auth.respond(
        &case,
        AuthAction::Fail(tonic::Status::unavailable("down for the test")),
    );
    let served_before = h.plugin_stat("ext_authz.cache_stale_served");
    let stale = send_until(h, &good, |r| {
        r.header("x-envoy-auth-cache").as_deref() != Some("hit")
    });
    assert_eq!(stale.header("x-envoy-auth-cache").as_deref(), Some("stale"));
    assert_eq!(stale.status, 200);
    assert_eq!(stale.header("x-session").as_deref(), Some("s1"));
    let upstream = h.backend.requests(&case);
    let last = upstream.last().expect("the stale allow let it through");
    assert_eq!(last.header("x-user").as_deref(), Some("alice"));
    assert!(h.plugin_stat("ext_authz.cache_stale_served") > served_before);
    // Envoy writes its log in the background.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !h.envoy.log().contains("serving a cached allow") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        h.envoy.log().contains("serving a cached allow"),
        "{}",
        h.envoy.log()
    );

    let denied = h.case("stale-deny");
    h.auth
        .respond(&denied, AuthAction::respond(deny(401, vec![], "no")));
    let bad = request(&denied, "Bearer bad");
    assert_eq!(h.send("stale", &bad).status, 401);
    h.auth.respond(
        &denied,
        AuthAction::Fail(tonic::Status::unavailable("down for the test")),
    );
    let failed = send_until(h, &bad, |r| r.status != 401);
    assert_eq!(
        failed.status, 403,
        "a denial is never stretched: status_on_error"
    );
    assert!(h.backend.requests(&denied).is_empty());
}

#[test]
fn on_a_miss_nothing_reaches_the_upstream_before_the_decision() {
    let h = harness();
    let case = h.case("held");
    let gate = Gate::default();
    h.auth.respond(
        &case,
        AuthAction::Hold(gate.clone(), Box::new(rich_allow())),
    );
    std::thread::scope(|scope| {
        let sent = scope.spawn(|| h.send("cached", &request(&case, "Bearer held").body("payload")));
        let deadline = Instant::now() + Duration::from_secs(30);
        while h.auth.checks(&case).is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(h.auth.checks(&case).len(), 1);
        assert_eq!(h.backend.arrivals(&case), 0, "held while the check is out");
        gate.open();
        assert_eq!(sent.join().expect("the request").status, 200);
    });
    assert_eq!(h.backend.requests(&case).len(), 1);
}

#[test]
fn an_http_service_answer_is_kept_too() {
    let h = harness();
    let case = h.case("http");
    let send = |path: &str| {
        h.send(
            "http",
            &Request::get(path)
                .header("authorization", "Bearer h")
                .header("x-auth-echo-x-user", "alice")
                .case(&case),
        )
    };
    let miss = send("/api/pets/1");
    let hit = send("/api/pets/1");
    assert_eq!((miss.status, hit.status), (200, 200));
    assert_eq!(
        h.http_auth.requests(&case).len(),
        1,
        "one call for two requests"
    );
    assert_eq!(hit.header("x-envoy-auth-cache").as_deref(), Some("hit"));
    let upstream = compare::requests(&h.backend.requests(&case));
    assert_eq!(upstream.len(), 2);
    assert_eq!(upstream[0], upstream[1]);
    // A denial is asked every time by default.
    assert_eq!(send("/api/pets/2").status, 401);
    assert_eq!(send("/api/pets/2").status, 401);
    assert_eq!(h.http_auth.requests(&case).len(), 3);
}
