//! Requests of every shape for the "nothing gets past" matrix tests: bodies by content-length,
//! chunked, trickled or with trailers, over HTTP/1.1 (raw, so a request can be left unfinished)
//! or h2c; what the client got of each; a bounded thread pool to send many at once; and what an
//! auth server saw of a body.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::auth_server::RecordedCheck;
use crate::h2_client::{self, H2Request, Step};
use crate::raw_http;
use crate::rng::Rng;
use crate::Harness;

/// The longest any request may wait for its answer: a hang fails the test, not the suite.
pub const WAIT: Duration = Duration::from_secs(10);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Proto {
    H1,
    H2,
}

pub const PROTOS: [Proto; 2] = [Proto::H1, Proto::H2];

#[derive(Clone, Debug)]
pub enum Body {
    /// A GET with no body.
    None,
    /// `content-length` and the bytes.
    Length(Vec<u8>),
    /// HTTP/1.1: chunked encoding in pieces of this size; h2: data frames, no content-length.
    Chunked(Vec<u8>, usize),
    /// `content-length`, the bytes sent in pieces of this size with a pause before each.
    Trickle(Vec<u8>, usize, Duration),
    /// As `Trickle`, but over HTTP/1.1 the last piece waits for the answer: for a request that
    /// must be decided before its body is all sent.
    TrickleHeld(Vec<u8>, usize, Duration),
    /// The bytes (maybe none), then trailers. HTTP/1.1: chunked with a trailer section.
    Trailers(Vec<u8>),
}

impl Body {
    pub fn bytes(&self) -> &[u8] {
        match self {
            Body::None => &[],
            Body::Length(b)
            | Body::Chunked(b, _)
            | Body::Trickle(b, ..)
            | Body::TrickleHeld(b, ..)
            | Body::Trailers(b) => b,
        }
    }

    pub fn method(&self) -> &'static str {
        match self {
            Body::None => "GET",
            _ => "POST",
        }
    }
}

pub const TRAILER: (&str, &str) = ("x-checksum", "abc123");

/// What the client got.
#[derive(Debug, Clone)]
pub struct Got {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// HTTP/1.1: the whole request had been written when the answer was complete.
    pub sent_all: Option<bool>,
    pub elapsed: Duration,
}

