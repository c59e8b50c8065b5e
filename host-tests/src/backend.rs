//! An in-process upstream (HTTP/1.1 and h2c) that records every request that reaches it, per
//! `x-case`, and answers 200 with `x-backend: reached`.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;

use crate::auth_server::CASE_HEADER;

/// One request as the upstream received it.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    pub method: String,
    /// Path and query.
    pub path: String,
    /// In arrival order, repeats kept apart.
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
    pub trailers: Vec<(String, Vec<u8>)>,
}

impl RecordedRequest {
    /// Every value of a header, in order.
    pub fn header_all(&self, name: &str) -> Vec<String> {
        self.headers
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
            .collect()
    }

    /// The single value of a header; `None` when absent. Panics on repeats, which a test must see.
    pub fn header(&self, name: &str) -> Option<String> {
        let mut all = self.header_all(name);
        assert!(
            all.len() <= 1,
            "{name} appears {} times: {all:?}",
            all.len()
        );
        all.pop()
    }
}

type Records = Arc<Mutex<HashMap<String, Vec<RecordedRequest>>>>;
/// Request heads per case, counted as they arrive (before the body is read).
type Arrivals = Arc<Mutex<HashMap<String, usize>>>;

#[derive(Clone)]
pub struct Backend {
    pub addr: SocketAddr,
    records: Records,
    arrivals: Arrivals,
}

/// Serves HTTP/1.1 and h2c on `listener`, one task per connection, answering with `handle`.
pub fn serve<F, Fut>(listener: TcpListener, handle: F)
where
    F: Fn(hyper::Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<hyper::Response<Full<Bytes>>, Infallible>>
        + Send
        + 'static,
{
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let handle = handle.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(handle);
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
}

/// The recordings of a case, in arrival order.
pub fn recorded(
    records: &Mutex<HashMap<String, Vec<RecordedRequest>>>,
    case: &str,
) -> Vec<RecordedRequest> {
    records
        .lock()
        .map(|r| r.get(case).cloned().unwrap_or_default())
        .unwrap_or_default()
}

impl Backend {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the backend");
        let addr = listener.local_addr().expect("backend address");
        let records: Records = Arc::default();
        let arrivals: Arrivals = Arc::default();
        let shared = (Arc::clone(&records), Arc::clone(&arrivals));
        serve(listener, move |request| {
            let (records, arrivals) = (Arc::clone(&shared.0), Arc::clone(&shared.1));
            count_arrival(&arrivals, &request);
            record(records, request)
        });
        Self {
            addr,
            records,
            arrivals,
        }
    }

    /// How many request heads of a case have reached the upstream, counted on arrival: a request
    /// shows here before its body is read, and even if its body never completes.
    pub fn arrivals(&self, case: &str) -> usize {
        self.arrivals
            .lock()
            .map(|a| a.get(case).copied().unwrap_or(0))
            .unwrap_or(0)
    }

    /// The requests of a case that reached the upstream, in arrival order.
    pub fn requests(&self, case: &str) -> Vec<RecordedRequest> {
        recorded(&self.records, case)
    }
}

fn count_arrival(arrivals: &Arrivals, request: &hyper::Request<Incoming>) {
    let case = request
        .headers()
        .get_all(CASE_HEADER)
        .iter()
        .next_back()
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .unwrap_or_default();
    if let Ok(mut arrivals) = arrivals.lock() {
        *arrivals.entry(case).or_default() += 1;
    }
}

async fn record(
    records: Records,
    request: hyper::Request<Incoming>,
) -> Result<hyper::Response<Full<Bytes>>, Infallible> {
    let recorded = RecordedRequest::read(request).await;
    store(&records, recorded);
    let response = hyper::Response::builder()
        .status(200)
        .header("x-backend", "reached")
        .header("content-type", "text/plain")
        .body(Full::new(Bytes::from_static(b"backend says hello\n")))
        .unwrap_or_default();
    Ok(response)
}

/// Keeps a request under its case (the last `x-case` value).
pub fn store(records: &Mutex<HashMap<String, Vec<RecordedRequest>>>, recorded: RecordedRequest) {
    let case = recorded.header_all(CASE_HEADER).pop().unwrap_or_default();
    if let Ok(mut records) = records.lock() {
        records.entry(case).or_default().push(recorded);
    }
}

fn pairs(headers: &http::HeaderMap) -> Vec<(String, Vec<u8>)> {
    headers
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), v.as_bytes().to_vec()))
        .collect()
}

impl RecordedRequest {
    /// Reads a whole request as a server received it: head, body and trailers.
    pub async fn read(request: hyper::Request<Incoming>) -> Self {
        let (parts, body) = request.into_parts();
        let (body, trailers) = match body.collect().await {
            Ok(collected) => {
                let trailers = collected.trailers().map(pairs).unwrap_or_default();
                (collected.to_bytes().to_vec(), trailers)
            }
            Err(_) => (Vec::new(), Vec::new()),
        };
        Self {
            method: parts.method.to_string(),
            path: parts
                .uri
                .path_and_query()
                .map(|p| p.to_string())
                .unwrap_or_default(),
            headers: pairs(&parts.headers),
            body,
            trailers,
        }
    }
}
