//! An in-process ext_authz gRPC server (tonic + envoy-types) that tests script per case and that
//! records every CheckRequest it gets, with its gRPC metadata and `:authority`.
//!
//! Tests running at once share it: a request's case is its `x-case` header, and scripts and
//! records are kept per case. Requests without a script are allowed.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use envoy_types::pb::envoy::config::core::v3::{HeaderValue, HeaderValueOption};
use envoy_types::pb::envoy::r#type::v3::HttpStatus;
use envoy_types::pb::envoy::service::auth::v3::authorization_server::{
    Authorization, AuthorizationServer,
};
use envoy_types::pb::envoy::service::auth::v3::check_response::HttpResponse;
use envoy_types::pb::envoy::service::auth::v3::{
    CheckRequest, CheckResponse, DeniedHttpResponse, OkHttpResponse,
};
use envoy_types::pb::google::rpc::Status as RpcStatus;
use tokio::net::TcpListener;

pub use crate::gate::Gate;

/// The request header that names a test case.
pub const CASE_HEADER: &str = "x-case";

/// What the server does with one check.
#[derive(Clone)]
pub enum AuthAction {
    Respond(Box<CheckResponse>),
    /// Ends the call with this gRPC status.
    Fail(tonic::Status),
    /// Waits, then acts.
    Delay(Duration, Box<AuthAction>),
    /// Starts an OK answer, then resets the stream mid-answer: the response headers and part of
    /// the message go out, then RST_STREAM (INTERNAL_ERROR).
    Reset,
    /// Waits until the gate is opened (by the test, on an event it saw), then acts.
    Hold(Gate, Box<AuthAction>),
}

/// Marks a response to be cut off mid-answer (see [`AuthAction::Reset`]).
#[derive(Clone, Copy)]
struct CutOffMarker;

type Script = Arc<dyn Fn(&CheckRequest) -> AuthAction + Send + Sync>;

/// One check as the server saw it.
#[derive(Debug, Clone)]
pub struct RecordedCheck {
    pub request: CheckRequest,
    /// gRPC metadata, keys lower-case.
    pub metadata: Vec<(String, String)>,
    /// The `:authority` of the gRPC call.
    pub authority: String,
}

impl RecordedCheck {
    /// A header of the checked request, from the CheckRequest's `headers` map.
    /// With `encode_raw_headers`, the first value in `header_map`.
    pub fn header(&self, name: &str) -> Option<&str> {
        let http = self.http();
        http.headers.get(name).map(String::as_str).or_else(|| {
            let map = http.header_map.as_ref()?;
            let header = map.headers.iter().find(|h| h.key == name)?;
            std::str::from_utf8(&header.raw_value).ok()
        })
    }

    pub fn http(
        &self,
    ) -> &envoy_types::pb::envoy::service::auth::v3::attribute_context::HttpRequest {
        static EMPTY: std::sync::OnceLock<
            envoy_types::pb::envoy::service::auth::v3::attribute_context::HttpRequest,
        > = std::sync::OnceLock::new();
        self.request
            .attributes
            .as_ref()
            .and_then(|a| a.request.as_ref())
            .and_then(|r| r.http.as_ref())
            .unwrap_or_else(|| EMPTY.get_or_init(Default::default))
    }
}

#[derive(Default)]
struct State {
    scripts: Mutex<HashMap<String, Script>>,
    checks: Mutex<HashMap<String, Vec<RecordedCheck>>>,
    /// Per case: calls answered, and calls the client (Envoy) cancelled before the answer.
    outcomes: Mutex<HashMap<String, Outcomes>>,
}

/// How a case's calls ended, as the server saw them.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Outcomes {
    pub answered: usize,
    pub cancelled: usize,
}

/// Counts a call as cancelled unless it is marked answered before it is dropped: tonic drops the
/// handler's future when the caller resets the stream.
struct CallGuard {
    state: Arc<State>,
    case: String,
    answered: bool,
}

