//! One request: gather its attributes (and, under `with_request_body`, its body), dispatch the
//! Check call, hold the request until the answer, then apply the verdict.
//!
//! How the request is held: `Pause` from `on_http_request_headers` becomes Envoy's
//! StopAllIterationAndWatermark, so nothing of the request (headers, body, trailers) moves upstream
//! until it is resumed. When the body and trailer callbacks do run (the Wasm PluginConfig has
//! `allow_on_headers_stop_iteration: true`, which `with_request_body` needs), they answer `Pause`
//! too until the decision, so Envoy buffers the body instead of sending it on.

use std::rc::Rc;

use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::Action;

use super::apply;
use super::host::{self, Headers, LogLevel};
use super::root::Plugin;
use crate::check_request::{self, RequestAttributes, RequestBody, SocketAddress};
use crate::config::{Check, GrpcService, HttpService, Selection, Service, WithRequestBody};
use crate::decision::{CheckError, Decision, HeaderMutation, LocalReply, Verdict, DETAILS_ERROR};
use crate::proto::{AUTHORIZATION_SERVICE, CHECK_METHOD};
use crate::route::matcher::RequestView;
use crate::{header_map, http_check};

/// What native's buffer limit answers when a body is over `max_request_bytes`.
const PAYLOAD_TOO_LARGE: u16 = 413;
const DETAILS_PAYLOAD_TOO_LARGE: &str = "request_payload_too_large";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Headers not seen yet.
    Start,
    /// `with_request_body`: the request is held while its body is buffered for the check.
    Buffering,
    /// The Check call is out; the request is held.
    Checking,
    /// Decided: allowed and resumed, or answered.
    Decided,
}

pub struct ExtAuthz {
    context_id: u32,
    plugin: Rc<Plugin>,
    state: State,
    /// Which settings apply: the matching route's, or the top level's.
    selection: Selection,
    /// Body bytes buffered so far, as the last body callback reported.
    buffered: usize,
    /// From an allowing answer, for the response the client gets.
    response_headers: Vec<HeaderMutation>,
}

impl ExtAuthz {
    pub fn new(context_id: u32, plugin: Rc<Plugin>) -> Self {
        Self {
            context_id,
            plugin,
            state: State::Start,
            selection: Selection::TopLevel,
            buffered: 0,
            response_headers: Vec::new(),
        }
    }

    /// Sends the Check call (with the body, if any) and holds the request, or decides at once
    /// when the call cannot be made.
    fn check(&mut self, headers: &[(&[u8], &[u8])], body: Option<RequestBody<'_>>) -> Action {
        match self.dispatch(headers, body) {
            Ok(_token) => {
                self.state = State::Checking;
                Action::Pause
            }
            Err(error) => self.decide(Decision::Error(error)),
        }
    }

    /// The settings that apply to this request.
    fn settings(&self) -> Option<Check<'_>> {
        self.plugin.config.check(self.selection)
    }

    /// Gathers the rest of the request's attributes, encodes the CheckRequest and sends it.
    fn dispatch(
        &self,
        headers: &[(&[u8], &[u8])],
        body: Option<RequestBody<'_>>,
    ) -> Result<u32, CheckError> {
        let Some(settings) = self.settings() else {
            return Err(CheckError::Malformed(
                "no settings for a disabled route".to_owned(),
            ));
        };
        match settings.service {
            Service::Grpc(grpc) => dispatch_grpc(grpc, settings, headers, body),
            Service::Http(http) => dispatch_http(http, headers, body),
        }
    }

    /// Reads what is buffered and checks it: the whole body, or its first `max_request_bytes`.
    fn check_body(&mut self, settings: WithRequestBody) -> Action {
        let max = settings.max_request_bytes as usize;
        let bytes = match host::request_body(self.buffered.min(max)) {
            Ok(bytes) => bytes,
            Err(status) => {
                let error = CheckError::Malformed(format!(
                    "cannot read the request body (host status {status})"
                ));
                return self.decide(Decision::Error(error));
            }
        };
        let body = RequestBody {
            bytes: &bytes,
            buffered: self.buffered as u64,
            pack_as_bytes: settings.pack_as_bytes,
        };
        match request_headers() {
            Ok(map) => match header_map::parse(&map) {
                Some(headers) => self.check(&headers, Some(body)),
                None => self.decide(Decision::Error(malformed_header_map())),
            },
            Err(error) => self.decide(Decision::Error(error)),
        }
    }

    /// Counts and applies a decision. `Continue` means the request may go on.
    fn decide(&mut self, decision: Decision) -> Action {
        let failure_mode = self.plugin.config.failure_mode;
        self.plugin.stats.record(&decision, failure_mode);
        if let Decision::Error(error) = &decision {
            apply::log(
                self.context_id,
                LogLevel::Warn,
                &format!("check failed: {error}"),
            );
        }
        self.finish();
        match decision.into_verdict(failure_mode) {
            Verdict::Continue(allow) => {
                self.response_headers = apply::allow(self.context_id, allow);
                Action::Continue
            }
            Verdict::Reply(reply) => {
                apply::reply(self.context_id, &reply);
                Action::Pause
            }
        }
    }

    fn finish(&mut self) {
        if self.state == State::Buffering {
            self.plugin.body_watch.forget(self.context_id);
        }
        self.state = State::Decided;
    }

    /// While the request is held nothing may pass; afterwards everything may.
    fn hold(&self) -> Action {
        match self.state {
            State::Buffering | State::Checking => Action::Pause,
            State::Start | State::Decided => Action::Continue,
        }
    }
}

