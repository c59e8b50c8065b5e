//! Native 1.40 and this filter side by side in one Envoy, for the fields that change what a check
//! does rather than what it sends: `shadow_mode`, `filter_enabled` with `deny_at_disable`, the
//! connection manager's header limit after an answer's changes, and `grpc_service.retry_policy`.
//! Each case runs through both listeners of a pair, each pair with a stat prefix of its own, and
//! the client's answer, the upstream's requests, the details, the checks the server got, the
//! counters and the shadow decision must match.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use envoy_types::pb::envoy::service::auth::v3::{CheckRequest, CheckResponse, OkHttpResponse};
use host_tests::auth_server::{allow, allow_with, deny, set_header};
use host_tests::envoy::{
    native_ext_authz, wasm_filter, AUTH_CLUSTER, HANGUP_CLUSTER, HTTP_AUTH_CLUSTER,
};
use host_tests::{compare, AuthAction, Harness, Listener, Request};
use serde_json::{json, Value};

/// The listener pairs: (name, config). Each becomes `wasm_<name>` and `native_<name>`.
fn pairs() -> Vec<(&'static str, Value)> {
    let grpc = json!({"envoy_grpc": {"cluster_name": AUTH_CLUSTER}, "timeout": "2s"});
    let base = |name: &str| json!({"grpc_service": grpc, "stat_prefix": name, "transport_api_version": "V3"});
    let with = |name: &str, extra: Value| {
        let mut config = base(name);
        for (k, v) in extra.as_object().into_iter().flatten() {
            config[k] = v.clone();
        }
        config
    };
    let mut retrying = base("retrying");
    retrying["grpc_service"]["retry_policy"] = json!({
        "num_retries": 2,
        "retry_on": "unavailable,reset",
        "retry_back_off": {"base_interval": "0.01s", "max_interval": "1s"}
    });
    let http_to = |cluster: &str, name: &str, retry_policy: Value| {
        json!({"stat_prefix": name, "http_service": {
            "server_uri": {"uri": "http://authz.local", "cluster": cluster, "timeout": "2s"},
            "authorization_request": {"allowed_headers": {"patterns": [{"exact": "x-case"}, {"prefix": "x-auth-"}]}},
            "retry_policy": retry_policy
        }})
    };
    let http = |name: &str, retry_policy: Value| http_to(HTTP_AUTH_CLUSTER, name, retry_policy);
    let back_off = json!({"base_interval": "0.01s", "max_interval": "1s"});
    let off = json!({"default_value": {"numerator": 0}, "runtime_key": "authz.enabled"});
    vec![
        ("shadow", with("shadow", json!({"shadow_mode": true}))),
        (
            "shadow_fail_open",
            with(
                "shadow_fail_open",
                json!({"shadow_mode": true, "failure_mode_allow": true, "failure_mode_allow_header_add": true}),
            ),
        ),
        ("disabled", with("disabled", json!({"filter_enabled": off}))),
        (
            "enabled",
            with(
                "enabled",
                json!({"filter_enabled": {"default_value": {"numerator": 100}}}),
            ),
        ),
        (
            "deny_at_disable",
            with(
                "deny_at_disable",
                json!({"filter_enabled": off, "deny_at_disable": {"default_value": true, "runtime_key": "authz.deny"}, "status_on_error": {"code": 503}}),
            ),
        ),
        ("limited", base("limited")),
        ("retrying", retrying),
        (
            "http_retrying",
            http(
                "http_retrying",
                json!({"num_retries": 2, "retry_on": "5xx", "retry_back_off": back_off}),
            ),
        ),
        (
            "http_reset",
            http_to(
                HANGUP_CLUSTER,
                "http_reset",
                json!({"num_retries": 2, "retry_on": "reset", "retry_back_off": back_off}),
            ),
        ),
        (
            "http_retry_default",
            http("http_retry_default", json!({"retry_back_off": back_off})),
        ),
    ]
}

fn harness() -> &'static Harness {
    host_tests::shared(|| {
        pairs()
            .into_iter()
            .flat_map(|(name, config)| {
                [
                    Listener::new(&format!("wasm_{name}"), vec![wasm_filter(&config)]),
                    Listener::new(&format!("native_{name}"), vec![native_ext_authz(&config)]),
                ]
            })
            .collect()
    })
}

const COUNTERS: &[&str] = &[
    "ok",
    "failure_mode_allowed",
    "denied",
    "error",
    "disabled",
    "invalid",
    "shadow_denied",
    "shadow_error",
];

