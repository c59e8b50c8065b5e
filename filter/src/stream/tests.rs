//! The stream's life on the test host, path by path, in the order the README tells it: checked and
//! held, allowed, denied, failed, timed out, cancelled, let through by the failure mode, disabled,
//! with a body, and as a chain of steps.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(deprecated)]

use std::rc::Rc;
use std::time::Duration;

use envoy_types::pb::envoy::config::core::v3::{HeaderValue, HeaderValueOption};
use envoy_types::pb::envoy::r#type::v3::HttpStatus;
use envoy_types::pb::envoy::service::auth::v3::check_response::HttpResponse;
use envoy_types::pb::envoy::service::auth::v3::{
    CheckRequest, CheckResponse, DeniedHttpResponse, OkHttpResponse,
};
use envoy_types::pb::google::protobuf::{value::Kind, Struct, Value};
use envoy_types::pb::google::rpc::Status;
use prost::Message;

use super::ExtAuthz;
use crate::host::{Action, Host, LogLevel};
use crate::mock_host::{MockHost, SentCall};
use crate::plugin::Plugin;

const GRPC: &str = r#"{"grpc_service": {"envoy_grpc": {"cluster_name": "ext_authz"}}}"#;
/// gRPC UNAVAILABLE, as Envoy reports an unreachable server.
const UNAVAILABLE: u32 = 14;

fn plugin(config: &str, host: &MockHost) -> Rc<Plugin> {
    match Plugin::configure(host, config.as_bytes()) {
        Ok(plugin) => Rc::new(plugin),
        Err(why) => panic!("{why}"),
    }
}

fn filter(config: &str, host: &MockHost) -> ExtAuthz<MockHost> {
    ExtAuthz::new(7, host.clone(), plugin(config, host))
}

/// `config` with more top-level fields.
fn with(config: &str, extra: &str) -> String {
    let trimmed = config.trim_end().strip_suffix('}').unwrap();
    format!("{trimmed}, {extra}}}")
}

pub(super) fn header(key: &str, value: &str) -> HeaderValueOption {
    HeaderValueOption {
        header: Some(HeaderValue {
            key: key.into(),
            value: value.into(),
            ..Default::default()
        }),
        append_action: 2,
        ..Default::default()
    }
}

pub(super) fn allow(ok: OkHttpResponse) -> Vec<u8> {
    CheckResponse {
        status: Some(Status::default()),
        http_response: Some(HttpResponse::OkResponse(ok)),
        ..Default::default()
    }
    .encode_to_vec()
}

fn deny(status: i32, body: &str) -> Vec<u8> {
    denial(status, vec![header("x-why", "no")], body)
}

/// A denial's CheckResponse, with PERMISSION_DENIED.
pub(super) fn denial(status: i32, headers: Vec<HeaderValueOption>, body: &str) -> Vec<u8> {
    CheckResponse {
        status: Some(Status {
            code: 7,
            ..Default::default()
        }),
        http_response: Some(HttpResponse::DeniedResponse(DeniedHttpResponse {
            status: Some(HttpStatus { code: status }),
            headers,
            body: body.into(),
        })),
        ..Default::default()
    }
    .encode_to_vec()
}

fn with_metadata(mut response: CheckResponse, key: &str, value: &str) -> Vec<u8> {
    let value = Value {
        kind: Some(Kind::StringValue(value.into())),
    };
    response.dynamic_metadata = Some(Struct {
        fields: [(key.to_owned(), value)].into_iter().collect(),
    });
    response.encode_to_vec()
}

/// Answers the pending gRPC call with `message`.
fn answer(stream: &mut ExtAuthz<MockHost>, host: &MockHost, message: Vec<u8>) {
    let token = host.last_call().token();
    let size = message.len();
    host.answer_grpc(message);
    stream.on_grpc_call_response(token, 0, size);
}

fn fail(stream: &mut ExtAuthz<MockHost>, host: &MockHost, status: u32) {
    stream.on_grpc_call_response(host.last_call().token(), status, 0);
}

fn check_request(call: &SentCall) -> CheckRequest {
    match call {
        SentCall::Grpc { message, .. } => CheckRequest::decode(message.as_slice()).unwrap(),
        other => panic!("not a gRPC call: {other:?}"),
    }
}

fn request_headers(call: &SentCall) -> std::collections::HashMap<String, String> {
    let request = check_request(call);
    request
        .attributes
        .unwrap()
        .request
        .unwrap()
        .http
        .unwrap()
        .headers
}

