//! One request's whole life, on any [`Host`]: which settings apply, waiting for the body, the
//! chain of checks, the answers, and the one ending path that reviews, decides, counts and applies.
//!
//! How the request is held: `Pause` from `on_http_request_headers` becomes Envoy's
//! StopAllIterationAndWatermark, so nothing of the request (headers, body, trailers) moves upstream
//! until it is resumed. When the body and trailer callbacks do run (the Wasm PluginConfig has
//! `allow_on_headers_stop_iteration: true`, which `with_request_body` needs), they answer `Pause`
//! too until the decision, so Envoy buffers the body instead of sending it on.

mod apply;
mod cache;
pub mod chain;
mod dispatch;
mod filter_enabled;
mod header_limit;
mod metadata;
mod retry;
mod run;
mod shadow;

use std::rc::Rc;
use std::time::Duration;

use crate::cache::RawAnswer;
use crate::check_request::RequestBody;
use crate::config::{Check, Selection, WithRequestBody};
use crate::decision::{Answer, CheckError, Decision, HeaderMutation, LocalReply};
use crate::header_map;
use crate::host::{Action, Headers, Host, LogLevel};
use crate::http_check;
use crate::plugin::Plugin;
use crate::route::matcher::RequestView;
use chain::{Chain, StepRef};
use dispatch::Request;

/// What goes on once the request headers are read: the stream and the parsed headers.
type WithHeaders<'a, S> = dyn FnMut(&mut S, &[(&[u8], &[u8])]) -> Action + 'a;

/// What native's buffer limit answers when a body is over `max_request_bytes`.
const PAYLOAD_TOO_LARGE: u16 = 413;
const DETAILS_PAYLOAD_TOO_LARGE: &str = "request_payload_too_large";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Headers not seen yet.
    Start,
    /// `with_request_body`: the request is held while its body is buffered for the check.
    Buffering,
    /// A remote step's call is out; the request is held.
    Checking,
    /// Decided: allowed and resumed, or answered.
    Decided,
}

/// The call a held request waits for.
#[derive(Debug, Clone, Copy)]
struct PendingCall {
    token: u32,
    /// When it went out, for the latency histogram.
    started: Duration,
    /// Only a gRPC call can be cancelled.
    grpc: bool,
}

/// Where a step left the request.
enum Flow {
    /// It allowed (or failed open): the chain goes on.
    Next,
    /// It ended the request: this is what the host is told.
    Done(Action),
}

/// One request of a configured plugin.
pub struct ExtAuthz<H: Host> {
    context_id: u32,
    host: H,
    plugin: Rc<Plugin>,
    state: State,
    /// Which settings apply: the matching route's, or the top level's.
    selection: Selection,
    /// Body bytes buffered so far, as the last body callback reported.
    buffered: usize,
    /// From allowing answers, for the response the client gets.
    response_headers: Vec<HeaderMutation>,
    chain: Chain,
    call: Option<PendingCall>,
    /// The decision cache's miss whose call is out.
    cache_call: Option<cache::CacheCall>,
    /// The request headers' size when last read ([`header_limit::byte_size`]), and the most the
    /// changes made since can have added: together, a bound on their size now.
    header_bytes: usize,
    grown: usize,
    /// `http_service.retry_policy`: the current HTTP step's tries.
    tries: retry::Tries,
}

impl<H: Host> ExtAuthz<H> {
    pub fn new(context_id: u32, host: H, plugin: Rc<Plugin>) -> Self {
        Self {
            context_id,
            host,
            plugin,
            state: State::Start,
            selection: Selection::TopLevel,
            buffered: 0,
            response_headers: Vec::new(),
            chain: Chain::default(),
            call: None,
            cache_call: None,
            header_bytes: 0,
            grown: 0,
            tries: retry::Tries::default(),
        }
    }

    pub fn on_http_request_headers(&mut self, end_of_stream: bool) -> Action {
        self.with_request_headers(&mut |this, headers| {
            this.selection = this.plugin.config.select(&RequestView::new(headers));
            let Some(body) = this.settings().map(|s| s.with_request_body) else {
                // A disabled route: no check, no hold.
                this.plugin.stats.record_disabled(&this.host);
                this.state = State::Decided;
                return Action::Continue;
            };
            if let Some(action) = this.left_out() {
                return action;
            }
            // Without a body to wait for, the check goes out at once. The bytes after an upgrade
            // request are the upgraded stream, not a body: native checks it at once too.
            if body.is_none() || end_of_stream || is_upgrade(headers) {
                return this.run(Request {
                    headers,
                    body: None,
                });
            }
            this.state = State::Buffering;
            let now = this.now();
            this.plugin.body_watch.wait(this.context_id, now);
            Action::Pause
        })
    }