impl Got {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Printable bytes, different for each seed (the `body` of a CheckRequest is UTF-8).
pub fn payload(len: usize, seed: u64) -> Vec<u8> {
    let mut rng = Rng::new(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    (0..len).map(|_| b'a' + rng.below(26) as u8).collect()
}

/// FNV-1a, to compare bodies by hash in messages that stay readable.
pub fn hash(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

pub fn send(
    h: &Harness,
    listener: &str,
    proto: Proto,
    case: &str,
    headers: &[(&str, String)],
    body: &Body,
) -> Got {
    let mut headers = headers.to_vec();
    headers.push(("x-case", case.to_owned()));
    let port = h.envoy.port(listener);
    match proto {
        Proto::H1 => send_h1(port, &headers, body),
        Proto::H2 => send_h2(h, port, &headers, body),
    }
    .unwrap_or_else(|e| panic!("{listener} {proto:?} {case}: {e}"))
}

pub fn send_h1(port: u16, headers: &[(&str, String)], body: &Body) -> Result<Got, String> {
    let method = body.method();
    let mut parts: Vec<(Duration, Vec<u8>)> = Vec::new();
    match body {
        Body::None => parts.push((Duration::ZERO, raw_http::head(method, "/", headers))),
        Body::Length(bytes) => parts.push((
            Duration::ZERO,
            raw_http::with_length(method, "/", headers, bytes),
        )),
        Body::Chunked(bytes, chunk) => {
            let mut h = headers.to_vec();
            h.push(("transfer-encoding", "chunked".to_owned()));
            let mut request = raw_http::head(method, "/", &h);
            request.extend(raw_http::chunked(bytes, *chunk, &[]));
            parts.push((Duration::ZERO, request));
        }
        Body::Trailers(bytes) => {
            let mut h = headers.to_vec();
            h.push(("transfer-encoding", "chunked".to_owned()));
            h.push(("trailer", TRAILER.0.to_owned()));
            let mut request = raw_http::head(method, "/", &h);
            request.extend(raw_http::chunked(bytes, 1024, &[TRAILER]));
            parts.push((Duration::ZERO, request));
        }
        Body::Trickle(bytes, piece, pause) | Body::TrickleHeld(bytes, piece, pause) => {
            let mut h = headers.to_vec();
            h.push(("content-length", bytes.len().to_string()));
            parts.push((Duration::ZERO, raw_http::head(method, "/", &h)));
            for chunk in bytes.chunks(*piece) {
                parts.push((*pause, chunk.to_vec()));
            }
            if let (Body::TrickleHeld(..), Some(last)) = (body, parts.last_mut()) {
                last.0 = raw_http::UNTIL_ANSWERED;
            }
        }
    }
    let exchange = raw_http::exchange_within(port, parts, None, WAIT);
    let response = exchange.response?;
    Ok(Got {
        status: response.status,
        headers: response.headers,
        body: response.body,
        sent_all: Some(exchange.sent_all_before_response),
        elapsed: exchange.elapsed,
    })
}

pub fn send_h2(
    h: &Harness,
    port: u16,
    headers: &[(&str, String)],
    body: &Body,
) -> Result<Got, String> {
    let mut request = H2Request::new(body.method(), "/");
    for (name, value) in headers {
        request = request.header(name, value.clone());
    }
    request = match body {
        Body::None => request,
        Body::Length(bytes) if bytes.is_empty() => request.header("content-length", "0"),
        Body::Length(bytes) => request.body(bytes),
        Body::Chunked(bytes, chunk) => bytes
            .chunks(*chunk)
            .fold(request, |r, c| r.step(Step::Data(c.to_vec()))),
        Body::Trickle(bytes, piece, pause) | Body::TrickleHeld(bytes, piece, pause) => {
            bytes.chunks(*piece).fold(
                request.header("content-length", bytes.len().to_string()),
                |r, c| r.step(Step::Wait(*pause)).step(Step::Data(c.to_vec())),
            )
        }
        Body::Trailers(bytes) => {
            let request = if bytes.is_empty() {
                request
            } else {
                request.step(Step::Data(bytes.clone()))
            };
            request.step(Step::Trailers(vec![(
                TRAILER.0.to_owned(),
                TRAILER.1.to_owned(),
            )]))
        }
    };
    let started = Instant::now();
    let response = h.block_on(async {
        tokio::time::timeout(WAIT, h2_client::send(port, &request))
            .await
            .map_err(|_| format!("no response within {WAIT:?}"))?
    })?;
    Ok(Got {
        status: response.status,
        headers: response.headers,
        body: response.body,
        sent_all: None,
        elapsed: started.elapsed(),
    })
}

/// Runs `f` over `items` on at most `workers` threads; results in the items' order.
pub fn parallel<T: Send, R: Send>(
    items: Vec<T>,
    workers: usize,
    f: impl Fn(T) -> R + Sync,
) -> Vec<R> {
    let items: Vec<Mutex<Option<T>>> = items.into_iter().map(|i| Mutex::new(Some(i))).collect();
    let results: Vec<Mutex<Option<R>>> = items.iter().map(|_| Mutex::new(None)).collect();
    let next = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..workers.max(1) {
            scope.spawn(|| loop {
                let at = next.fetch_add(1, Ordering::Relaxed);
                let Some(slot) = items.get(at) else { return };
                let item = slot.lock().ok().and_then(|mut i| i.take());
                if let Some(item) = item {
                    let result = f(item);
                    if let Ok(mut r) = results[at].lock() {
                        *r = Some(result);
                    }
                }
            });
        }
    });
    results
        .into_iter()
        .map(|r| {
            r.into_inner()
                .ok()
                .flatten()
                .expect("every item ran (a worker panicked?)")
        })
        .collect()
}

/// What the auth server saw of a request's body: (hash and length of the body, size,
/// `x-envoy-auth-partial-body`).
pub fn check_view(check: &RecordedCheck) -> (u64, usize, i64, Option<String>) {
    let http = check.http();
    let body = if http.raw_body.is_empty() {
        http.body.as_bytes().to_vec()
    } else {
        http.raw_body.clone()
    };
    let partial = check.header("x-envoy-auth-partial-body").map(str::to_owned);
    // `size` is how much was buffered when the check went out: beyond the first max_request_bytes
    // that depends on how the bytes arrived, so a partial body's size is only checked for range.
    let size = if partial.as_deref() == Some("true") {
        assert!(
            http.size >= body.len() as i64,
            "size {} under the {} bytes sent",
            http.size,
            body.len()
        );
        -1
    } else {
        http.size
    };
    (hash(&body), body.len(), size, partial)
}

/// Polls `done` every 5 ms for up to `within`.
pub fn poll(within: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if done() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}