#[test]
fn a_request_is_held_until_its_answer_allows_it() {
    let host = MockHost::new().with_header("x-user", "alice");
    let mut stream = filter(GRPC, &host);
    assert_eq!(stream.on_http_request_headers(true), Action::Pause);
    assert_eq!(host.calls().len(), 1);
    assert_eq!(request_headers(&host.last_call())["x-user"], "alice");
    // Nothing moves while the check is out.
    assert_eq!(stream.on_http_request_body(10, true), Action::Pause);
    assert_eq!(stream.on_http_request_trailers(), Action::Pause);
    assert_eq!(host.resumed(), 0);

    host.advance(Duration::from_millis(12));
    answer(
        &mut stream,
        &host,
        allow(OkHttpResponse {
            headers: vec![header("x-checked", "yes")],
            response_headers_to_add: vec![header("x-client", "seen")],
            ..Default::default()
        }),
    );
    assert_eq!(host.resumed(), 1);
    assert_eq!(host.request_header("x-checked"), vec![b"yes".to_vec()]);
    assert!(host.replies().is_empty());
    // The answer's response headers wait for the response.
    assert!(host.response_header("x-client").is_empty());
    assert_eq!(stream.on_http_response_headers(), Action::Continue);
    assert_eq!(host.response_header("x-client"), vec![b"seen".to_vec()]);
    // Once allowed, everything passes.
    assert_eq!(stream.on_http_request_body(10, true), Action::Continue);
    assert_eq!(host.counter("ok"), 1);
    assert_eq!(host.histogram("check_latency_ms"), vec![12]);
}

#[test]
fn a_denial_answers_the_client_and_nothing_goes_on() {
    let host = MockHost::new();
    let mut stream = filter(GRPC, &host);
    stream.on_http_request_headers(true);
    answer(&mut stream, &host, deny(401, "who are you"));
    let replies = host.replies();
    assert_eq!(replies.len(), 1);
    assert_eq!(replies[0].status, 401);
    assert_eq!(replies[0].body, b"who are you");
    assert_eq!(replies[0].details, "ext_authz_denied");
    assert_eq!(replies[0].headers, vec![("x-why".into(), b"no".to_vec())]);
    assert_eq!(host.resumed(), 0);
    assert_eq!(host.counters(), [("ext_authz.denied".into(), 1)].into());
}

