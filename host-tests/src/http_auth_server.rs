//! An in-process HTTP authorization server with the behaviour of the Gloo custom-auth sample
//! (`shared/seeds/001`): a path under `/api/pets/1` gets 200, anything else 401 with
//! `x-server: pythonauth`. It records every request it gets, per `x-case`.
//!
//! Besides, for tests: `x-auth-status: N` answers N, and every `x-auth-echo-<name>: v` request
//! header comes back as `<name>: v`.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use tokio::net::TcpListener;

use crate::auth_server::CASE_HEADER;
use crate::backend::RecordedRequest;

type Records = Arc<Mutex<HashMap<String, Vec<RecordedRequest>>>>;

#[derive(Clone)]
pub struct HttpAuthServer {
    pub addr: SocketAddr,
    records: Records,
}

impl HttpAuthServer {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the HTTP auth server");
        let addr = listener.local_addr().expect("HTTP auth server address");
        let records: Records = Arc::default();
        let shared = Arc::clone(&records);
        crate::backend::serve(listener, move |request| {
            answer(Arc::clone(&shared), request)
        });
        Self { addr, records }
    }

    /// The authorization requests of a case, in arrival order.
    pub fn requests(&self, case: &str) -> Vec<RecordedRequest> {
        crate::backend::recorded(&self.records, case)
    }
}

async fn answer(
    records: Records,
    request: hyper::Request<Incoming>,
) -> Result<hyper::Response<Full<Bytes>>, Infallible> {
    let (parts, body) = request.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes().to_vec())
        .unwrap_or_default();
    let mut headers: Vec<(String, Vec<u8>)> = parts
        .headers
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), v.as_bytes().to_vec()))
        .collect();
    if let Some(authority) = parts.uri.authority() {
        headers.push((":authority".into(), authority.as_str().as_bytes().to_vec()));
    }
    let recorded = RecordedRequest {
        method: parts.method.to_string(),
        path: parts
            .uri
            .path_and_query()
            .map(|p| p.to_string())
            .unwrap_or_default(),
        headers,
        body,
        trailers: Vec::new(),
    };
    let status = recorded
        .header_all("x-auth-status")
        .first()
        .and_then(|s| s.parse::<u16>().ok())
        .unwrap_or(if recorded.path.contains("/api/pets/1") {
            200
        } else {
            401
        });
    let mut response = hyper::Response::builder()
        .status(status)
        .header("x-server", "pythonauth");
    for (name, value) in &recorded.headers {
        if let Some(echoed) = name.strip_prefix("x-auth-echo-") {
            response = response.header(echoed, value.as_slice());
        }
    }
    let body = if status == 200 {
        Bytes::new()
    } else {
        Bytes::from_static(b"Not authorized")
    };
    let case = recorded.header_all(CASE_HEADER).pop().unwrap_or_default();
    if let Ok(mut records) = records.lock() {
        records.entry(case).or_default().push(recorded);
    }
    Ok(response.body(Full::new(body)).unwrap_or_default())
}
