//! The stream's rollout and limit paths on the test host: `shadow_mode`, `filter_enabled` with
//! `deny_at_disable`, the header limit after an allowing answer's changes, and HTTP retries with
//! their back-off.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::rc::Rc;
use std::time::Duration;

use envoy_types::pb::envoy::config::core::v3::{HeaderValue, HeaderValueOption};
use envoy_types::pb::envoy::service::auth::v3::OkHttpResponse;

use super::shadow::SHADOW_DECISION_PROPERTY;
use super::{tests, ExtAuthz};
use crate::host::{Action, Host};
use crate::mock_host::MockHost;
use crate::plugin::Plugin;

const SERVICE: &str = r#""grpc_service": {"envoy_grpc": {"cluster_name": "ext_authz"}}"#;

fn plugin(extra: &str, host: &MockHost) -> Rc<Plugin> {
    let config = format!("{{{SERVICE}, {extra}}}");
    Rc::new(Plugin::configure(host, config.as_bytes()).unwrap())
}

fn header(key: &str, value: &str) -> HeaderValueOption {
    HeaderValueOption {
        header: Some(HeaderValue {
            key: key.into(),
            value: value.into(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn allow(headers: Vec<HeaderValueOption>) -> Vec<u8> {
    tests::allow(OkHttpResponse {
        headers,
        ..Default::default()
    })
}

fn deny() -> Vec<u8> {
    tests::denial(401, vec![header("x-deny", "no")], "go away")
}

fn answer(stream: &mut ExtAuthz<MockHost>, host: &MockHost, message: Vec<u8>) {
    let token = host.last_call().token();
    let size = message.len();
    host.answer_grpc(message);
    stream.on_grpc_call_response(token, 0, size);
}

fn shadow_decision(host: &MockHost) -> String {
    String::from_utf8(host.filter_state(SHADOW_DECISION_PROPERTY).unwrap()).unwrap()
}

#[test]
fn shadow_mode_counts_and_records_a_denial_and_lets_the_request_go_on() {
    let host = MockHost::new();
    let mut stream = ExtAuthz::new(7, host.clone(), plugin(r#""shadow_mode": true"#, &host));
    assert_eq!(stream.on_http_request_headers(true), Action::Pause);
    answer(&mut stream, &host, deny());
    assert!(host.replies().is_empty());
    assert_eq!(host.resumed(), 1);
    assert_eq!(host.counter("denied"), 1);
    assert_eq!(host.counter("shadow_denied"), 1);
    assert_eq!(
        shadow_decision(&host),
        r#"{"check_result":"DENIED","status_code":401,"response_headers":[{"key":"x-deny","value":"no"}]}"#
    );
}

#[test]
fn shadow_mode_lets_a_failure_go_on_and_applies_an_allows_changes() {
    let host = MockHost::new();
    let plugin = plugin(r#""shadow_mode": true"#, &host);
    let mut stream = ExtAuthz::new(7, host.clone(), Rc::clone(&plugin));
    stream.on_http_request_headers(true);
    stream.on_grpc_call_response(host.last_call().token(), 14, 0);
    assert!(host.replies().is_empty());
    assert_eq!(host.resumed(), 1);
    assert_eq!(host.counter("error"), 1);
    assert_eq!(host.counter("shadow_error"), 1);
    assert_eq!(
        shadow_decision(&host),
        r#"{"check_result":"ERROR","status_code":403}"#
    );

    // The same host (it holds the metrics), a second request.
    let mut stream = ExtAuthz::new(8, host.clone(), plugin);
    stream.on_http_request_headers(true);
    answer(&mut stream, &host, allow(vec![header("x-user", "alice")]));
    assert_eq!(host.resumed(), 2);
    assert_eq!(host.request_header("x-user"), [b"alice".to_vec()]);
    assert_eq!(host.counter("ok"), 1);
    assert_eq!(
        shadow_decision(&host),
        r#"{"check_result":"OK","status_code":200}"#
    );
}

#[test]
fn filter_enabled_samples_its_share_of_requests() {
    let host = MockHost::new();
    let plugin = plugin(
        r#""filter_enabled": {"default_value": {"numerator": 50}, "runtime_key": "not.read"}"#,
        &host,
    );
    let mut checked = 0;
    for id in 0..2_000 {
        let mut stream = ExtAuthz::new(id, host.clone(), Rc::clone(&plugin));
        if stream.on_http_request_headers(true) == Action::Pause {
            checked += 1;
        }
    }
    assert_eq!(host.calls().len(), checked);
    assert_eq!(host.counter("disabled"), 2_000 - checked as u64);
    assert!(
        (800..=1_200).contains(&checked),
        "{checked} of 2000 checked"
    );
}

#[test]
fn a_request_left_out_goes_on_or_is_denied_at_disable() {
    let host = MockHost::new();
    let off = r#""filter_enabled": {"default_value": {"numerator": 0}}"#;
    let mut stream = ExtAuthz::new(7, host.clone(), plugin(off, &host));
    assert_eq!(stream.on_http_request_headers(true), Action::Continue);
    assert!(host.calls().is_empty());
    assert_eq!(host.counter("disabled"), 1);

    let host = MockHost::new();
    let deny = format!(
        r#"{off}, "deny_at_disable": {{"default_value": true, "runtime_key": "k"}}, "status_on_error": {{"code": 503}}"#
    );
    let mut stream = ExtAuthz::new(7, host.clone(), plugin(&deny, &host));
    assert_eq!(stream.on_http_request_headers(true), Action::Pause);
    assert!(host.calls().is_empty());
    let reply = &host.replies()[0];
    assert_eq!(
        (reply.status, reply.details.as_str(), reply.body.len()),
        (503, "ext_authz_error", 0)
    );
    assert_eq!(host.counter("disabled"), 1);
}

#[test]
fn changes_past_the_header_limit_get_500_and_nothing_goes_on() {
    let host = MockHost::new();
    let plugin = plugin(r#""max_request_headers_kb": 1"#, &host);
    let mut stream = ExtAuthz::new(7, host.clone(), Rc::clone(&plugin));
    stream.on_http_request_headers(true);
    answer(
        &mut stream,
        &host,
        allow(vec![header("x-big", &"a".repeat(1024))]),
    );
    assert_eq!(host.resumed(), 0);
    let reply = &host.replies()[0];
    assert_eq!(
        (reply.status, reply.details.as_str()),
        (500, "ext_authz_invalid")
    );
    assert_eq!(host.counter("invalid"), 1);
    assert_eq!(host.counter("ok"), 0, "as native: invalid only");

    // Just within the limit: goes on.
    let host = MockHost::new();
    let plugin = Plugin::configure(
        &host,
        br#"{"grpc_service": {"envoy_grpc": {"cluster_name": "a"}}, "max_request_headers_kb": 1}"#,
    )
    .unwrap();
    let plugin = Rc::new(plugin);
    let mut stream = ExtAuthz::new(8, host.clone(), plugin);
    stream.on_http_request_headers(true);
    let used =
        ":method".len() + 3 + ":path".len() + 1 + ":authority".len() + 11 + ":scheme".len() + 4;
    let room = 1024 - used - "x-big".len();
    answer(
        &mut stream,
        &host,
        allow(vec![header("x-big", &"a".repeat(room))]),
    );
    assert!(host.replies().is_empty());
    assert_eq!(host.resumed(), 1);
}

fn http_retrying(extra: &str) -> String {
    format!(
        r#"{{"http_service": {{"server_uri": {{"uri": "http://h", "cluster": "auth", "timeout": "1s"}},
            "retry_policy": {{"num_retries": 2, "retry_on": "5xx", "retry_back_off": {{"base_interval": "0.1s", "max_interval": "0.4s"}}}}}}{extra}}}"#
    )
}

fn http_timeout(call: &crate::mock_host::SentCall) -> std::time::Duration {
    match call {
        crate::mock_host::SentCall::Http { timeout, .. } => *timeout,
        other => panic!("not an HTTP call: {other:?}"),
    }
}

/// Lets the back-off of the retry `stream` waits for pass, as the root's tick does: the tick is
/// set to it, the clock moves on to it, and the stream is woken.
fn back_off(stream: &mut ExtAuthz<MockHost>, host: &MockHost, plugin: &Plugin) {
    let now = host.now().unwrap();
    let wait = plugin.retry_queue.next_wake(now).expect("a retry waits");
    assert_eq!(host.tick_period(), wait, "the root's tick wakes it");
    host.advance(wait);
    let due = plugin.retry_queue.due(host.now().unwrap());
    assert_eq!(due.len(), 1);
    stream.on_retry_due();
}

#[test]
fn an_http_try_that_fails_is_retried_after_a_back_off_within_the_services_timeout() {
    let host = MockHost::new();
    let config = http_retrying("");
    let plugin = Rc::new(Plugin::configure(&host, config.as_bytes()).unwrap());
    let mut stream = ExtAuthz::new(7, host.clone(), Rc::clone(&plugin));
    let start = host.now().unwrap();
    assert_eq!(stream.on_http_request_headers(true), Action::Pause);
    // Each try is bounded by max_interval.
    assert_eq!(http_timeout(&host.last_call()), Duration::from_millis(400));
    host.answer_http(&[], b"");
    stream.on_http_call_response(host.last_call().token(), 0);
    assert_eq!(host.calls().len(), 1, "the retry waits out its back-off");
    assert_eq!(host.counter("retry"), 1);
    back_off(&mut stream, &host, &plugin);
    assert_eq!(host.calls().len(), 2);
    host.advance(Duration::from_millis(550));
    host.answer_http(&[(":status", "503")], b"");
    stream.on_http_call_response(host.last_call().token(), 0);
    back_off(&mut stream, &host, &plugin);
    // The third try gets what is left of the service's 1 s, tries and back-offs together.
    assert_eq!(host.calls().len(), 3);
    let elapsed = host.now().unwrap() - start;
    assert!(elapsed > Duration::from_millis(550), "{elapsed:?}");
    assert_eq!(
        http_timeout(&host.last_call()),
        (Duration::from_secs(1) - elapsed).min(Duration::from_millis(400))
    );
    host.answer_http(&[(":status", "200")], b"");
    stream.on_http_call_response(host.last_call().token(), 0);
    assert_eq!(host.resumed(), 1);
    assert_eq!(host.counter("ok"), 1);
    assert_eq!(host.counter("retry"), 2);
    assert_eq!(plugin.retry_queue.next_wake(host.now().unwrap()), None);
}

#[test]
fn a_request_that_goes_away_during_its_back_off_is_never_retried() {
    let host = MockHost::new();
    let plugin = Rc::new(Plugin::configure(&host, http_retrying("").as_bytes()).unwrap());
    let mut stream = ExtAuthz::new(7, host.clone(), Rc::clone(&plugin));
    stream.on_http_request_headers(true);
    host.answer_http(&[(":status", "503")], b"");
    stream.on_http_call_response(host.last_call().token(), 0);
    assert!(plugin.retry_queue.next_wake(host.now().unwrap()).is_some());
    stream.on_done();
    assert_eq!(plugin.retry_queue.next_wake(host.now().unwrap()), None);
    stream.on_retry_due();
    assert_eq!(host.calls().len(), 1);
    // And the root's tick stops once nothing is watched.
    plugin.retick(&host, host.now().unwrap());
    assert_eq!(host.tick_period(), Duration::ZERO);
}

#[test]
fn an_http_retry_stops_at_num_retries_a_condition_not_listed_or_the_deadline() {
    let host = MockHost::new();
    let plugin = Rc::new(Plugin::configure(&host, http_retrying("").as_bytes()).unwrap());
    let mut stream = ExtAuthz::new(7, host.clone(), Rc::clone(&plugin));
    stream.on_http_request_headers(true);
    for try_ in 0..3 {
        host.answer_http(&[(":status", "503")], b"");
        stream.on_http_call_response(host.last_call().token(), 0);
        if try_ < 2 {
            back_off(&mut stream, &host, &plugin);
        }
    }
    assert_eq!(host.calls().len(), 3);
    assert_eq!(host.replies()[0].status, 403);
    assert_eq!(host.counter("error"), 1);

    // A denial is not a failure to retry.
    let mut stream = ExtAuthz::new(8, host.clone(), Rc::clone(&plugin));
    stream.on_http_request_headers(true);
    host.answer_http(&[(":status", "401")], b"");
    stream.on_http_call_response(host.last_call().token(), 0);
    assert_eq!(host.calls().len(), 4);
    assert_eq!(host.replies()[1].status, 401);

    // No time left: the failure stands.
    let mut stream = ExtAuthz::new(9, host.clone(), plugin);
    stream.on_http_request_headers(true);
    host.advance(Duration::from_secs(1));
    host.answer_http(&[], b"");
    stream.on_http_call_response(host.last_call().token(), 0);
    assert_eq!(host.calls().len(), 5);
    assert_eq!(host.replies()[2].status, 403);
    assert_eq!(host.counter("retry"), 2);
}

#[test]
fn envoys_answer_for_a_reset_is_retried_under_reset_and_a_servers_503_is_not() {
    let host = MockHost::new();
    let config = r#"{"http_service": {"server_uri": {"uri": "http://h", "cluster": "auth", "timeout": "1s"},
        "retry_policy": {"num_retries": 1, "retry_on": "reset", "retry_back_off": {"base_interval": "0.01s"}}}}"#;
    let plugin = Rc::new(Plugin::configure(&host, config.as_bytes()).unwrap());
    let mut stream = ExtAuthz::new(7, host.clone(), Rc::clone(&plugin));
    stream.on_http_request_headers(true);
    let reset = b"upstream connect error or disconnect/reset before headers. reset reason: connection termination";
    host.answer_http(&[(":status", "503")], reset);
    stream.on_http_call_response(host.last_call().token(), reset.len());
    back_off(&mut stream, &host, &plugin);
    assert_eq!(host.calls().len(), 2);

    let mut stream = ExtAuthz::new(8, host.clone(), plugin);
    stream.on_http_request_headers(true);
    host.answer_http(&[(":status", "503")], b"busy");
    stream.on_http_call_response(host.last_call().token(), 4);
    assert_eq!(host.calls().len(), 3);
    assert_eq!(host.counter("retry"), 1);
}