#[test]
fn max_denied_response_body_bytes_cuts_a_denial_body() {
    let host = MockHost::new();
    let config = with(GRPC, r#""max_denied_response_body_bytes": 3"#);
    let mut stream = filter(&config, &host);
    stream.on_http_request_headers(true);
    answer(&mut stream, &host, deny(403, "forbidden"));
    assert_eq!(host.replies()[0].body, b"for");
}

#[test]
fn a_failed_check_fails_closed_with_status_on_error() {
    for status in [UNAVAILABLE, 1, 4, 13] {
        let host = MockHost::new();
        let config = with(GRPC, r#""status_on_error": {"code": 503}"#);
        let mut stream = filter(&config, &host);
        stream.on_http_request_headers(true);
        host.set_grpc_status_message("upstream request timeout");
        fail(&mut stream, &host, status);
        let replies = host.replies();
        assert_eq!(
            (replies[0].status, replies[0].details.as_str()),
            (503, "ext_authz_error")
        );
        assert!(replies[0].body.is_empty());
        assert_eq!(host.resumed(), 0);
        assert_eq!(host.counters(), [("ext_authz.error".into(), 1)].into());
        assert!(host
            .logs()
            .iter()
            .any(|(level, line)| *level == LogLevel::Warn
                && line.contains("upstream request timeout")));
    }
}

#[test]
fn the_call_carries_the_timeout_and_an_unknown_cluster_is_a_failed_check() {
    let host = MockHost::new();
    let config =
        r#"{"grpc_service": {"envoy_grpc": {"cluster_name": "ext_authz"}, "timeout": "0.25s"}}"#;
    filter(config, &host).on_http_request_headers(true);
    match host.last_call() {
        SentCall::Grpc { timeout, .. } => assert_eq!(timeout, Duration::from_millis(250)),
        other => panic!("{other:?}"),
    }

    let host = MockHost::new().failing("dispatch_grpc_call", 2);
    let mut stream = filter(GRPC, &host);
    assert_eq!(stream.on_http_request_headers(true), Action::Pause);
    assert_eq!(host.replies()[0].status, 403);
    assert_eq!(host.counters(), [("ext_authz.error".into(), 1)].into());
}

#[test]
fn an_answer_that_cannot_be_read_is_an_error_and_invalid() {
    let host = MockHost::new();
    let mut stream = filter(GRPC, &host);
    stream.on_http_request_headers(true);
    answer(&mut stream, &host, vec![0xff, 0xff, 0xff]);
    assert_eq!(host.replies()[0].status, 403);
    assert_eq!(
        host.counters(),
        [
            ("ext_authz.error".into(), 1),
            ("ext_authz.invalid".into(), 1)
        ]
        .into()
    );
}

#[test]
fn a_host_that_cannot_hand_over_the_request_fails_the_check_but_not_as_invalid() {
    let host = MockHost::new().failing("header_map", 3);
    let mut stream = filter(GRPC, &host);
    assert_eq!(stream.on_http_request_headers(true), Action::Pause);
    assert!(host.calls().is_empty());
    assert_eq!(host.replies()[0].status, 403);
    assert_eq!(host.counters(), [("ext_authz.error".into(), 1)].into());
    assert!(host
        .logs()
        .iter()
        .any(|(_, line)| line.contains("cannot read the request headers (host status 3)")));
}

#[test]
fn an_answer_asking_for_an_invalid_header_is_refused_whatever_the_failure_mode() {
    let host = MockHost::new();
    let config = with(GRPC, r#""failure_mode_allow": true"#);
    let mut stream = filter(&config, &host);
    stream.on_http_request_headers(true);
    answer(
        &mut stream,
        &host,
        allow(OkHttpResponse {
            headers: vec![header("x-bad", "a\r\nb")],
            ..Default::default()
        }),
    );
    let replies = host.replies();
    assert_eq!(replies[0].status, 503);
    assert_eq!(replies[0].body, b"invalid header value for: x-bad");
    assert!(host.request_header("x-bad").is_empty());
    assert_eq!(host.resumed(), 0);
    assert_eq!(host.counters(), [("ext_authz.invalid".into(), 1)].into());
}

#[test]
fn the_client_going_away_cancels_the_call_and_a_late_answer_is_dropped() {
    let host = MockHost::new();
    let mut stream = filter(GRPC, &host);
    stream.on_http_request_headers(true);
    let token = host.last_call().token();
    stream.on_done();
    assert_eq!(host.cancelled(), vec![token]);
    answer(&mut stream, &host, allow(OkHttpResponse::default()));
    assert_eq!((host.resumed(), host.replies().len()), (0, 0));
    assert!(host.counters().is_empty(), "{:?}", host.counters());
}

#[test]
fn an_answer_to_another_call_is_not_this_requests() {
    let host = MockHost::new();
    let mut stream = filter(GRPC, &host);
    stream.on_http_request_headers(true);
    let token = host.last_call().token();
    host.answer_grpc(allow(OkHttpResponse::default()));
    stream.on_grpc_call_response(token + 100, 0, 2);
    assert_eq!(host.resumed(), 0);
    stream.on_grpc_call_response(token, 0, 2);
    assert_eq!(host.resumed(), 1);
}

#[test]
fn failure_mode_allow_lets_a_failed_check_through_marked() {
    let host = MockHost::new();
    let config = with(
        GRPC,
        r#""failure_mode_allow": true, "failure_mode_allow_header_add": true"#,
    );
    let mut stream = filter(&config, &host);
    stream.on_http_request_headers(true);
    fail(&mut stream, &host, UNAVAILABLE);
    assert_eq!(host.resumed(), 1);
    assert!(host.replies().is_empty());
    assert_eq!(
        host.request_header("x-envoy-auth-failure-mode-allowed"),
        vec![b"true".to_vec()]
    );
    assert_eq!(
        host.counters(),
        [
            ("ext_authz.error".into(), 1),
            ("ext_authz.failure_mode_allowed".into(), 1)
        ]
        .into()
    );
    // A denial is never let through by the failure mode.
    let host = MockHost::new();
    let mut stream = filter(&config, &host);
    stream.on_http_request_headers(true);
    answer(&mut stream, &host, deny(403, ""));
    assert_eq!((host.resumed(), host.replies().len()), (0, 1));
}

#[test]
fn a_disabled_route_is_not_checked() {
    let config = with(
        GRPC,
        r#""routes": [{"match": {"path": "/healthz"}, "disabled": true}]"#,
    );
    let host = MockHost::new().with_header(":path", "/healthz");
    let mut stream = filter(&config, &host);
    assert_eq!(stream.on_http_request_headers(true), Action::Continue);
    assert!(host.calls().is_empty());
    assert_eq!(host.counters(), [("ext_authz.disabled".into(), 1)].into());
    // Another path of the same plugin is checked.
    let host = MockHost::new().with_header(":path", "/api");
    assert_eq!(
        filter(&config, &host).on_http_request_headers(true),
        Action::Pause
    );
}

const WITH_BODY: &str = r#"{"grpc_service": {"envoy_grpc": {"cluster_name": "ext_authz"}},
    "with_request_body": {"max_request_bytes": 8, "allow_partial_message": false}}"#;

#[test]
fn a_body_is_buffered_then_checked_with_the_request() {
    let host = MockHost::new()
        .with_header(":method", "POST")
        .with_body("hello");
    let mut stream = filter(WITH_BODY, &host);
    assert_eq!(stream.on_http_request_headers(false), Action::Pause);
    assert!(host.calls().is_empty(), "the check waits for the body");
    assert_eq!(stream.on_http_request_body(3, false), Action::Pause);
    assert!(host.calls().is_empty());
    assert_eq!(stream.on_http_request_body(5, true), Action::Pause);
    let request = check_request(&host.last_call());
    let http = request.attributes.unwrap().request.unwrap().http.unwrap();
    assert_eq!((http.body.as_str(), http.size), ("hello", 5));
    assert_eq!(http.headers["x-envoy-auth-partial-body"], "false");
    answer(&mut stream, &host, allow(OkHttpResponse::default()));
    assert_eq!(host.resumed(), 1);
}

#[test]
fn a_body_over_the_limit_gets_413_unless_partial_messages_are_allowed() {
    let host = MockHost::new().with_body("0123456789");
    let mut stream = filter(WITH_BODY, &host);
    stream.on_http_request_headers(false);
    assert_eq!(stream.on_http_request_body(10, false), Action::Pause);
    let replies = host.replies();
    assert_eq!(
        (replies[0].status, replies[0].details.as_str()),
        (413, "request_payload_too_large")
    );
    assert!(host.calls().is_empty());

    let host = MockHost::new().with_body("0123456789");
    let partial = WITH_BODY.replace(
        "\"allow_partial_message\": false",
        "\"allow_partial_message\": true",
    );
    let mut stream = filter(&partial, &host);
    stream.on_http_request_headers(false);
    // The first max_request_bytes are enough: the check goes before the end of the body.
    assert_eq!(stream.on_http_request_body(10, false), Action::Pause);
    let http = check_request(&host.last_call())
        .attributes
        .unwrap()
        .request
        .unwrap()
        .http
        .unwrap();
    assert_eq!((http.body.as_str(), http.size), ("01234567", 10));
    assert_eq!(http.headers["x-envoy-auth-partial-body"], "true");
}

#[test]
fn trailers_end_the_body_and_an_empty_one_sends_no_partial_body_header() {
    let host = MockHost::new();
    let mut stream = filter(WITH_BODY, &host);
    stream.on_http_request_headers(false);
    assert_eq!(stream.on_http_request_trailers(), Action::Pause);
    let headers = request_headers(&host.last_call());
    assert!(!headers.contains_key("x-envoy-auth-partial-body"));
}

#[test]
fn a_body_that_never_comes_fails_the_check_once_the_watch_gives_up() {
    let host = MockHost::new();
    let plugin = plugin(WITH_BODY, &host);
    let mut stream = ExtAuthz::new(7, host.clone(), Rc::clone(&plugin));
    stream.on_http_request_headers(false);
    let now = host.now().unwrap();
    assert!(plugin.overdue_body_waits(&host, now).is_empty());
    // The root's tick: the watch names the request, which ends itself.
    host.advance(crate::body_watch::GRACE);
    assert_eq!(
        plugin.overdue_body_waits(&host, host.now().unwrap()),
        vec![7]
    );
    stream.on_body_timeout();
    assert_eq!(host.replies()[0].status, 403);
    assert!(host
        .logs()
        .iter()
        .any(|(level, line)| *level == LogLevel::Error
            && line.contains("allow_on_headers_stop_iteration")));
    // A body callback after that finds the request decided.
    assert_eq!(stream.on_http_request_body(4, true), Action::Continue);
    assert!(host.calls().is_empty());
}

#[test]
fn an_upgrade_is_checked_at_its_headers() {
    let host = MockHost::new()
        .with_header("connection", "Upgrade")
        .with_header("upgrade", "websocket");
    let mut stream = filter(WITH_BODY, &host);
    assert_eq!(stream.on_http_request_headers(false), Action::Pause);
    assert_eq!(host.calls().len(), 1);
}

#[test]
fn dynamic_metadata_is_handed_on_as_filter_state() {
    let host = MockHost::new();
    let mut stream = filter(GRPC, &host);
    stream.on_http_request_headers(true);
    host.advance(Duration::from_millis(5));
    let response = CheckResponse {
        status: Some(Status::default()),
        ..Default::default()
    };
    answer(&mut stream, &host, with_metadata(response, "user", "alice"));
    let state = host.filter_state("ext_authz.dynamic_metadata").unwrap();
    let json: serde_json::Value = serde_json::from_slice(&state).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"user": "alice", "ext_authz_duration": 5})
    );
}

