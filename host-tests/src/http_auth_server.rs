//! An in-process HTTP authorization server with the behaviour of the Gloo custom-auth sample
//! (`shared/seeds/001`): a path under `/api/pets/1` gets 200, anything else 401 with
//! `x-server: pythonauth`. It records every request it gets, per `x-case`.
//!
//! Besides, for tests: `x-auth-status: N` answers N, every `x-auth-echo-<name>: v` request
//! header comes back as `<name>: v`, and `x-auth-fail-first: N` answers the case's first N
//! requests 503 (a server that fails, then recovers). A request without `x-case` (the config did
//! not let it go) is recorded under its `case=` query parameter.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::Full;
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
    let authority = request.uri().authority().map(|a| a.as_str().to_owned());
    let mut recorded = RecordedRequest::read(request).await;
    if let Some(authority) = authority {
        recorded
            .headers
            .push((":authority".into(), authority.into_bytes()));
    }
    let case = recorded
        .header_all("x-case")
        .first()
        .cloned()
        .unwrap_or_default();
    let earlier = crate::backend::recorded(&records, &case).len();
    let failing = recorded
        .header_all("x-auth-fail-first")
        .first()
        .and_then(|n| n.parse::<usize>().ok())
        .is_some_and(|n| earlier < n);
    let status = recorded
        .header_all("x-auth-status")
        .first()
        .and_then(|s| s.parse::<u16>().ok())
        .unwrap_or(if recorded.path.contains("/api/pets/1") {
            200
        } else {
            401
        });
    let status = if failing { 503 } else { status };
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
    if recorded.header_all(CASE_HEADER).is_empty() {
        if let Some(case) = recorded
            .path
            .split(['?', '&'])
            .find_map(|p| p.strip_prefix("case="))
        {
            let case = case.as_bytes().to_vec();
            recorded.headers.push((CASE_HEADER.into(), case));
        }
    }
    crate::backend::store(&records, recorded);
    Ok(response.body(Full::new(body)).unwrap_or_default())
}