impl Drop for ExtAuthz {
    fn drop(&mut self) {
        if self.state == State::Buffering {
            self.plugin.body_watch.forget(self.context_id);
        }
    }
}

impl Context for ExtAuthz {
    fn on_http_call_response(
        &mut self,
        _token_id: u32,
        _num_headers: usize,
        body_size: usize,
        _num_trailers: usize,
    ) {
        if self.state != State::Checking {
            return;
        }
        let Some(Service::Http(http)) = self.settings().map(|s| s.service) else {
            return;
        };
        // A call that failed (reset, timeout, no such cluster) arrives with no headers: no
        // :status, so an error.
        let map = host::header_map(Headers::HttpCallResponse).unwrap_or_default();
        let body = host::http_call_response_body(body_size).unwrap_or_default();
        let decision = match header_map::parse(&map) {
            Some(headers) => http_check::decision(http, &headers, body),
            None => Decision::Error(malformed_header_map()),
        };
        if self.decide(decision) == Action::Continue {
            apply::resume(self.context_id);
        }
    }

    fn on_grpc_call_response(&mut self, _token_id: u32, status_code: u32, response_size: usize) {
        if self.state != State::Checking {
            return;
        }
        let decision = if status_code != 0 {
            let message = host::grpc_status_message().unwrap_or_default();
            Decision::Error(CheckError::Grpc {
                status: status_code,
                message,
            })
        } else {
            match host::grpc_response(response_size) {
                Ok(bytes) => Decision::from_check_response(&bytes),
                Err(status) => Decision::Error(CheckError::Malformed(format!(
                    "cannot read the response (host status {status})"
                ))),
            }
        };
        if self.decide(decision) == Action::Continue {
            apply::resume(self.context_id);
        }
    }
}

