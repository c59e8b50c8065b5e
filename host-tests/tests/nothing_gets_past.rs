//! Nothing of a request reaches the upstream before its decision, and nothing of a denied one
//! ever does: with a slow auth server (every answer waits [`SLOW`]), for bodies of every shape
//! (content-length, chunked, trickled, with trailers), HTTP/1.1 and h2c, gRPC calls, WebSocket
//! upgrades, keep-alive and pipelining, clients that hang up, auth servers that break mid-answer,
//! with and without `with_request_body`, and under a bounded concurrent load.
//!
//! Every wasm listener has a native ext_authz twin with the same configuration in the same Envoy;
//! where the right answer is "what native does", the test runs both and compares.
//!
//! How "nothing" is seen: the backend counts request heads as they arrive (before it reads a
//! body, and even if the body never completes). A request let through early would arrive before
//! its decision, that is at least [`SLOW`] before the client gets its answer; the tests look after
//! the answer.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use host_tests::auth_server::{allow, deny, set_header, Gate};
use host_tests::envoy::{
    native_ext_authz, wasm_filter, wasm_filter_for_bodies, AUTH_CLUSTER, HANGUP_CLUSTER,
};
use host_tests::h2_client::{self, grpc_frame, H2Request, Step};
use host_tests::matrix::{
    check_view, hash, parallel, payload, poll, send, Body, Got, Proto, PROTOS, WAIT,
};
use host_tests::raw_http::{self, ConnState, RawConn};
use host_tests::rng::Rng;
use host_tests::{AuthAction, Harness, Listener};
use serde_json::{json, Value};

/// How long the auth server takes over every answer in these tests.
const SLOW: Duration = Duration::from_millis(300);
/// `max_request_bytes` of the body listeners.
const MAX_BODY: usize = 4096;
/// Envoy's default connection buffer limit.
const BUFFER_LIMIT: usize = 1024 * 1024;
const DENIAL_BODY: &str = "denied by test";

fn config(cluster: &str) -> Value {
    json!({
        "grpc_service": {"envoy_grpc": {"cluster_name": cluster}, "timeout": "5s"},
        "transport_api_version": "V3"
    })
}

fn with_body(cluster: &str, partial: bool) -> Value {
    let mut config = config(cluster);
    config["with_request_body"] =
        json!({"max_request_bytes": MAX_BODY, "allow_partial_message": partial});
    config
}

/// The wasm listeners, each with its native twin.
const PLAIN: &str = "plain";
const PARTIAL: &str = "partial";
const STRICT: &str = "strict";
const WASM: [&str; 3] = [PLAIN, PARTIAL, STRICT];

fn native_twin(listener: &str) -> String {
    format!("native_{listener}")
}

fn harness() -> &'static Harness {
    host_tests::shared(|| {
        let pairs = [
            (PLAIN, config(AUTH_CLUSTER), false),
            (PARTIAL, with_body(AUTH_CLUSTER, true), true),
            (STRICT, with_body(AUTH_CLUSTER, false), true),
            ("hangup", config(HANGUP_CLUSTER), false),
            ("partial_hangup", with_body(HANGUP_CLUSTER, true), true),
        ];
        let mut listeners = Vec::new();
        for (name, config, bodies) in pairs {
            let wasm = if bodies {
                wasm_filter_for_bodies(&config)
            } else {
                wasm_filter(&config)
            };
            listeners.push(Listener::new(name, vec![wasm]).upgrade("websocket"));
            listeners.push(
                Listener::new(&native_twin(name), vec![native_ext_authz(&config)])
                    .upgrade("websocket"),
            );
        }
        // with_request_body, but the PluginConfig lacks allow_on_headers_stop_iteration.
        listeners.push(
            Listener::new("unset", vec![wasm_filter(&with_body(AUTH_CLUSTER, true))])
                .upgrade("websocket"),
        );
        listeners
    })
}

// ---------------------------------------------------------------------------------------------
/// What the auth server does with a request, after [`SLOW`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Verdict {
    Allow,
    /// 403 with a header and a body of the server's.
    Deny,
    /// Starts an OK answer and resets the stream mid-answer.
    Reset,
    /// Nothing scripted: the listener's auth cluster accepts and hangs up.
    Unreachable,
}

fn denial() -> AuthAction {
    AuthAction::respond(deny(
        403,
        vec![set_header("x-denied-by", "test")],
        DENIAL_BODY,
    ))
}

fn answer(verdict: Verdict) -> AuthAction {
    match verdict {
        Verdict::Allow => AuthAction::respond(allow()),
        Verdict::Deny => denial(),
        Verdict::Reset => AuthAction::Reset,
        // Not scripted: the listener's cluster hangs up, and the server never sees the call.
        Verdict::Unreachable => AuthAction::respond(allow()),
    }
}

fn slow(case: &str, verdict: Verdict) {
    if verdict == Verdict::Unreachable {
        return;
    }
    harness()
        .auth
        .respond(case, AuthAction::Delay(SLOW, Box::new(answer(verdict))));
}

/// Scripts a case by the request's `x-verdict` (`allow`, else deny) and `x-delay-ms` headers.
fn by_header(case: &str) {
    harness().auth.script(case, |request| {
        let headers = request
            .attributes
            .as_ref()
            .and_then(|a| a.request.as_ref())
            .and_then(|r| r.http.as_ref())
            .map(|h| h.headers.clone())
            .unwrap_or_default();
        let answer = match headers.get("x-verdict").map(String::as_str) {
            Some("allow") => AuthAction::respond(allow()),
            _ => denial(),
        };
        let delay = headers
            .get("x-delay-ms")
            .and_then(|d| d.parse().ok())
            .map_or(SLOW, Duration::from_millis);
        AuthAction::Delay(delay, Box::new(answer))
    });
}

