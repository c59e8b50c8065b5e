//! A raw HTTP/2 "gRPC" auth server: it reads the Check call like any server, then answers with
//! whatever frames a test scripts for the call's case (its `x-case` header), byte for byte, so
//! tests can send answers no real gRPC library would (wrong length prefixes, two messages, bad
//! grpc-status values, answers cut off or trickled past the deadline).
//!
//! The server can be killed (listener and every connection closed at once) and started again on
//! the same port, which is what the chaos tests do to it while Envoy's cluster points at it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use envoy_types::pb::envoy::service::auth::v3::CheckRequest;
use prost::Message;
use tokio::net::TcpListener;
use tokio::task::AbortHandle;

use crate::auth_server::CASE_HEADER;

/// The bootstrap cluster name of the raw server (see [`RawGrpcServer::cluster`]).
pub const RAW_GRPC_CLUSTER: &str = "ext_authz_raw";

/// One step of an answer, played in order.
#[derive(Debug, Clone)]
pub enum Step {
    /// The response headers (`:status` is `status`); `end` ends the stream with them, which with a
    /// `grpc-status` header makes a trailers-only answer.
    Headers {
        status: u16,
        headers: Vec<(String, Vec<u8>)>,
        end: bool,
    },
    /// DATA bytes as they are: the gRPC length prefix is the test's business.
    Data {
        bytes: Vec<u8>,
        end: bool,
    },
    /// Trailers; they end the stream.
    Trailers(Vec<(String, Vec<u8>)>),
    Sleep(Duration),
    /// RST_STREAM (INTERNAL_ERROR).
    Reset,
}

/// A scripted answer: its steps.
#[derive(Debug, Clone, Default)]
pub struct RawAnswer(pub Vec<Step>);

impl RawAnswer {
    /// A well-formed unary answer: headers, `message` behind a correct 5-byte prefix, grpc-status 0.
    pub fn message(message: &[u8]) -> Self {
        Self::data(framed(message), "0")
    }

    /// Headers, `data` as it is (framed or not), then trailers with `grpc_status`.
    pub fn data(data: Vec<u8>, grpc_status: &str) -> Self {
        Self(vec![
            grpc_headers(false),
            Step::Data {
                bytes: data,
                end: false,
            },
            Step::Trailers(vec![(
                "grpc-status".into(),
                grpc_status.as_bytes().to_vec(),
            )]),
        ])
    }

    /// A trailers-only answer: one HEADERS frame carrying `grpc-status` (and a message).
    pub fn trailers_only(grpc_status: &[u8], message: &str) -> Self {
        let mut headers = vec![
            ("content-type".to_owned(), b"application/grpc".to_vec()),
            ("grpc-status".to_owned(), grpc_status.to_vec()),
        ];
        if !message.is_empty() {
            headers.push(("grpc-message".into(), message.as_bytes().to_vec()));
        }
        Self(vec![Step::Headers {
            status: 200,
            headers,
            end: true,
        }])
    }
}

/// `message` behind the gRPC length prefix (uncompressed).
pub fn framed(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + 5);
    out.push(0);
    out.extend_from_slice(
        &u32::try_from(message.len())
            .unwrap_or(u32::MAX)
            .to_be_bytes(),
    );
    out.extend_from_slice(message);
    out
}

/// The response headers of a gRPC answer that goes on with a message.
pub fn grpc_headers(end: bool) -> Step {
    Step::Headers {
        status: 200,
        headers: vec![("content-type".into(), b"application/grpc".to_vec())],
        end,
    }
}

type Script = Arc<dyn Fn(&CheckRequest) -> RawAnswer + Send + Sync>;

#[derive(Default)]
struct State {
    scripts: Mutex<HashMap<String, Script>>,
    /// Calls per case, counted when the Check message is read.
    calls: Mutex<HashMap<String, usize>>,
    /// Every task of the running server (accept loop, connections, calls), aborted by `kill`.
    tasks: Mutex<Vec<AbortHandle>>,
}

#[derive(Clone)]
pub struct RawGrpcServer {
    pub port: u16,
    state: Arc<State>,
}

impl RawGrpcServer {
    /// Binds an ephemeral loopback port and serves on the current runtime.
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the raw gRPC server");
        let port = listener.local_addr().expect("raw gRPC address").port();
        let server = Self {
            port,
            state: Arc::default(),
        };
        server.serve(listener);
        server
    }

    /// The bootstrap cluster for this server (HTTP/2, prior knowledge).
    pub fn cluster(&self) -> serde_json::Value {
        crate::envoy::static_cluster(RAW_GRPC_CLUSTER, self.port, true)
    }

    /// Scripts the answer for a case's checks; unscripted cases get an OK with no changes.
    pub fn script(
        &self,
        case: &str,
        script: impl Fn(&CheckRequest) -> RawAnswer + Send + Sync + 'static,
    ) {
        if let Ok(mut scripts) = self.state.scripts.lock() {
            scripts.insert(case.to_owned(), Arc::new(script));
        }
    }

    /// Always answers a case's checks with `answer`.
    pub fn respond(&self, case: &str, answer: RawAnswer) {
        self.script(case, move |_| answer.clone());
    }

    /// How many Check calls of a case the server has read.
    pub fn calls(&self, case: &str) -> usize {
        self.state
            .calls
            .lock()
            .map(|c| c.get(case).copied().unwrap_or(0))
            .unwrap_or(0)
    }

    /// Closes the listener and every connection and call at once, as a crashed server would.
    pub fn kill(&self) {
        if let Ok(mut tasks) = self.state.tasks.lock() {
            for task in tasks.drain(..) {
                task.abort();
            }
        }
    }

    /// Serves again on the same port (after [`RawGrpcServer::kill`]), retrying the bind for up
    /// to 10 s while the old socket goes away.
    pub async fn restart(&self) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            match TcpListener::bind(("127.0.0.1", self.port)).await {
                Ok(listener) => return self.serve(listener),
                Err(error) if tokio::time::Instant::now() > deadline => {
                    panic!("could not bind port {} again: {error}", self.port)
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    }

    fn serve(&self, listener: TcpListener) {
        let state = Arc::clone(&self.state);
        let accept = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let _ = stream.set_nodelay(true);
                let conn_state = Arc::clone(&state);
                let conn = tokio::spawn(async move { connection(stream, conn_state).await });
                track(&state, conn.abort_handle());
            }
        });
        track(&self.state, accept.abort_handle());
    }
}