impl HttpContext for ExtAuthz {
    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        let map = match request_headers() {
            Ok(map) => map,
            Err(error) => return self.decide(Decision::Error(error)),
        };
        let Some(headers) = header_map::parse(&map) else {
            return self.decide(Decision::Error(malformed_header_map()));
        };
        self.selection = self.plugin.config.select(&RequestView::new(&headers));
        let Some(settings) = self.settings() else {
            // A disabled route: no check, no hold.
            self.plugin.stats.record_disabled();
            self.state = State::Decided;
            return Action::Continue;
        };
        // Without a body to wait for, the check goes out at once.
        if settings.with_request_body.is_none() || end_of_stream {
            return self.check(&headers, None);
        }
        self.state = State::Buffering;
        self.plugin
            .body_watch
            .wait(self.context_id, host::now().unwrap_or_default());
        Action::Pause
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        if !self.plugin.body_watch.arrived(self.context_id) {
            // The watch gave up on this request and already answered for it.
            self.state = State::Decided;
            return Action::Continue;
        }
        let (State::Buffering, Some(settings)) = (self.state, self.plugin.config.with_request_body)
        else {
            return self.hold();
        };
        self.buffered = body_size;
        let max = settings.max_request_bytes as usize;
        if body_size > max && !settings.allow_partial_message {
            // As native, whose buffer limit is max_request_bytes: the body is too large to check.
            self.finish();
            apply::reply(
                self.context_id,
                &LocalReply {
                    status: PAYLOAD_TOO_LARGE,
                    headers: Vec::new(),
                    body: b"Payload Too Large".to_vec(),
                    details: DETAILS_PAYLOAD_TOO_LARGE,
                },
            );
            return Action::Pause;
        }
        if end_of_stream || (settings.allow_partial_message && body_size >= max) {
            return self.check_body(settings);
        }
        Action::Pause
    }

    fn on_http_request_trailers(&mut self, _num_trailers: usize) -> Action {
        match (
            self.state,
            self.settings().and_then(|s| s.with_request_body),
        ) {
            // Trailers end the body: what is buffered is all there is.
            (State::Buffering, Some(settings)) => self.check_body(settings),
            _ => self.hold(),
        }
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        for mutation in std::mem::take(&mut self.response_headers) {
            apply::mutate(self.context_id, Headers::Response, &mutation);
        }
        Action::Continue
    }
}

/// Encodes the CheckRequest and sends it to the gRPC server.
fn dispatch_grpc(
    grpc: &GrpcService,
    settings: Check<'_>,
    headers: &[(&[u8], &[u8])],
    body: Option<RequestBody<'_>>,
) -> Result<u32, CheckError> {
    // Missing properties leave their fields empty, as native leaves them for an unknown peer.
    let source = host::property(&["source", "address"]).ok().flatten();
    let destination = host::property(&["destination", "address"]).ok().flatten();
    let protocol = host::property(&["request", "protocol"]).ok().flatten();
    let attributes = RequestAttributes {
        headers,
        source: source.as_deref().map(SocketAddress::parse),
        destination: destination.as_deref().map(SocketAddress::parse),
        protocol: protocol.as_deref().unwrap_or_default(),
        time: host::now().unwrap_or_default(),
        body,
    };
    let message = check_request::encode(&attributes, &settings.context_extensions.encoded);
    let metadata: Vec<(&str, &[u8])> = grpc
        .initial_metadata
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_bytes()))
        .collect();
    proxy_wasm::hostcalls::dispatch_grpc_call(
        &grpc.target,
        AUTHORIZATION_SERVICE,
        CHECK_METHOD,
        metadata,
        Some(&message),
        grpc.timeout,
    )
    .map_err(|status| CheckError::Dispatch(status as u32))
}

/// Sends the authorization request to the HTTP server.
fn dispatch_http(
    http: &HttpService,
    headers: &[(&[u8], &[u8])],
    body: Option<RequestBody<'_>>,
) -> Result<u32, CheckError> {
    let bytes = body.map(|b| b.bytes).unwrap_or_default();
    let request = http_check::request_headers(http, headers, bytes.len());
    // The SDK takes header values as text; bytes that are not UTF-8 cannot cross as they are.
    let values: Vec<String> = request
        .iter()
        .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
        .collect();
    let pairs: Vec<(&str, &str)> = request
        .iter()
        .zip(&values)
        .map(|((k, _), v)| (k.as_str(), v.as_str()))
        .collect();
    proxy_wasm::hostcalls::dispatch_http_call(
        &http.cluster,
        pairs,
        (!bytes.is_empty()).then_some(bytes),
        Vec::new(),
        http.timeout,
    )
    .map_err(|status| CheckError::Dispatch(status as u32))
}

fn request_headers() -> Result<Vec<u8>, CheckError> {
    host::header_map(Headers::Request).map_err(|status| {
        CheckError::Malformed(format!(
            "cannot read the request headers (host status {status})"
        ))
    })
}

fn malformed_header_map() -> CheckError {
    CheckError::Malformed("the host's header map is malformed".to_owned())
}

/// The context of a plugin whose configuration was refused: every request fails closed.
pub struct Unconfigured;

impl Context for Unconfigured {}

impl HttpContext for Unconfigured {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let _ = host::send_local_response(
            500,
            DETAILS_ERROR,
            b"ext_authz: no valid configuration",
            &[],
        );
        Action::Pause
    }
}