/// One request of a matrix and all that was seen of it.
#[derive(Debug)]
struct Seen {
    listener: String,
    proto: Proto,
    verdict: Verdict,
    label: String,
    case: String,
    sent: Vec<u8>,
    got: Got,
    details: Vec<String>,
    checks: Vec<(u64, usize, i64, Option<String>)>,
    arrivals: usize,
    upstream_bodies: Vec<Vec<u8>>,
}

impl Seen {
    fn what(&self) -> String {
        format!(
            "{} {:?} {} {:?}",
            self.listener, self.proto, self.label, self.verdict
        )
    }
}

/// Sends each (listener, proto, label, body, verdict) once, with a slow answer of that verdict,
/// 12 at a time, and gathers what the client, the auth server and the upstream saw.
fn run_matrix(name: &str, requests: Vec<(String, Proto, String, Body, Verdict)>) -> Vec<Seen> {
    let h = harness();
    let seen = parallel(requests, 12, |(listener, proto, label, body, verdict)| {
        let case = h.case(&format!("{name}-{listener}-{proto:?}-{label}-{verdict:?}"));
        if by_size(&listener, proto, body.bytes().len(), verdict) == 413 {
            // Refused before its decision: the answer is held (never released) so that it
            // cannot beat the 413 on a slow machine. The filter cancels the call; if it did
            // not, the hold would end after a minute and the cancel checks fail.
            let answer = AuthAction::Delay(SLOW, Box::new(answer(verdict)));
            h.auth
                .respond(&case, AuthAction::Hold(Gate::default(), Box::new(answer)));
        } else {
            slow(&case, verdict);
        }
        let got = send(h, &listener, proto, &case, &[], &body);
        (listener, proto, label, body, verdict, case, got)
    });
    seen.into_iter()
        .map(|(listener, proto, label, body, verdict, case, got)| {
            let details = h
                .access_log(&case, 1)
                .into_iter()
                .map(|(_, details)| details)
                .collect();
            Seen {
                checks: h.auth.checks(&case).iter().map(check_view).collect(),
                arrivals: h.backend.arrivals(&case),
                upstream_bodies: h
                    .backend
                    .requests(&case)
                    .into_iter()
                    .map(|r| r.body)
                    .collect(),
                sent: body.bytes().to_vec(),
                listener,
                proto,
                verdict,
                label,
                case,
                got,
                details,
            }
        })
        .collect()
}

