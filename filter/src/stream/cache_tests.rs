//! The decision cache on the stream, on test hosts that share one VM id's data as Envoy's workers
//! do: one worker's answer serves another's request, a hit makes the same changes as the miss
//! did, what may not be kept is not, stale-if-error serves only allows and only within its window,
//! and a damaged slot is a miss, never a panic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(deprecated)]

use std::rc::Rc;
use std::time::Duration;

use envoy_types::pb::envoy::config::core::v3::QueryParameter;
use envoy_types::pb::envoy::r#type::v3::HttpStatus;
use envoy_types::pb::envoy::service::auth::v3::check_response::HttpResponse;
use envoy_types::pb::envoy::service::auth::v3::{
    CheckResponse, DeniedHttpResponse, OkHttpResponse,
};
use envoy_types::pb::google::protobuf::{value::Kind, Struct, Value};
use envoy_types::pb::google::rpc::Status;
use prost::Message;

use super::tests::{denial, header};
use super::ExtAuthz;
use crate::host::{Action, LogLevel};
use crate::mock_host::{MockHost, SentCall, SharedData};
use crate::plugin::Plugin;

const UNAVAILABLE: u32 = 14;

fn config(cache: &str) -> String {
    format!(
        r#"{{"grpc_service": {{"envoy_grpc": {{"cluster_name": "ext_authz"}}}},
            "decision_cache": {cache}}}"#
    )
}

/// Envoy's workers: each request is on a host of its own, and all share one VM id's data and
/// one wall clock.
struct Workers {
    shared: SharedData,
    now: Duration,
    config: String,
}

impl Workers {
    fn new(config: String) -> Self {
        Self {
            shared: SharedData::default(),
            now: Duration::from_secs(1_700_000_000),
            config,
        }
    }

    /// A request with `authorization: <token>` on a worker of its own.
    fn host(&self, token: &str) -> MockHost {
        let host = MockHost::new()
            .with_shared_data(&self.shared)
            .with_header("authorization", token);
        host.set_now(self.now);
        host
    }

    fn stream(&self, host: &MockHost) -> ExtAuthz<MockHost> {
        let plugin = match Plugin::configure(host, self.config.as_bytes()) {
            Ok(plugin) => Rc::new(plugin),
            Err(why) => panic!("{why}"),
        };
        ExtAuthz::new(7, host.clone(), plugin)
    }

    fn advance(&mut self, by: Duration) {
        self.now += by;
    }

    /// Sends a request through; a call it makes is answered with `answer` (bytes or a status).
    fn send(&self, host: &MockHost, answer: Reply) -> Action {
        let mut stream = self.stream(host);
        let action = stream.on_http_request_headers(true);
        if action == Action::Pause && !host.calls().is_empty() {
            let token = host.last_call().token();
            match answer {
                Reply::Grpc(bytes) => {
                    let size = bytes.len();
                    host.answer_grpc(bytes);
                    stream.on_grpc_call_response(token, 0, size);
                }
                Reply::Fail(status) => stream.on_grpc_call_response(token, status, 0),
            }
        }
        stream.on_http_response_headers();
        action
    }
}

#[derive(Clone)]
enum Reply {
    Grpc(Vec<u8>),
    Fail(u32),
}

fn metadata(response: &mut CheckResponse, key: &str, value: &str) {
    let value = Value {
        kind: Some(Kind::StringValue(value.into())),
    };
    response
        .dynamic_metadata
        .get_or_insert_with(Struct::default)
        .fields
        .insert(key.to_owned(), value);
}

/// An allow that changes the request, its query and the response, with dynamic metadata.
fn rich_allow(extra: Option<(&str, &str)>) -> Vec<u8> {
    let mut response = CheckResponse {
        status: Some(Status::default()),
        http_response: Some(HttpResponse::OkResponse(OkHttpResponse {
            headers: vec![header("x-user", "alice")],
            response_headers_to_add: vec![header("x-session", "s1")],
            query_parameters_to_set: vec![QueryParameter {
                key: "tenant".into(),
                value: "acme".into(),
            }],
            ..Default::default()
        })),
        ..Default::default()
    };
    metadata(&mut response, "user", "alice");
    if let Some((key, value)) = extra {
        metadata(&mut response, key, value);
    }
    response.encode_to_vec()
}