const CHAIN: &str = r#"{"steps": [
    {"required_header": {"name": "x-api-key"}},
    {"grpc_service": {"envoy_grpc": {"cluster_name": "first"}, "timeout": "0.3s"}},
    {"http_service": {"server_uri": {"uri": "http://h", "cluster": "second", "timeout": "0.3s"}}}
]}"#;

#[test]
fn a_chain_runs_its_steps_in_order_and_counts_once() {
    let host = MockHost::new().with_header("x-api-key", "k");
    let mut stream = filter(CHAIN, &host);
    assert_eq!(stream.on_http_request_headers(true), Action::Pause);
    // The local step allowed at once; the gRPC step is out.
    assert!(matches!(host.last_call(), SentCall::Grpc { .. }));
    let response = CheckResponse {
        status: Some(Status::default()),
        http_response: Some(HttpResponse::OkResponse(OkHttpResponse {
            headers: vec![header("x-from-first", "1")],
            ..Default::default()
        })),
        ..Default::default()
    };
    answer(&mut stream, &host, with_metadata(response, "tier", "gold"));
    // The HTTP step sees what the first step set.
    let SentCall::Http { cluster, token, .. } = host.last_call() else {
        panic!("the second step is HTTP");
    };
    assert_eq!(cluster, "second");
    assert_eq!(host.resumed(), 0);
    host.answer_http(&[(":status", "200")], b"");
    stream.on_http_call_response(token, 0);
    assert_eq!(host.resumed(), 1);
    assert_eq!(host.request_header("x-from-first"), vec![b"1".to_vec()]);
    assert_eq!(host.counters(), [("ext_authz.ok".into(), 1)].into());
    assert_eq!(
        host.histogram("check_latency_ms").len(),
        2,
        "one sample per call"
    );
}