impl Drop for CallGuard {
    fn drop(&mut self) {
        if let Ok(mut outcomes) = self.state.outcomes.lock() {
            let entry = outcomes.entry(std::mem::take(&mut self.case)).or_default();
            if self.answered {
                entry.answered += 1;
            } else {
                entry.cancelled += 1;
            }
        }
    }
}

#[derive(Clone)]
pub struct AuthServer {
    pub addr: SocketAddr,
    state: Arc<State>,
}

#[derive(Clone)]
struct Authority(String);

struct Service(Arc<State>);

#[tonic::async_trait]
impl Authorization for Service {
    async fn check(
        &self,
        request: tonic::Request<CheckRequest>,
    ) -> Result<tonic::Response<CheckResponse>, tonic::Status> {
        let authority = request
            .extensions()
            .get::<Authority>()
            .map(|a| a.0.clone())
            .unwrap_or_default();
        let metadata = request
            .metadata()
            .iter()
            .filter_map(|kv| match kv {
                tonic::metadata::KeyAndValueRef::Ascii(k, v) => Some((
                    k.as_str().to_owned(),
                    v.to_str().unwrap_or_default().to_owned(),
                )),
                tonic::metadata::KeyAndValueRef::Binary(..) => None,
            })
            .collect();
        let request = request.into_inner();
        let recorded = RecordedCheck {
            request,
            metadata,
            authority,
        };
        let case = recorded.header(CASE_HEADER).unwrap_or_default().to_owned();
        let script = self
            .0
            .scripts
            .lock()
            .ok()
            .and_then(|s| s.get(&case).cloned());
        let mut action = match &script {
            Some(script) => script(&recorded.request),
            None => AuthAction::Respond(Box::new(allow())),
        };
        if let Ok(mut checks) = self.0.checks.lock() {
            checks.entry(case.clone()).or_default().push(recorded);
        }
        let mut guard = CallGuard {
            state: Arc::clone(&self.0),
            case,
            answered: false,
        };
        loop {
            match action {
                AuthAction::Respond(response) => {
                    guard.answered = true;
                    return Ok(tonic::Response::new(*response));
                }
                AuthAction::Fail(status) => {
                    guard.answered = true;
                    return Err(status);
                }
                AuthAction::Delay(delay, then) => {
                    tokio::time::sleep(delay).await;
                    action = *then;
                }
                AuthAction::Hold(gate, then) => {
                    // Bounded, so that a test that never opens the gate still ends.
                    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
                    while !gate.is_open() && tokio::time::Instant::now() < deadline {
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                    action = *then;
                }
                AuthAction::Reset => {
                    guard.answered = true;
                    let mut response = tonic::Response::new(allow());
                    response.extensions_mut().insert(CutOffMarker);
                    return Ok(response);
                }
            }
        }
    }
}

impl AuthServer {
    /// Binds an ephemeral loopback port and serves on the current runtime.
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the auth server");
        let addr = listener.local_addr().expect("auth server address");
        let state = Arc::new(State::default());
        let service = AuthorizationServer::new(Service(Arc::clone(&state)));
        let layer = tower::ServiceBuilder::new().map_request(|mut request: http::Request<_>| {
            let authority = request
                .uri()
                .authority()
                .map(|a| a.to_string())
                .unwrap_or_default();
            request.extensions_mut().insert(Authority(authority));
            request
        });
        let layer = layer.map_response(|response: http::Response<tonic::body::Body>| {
            if response.extensions().get::<CutOffMarker>().is_some() {
                response.map(|body| tonic::body::Body::new(CutOff::new(body)))
            } else {
                response
            }
        });
        tokio::spawn(async move {
            let incoming =
                tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
            let _ = tonic::transport::Server::builder()
                .layer(layer)
                .add_service(service)
                .serve_with_incoming(incoming)
                .await;
        });
        Self { addr, state }
    }