fn deny() -> Vec<u8> {
    denial(401, vec![header("www-authenticate", "Bearer")], "go away")
}

/// What a request left behind on its host, to compare a hit with its miss (which was resumed,
/// where a hit goes on at once).
fn seen(host: &MockHost) -> impl PartialEq + std::fmt::Debug {
    (
        host.request_header("x-user"),
        host.request_header(":path"),
        host.response_header("x-session"),
        host.replies(),
        host.filter_state("ext_authz.dynamic_metadata"),
    )
}

const KEYED: &str = r#"{"key": {"headers": ["authorization"]}}"#;

#[test]
fn one_workers_answer_serves_another_workers_request_with_the_same_changes() {
    let workers = Workers::new(config(KEYED));
    let a = workers.host("Bearer one");
    assert_eq!(
        workers.send(&a, Reply::Grpc(rich_allow(None))),
        Action::Pause
    );
    assert_eq!(a.resumed(), 1);
    assert_eq!(a.request_header(":path"), [b"/?tenant=acme".to_vec()]);

    let b = workers.host("Bearer one");
    assert_eq!(
        workers.send(&b, Reply::Fail(UNAVAILABLE)),
        Action::Continue,
        "a hit goes on at once"
    );
    assert!(b.calls().is_empty(), "no call on a hit");
    // The filter state holds the call's duration: none on a hit, as the answer took no time.
    assert_eq!(b.request_header("x-user"), a.request_header("x-user"));
    assert_eq!(b.request_header(":path"), a.request_header(":path"));
    assert_eq!(
        b.response_header("x-session"),
        a.response_header("x-session")
    );
    assert!(b.filter_state("ext_authz.dynamic_metadata").is_some());
    assert!(
        b.histogram("check_latency_ms").is_empty(),
        "no latency sample on a hit"
    );
    assert_eq!(
        a.counters(),
        [
            ("ext_authz.ok".into(), 1),
            ("ext_authz.cache_miss".into(), 1),
            ("ext_authz.cache_store".into(), 1)
        ]
        .into()
    );
    assert_eq!(
        b.counters(),
        [
            ("ext_authz.ok".into(), 1),
            ("ext_authz.cache_hit".into(), 1)
        ]
        .into()
    );

    let c = workers.host("Bearer two");
    workers.send(&c, Reply::Grpc(rich_allow(None)));
    assert_eq!(c.calls().len(), 1, "another credential, its own call");
}

#[test]
fn a_hit_and_its_miss_leave_the_same_traces() {
    let workers = Workers::new(config(
        r#"{"key": {"headers": ["authorization"]}, "denied_ttl": "5s"}"#,
    ));
    for answer in [rich_allow(None), deny()] {
        let token = format!("t{}", answer.len());
        let miss = workers.host(&token);
        let action = workers.send(&miss, Reply::Grpc(answer));
        let hit = workers.host(&token);
        workers.send(&hit, Reply::Fail(UNAVAILABLE));
        assert!(hit.calls().is_empty());
        if action == Action::Pause && miss.replies().is_empty() {
            // The miss's filter state has the call's duration (0 ms here) too: same bytes.
            assert_eq!(seen(&hit), seen(&miss));
        } else {
            assert_eq!(hit.replies(), miss.replies());
            assert_eq!(hit.replies()[0].status, 401);
            assert_eq!(hit.counters()["ext_authz.denied"], 1);
        }
    }
}

#[test]
fn a_denial_is_kept_only_under_denied_ttl() {
    let workers = Workers::new(config(KEYED));
    for _ in 0..2 {
        let host = workers.host("Bearer bad");
        workers.send(&host, Reply::Grpc(deny()));
        assert_eq!(host.calls().len(), 1, "denials are asked every time");
        assert_eq!(host.counters()["ext_authz.cache_skip"], 1);
    }
}