#[test]
fn a_chain_passes_a_steps_metadata_to_the_next_grpc_step() {
    let config = r#"{"steps": [
        {"grpc_service": {"envoy_grpc": {"cluster_name": "first"}}},
        {"grpc_service": {"envoy_grpc": {"cluster_name": "second"}}, "config": {"mode": "strict"}}
    ]}"#;
    let host = MockHost::new();
    let mut stream = filter(config, &host);
    stream.on_http_request_headers(true);
    let ok = CheckResponse {
        status: Some(Status::default()),
        ..Default::default()
    };
    answer(&mut stream, &host, with_metadata(ok, "user", "bob"));
    let request = check_request(&host.last_call());
    let metadata = request
        .attributes
        .unwrap()
        .metadata_context
        .unwrap()
        .filter_metadata;
    let passed = &metadata["solo.auth.passthrough"].fields["user"];
    assert_eq!(passed.kind, Some(Kind::StringValue("bob".into())));
    assert!(metadata.contains_key("solo.auth.passthrough.config"));
}

#[test]
fn a_local_step_that_refuses_ends_the_chain_before_any_call() {
    let host = MockHost::new();
    let mut stream = filter(CHAIN, &host);
    assert_eq!(stream.on_http_request_headers(true), Action::Pause);
    assert!(host.calls().is_empty());
    assert_eq!(host.replies()[0].status, 403);
    assert_eq!(host.counters(), [("ext_authz.denied".into(), 1)].into());
}