/// Asserts each request of a matrix got the status [`by_size`] says; that nothing of a request that was not
/// allowed reached the upstream, and an allowed body arrived whole, once; that a denial carried
/// the server's reply; and that every wasm listener did what its native twin did (status, reply
/// body, response code details, and the body the auth server saw), except where `differs` says.
fn assert_matrix(seen: &[Seen], differs: impl Fn(&Seen) -> bool) {
    let mut failures = Vec::new();
    for s in seen {
        let what = s.what();
        let status = by_size(&s.listener, s.proto, s.sent.len(), s.verdict);
        if s.got.status != status {
            failures.push(format!("{what}: status {} (want {status})", s.got.status));
        }
        if s.got.status == 200 {
            if s.arrivals != 1 || s.upstream_bodies.len() != 1 {
                failures.push(format!(
                    "{what}: allowed, but {} arrivals and {} records upstream",
                    s.arrivals,
                    s.upstream_bodies.len()
                ));
            } else if hash(&s.upstream_bodies[0]) != hash(&s.sent) {
                failures.push(format!(
                    "{what}: upstream got {} bytes (hash {:x}), sent {} (hash {:x})",
                    s.upstream_bodies[0].len(),
                    hash(&s.upstream_bodies[0]),
                    s.sent.len(),
                    hash(&s.sent)
                ));
            }
        } else if s.arrivals != 0 {
            failures.push(format!(
                "{what}: answered {} but {} request(s) reached the upstream",
                s.got.status, s.arrivals
            ));
        }
        let reply_ok = match (s.got.status, s.verdict) {
            (403, Verdict::Deny) => {
                s.got.body == DENIAL_BODY.as_bytes() && s.got.header("x-denied-by") == Some("test")
            }
            // Native sends no body when the check fails.
            (403, Verdict::Reset | Verdict::Unreachable) => s.got.body.is_empty(),
            _ => true,
        };
        if !reply_ok {
            failures.push(format!(
                "{what}: wrong reply {:?}",
                String::from_utf8_lossy(&s.got.body)
            ));
        }
    }
    for s in seen.iter().filter(|s| !s.listener.starts_with("native_")) {
        let twin = native_twin(&s.listener);
        let Some(native) = seen.iter().find(|n| {
            n.listener == twin && n.proto == s.proto && n.label == s.label && n.verdict == s.verdict
        }) else {
            continue;
        };
        if differs(s) {
            continue;
        }
        let view = |s: &Seen| {
            (
                s.got.status,
                s.got.body.clone(),
                s.details.clone(),
                s.checks.clone(),
            )
        };
        if view(s) != view(native) {
            failures.push(format!(
                "{}: wasm and native differ:\n  wasm   {:?}\n  native {:?}",
                s.what(),
                (
                    s.got.status,
                    String::from_utf8_lossy(&s.got.body),
                    &s.details,
                    &s.checks
                ),
                (
                    native.got.status,
                    String::from_utf8_lossy(&native.got.body),
                    &native.details,
                    &native.checks
                ),
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} failure(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Every wasm listener and its twin.
fn all_listeners() -> Vec<String> {
    WASM.iter()
        .flat_map(|l| [l.to_string(), native_twin(l)])
        .collect()
}

/// The status a request with a body of `len` bytes gets on `listener` (wasm or native), when
/// the auth server would answer `verdict`.
fn by_size(listener: &str, proto: Proto, len: usize, verdict: Verdict) -> u16 {
    let decided = match verdict {
        Verdict::Allow => 200,
        // The server's 403, or the failure mode's.
        Verdict::Deny | Verdict::Reset | Verdict::Unreachable => 403,
    };
    let native = listener.starts_with("native_");
    match listener.trim_start_matches("native_") {
        // Over max_request_bytes without allow_partial_message: 413, never checked.
        STRICT if len > MAX_BODY => 413,
        // See [`wasm_only_413`].
        PARTIAL if !native && proto == Proto::H1 && len > BUFFER_LIMIT => 413,
        _ => decided,
    }
}

/// Where this filter and native part, as documented in the README: under allow_partial_message,
/// the wasm filter holds the rest of an HTTP/1.1 body in Envoy's buffer while the check of its
/// first bytes is pending (a body callback can only answer Continue or StopIterationAndBuffer), so
/// a body over the 1 MiB connection buffer gets Envoy's 413 before the decision. Native holds the
/// rest by flow control (StopIterationAndWatermark) and decides. Over h2c both hold it by flow
/// control. Either way nothing reaches the upstream before the decision.
fn wasm_only_413(s: &Seen) -> bool {
    s.listener.ends_with(PARTIAL) && s.proto == Proto::H1 && s.sent.len() > BUFFER_LIMIT
}

// ---------------------------------------------------------------------------------------------

#[test]
fn content_length_bodies() {
    let mut requests = Vec::new();
    for (i, size) in [0usize, 1024, 200 * 1024, 3 * 1024 * 1024]
        .into_iter()
        .enumerate()
    {
        let body = Body::Length(payload(size, i as u64));
        for listener in all_listeners() {
            for proto in PROTOS {
                for verdict in [Verdict::Deny, Verdict::Allow] {
                    requests.push((
                        listener.clone(),
                        proto,
                        format!("{size}B"),
                        body.clone(),
                        verdict,
                    ));
                }
            }
        }
    }
    let seen = run_matrix("length", requests);
    assert_matrix(&seen, wasm_only_413);
    // The 413 over Envoy's buffer came before the decision: the stream ended while its check was
    // pending, and the filter cancelled the call.
    let h = harness();
    for s in seen
        .iter()
        .filter(|s| wasm_only_413(s) && !s.listener.starts_with("native_"))
    {
        assert!(
            poll(Duration::from_secs(30), || h
                .auth
                .outcomes(&s.case)
                .cancelled
                == 1),
            "{}: {:?}",
            s.what(),
            h.auth.outcomes(&s.case)
        );
    }
}

/// Runs `bodies` through every listener, both protocols, allowed and denied, by [`by_size`].
fn every_listener(name: &str, bodies: &[(&str, Body)], protos: &[Proto]) -> Vec<Seen> {
    let mut requests = Vec::new();
    for (label, body) in bodies {
        for listener in all_listeners() {
            for &proto in protos {
                for verdict in [Verdict::Deny, Verdict::Allow] {
                    requests.push((
                        listener.clone(),
                        proto,
                        label.to_string(),
                        body.clone(),
                        verdict,
                    ));
                }
            }
        }
    }
    run_matrix(name, requests)
}

#[test]
fn chunked_bodies() {
    let bodies = [
        ("300B-in-100B", Body::Chunked(payload(300, 10), 100)),
        ("10KB-in-1KB", Body::Chunked(payload(10 * 1024, 11), 1024)),
        (
            "200KB-in-8KB",
            Body::Chunked(payload(200 * 1024, 12), 8 * 1024),
        ),
    ];
    let seen = every_listener("chunked", &bodies, &PROTOS);
    assert_matrix(&seen, wasm_only_413);
}

#[test]
fn bodies_with_trailers() {
    let bodies = [
        ("trailers-only", Body::Trailers(Vec::new())),
        ("1KB+trailers", Body::Trailers(payload(1024, 20))),
        ("10KB+trailers", Body::Trailers(payload(10 * 1024, 21))),
    ];
    let seen = every_listener("trailers", &bodies, &PROTOS);
    assert_matrix(&seen, wasm_only_413);
}

#[test]
fn trickled_bodies() {
    // 6000 bytes, 150 at a time every 20 ms: the request takes ~800 ms to send, and the check of a
    // plain listener (sent with the headers) is answered ~300 ms in.
    // Decided while the client is still sending: the denial of a check sent with the headers,
    // and the 413 of a body over max_request_bytes. Over HTTP/1.1 their last piece waits for
    // the answer, so "before the whole body" does not hang on the machine's speed.
    let early = |listener: &str, verdict: Verdict| {
        (listener.ends_with(PLAIN) && verdict == Verdict::Deny) || listener.ends_with(STRICT)
    };
    let (bytes, piece, pause) = (payload(6000, 30), 150, Duration::from_millis(20));
    let mut requests = Vec::new();
    for listener in all_listeners() {
        for proto in PROTOS {
            for verdict in [Verdict::Deny, Verdict::Allow] {
                let body = if early(&listener, verdict) && proto == Proto::H1 {
                    Body::TrickleHeld(bytes.clone(), piece, pause)
                } else {
                    Body::Trickle(bytes.clone(), piece, pause)
                };
                let label = "6000B-trickled".to_owned();
                requests.push((listener.clone(), proto, label, body, verdict));
            }
        }
    }
    let seen = run_matrix("trickle", requests);
    assert_matrix(&seen, wasm_only_413);
    for s in &seen {
        if early(&s.listener, s.verdict) && s.proto == Proto::H1 {
            assert_eq!(
                s.got.sent_all,
                Some(false),
                "{}: answered {} only after the whole body ({:?})",
                s.what(),
                s.got.status,
                s.got.elapsed
            );
            // The rest of the body will not be read: Envoy says it closes the connection.
            assert_eq!(s.got.header("connection"), Some("close"), "{}", s.what());
        }
    }
}

const WEBSOCKET: [(&str, &str); 4] = [
    ("connection", "Upgrade"),
    ("upgrade", "websocket"),
    ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ("sec-websocket-version", "13"),
];

#[test]
fn websocket_upgrade_requests() {
    let h = harness();
    let mut listeners = all_listeners();
    listeners.push("unset".to_owned());
    let mut items = Vec::new();
    for listener in &listeners {
        for verdict in [Verdict::Deny, Verdict::Allow] {
            items.push((listener.clone(), verdict));
        }
    }
    let results = parallel(items, 12, |(listener, verdict)| {
        let case = h.case(&format!("websocket-{listener}-{verdict:?}"));
        slow(&case, verdict);
        let mut headers: Vec<(&str, String)> =
            WEBSOCKET.iter().map(|(k, v)| (*k, v.to_string())).collect();
        headers.push(("x-case", case.clone()));
        let request = raw_http::head("GET", "/chat", &headers);
        let exchange = raw_http::exchange_within(
            h.envoy.port(&listener),
            vec![(Duration::ZERO, request)],
            None,
            WAIT,
        );
        (listener, verdict, case, exchange)
    });
    let mut failures = Vec::new();
    let mut statuses = HashMap::new();
    for (listener, verdict, case, exchange) in results {
        let what = format!("{listener} {verdict:?}");
        let response = match exchange.response {
            Ok(response) => response,
            Err(e) => {
                failures.push(format!(
                    "{what}: no answer after {:?}: {e}",
                    exchange.elapsed
                ));
                continue;
            }
        };
        let upstream = h.backend.requests(&case);
        match verdict {
            Verdict::Deny => {
                if response.status != 403 || response.body != DENIAL_BODY.as_bytes() {
                    failures.push(format!("{what}: {} {:?}", response.status, response.body));
                }
                if h.backend.arrivals(&case) != 0 {
                    failures.push(format!("{what}: reached the upstream"));
                }
            }
            _ => {
                // The backend answers the upgrade with a plain 200; the upgrade went through
                // Envoy as an upgrade (without upgrade_configs Envoy refuses it with 403).
                let upgraded = upstream.len() == 1
                    && upstream[0].header("upgrade").as_deref() == Some("websocket");
                if response.status != 200 || !upgraded {
                    failures.push(format!(
                        "{what}: {} and {} upstream request(s)",
                        response.status,
                        upstream.len()
                    ));
                }
                if h.auth.checks(&case).len() != 1 {
                    failures.push(format!("{what}: {} checks", h.auth.checks(&case).len()));
                }
            }
        }
        let checks: Vec<_> = h.auth.checks(&case).iter().map(check_view).collect();
        statuses.insert((listener, verdict), (response.status, checks));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    for listener in WASM {
        for verdict in [Verdict::Deny, Verdict::Allow] {
            assert_eq!(
                statuses.get(&(listener.to_owned(), verdict)),
                statuses.get(&(native_twin(listener), verdict)),
                "{listener} {verdict:?}: not what native does"
            );
        }
    }
}

/// What became of a request on a kept-alive connection: its status, and whether the connection
/// was then closed (cleanly, after `connection: close`) or stayed open for the next one.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Fate {
    status: u16,
    closed: bool,
}

#[test]
fn keep_alive_after_a_denial() {
    let h = harness();
    let sequence: Vec<(&str, Body)> = vec![
        ("deny", Body::None),
        ("allow", Body::None),
        ("deny", Body::Length(payload(1024, 40))),
        ("allow", Body::Length(payload(1024, 41))),
        ("deny", Body::Length(payload(10 * 1024, 42))),
        ("allow", Body::Length(payload(10 * 1024, 43))),
        ("allow", Body::None),
    ];
    let results = parallel(all_listeners(), 6, |listener| {
        let case = h.case(&format!("keepalive-{listener}"));
        by_header(&case);
        let port = h.envoy.port(&listener);
        let mut conn = RawConn::connect(port).expect("connect");
        conn.set_read_timeout(WAIT).expect("timeout");
        let mut fates = Vec::new();
        let mut problems = Vec::new();
        for (i, (verdict, body)) in sequence.iter().enumerate() {
            let headers = [
                ("x-case", case.clone()),
                ("x-verdict", verdict.to_string()),
                ("x-req-id", i.to_string()),
            ];
            let request = match body {
                Body::None => raw_http::head("GET", "/", &headers),
                _ => raw_http::with_length("POST", "/", &headers, body.bytes()),
            };
            conn.send(&request)
                .expect("write on a connection Envoy kept open");
            let response = match conn.read_response() {
                Ok(response) => response,
                Err(e) => {
                    problems.push(format!("request {i}: {e}"));
                    break;
                }
            };
            let closed = if response.closes() {
                // Said so: the connection must end cleanly, with a FIN.
                let state = conn.state_within(Duration::from_secs(5));
                if state != ConnState::Closed {
                    problems.push(format!("request {i}: `connection: close`, then {state:?}"));
                }
                conn = RawConn::connect(port).expect("reconnect");
                conn.set_read_timeout(WAIT).expect("timeout");
                true
            } else {
                let state = conn.state_within(Duration::from_millis(50));
                if state != ConnState::Open {
                    problems.push(format!("request {i}: kept alive, then {state:?}"));
                }
                false
            };
            fates.push(Fate {
                status: response.status,
                closed,
            });
        }
        (listener, case, fates, problems)
    });
    let mut by_listener = HashMap::new();
    for (listener, case, fates, problems) in results {
        assert!(problems.is_empty(), "{listener}: {problems:?}");
        let want: Vec<u16> = sequence
            .iter()
            .map(|(verdict, body)| {
                let verdict = if *verdict == "allow" {
                    Verdict::Allow
                } else {
                    Verdict::Deny
                };
                by_size(&listener, Proto::H1, body.bytes().len(), verdict)
            })
            .collect();
        let got: Vec<u16> = fates.iter().map(|f| f.status).collect();
        assert_eq!(got, want, "{listener}: statuses");
        let allowed: Vec<String> = (0..sequence.len())
            .filter(|&i| want[i] == 200)
            .map(|i| i.to_string())
            .collect();
        let upstream: Vec<String> = h
            .backend
            .requests(&case)
            .iter()
            .filter_map(|r| r.header("x-req-id"))
            .collect();
        assert_eq!(upstream, allowed, "{listener}: what reached the upstream");
        assert_eq!(h.backend.arrivals(&case), allowed.len(), "{listener}");
        by_listener.insert(listener, fates);
    }
    for listener in WASM {
        assert_eq!(
            by_listener.get(listener),
            by_listener.get(&native_twin(listener)),
            "{listener}: the connection's fate is not what native's is"
        );
    }
}

#[test]
fn pipelined_requests_each_get_their_own_decision() {
    let h = harness();
    let mut items = Vec::new();
    for listener in all_listeners() {
        for with_bodies in [false, true] {
            items.push((listener.clone(), with_bodies));
        }
    }
    let results = parallel(items, 12, |(listener, with_bodies)| {
        let case = h.case(&format!("pipeline-{listener}-{with_bodies}"));
        by_header(&case);
        let mut bytes = Vec::new();
        for (i, verdict) in ["allow", "deny", "allow"].iter().enumerate() {
            let headers = [
                ("x-case", case.clone()),
                ("x-verdict", verdict.to_string()),
                ("x-req-id", i.to_string()),
            ];
            bytes.extend(if with_bodies {
                raw_http::with_length("POST", "/", &headers, &payload(100, 50 + i as u64))
            } else {
                raw_http::head("GET", "/", &headers)
            });
        }
        let mut conn = RawConn::connect(h.envoy.port(&listener)).expect("connect");
        conn.set_read_timeout(WAIT).expect("timeout");
        // All three in one write.
        conn.send(&bytes).expect("write");
        let responses: Vec<Result<(u16, Vec<u8>), String>> = (0..3)
            .map(|_| conn.read_response().map(|r| (r.status, r.body)))
            .collect();
        (listener, with_bodies, case, responses)
    });
    for (listener, with_bodies, case, responses) in results {
        let what = format!("{listener} (bodies: {with_bodies})");
        let statuses: Vec<Result<u16, String>> =
            responses.iter().map(|r| r.clone().map(|r| r.0)).collect();
        assert_eq!(statuses, [Ok(200), Ok(403), Ok(200)], "{what}");
        assert_eq!(
            responses[1].as_ref().map(|r| r.1.clone()),
            Ok(DENIAL_BODY.as_bytes().to_vec()),
            "{what}"
        );
        let upstream: Vec<(String, Vec<u8>)> = h
            .backend
            .requests(&case)
            .into_iter()
            .map(|r| (r.header("x-req-id").unwrap_or_default(), r.body))
            .collect();
        let want: Vec<(String, Vec<u8>)> = [0u64, 2]
            .iter()
            .map(|&i| {
                let body = if with_bodies {
                    payload(100, 50 + i)
                } else {
                    Vec::new()
                };
                (i.to_string(), body)
            })
            .collect();
        assert_eq!(upstream, want, "{what}: exactly the allowed two, in order");
        assert_eq!(h.backend.arrivals(&case), 2, "{what}");
        assert_eq!(h.auth.checks(&case).len(), 3, "{what}: one check each");
    }
}

#[test]
fn client_that_hangs_up_while_its_check_is_pending() {
    let h = harness();
    // (listener, proto, declared body length, bytes sent before hanging up). HTTP/1.1 needs the
    // body incomplete: after a complete HTTP/1.1 request Envoy stops reading and cannot see the
    // client go (the same for native; see core.rs), so `strict`, which checks only a whole body,
    // is hung up on over h2c only.
    let mut items: Vec<(String, Proto, usize, usize)> = Vec::new();
    for listener in [PLAIN, PARTIAL] {
        let (declared, sent) = if listener == PLAIN {
            (100, 10)
        } else {
            (10_000, 5_000)
        };
        for l in [listener.to_owned(), native_twin(listener)] {
            items.push((l, Proto::H1, declared, sent));
        }
    }
    for listener in all_listeners() {
        items.push((listener, Proto::H2, 1024, 1024));
    }
    let results = parallel(items, 12, |(listener, proto, declared, sent)| {
        let case = h.case(&format!("hangup-{listener}-{proto:?}"));
        // An allow, held until Envoy has cancelled the call (or 20 s have passed): a request let
        // through after its client left would show upstream, whatever the machine's speed.
        let gate = Gate::default();
        h.auth.respond(
            &case,
            AuthAction::Hold(gate.clone(), Box::new(AuthAction::respond(allow()))),
        );
        let port = h.envoy.port(&listener);
        let body = payload(declared, 60);
        let checked = || !h.auth.checks(&case).is_empty();
        let check_seen = match proto {
            Proto::H1 => {
                let mut conn = RawConn::connect(port).expect("connect");
                let headers = [
                    ("x-case", case.clone()),
                    ("content-length", declared.to_string()),
                ];
                let mut bytes = raw_http::head("POST", "/", &headers);
                bytes.extend_from_slice(&body[..sent]);
                conn.send(&bytes).expect("write");
                let seen = poll(Duration::from_secs(5), checked);
                conn.hang_up();
                seen
            }
            Proto::H2 => {
                let request = H2Request::new("POST", "/")
                    .header("x-case", case.clone())
                    .body(&body);
                h.block_on(async {
                    tokio::select! {
                        _ = h2_client::send(port, &request) => false,
                        _ = async {
                            while !checked() {
                                tokio::time::sleep(Duration::from_millis(5)).await;
                            }
                        } => true,
                        _ = tokio::time::sleep(Duration::from_secs(5)) => false,
                    }
                    // Leaving the select drops the request: hyper resets the stream.
                })
            }
        };
        // Wait until Envoy cancels the call; if it does not, let the answer go, and wait until
        // the server is done with the call.
        poll(Duration::from_secs(20), || {
            h.auth.outcomes(&case).cancelled == 1
        });
        gate.open();
        poll(Duration::from_secs(30), || {
            let o = h.auth.outcomes(&case);
            o.answered + o.cancelled == 1
        });
        // The stream is over once it is logged; an answer would have let the request go at
        // once, so give it a moment more to show.
        h.access_log(&case, 1);
        let leaked = poll(Duration::from_millis(200), || h.backend.arrivals(&case) > 0);
        let outcome = h.auth.outcomes(&case);
        (listener, proto, case, check_seen, outcome, leaked)
    });
    let mut cancelled = HashMap::new();
    for (listener, proto, case, check_seen, outcome, leaked) in results {
        let what = format!("{listener} {proto:?}");
        assert!(check_seen, "{what}: the check never went out");
        assert!(
            !leaked,
            "{what}: reached the upstream after its client left"
        );
        assert_eq!(
            outcome.answered + outcome.cancelled,
            1,
            "{what}: {outcome:?}"
        );
        assert_eq!(h.access_log(&case, 1).len(), 1, "{what}: logged once");
        cancelled.insert((listener, proto), outcome.cancelled == 1);
    }
    for ((listener, proto), was_cancelled) in &cancelled {
        if !listener.starts_with("native_") {
            assert_eq!(
                Some(was_cancelled),
                cancelled.get(&(native_twin(listener), *proto)),
                "{listener} {proto:?}: native cancels its call when the client goes, or not, alike"
            );
            assert!(
                was_cancelled,
                "{listener} {proto:?}: the pending call was not cancelled"
            );
        }
    }
    // Every listener still serves.
    for listener in all_listeners() {
        let case = h.case("after-hangup");
        let got = send(h, &listener, Proto::H1, &case, &[], &Body::None);
        assert_eq!(got.status, 200, "{listener}");
    }
    assert!(!h.envoy.log().contains("panic"), "{}", h.envoy.log());
}

#[test]
fn auth_server_that_breaks_mid_answer_fails_closed() {
    let bodies = [
        ("no-body", Body::None),
        ("1KB", Body::Length(payload(1024, 70))),
    ];
    let mut requests = Vec::new();
    for (label, body) in &bodies {
        for &proto in &PROTOS {
            // The server sends its headers and half the message, then resets the stream.
            for listener in all_listeners() {
                requests.push((
                    listener,
                    proto,
                    label.to_string(),
                    body.clone(),
                    Verdict::Reset,
                ));
            }
            // The server accepts the connection and closes it at once.
            for listener in ["hangup", "partial_hangup"] {
                for l in [listener.to_owned(), native_twin(listener)] {
                    requests.push((
                        l,
                        proto,
                        label.to_string(),
                        body.clone(),
                        Verdict::Unreachable,
                    ));
                }
            }
        }
    }
    let seen = run_matrix("broken-auth", requests);
    assert_matrix(&seen, |_| false);
    let h = harness();
    for s in seen.iter().filter(|s| s.verdict == Verdict::Reset) {
        assert_eq!(
            h.auth.outcomes(&s.case).answered,
            1,
            "{}: the server did start its answer",
            s.what()
        );
        assert_eq!(s.details, ["ext_authz_error"], "{}", s.what());
    }
}

#[test]
fn with_request_body_without_allow_on_headers_stop_iteration() {
    let h = harness();
    // First an upgrade request, checked at its headers and let go: Envoy then hands the filter
    // the rest of that stream whatever the setting, which proves nothing about the setting and
    // must not switch the bound off for the requests after it.
    let case = h.case("unset-upgrade-first");
    slow(&case, Verdict::Allow);
    let mut headers: Vec<(&str, String)> =
        WEBSOCKET.iter().map(|(k, v)| (*k, v.to_string())).collect();
    headers.push(("x-case", case.clone()));
    let mut conn = RawConn::connect(h.envoy.port("unset")).expect("connect");
    conn.set_read_timeout(WAIT).expect("timeout");
    conn.send(&raw_http::head("GET", "/chat", &headers))
        .expect("write");
    let upgrade = conn.read_response().expect("the upgrade request's answer");
    assert_eq!(upgrade.status, 200, "checked at once and allowed");
    conn.send(b"bytes of the upgraded stream").expect("write");
    conn.hang_up();
    assert_eq!(
        h.access_log(&case, 1).len(),
        1,
        "the upgraded stream is over"
    );
    // A body that Envoy never hands to the filter: bounded, failed closed, never checked.
    for proto in PROTOS {
        let case = h.case(&format!("unset-body-{proto:?}"));
        slow(&case, Verdict::Allow);
        let got = send(
            h,
            "unset",
            proto,
            &case,
            &[],
            &Body::Length(payload(1024, 80)),
        );
        assert_eq!(got.status, 403, "{proto:?}");
        assert!(
            got.body.is_empty(),
            "{proto:?}: the failure mode's reply has no body"
        );
        assert!(
            got.elapsed < Duration::from_secs(4),
            "{proto:?}: took {:?}",
            got.elapsed
        );
        assert!(
            h.auth.checks(&case).is_empty(),
            "{proto:?}: checked without its body"
        );
        assert_eq!(h.backend.arrivals(&case), 0, "{proto:?}");
        assert_eq!(
            h.access_log(&case, 1),
            [(403, "ext_authz_error".to_owned())],
            "{proto:?}"
        );
    }
    assert!(
        poll(Duration::from_secs(5), || h
            .envoy
            .log()
            .lines()
            .any(|l| l.contains("allow_on_headers_stop_iteration"))),
        "no log line names the missing setting:\n{}",
        h.envoy.log()
    );
    // Without a body there is nothing to wait for: checked at once, by the server.
    for proto in PROTOS {
        for verdict in [Verdict::Deny, Verdict::Allow] {
            let case = h.case(&format!("unset-nobody-{proto:?}-{verdict:?}"));
            slow(&case, verdict);
            let got = send(h, "unset", proto, &case, &[], &Body::None);
            let what = format!("{proto:?} {verdict:?}");
            assert_eq!(h.auth.checks(&case).len(), 1, "{what}");
            match verdict {
                Verdict::Allow => {
                    assert_eq!(got.status, 200, "{what}");
                    assert_eq!(h.backend.requests(&case).len(), 1, "{what}");
                }
                _ => {
                    assert_eq!(
                        (got.status, got.body.as_slice()),
                        (403, DENIAL_BODY.as_bytes()),
                        "{what}"
                    );
                    assert_eq!(h.backend.arrivals(&case), 0, "{what}");
                }
            }
        }
    }
}

#[test]
fn bounded_concurrent_load() {
    const REQUESTS: usize = 400;
    const AT_ONCE: usize = 16;
    const MAX_SIZE: usize = 64 * 1024;
    let h = harness();
    let case = h.case("load");
    by_header(&case);
    let mut rng = Rng::new(0x5EED_1234_ABCD_0001);
    struct Item {
        id: usize,
        listener: &'static str,
        proto: Proto,
        verdict: Verdict,
        body: Vec<u8>,
        delay_ms: u64,
    }
    let items: Vec<Item> = (0..REQUESTS)
        .map(|id| Item {
            id,
            listener: WASM[rng.below(3)],
            proto: PROTOS[rng.below(2)],
            verdict: if rng.below(2) == 0 {
                Verdict::Allow
            } else {
                Verdict::Deny
            },
            body: payload(rng.below(MAX_SIZE + 1), 1000 + id as u64),
            delay_ms: rng.below(20) as u64,
        })
        .collect();
    let expected: Vec<(usize, &'static str, Verdict, usize, u64, u16)> = items
        .iter()
        .map(|i| {
            let want = by_size(i.listener, i.proto, i.body.len(), i.verdict);
            (
                i.id,
                i.listener,
                i.verdict,
                i.body.len(),
                hash(&i.body),
                want,
            )
        })
        .collect();
    let started = Instant::now();
    let got = parallel(items, AT_ONCE, |item| {
        let headers = [
            ("x-req-id", item.id.to_string()),
            (
                "x-verdict",
                if item.verdict == Verdict::Allow {
                    "allow"
                } else {
                    "deny"
                }
                .to_owned(),
            ),
            ("x-delay-ms", item.delay_ms.to_string()),
        ];
        send(
            h,
            item.listener,
            item.proto,
            &case,
            &headers,
            &Body::Length(item.body),
        )
        .status
    });
    let elapsed = started.elapsed();
    eprintln!("{REQUESTS} requests, {AT_ONCE} at a time: {elapsed:?}");

    let mut failures = Vec::new();
    for ((id, listener, verdict, len, _, want), status) in expected.iter().zip(&got) {
        if status != want {
            failures.push(format!(
                "#{id} {listener} {verdict:?} {len}B: {status}, want {want}"
            ));
        }
    }
    // Every allowed body arrived once, byte for byte; nothing else arrived.
    let mut upstream: HashMap<usize, Vec<u64>> = HashMap::new();
    for request in h.backend.requests(&case) {
        let id = request
            .header("x-req-id")
            .and_then(|i| i.parse().ok())
            .unwrap_or(usize::MAX);
        upstream.entry(id).or_default().push(hash(&request.body));
    }
    let allowed: Vec<_> = expected.iter().filter(|e| e.5 == 200).collect();
    for (id, listener, _, len, sent_hash, _) in &allowed {
        match upstream.remove(id).as_deref() {
            Some([got]) if got == sent_hash => {}
            other => failures.push(format!(
                "#{id} {listener} {len}B allowed: upstream {other:x?}, sent {sent_hash:x}"
            )),
        }
    }
    for (id, hashes) in &upstream {
        failures.push(format!(
            "#{id}: not allowed, yet {} reached the upstream",
            hashes.len()
        ));
    }
    let arrivals = h.backend.arrivals(&case);
    if arrivals != allowed.len() {
        failures.push(format!(
            "{arrivals} heads upstream for {} allowed",
            allowed.len()
        ));
    }
    // Each check saw what its listener sends: no body, the whole body, or its first MAX_BODY bytes.
    let checks: HashMap<usize, (u64, usize, Option<String>)> = h
        .auth
        .checks(&case)
        .iter()
        .map(|c| {
            let (hash, len, _, partial) = check_view(c);
            let id = c
                .header("x-req-id")
                .and_then(|i| i.parse().ok())
                .unwrap_or(usize::MAX);
            (id, (hash, len, partial))
        })
        .collect();
    for (id, listener, _, len, _, want) in &expected {
        let body = payload(*len, 1000 + *id as u64);
        let seen = match (*listener, *want) {
            (STRICT, 413) => None,
            // No body to wait for (an empty one ends the stream with the headers).
            _ if *len == 0 => Some((hash(&[]), 0, None)),
            (PLAIN, _) => Some((hash(&[]), 0, None)),
            (STRICT, _) => Some((hash(&body), *len, Some("false".to_owned()))),
            _ => {
                let sent = &body[..(*len).min(MAX_BODY)];
                Some((hash(sent), sent.len(), Some((*len > MAX_BODY).to_string())))
            }
        };
        if checks.get(id) != seen.as_ref() {
            failures.push(format!(
                "#{id} {listener} {len}B: check saw {:?}, want {seen:?}",
                checks.get(id)
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} failure(s) of {REQUESTS}:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(elapsed < Duration::from_secs(60), "took {elapsed:?}");
}

/// What a gRPC client sees of an answer: status, content-type, grpc-status, grpc-message, body.
type GrpcView = (u16, Option<String>, Option<String>, Option<String>, Vec<u8>);

#[test]
fn grpc_calls_get_the_answer_native_gives() {
    let h = harness();
    // A unary call's message: field 1 = "hello".
    let message = grpc_frame(b"\x0a\x05hello");
    let mut items = Vec::new();
    for listener in WASM {
        for l in [listener.to_owned(), native_twin(listener)] {
            for verdict in [Verdict::Deny, Verdict::Reset, Verdict::Allow] {
                items.push((l.clone(), verdict));
            }
        }
    }
    let results = parallel(items, 12, |(listener, verdict)| {
        let case = h.case(&format!("grpc-{listener}-{verdict:?}"));
        slow(&case, verdict);
        let request = H2Request::new("POST", "/test.Echo/Say")
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .header("x-case", case.clone())
            .step(Step::Data(message.clone()));
        let port = h.envoy.port(&listener);
        let response = h
            .block_on(async {
                tokio::time::timeout(WAIT, h2_client::send(port, &request))
                    .await
                    .map_err(|_| "no answer".to_owned())?
            })
            .unwrap_or_else(|e| panic!("{listener} {verdict:?}: {e}"));
        let view: GrpcView = (
            response.status,
            response.header("content-type").map(str::to_owned),
            response.grpc("grpc-status").map(str::to_owned),
            response.grpc("grpc-message").map(str::to_owned),
            response.body.clone(),
        );
        let details: Vec<String> = h.access_log(&case, 1).into_iter().map(|d| d.1).collect();
        (listener, verdict, case, view, details)
    });
    let mut views = HashMap::new();
    for (listener, verdict, case, view, details) in &results {
        let what = format!("{listener} {verdict:?}");
        let upstream = h.backend.requests(case);
        if *verdict == Verdict::Allow {
            assert_eq!(upstream.len(), 1, "{what}");
            assert_eq!(
                upstream[0].body, message,
                "{what}: the message arrives whole"
            );
        } else {
            assert_eq!(h.backend.arrivals(case), 0, "{what}: reached the upstream");
            // gRPC-shaped, as Envoy answers a gRPC request locally: HTTP 200, grpc-status 7
            // (PERMISSION_DENIED, from the 403), the denial's body as grpc-message.
            let message = (*verdict == Verdict::Deny).then(|| DENIAL_BODY.to_owned());
            let want: GrpcView = (
                200,
                Some("application/grpc".to_owned()),
                Some("7".to_owned()),
                message,
                Vec::new(),
            );
            assert_eq!(view, &want, "{what}");
        }
        views.insert(
            (listener.clone(), *verdict),
            (view.clone(), details.clone()),
        );
    }
    for listener in WASM {
        for verdict in [Verdict::Deny, Verdict::Reset, Verdict::Allow] {
            assert_eq!(
                views.get(&(listener.to_owned(), verdict)),
                views.get(&(native_twin(listener), verdict)),
                "{listener} {verdict:?}: not the answer native gives"
            );
        }
    }
}