fn track(state: &State, task: AbortHandle) {
    if let Ok(mut tasks) = state.tasks.lock() {
        tasks.retain(|t| !t.is_finished());
        tasks.push(task);
    }
}

async fn connection(stream: tokio::net::TcpStream, state: Arc<State>) {
    let Ok(mut conn) = h2::server::handshake(stream).await else {
        return;
    };
    while let Some(Ok((request, respond))) = conn.accept().await {
        let call_state = Arc::clone(&state);
        let call = tokio::spawn(async move { call(request, respond, call_state).await });
        track(&state, call.abort_handle());
    }
}

async fn call(
    request: http::Request<h2::RecvStream>,
    respond: h2::server::SendResponse<Bytes>,
    state: Arc<State>,
) {
    let mut body = request.into_body();
    let mut bytes = Vec::new();
    while let Some(Ok(chunk)) = body.data().await {
        let _ = body.flow_control().release_capacity(chunk.len());
        bytes.extend_from_slice(&chunk);
    }
    let check = bytes
        .get(5..)
        .and_then(|m| CheckRequest::decode(m).ok())
        .unwrap_or_default();
    let case = case_of(&check);
    if let Ok(mut calls) = state.calls.lock() {
        *calls.entry(case.clone()).or_default() += 1;
    }
    let script = state
        .scripts
        .lock()
        .ok()
        .and_then(|s| s.get(&case).cloned());
    let answer = match script {
        Some(script) => script(&check),
        None => RawAnswer::message(&[]),
    };
    play(respond, answer).await;
}

/// Plays an answer's steps; stops at the first one the peer no longer takes (Envoy reset the
/// call at its deadline, say).
async fn play(mut respond: h2::server::SendResponse<Bytes>, answer: RawAnswer) {
    let mut stream: Option<h2::SendStream<Bytes>> = None;
    for step in answer.0 {
        let done = match step {
            Step::Headers {
                status,
                headers,
                end,
            } => {
                let mut builder = http::Response::builder().status(status);
                for (name, value) in headers {
                    builder = builder.header(name, value);
                }
                let Ok(response) = builder.body(()) else {
                    return;
                };
                match respond.send_response(response, end) {
                    Ok(s) => {
                        stream = Some(s);
                        false
                    }
                    Err(_) => true,
                }
            }
            Step::Data { bytes, end } => match stream.as_mut() {
                Some(s) => send_all(s, Bytes::from(bytes), end).await.is_err(),
                None => true,
            },
            Step::Trailers(trailers) => {
                let mut map = http::HeaderMap::new();
                for (name, value) in trailers {
                    if let (Ok(n), Ok(v)) = (
                        http::HeaderName::from_bytes(name.as_bytes()),
                        http::HeaderValue::from_bytes(&value),
                    ) {
                        map.append(n, v);
                    }
                }
                match stream.as_mut() {
                    Some(s) => s.send_trailers(map).is_err(),
                    None => true,
                }
            }
            Step::Sleep(duration) => {
                tokio::time::sleep(duration).await;
                false
            }
            Step::Reset => {
                match stream.as_mut() {
                    Some(s) => s.send_reset(h2::Reason::INTERNAL_ERROR),
                    None => respond.send_reset(h2::Reason::INTERNAL_ERROR),
                }
                true
            }
        };
        if done {
            return;
        }
    }
    // A stream whose end went out may be dropped: h2 still sends what it queued. One that did
    // not end is reset on drop, which is the script's to choose (a final `Sleep` holds it).
    drop(stream);
}

/// Sends `data` as flow control allows (h2 would otherwise buffer all of it at once).
async fn send_all(
    stream: &mut h2::SendStream<Bytes>,
    mut data: Bytes,
    end: bool,
) -> Result<(), h2::Error> {
    if data.is_empty() {
        return stream.send_data(data, end);
    }
    while !data.is_empty() {
        stream.reserve_capacity(data.len());
        let granted = match std::future::poll_fn(|cx| stream.poll_capacity(cx)).await {
            Some(Ok(n)) if n > 0 => n,
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(e),
            None => return Err(h2::Error::from(h2::Reason::CANCEL)),
        };
        let chunk = data.split_to(granted.min(data.len()));
        stream.send_data(chunk, end && data.is_empty())?;
    }
    Ok(())
}

/// The `x-case` a CheckRequest carries; empty when it has none.
pub fn case_of(check: &CheckRequest) -> String {
    check
        .attributes
        .as_ref()
        .and_then(|a| a.request.as_ref())
        .and_then(|r| r.http.as_ref())
        .and_then(|h| h.headers.get(CASE_HEADER))
        .cloned()
        .unwrap_or_default()
}