#[test]
fn errors_and_refused_answers_are_never_kept() {
    let workers = Workers::new(config(
        r#"{"key": {"headers": ["authorization"]}, "denied_ttl": "5s"}"#,
    ));
    // A denial whose reply header no proxy may send: refused (500), a failed check.
    let refused = CheckResponse {
        status: Some(Status {
            code: 7,
            ..Default::default()
        }),
        http_response: Some(HttpResponse::DeniedResponse(DeniedHttpResponse {
            status: Some(HttpStatus { code: 401 }),
            headers: vec![header("x-bad", "a\nb")],
            body: String::new(),
        })),
        ..Default::default()
    }
    .encode_to_vec();
    let cases = [
        (Reply::Fail(UNAVAILABLE), 403),
        (Reply::Grpc(b"\xff\xff".to_vec()), 403),
        (Reply::Grpc(refused), 500),
    ];
    for (reply, status) in cases {
        for _ in 0..2 {
            let host = workers.host("Bearer e");
            workers.send(&host, reply.clone());
            assert_eq!(host.calls().len(), 1);
            assert_eq!(host.replies()[0].status, status);
            assert_eq!(host.counters()["ext_authz.cache_skip"], 1);
        }
    }
    assert!(workers.shared.values().is_empty());
}

#[test]
fn an_entry_expires_with_ttl_or_the_servers_shorter_word() {
    let mut workers = Workers::new(config(
        r#"{"key": {"headers": ["authorization"]}, "ttl": "10s"}"#,
    ));
    let asked = |workers: &Workers, token: &str, answer: Vec<u8>| {
        let host = workers.host(token);
        workers.send(&host, Reply::Grpc(answer));
        host.calls().len()
    };
    assert_eq!(asked(&workers, "a", rich_allow(None)), 1);
    assert_eq!(
        asked(&workers, "b", rich_allow(Some(("cache_ttl", "2s")))),
        1
    );
    assert_eq!(
        asked(&workers, "c", rich_allow(Some(("cache_ttl", "0s")))),
        1
    );
    assert_eq!(
        asked(&workers, "d", rich_allow(Some(("cache_ttl", "60s")))),
        1
    );
    workers.advance(Duration::from_secs(1));
    assert_eq!(asked(&workers, "a", rich_allow(None)), 0);
    assert_eq!(asked(&workers, "b", rich_allow(None)), 0);
    assert_eq!(
        asked(&workers, "c", rich_allow(None)),
        1,
        "cache_ttl 0s: not kept"
    );
    workers.advance(Duration::from_secs(2));
    assert_eq!(
        asked(&workers, "b", rich_allow(None)),
        1,
        "the server's 2s ended"
    );
    assert_eq!(asked(&workers, "a", rich_allow(None)), 0);
    workers.advance(Duration::from_secs(8));
    assert_eq!(asked(&workers, "a", rich_allow(None)), 1, "ttl 10s ended");
    assert_eq!(
        asked(&workers, "d", rich_allow(None)),
        1,
        "ttl is the longest"
    );
}