    /// Scripts the answer for a case's checks.
    pub fn script(
        &self,
        case: &str,
        script: impl Fn(&CheckRequest) -> AuthAction + Send + Sync + 'static,
    ) {
        if let Ok(mut scripts) = self.state.scripts.lock() {
            scripts.insert(case.to_owned(), Arc::new(script));
        }
    }

    /// Always answers a case's checks with `action`.
    pub fn respond(&self, case: &str, action: AuthAction) {
        self.script(case, move |_| action.clone());
    }

    /// How the case's calls ended so far: answered, or cancelled by Envoy before the answer.
    pub fn outcomes(&self, case: &str) -> Outcomes {
        self.state
            .outcomes
            .lock()
            .map(|o| o.get(case).copied().unwrap_or_default())
            .unwrap_or_default()
    }

    /// The checks recorded for a case, in arrival order.
    pub fn checks(&self, case: &str) -> Vec<RecordedCheck> {
        self.state
            .checks
            .lock()
            .map(|c| c.get(case).cloned().unwrap_or_default())
            .unwrap_or_default()
    }
}

impl AuthAction {
    pub fn respond(response: CheckResponse) -> Self {
        Self::Respond(Box::new(response))
    }
}

/// An OK answer with no changes.
pub fn allow() -> CheckResponse {
    allow_with(OkHttpResponse::default())
}

/// An OK answer with changes.
pub fn allow_with(ok: OkHttpResponse) -> CheckResponse {
    CheckResponse {
        status: Some(RpcStatus {
            code: 0,
            ..Default::default()
        }),
        http_response: Some(HttpResponse::OkResponse(ok)),
        ..Default::default()
    }
}

/// A PERMISSION_DENIED answer with a reply for the client.
pub fn deny(status: i32, headers: Vec<HeaderValueOption>, body: &str) -> CheckResponse {
    CheckResponse {
        status: Some(RpcStatus {
            code: 7,
            ..Default::default()
        }),
        http_response: Some(HttpResponse::DeniedResponse(DeniedHttpResponse {
            status: (status != 0).then_some(HttpStatus { code: status }),
            headers,
            body: body.to_owned(),
        })),
        ..Default::default()
    }
}

/// A header option with `append_action` (or, with `append`, the deprecated bool).
#[allow(deprecated)]
pub fn header(
    key: &str,
    value: &str,
    append_action: i32,
    append: Option<bool>,
) -> HeaderValueOption {
    HeaderValueOption {
        header: Some(HeaderValue {
            key: key.to_owned(),
            value: value.to_owned(),
            ..Default::default()
        }),
        append: append.map(|value| envoy_types::pb::google::protobuf::BoolValue { value }),
        append_action,
        ..Default::default()
    }
}

/// `OVERWRITE_IF_EXISTS_OR_ADD`.
pub fn set_header(key: &str, value: &str) -> HeaderValueOption {
    header(key, value, 2, None)
}

/// A response body that lets the first half of the first data frame out, then fails: hyper then
/// resets the HTTP/2 stream (RST_STREAM INTERNAL_ERROR) after the headers went out.
struct CutOff {
    inner: tonic::body::Body,
    sent: bool,
}

impl CutOff {
    fn new(inner: tonic::body::Body) -> Self {
        Self { inner, sent: false }
    }
}

impl hyper::body::Body for CutOff {
    type Data = bytes::Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        use std::task::Poll;
        if self.sent {
            return Poll::Ready(Some(Err(tonic::Status::internal("cut off mid-answer"))));
        }
        match std::pin::Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                Ok(data) => {
                    self.sent = true;
                    let half = data.slice(..data.len() / 2);
                    Poll::Ready(Some(Ok(hyper::body::Frame::data(half))))
                }
                Err(_) => {
                    self.sent = true;
                    Poll::Ready(Some(Err(tonic::Status::internal("cut off mid-answer"))))
                }
            },
            Poll::Ready(_) => {
                self.sent = true;
                Poll::Ready(Some(Err(tonic::Status::internal("cut off mid-answer"))))
            }
        }
    }
}