#[test]
fn a_failure_in_the_middle_of_a_chain_ends_it_or_fails_open_and_goes_on() {
    let host = MockHost::new().with_header("x-api-key", "k");
    let mut stream = filter(CHAIN, &host);
    stream.on_http_request_headers(true);
    fail(&mut stream, &host, UNAVAILABLE);
    assert_eq!(host.calls().len(), 1, "the HTTP step never runs");
    assert_eq!(host.replies()[0].status, 403);

    let open = CHAIN.replacen('{', r#"{"failure_mode_allow": true, "#, 1);
    let host = MockHost::new().with_header("x-api-key", "k");
    let mut stream = filter(&open, &host);
    stream.on_http_request_headers(true);
    fail(&mut stream, &host, UNAVAILABLE);
    let SentCall::Http { token, .. } = host.last_call() else {
        panic!("the chain goes on to the HTTP step");
    };
    host.answer_http(&[(":status", "200")], b"");
    stream.on_http_call_response(token, 0);
    assert_eq!(host.resumed(), 1);
    // Counted once, as the failure it was; not also as ok.
    assert_eq!(
        host.counters(),
        [
            ("ext_authz.error".into(), 1),
            ("ext_authz.failure_mode_allowed".into(), 1)
        ]
        .into()
    );
}

#[test]
fn the_chains_deadline_bounds_each_step() {
    let config = r#"{"timeout": "0.5s", "steps": [
        {"grpc_service": {"envoy_grpc": {"cluster_name": "first"}, "timeout": "0.4s"}},
        {"grpc_service": {"envoy_grpc": {"cluster_name": "second"}, "timeout": "0.4s"}}
    ]}"#;
    let host = MockHost::new();
    let mut stream = filter(config, &host);
    stream.on_http_request_headers(true);
    host.advance(Duration::from_millis(350));
    answer(&mut stream, &host, allow(OkHttpResponse::default()));
    match host.last_call() {
        SentCall::Grpc { timeout, .. } => assert_eq!(timeout, Duration::from_millis(150)),
        other => panic!("{other:?}"),
    }
    // Past the deadline, the next step is not sent at all.
    let host = MockHost::new();
    let mut stream = filter(config, &host);
    stream.on_http_request_headers(true);
    host.advance(Duration::from_millis(500));
    answer(&mut stream, &host, allow(OkHttpResponse::default()));
    assert_eq!(host.calls().len(), 1);
    assert_eq!(host.replies()[0].status, 403);
    assert_eq!(host.counters(), [("ext_authz.error".into(), 1)].into());
}

#[test]
fn an_http_answer_is_reviewed_like_a_grpc_one() {
    let config = r#"{"http_service": {"server_uri": {"uri": "http://h", "cluster": "auth", "timeout": "1s"},
        "authorization_response": {"allowed_upstream_headers": {"patterns": [{"exact": "x-user"}, {"exact": ":path"}]}}},
        "decoder_header_mutation_rules": {"disallow_expression": {"regex": "x-user"}, "disallow_is_error": true}}"#;
    let host = MockHost::new();
    let mut stream = filter(config, &host);
    stream.on_http_request_headers(true);
    let SentCall::Http { token, .. } = host.last_call() else {
        panic!("an HTTP call");
    };
    host.answer_http(&[(":status", "200"), ("x-user", "mallory")], b"");
    stream.on_http_call_response(token, 0);
    assert_eq!(host.replies()[0].status, 500);
    assert_eq!(host.replies()[0].details, "ext_authz_invalid");
    assert!(host.request_header("x-user").is_empty());
    assert_eq!(host.counters(), [("ext_authz.invalid".into(), 1)].into());
}

#[test]
fn a_failed_http_call_is_a_failed_check() {
    let config = r#"{"http_service": {"server_uri": {"uri": "http://h", "cluster": "auth", "timeout": "1s"}}}"#;
    let host = MockHost::new();
    let mut stream = filter(config, &host);
    stream.on_http_request_headers(true);
    let token = host.last_call().token();
    host.answer_http(&[], b"");
    stream.on_http_call_response(token, 0);
    assert_eq!(host.replies()[0].status, 403);
    assert_eq!(host.counters(), [("ext_authz.error".into(), 1)].into());
    // The ABI cannot cancel an HTTP call: a client that goes away leaves it to run out.
    let host = MockHost::new();
    let mut stream = filter(config, &host);
    stream.on_http_request_headers(true);
    stream.on_done();
    assert!(host.cancelled().is_empty());
}