#[test]
fn stale_if_error_serves_an_expired_allow_within_its_window_only() {
    let cache = r#"{"key": {"headers": ["authorization"]}, "ttl": "1s", "denied_ttl": "1s",
        "stale_if_error": "60s", "debug_header": true}"#;
    let mut workers = Workers::new(config(cache));
    workers.send(&workers.host("good"), Reply::Grpc(rich_allow(None)));
    workers.send(&workers.host("bad"), Reply::Grpc(deny()));
    workers.advance(Duration::from_secs(30));

    let host = workers.host("good");
    workers.send(&host, Reply::Fail(UNAVAILABLE));
    assert_eq!(host.calls().len(), 1, "a stale entry is asked again");
    assert!(host.replies().is_empty());
    assert_eq!(host.resumed(), 1, "the stale allow let it through");
    assert_eq!(host.request_header("x-user"), [b"alice".to_vec()]);
    assert_eq!(
        host.response_header("x-envoy-auth-cache"),
        [b"stale".to_vec()]
    );
    assert_eq!(host.counters()["ext_authz.cache_stale_served"], 1);
    assert_eq!(host.counters()["ext_authz.ok"], 1);
    assert!(host
        .logs()
        .iter()
        .any(|(level, line)| *level == LogLevel::Warn && line.contains("serving a cached allow")));

    let host = workers.host("bad");
    workers.send(&host, Reply::Fail(UNAVAILABLE));
    assert_eq!(host.replies()[0].status, 403, "a denial is never stretched");

    // A server that answers again refreshes the entry; one that fails past the window fails.
    workers.advance(Duration::from_secs(31));
    let host = workers.host("good");
    workers.send(&host, Reply::Fail(UNAVAILABLE));
    assert_eq!(host.replies()[0].status, 403, "past stale_if_error");
    assert_eq!(host.counters().get("ext_authz.cache_stale_served"), None);
}

#[test]
fn without_stale_if_error_a_failure_is_a_failure() {
    let mut workers = Workers::new(config(
        r#"{"key": {"headers": ["authorization"]}, "ttl": "1s"}"#,
    ));
    workers.send(&workers.host("good"), Reply::Grpc(rich_allow(None)));
    workers.advance(Duration::from_secs(2));
    let host = workers.host("good");
    workers.send(&host, Reply::Fail(UNAVAILABLE));
    assert_eq!(host.replies()[0].status, 403);
}

#[test]
fn the_debug_header_says_hit_or_miss_and_is_off_by_default() {
    let workers = Workers::new(config(
        r#"{"key": {"headers": ["authorization"]}, "debug_header": true}"#,
    ));
    let miss = workers.host("t");
    workers.send(&miss, Reply::Grpc(rich_allow(None)));
    assert_eq!(
        miss.response_header("x-envoy-auth-cache"),
        [b"miss".to_vec()]
    );
    let hit = workers.host("t");
    workers.send(&hit, Reply::Fail(UNAVAILABLE));
    assert_eq!(hit.response_header("x-envoy-auth-cache"), [b"hit".to_vec()]);

    let workers = Workers::new(config(KEYED));
    let host = workers.host("t");
    workers.send(&host, Reply::Grpc(rich_allow(None)));
    assert!(host.response_header("x-envoy-auth-cache").is_empty());
}

#[test]
fn no_credential_is_kept_in_shared_data() {
    let workers = Workers::new(config(KEYED));
    let secret = "Bearer s3cr3t-t0ken-value";
    workers.send(&workers.host(secret), Reply::Grpc(rich_allow(None)));
    let values = workers.shared.values();
    assert_eq!(values.len(), 1);
    for (key, value) in values {
        for bytes in [key.as_bytes(), value.as_slice()] {
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "the credential is in shared data"
            );
            assert!(!bytes.windows(6).any(|w| w == b"s3cr3t"));
        }
    }
}

#[test]
fn a_request_whose_body_goes_to_the_server_is_not_cached() {
    let workers = Workers::new(
        config(r#"{"key": {"headers": ["authorization"]}}"#).replace(
            r#""decision_cache""#,
            r#""with_request_body": {"max_request_bytes": 100}, "decision_cache""#,
        ),
    );
    for _ in 0..2 {
        let host = workers.host("t");
        workers.send(&host, Reply::Grpc(rich_allow(None)));
        assert_eq!(host.calls().len(), 1);
        assert_eq!(host.counters()["ext_authz.cache_skip"], 1);
        assert_eq!(host.counters().get("ext_authz.cache_miss"), None);
    }
}