    pub fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        // Only a body callback for a request still held proves allow_on_headers_stop_iteration:
        // once a request is let go (checked at its headers and allowed), Envoy delivers its body
        // either way, and taking that for proof would switch the watch off for good.
        if self.is_held() && !self.plugin.body_watch.arrived(self.context_id) {
            // The watch gave up on this request and already answered for it.
            self.state = State::Decided;
            return Action::Continue;
        }
        let (State::Buffering, Some(settings)) = (self.state, self.body_settings()) else {
            return self.hold();
        };
        self.buffered = body_size;
        let max = settings.max_request_bytes as usize;
        if body_size > max && !settings.allow_partial_message {
            // As native, whose buffer limit is max_request_bytes: the body is too large to check.
            self.finish();
            let reply = LocalReply {
                status: PAYLOAD_TOO_LARGE,
                headers: Vec::new(),
                body: b"Payload Too Large".to_vec(),
                details: DETAILS_PAYLOAD_TOO_LARGE.into(),
            };
            apply::reply(&self.host, self.context_id, &reply);
            return Action::Pause;
        }
        if end_of_stream || (settings.allow_partial_message && body_size >= max) {
            return self.check_with_body(settings);
        }
        Action::Pause
    }

    pub fn on_http_request_trailers(&mut self) -> Action {
        // Trailers end the body: what is buffered is all there is.
        let (State::Buffering, Some(settings)) = (self.state, self.body_settings()) else {
            return self.hold();
        };
        // Trailers while held prove the setting as a body callback does.
        if !self.plugin.body_watch.arrived(self.context_id) {
            self.state = State::Decided;
            return Action::Continue;
        }
        if self.buffered == 0 {
            // Trailers right after the headers: no body to send, and no x-envoy-auth-partial-body,
            // as native, which has no buffer then.
            return self.with_request_headers(&mut |this, headers| {
                this.run(Request {
                    headers,
                    body: None,
                })
            });
        }
        self.check_with_body(settings)
    }

    pub fn on_http_response_headers(&mut self) -> Action {
        let changes = std::mem::take(&mut self.response_headers);
        apply::response_headers(&self.host, self.context_id, &changes);
        Action::Continue
    }

    /// A gRPC call ended: `status_code` 0 with `response_size` bytes of answer, or a failure.
    pub fn on_grpc_call_response(&mut self, token: u32, status_code: u32, response_size: usize) {
        if !self.waits_for(token) {
            return;
        }
        let answer = if status_code != 0 {
            Answer::error(CheckError::Grpc {
                status: status_code,
                message: self.host.grpc_status_message().unwrap_or_default(),
            })
        } else {
            match self.host.grpc_response(response_size) {
                Ok(bytes) => {
                    let answer = Answer::decode(&bytes);
                    self.keep_raw(RawAnswer::Grpc(bytes));
                    answer
                }
                Err(status) => Answer::error(CheckError::HostRead {
                    what: "the gRPC answer",
                    status: Some(status),
                }),
            }
        };
        self.answered(answer);
    }

    /// An HTTP call ended. A call that failed (reset, timeout, no such cluster) arrives with no
    /// headers: no `:status`, so an error.
    pub fn on_http_call_response(&mut self, token: u32, body_size: usize) {
        if !self.waits_for(token) {
            return;
        }
        let plugin = Rc::clone(&self.plugin);
        let service = plugin.config.check(self.selection).map(|s| s.service);
        let Some(StepRef::Http(http)) = service.and_then(|s| self.chain.current(s)) else {
            return;
        };
        let map = self
            .host
            .header_map(Headers::HttpCallResponse)
            .unwrap_or_default();
        // Only a denial's body is used, and only as much of it as a reply may carry.
        let max = plugin.config.max_denied_response_body_bytes as usize;
        let wanted = if max > 0 {
            body_size.min(max)
        } else {
            body_size
        };
        let body = self
            .host
            .http_call_response_body(wanted)
            .unwrap_or_default();
        let kept = self.wants_raw().then(|| body.clone());
        let reset = retry::reset_before_headers(&body);
        let decision = match header_map::parse(&map) {
            Some(headers) => http_check::decision(http, &headers, body),
            None => Decision::Error(malformed_header_map()),
        };
        if self.retried(http, &decision, reset) {
            return;
        }
        if let Some(body) = kept {
            self.keep_raw(RawAnswer::Http { headers: map, body });
        }
        self.answered(Answer {
            decision,
            dynamic_metadata: Vec::new(),
        });
    }

    /// The root's watch gave up waiting for this request's body (Envoy does not deliver bodies to
    /// this plugin): the check fails as any other, through the failure mode.
    pub fn on_body_timeout(&mut self) {
        if self.state != State::Buffering {
            return;
        }
        if self.end(Decision::Error(CheckError::BodyNotDelivered)) == Action::Continue {
            apply::resume(&self.host, self.context_id);
        }
    }

    /// The stream is over. A call still pending belongs to a request that went away (the client
    /// hung up, or the stream was reset): cancel it, as native does, rather than leave the auth
    /// server working on an answer nobody waits for. Envoy does not cancel it by itself. (The ABI
    /// has no way to cancel an HTTP call; that one runs to its end and its answer is dropped.)
    pub fn on_done(&mut self) {
        if let Some(call) = self.call.take() {
            if call.grpc {
                // Ok, or NotFound if the answer is already in: nothing more to do either way.
                let _ = self.host.cancel_grpc_call(call.token);
            }
        }
        self.finish();
    }

    // --- the request ----------------------------------------------------------------------

    /// Reads what is buffered and checks it: the whole body, or its first `max_request_bytes`.
    fn check_with_body(&mut self, settings: WithRequestBody) -> Action {
        let bytes = match self.read_body(settings) {
            Ok(bytes) => bytes,
            Err(error) => return self.end(Decision::Error(error)),
        };
        let body = RequestBody {
            bytes: &bytes,
            buffered: self.buffered as u64,
            pack_as_bytes: settings.pack_as_bytes,
        };
        self.with_request_headers(&mut |this, headers| {
            this.run(Request {
                headers,
                body: Some(body),
            })
        })
    }

    fn read_body(&self, settings: WithRequestBody) -> Result<Vec<u8>, CheckError> {
        let max = settings.max_request_bytes as usize;
        self.host
            .request_body(self.buffered.min(max))
            .map_err(|status| CheckError::HostRead {
                what: "the request body",
                status: Some(status),
            })
    }

    /// Reads and parses the request headers, then goes on with them; a failed read fails the
    /// check. The one place the request headers are read. `then` is a trait object so that this
    /// is one function in the module, not one per caller.
    fn with_request_headers(&mut self, then: &mut WithHeaders<'_, Self>) -> Action {
        let map = match self.host.header_map(Headers::Request) {
            Ok(map) => map,
            Err(status) => {
                let error = CheckError::HostRead {
                    what: "the request headers",
                    status: Some(status),
                };
                return self.end(Decision::Error(error));
            }
        };
        match header_map::parse(&map) {
            Some(headers) => {
                self.header_bytes = header_limit::byte_size(&headers);
                self.grown = 0;
                then(self, &headers)
            }
            None => self.end(Decision::Error(malformed_header_map())),
        }
    }

    /// The settings that apply to this request.
    fn settings(&self) -> Option<Check<'_>> {
        self.plugin.config.check(self.selection)
    }

    fn body_settings(&self) -> Option<WithRequestBody> {
        self.settings().and_then(|s| s.with_request_body)
    }

    fn waits_for(&self, token: u32) -> bool {
        self.state == State::Checking && self.call.is_some_and(|call| call.token == token)
    }

    fn is_held(&self) -> bool {
        matches!(self.state, State::Buffering | State::Checking)
    }

    /// While the request is held nothing may pass; afterwards everything may.
    fn hold(&self) -> Action {
        if self.is_held() {
            Action::Pause
        } else {
            Action::Continue
        }
    }

    fn finish(&mut self) {
        if self.state == State::Buffering {
            self.plugin.body_watch.forget(self.context_id);
        }
        self.forget_retry();
        self.state = State::Decided;
    }

    fn now(&self) -> Duration {
        self.host.now().unwrap_or_default()
    }

    fn log(&self, level: LogLevel, message: &str) {
        apply::log(&self.host, self.context_id, level, message);
    }
}

impl<H: Host> Drop for ExtAuthz<H> {
    fn drop(&mut self) {
        if self.state == State::Buffering {
            self.plugin.body_watch.forget(self.context_id);
        }
        self.forget_retry();
    }
}

fn malformed_header_map() -> CheckError {
    CheckError::HostRead {
        what: "header map",
        status: None,
    }
}

/// An upgrade request, as native tells one (`Http::Utility::isWebSocketUpgradeRequest` and
/// `isH2UpgradeRequest`): `connection: upgrade` with `upgrade: websocket`, or an extended CONNECT.
fn is_upgrade(headers: &[(&[u8], &[u8])]) -> bool {
    let value = |name: &[u8]| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    };
    let websocket = value(b"upgrade").is_some_and(|v| v.eq_ignore_ascii_case(b"websocket"))
        && value(b"connection").is_some_and(|v| {
            v.split(|&b| b == b',')
                .any(|token| token.trim_ascii().eq_ignore_ascii_case(b"upgrade"))
        });
    let extended_connect = value(b":method") == Some(b"CONNECT") && value(b":protocol").is_some();
    websocket || extended_connect
}

#[cfg(test)]
mod cache_tests;
#[cfg(test)]
mod parity_tests;
#[cfg(test)]
mod tests;