/// What one filter did with one request.
#[derive(Debug, PartialEq)]
struct Seen {
    response: compare::ResponseView,
    upstream: Vec<compare::RequestView>,
    details: String,
    checks: usize,
    /// Counter changes, by name, those that changed only.
    counted: Vec<(&'static str, u64)>,
    shadow: Option<Value>,
}

fn counters(h: &Harness, listener: &str, prefix: &str) -> Vec<u64> {
    let stats = h.envoy.stats();
    COUNTERS
        .iter()
        .map(|name| {
            let name = if listener.starts_with("wasm_") {
                format!("wasmcustom.ext_authz.{prefix}.{name}")
            } else {
                format!("http.{listener}.ext_authz.{prefix}.{name}")
            };
            stats.get(&name).copied().unwrap_or(0)
        })
        .collect()
}

/// Runs `request` through both listeners of `pair`, the server acting as `script` (made anew for
/// each listener, so a per-call count starts over), and asserts both saw the same.
fn same(name: &str, pair: &str, request: Request, script: impl Fn() -> Script) -> Seen {
    let h = harness();
    let mut seen = Vec::new();
    for listener in [format!("native_{pair}"), format!("wasm_{pair}")] {
        let case = h.case(&format!("{name}-{listener}"));
        let script = script();
        h.auth.script(&case, move |request| script(request));
        let before = counters(h, &listener, pair);
        let response = h.send(&listener, &request.clone().case(&case));
        let line = h
            .access_log_lines(&case, 1)
            .pop()
            .unwrap_or_else(|| panic!("{name}: no access log line for {listener}"));
        let after = counters(h, &listener, pair);
        let counted = COUNTERS
            .iter()
            .zip(after.iter().zip(&before))
            .filter(|(_, (a, b))| a != b)
            .map(|(name, (a, b))| (*name, a - b))
            .collect();
        seen.push(Seen {
            response: compare::response(&response),
            upstream: compare::requests(&h.backend.requests(&case)),
            details: line.details,
            checks: h.auth.checks(&case).len() + h.http_auth.requests(&case).len(),
            counted,
            shadow: line
                .shadow
                .map(|s| serde_json::from_str(&s).unwrap_or(Value::String(s))),
        });
    }
    let wasm = seen.pop().expect("wasm run");
    let native = seen.pop().expect("native run");
    assert_eq!(
        wasm,
        native,
        "{name}: the filters differ:\n{}",
        compare::difference(&wasm, &native)
    );
    wasm
}

/// How the server answers one listener's calls of a case.
type Script = Box<dyn Fn(&CheckRequest) -> AuthAction + Send + Sync>;

fn answering(answer: CheckResponse) -> impl Fn() -> Script {
    move || {
        let answer = answer.clone();
        Box::new(move |_| AuthAction::respond(answer.clone()))
    }
}

/// Fails the first `failures` calls with `failure`, then allows.
fn failing_first(failures: usize, failure: AuthAction) -> impl Fn() -> Script {
    move || {
        let calls = Arc::new(AtomicUsize::new(0));
        let failure = failure.clone();
        Box::new(move |_| {
            if calls.fetch_add(1, Ordering::SeqCst) < failures {
                failure.clone()
            } else {
                AuthAction::respond(allow())
            }
        })
    }
}

fn unavailable() -> AuthAction {
    AuthAction::Fail(tonic::Status::unavailable("try again"))
}

#[test]
fn shadow_mode_enforces_nothing_and_records_each_decision_as_native() {
    let ok = allow_with(OkHttpResponse {
        headers: vec![set_header("x-user", "alice")],
        ..Default::default()
    });
    let allowed = same("shadow-allow", "shadow", Request::get("/s"), answering(ok));
    assert_eq!(allowed.response.0, 200);
    let upstream_headers = &allowed.upstream[0].2;
    assert!(upstream_headers.contains(&("x-user".into(), b"alice".to_vec())));
    assert_eq!(
        allowed.shadow,
        Some(json!({"check_result": "OK", "status_code": 200}))
    );

    let no = deny(401, vec![set_header("x-deny", "no")], "go away");
    let denied = same("shadow-deny", "shadow", Request::get("/s"), answering(no));
    assert_eq!(denied.response.0, 200);
    assert_eq!(denied.upstream.len(), 1);
    assert_eq!(denied.counted, [("denied", 1), ("shadow_denied", 1)]);
    assert_eq!(
        denied.shadow,
        Some(json!({"check_result": "DENIED", "status_code": 401,
            "response_headers": [{"key": "x-deny", "value": "no"}]}))
    );

    shadow_failure_goes_on_recorded("shadow-error", "shadow");
}

/// A failing server under `listener`'s shadow mode, through both filters: the request goes on,
/// counted `error` and `shadow_error`, recorded as an ERROR with `status_on_error`.
fn shadow_failure_goes_on_recorded(case: &str, listener: &str) {
    let failed = same(
        case,
        listener,
        Request::get("/s"),
        failing_first(9, unavailable()),
    );
    assert_eq!(failed.response.0, 200);
    assert_eq!(failed.counted, [("error", 1), ("shadow_error", 1)]);
    assert_eq!(
        failed.shadow,
        Some(json!({"check_result": "ERROR", "status_code": 403}))
    );
}

#[test]
fn filter_enabled_at_0_and_100_percent_and_deny_at_disable_as_native() {
    let off = same("off", "disabled", Request::get("/f"), answering(allow()));
    assert_eq!((off.response.0, off.checks), (200, 0));
    assert_eq!(off.counted, [("disabled", 1)]);

    let no = deny(401, vec![], "no");
    let on = same("on", "enabled", Request::get("/f"), answering(no));
    assert_eq!((on.response.0, on.checks), (401, 1));

    let denied = same(
        "deny-at-disable",
        "deny_at_disable",
        Request::get("/f"),
        answering(allow()),
    );
    assert_eq!((denied.response.0, denied.checks), (503, 0));
    assert!(denied.upstream.is_empty());
}

#[test]
fn changes_past_the_header_limit_get_500_as_native() {
    let big = allow_with(OkHttpResponse {
        headers: vec![set_header("x-big", &"a".repeat(70 * 1024))],
        ..Default::default()
    });
    let seen = same(
        "header-limit",
        "limited",
        Request::get("/h"),
        answering(big),
    );
    assert_eq!(seen.response.0, 500);
    assert_eq!(seen.details, "ext_authz_invalid");
    assert!(seen.upstream.is_empty());
}

#[test]
fn grpc_retries_are_envoys_own() {
    let once = same(
        "retry-once",
        "retrying",
        Request::get("/r"),
        failing_first(1, unavailable()),
    );
    assert_eq!((once.response.0, once.checks), (200, 2));

    let always = same(
        "retry-always",
        "retrying",
        Request::get("/r"),
        failing_first(99, unavailable()),
    );
    assert_eq!((always.response.0, always.checks), (403, 3));

    let internal = AuthAction::Fail(tonic::Status::internal("broken"));
    let not_retried = same(
        "retry-internal",
        "retrying",
        Request::get("/r"),
        failing_first(1, internal),
    );
    assert_eq!((not_retried.response.0, not_retried.checks), (403, 1));

    let reset = same(
        "retry-reset",
        "retrying",
        Request::get("/r"),
        failing_first(1, AuthAction::Reset),
    );
    assert_eq!(reset.checks, 2, "a reset is retried under `reset`");
}

#[test]
fn http_retries_as_native() {
    let allowed = || Request::get("/api/pets/1");
    let once = same(
        "http-retry-once",
        "http_retrying",
        allowed().header("x-auth-fail-first", "1"),
        answering(allow()),
    );
    assert_eq!((once.response.0, once.checks), (200, 2));
    let always = same(
        "http-retry-always",
        "http_retrying",
        allowed().header("x-auth-fail-first", "99"),
        answering(allow()),
    );
    assert_eq!((always.response.0, always.checks), (403, 3));
    let denied = same(
        "http-retry-denied",
        "http_retrying",
        Request::get("/other"),
        answering(allow()),
    );
    assert_eq!((denied.response.0, denied.checks), (401, 1));
    // Without retry_on nothing is retried, as for gRPC.
    let unset = same(
        "http-retry-unset",
        "http_retry_default",
        allowed().header("x-auth-fail-first", "1"),
        answering(allow()),
    );
    assert_eq!((unset.response.0, unset.checks), (403, 1));
}

#[test]
fn shadow_mode_under_failure_mode_allow_as_native() {
    // Recorded as a failure, not let through by the failure mode: no failure_mode_allowed, no
    // x-envoy-auth-failure-mode-allowed upstream.
    shadow_failure_goes_on_recorded("shadow-fail-open", "shadow_fail_open");
}

/// A server that closes every connection at once, under `retry_on: reset`: both fail closed after
/// two retries, each waiting its back-off and going out on a new connection.
#[test]
fn http_retries_on_a_reset_fail_closed_as_native() {
    let h = harness();
    let connections = || {
        h.envoy
            .stat(&format!("cluster.{HANGUP_CLUSTER}.upstream_cx_total"))
    };
    let retries = || h.plugin_stat("ext_authz.http_reset.retry");
    let mut made = Vec::new();
    for listener in ["native_http_reset", "wasm_http_reset"] {
        let case = h.case(listener);
        let before = (connections(), retries());
        let response = h.send(listener, &Request::get("/api/pets/1").case(&case));
        assert_eq!(response.status, 403, "{listener}");
        assert!(h.backend.requests(&case).is_empty(), "{listener}");
        made.push((connections() - before.0, retries() - before.1));
    }
    assert_eq!(
        made[0].0, 3,
        "native: the first try and two retries, each its own connection"
    );
    // Two retries, each after its back-off (woken by the plugin's tick), so each goes out once
    // the closed connection is gone: a connection of its own, as native's.
    assert_eq!(made[1].1, 2, "this filter: two retries");
    assert_eq!(
        made[1].0, 3,
        "this filter: the first try and two retries, each its own connection"
    );
}