#[test]
fn a_damaged_or_foreign_slot_is_a_miss_and_never_a_panic() {
    let workers = Workers::new(config(
        r#"{"key": {"headers": ["authorization"]}, "max_entries": 1}"#,
    ));
    workers.send(&workers.host("t"), Reply::Grpc(rich_allow(None)));
    let (slot, good) = workers.shared.values().into_iter().next().unwrap();
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        rng ^= rng >> 12;
        rng ^= rng << 25;
        rng ^= rng >> 27;
        rng.wrapping_mul(0x2545_f491_4f6c_dd1d)
    };
    for round in 0..3000 {
        let value: Vec<u8> = if round % 2 == 0 {
            // Random bytes of random length.
            (0..next() % 300).map(|_| next() as u8).collect()
        } else {
            // The good entry with a few bytes changed or cut.
            let mut value = good.clone();
            for _ in 0..1 + next() % 3 {
                let at = (next() as usize) % value.len();
                value[at] = value[at].wrapping_add(1 + (next() % 255) as u8);
            }
            if next() % 4 == 0 {
                value.truncate((next() as usize) % value.len());
            }
            value
        };
        workers.shared.put(&slot, &value);
        let host = workers.host("t");
        workers.send(&host, Reply::Grpc(rich_allow(None)));
        assert_eq!(
            host.calls().len(),
            1,
            "round {round}: a damaged slot is a miss"
        );
        assert_eq!(host.resumed(), 1);
    }
    // Another key in the one slot is a miss too.
    let host = workers.host("other");
    workers.send(&host, Reply::Grpc(rich_allow(None)));
    assert_eq!(host.calls().len(), 1);
}

#[test]
fn a_changed_configuration_never_meets_an_old_entry() {
    let workers = Workers::new(config(KEYED));
    workers.send(&workers.host("t"), Reply::Grpc(rich_allow(None)));
    let changed = Workers {
        shared: workers.shared.clone(),
        now: workers.now,
        config: config(r#"{"key": {"headers": ["authorization"]}, "ttl": "29s"}"#),
    };
    let host = changed.host("t");
    changed.send(&host, Reply::Grpc(rich_allow(None)));
    assert_eq!(host.calls().len(), 1);
}

#[test]
fn an_http_service_answer_is_kept_and_cache_control_is_honoured() {
    let config = r#"{"http_service": {"server_uri": {"uri": "http://h", "cluster": "auth", "timeout": "1s"},
        "authorization_response": {"allowed_upstream_headers": {"patterns": [{"exact": "x-user"}]}}},
        "decision_cache": {"key": {"headers": ["authorization"]}}}"#;
    let mut workers = Workers::new(config.to_owned());
    let send = |workers: &Workers, token: &str, headers: &[(&str, &str)]| {
        let host = workers.host(token);
        let mut stream = workers.stream(&host);
        stream.on_http_request_headers(true);
        if let Some(SentCall::Http { token, .. }) = host.calls().last().cloned() {
            host.answer_http(headers, b"");
            stream.on_http_call_response(token, 0);
        }
        host
    };
    let ok = [(":status", "200"), ("x-user", "alice")];
    let miss = send(&workers, "a", &ok);
    let hit = send(&workers, "a", &[]);
    assert!(hit.calls().is_empty());
    assert_eq!(hit.request_header("x-user"), miss.request_header("x-user"));
    assert_eq!(hit.request_header("x-user"), [b"alice".to_vec()]);

    send(
        &workers,
        "b",
        &[(":status", "200"), ("cache-control", "no-store")],
    );
    assert_eq!(send(&workers, "b", &ok).calls().len(), 1, "no-store");
    send(
        &workers,
        "c",
        &[(":status", "200"), ("cache-control", "max-age=2")],
    );
    workers.advance(Duration::from_secs(1));
    assert_eq!(send(&workers, "c", &ok).calls().len(), 0);
    workers.advance(Duration::from_secs(2));
    assert_eq!(send(&workers, "c", &ok).calls().len(), 1, "max-age ended");
    // A denial is not kept by default, an HTTP one neither.
    send(&workers, "d", &[(":status", "401")]);
    assert_eq!(send(&workers, "d", &[(":status", "401")]).calls().len(), 1);
}
