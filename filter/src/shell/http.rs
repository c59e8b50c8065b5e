//! One request: gather its attributes, dispatch the Check call, hold the request until the answer,
//! then apply the verdict (mutate and resume, or reply).
//!
//! How the request is held: `Pause` from `on_http_request_headers` becomes Envoy's
//! StopAllIterationAndWatermark, so nothing of the request (headers, body, trailers) moves upstream
//! until `resume_request`. If the body and trailer callbacks do run (with
//! `allow_on_headers_stop_iteration`), they answer `Pause` too while the check is pending.

use std::rc::Rc;

use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::Action;

use super::host::{self, Headers, LogLevel};
use super::root::Plugin;
use crate::check_request::{self, RequestAttributes, SocketAddress};
use crate::decision::{
    Allow, CheckError, Decision, HeaderAction, HeaderMutation, LocalReply, Verdict, DETAILS_ERROR,
};
use crate::proto::{AUTHORIZATION_SERVICE, CHECK_METHOD};
use crate::{header_map, query};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Headers not seen yet.
    Start,
    /// The Check call is out; the request is held.
    Checking,
    /// Decided: allowed and resumed, or answered.
    Decided,
}

pub struct ExtAuthz {
    context_id: u32,
    plugin: Rc<Plugin>,
    state: State,
    /// From an allowing answer, for the response the client gets.
    response_headers: Vec<HeaderMutation>,
}

impl ExtAuthz {
    pub fn new(context_id: u32, plugin: Rc<Plugin>) -> Self {
        Self {
            context_id,
            plugin,
            state: State::Start,
            response_headers: Vec::new(),
        }
    }

    fn log(&self, level: LogLevel, message: &str) {
        host::log(level, &format!("ext_authz #{}: {message}", self.context_id));
    }

    /// Gathers the request's attributes, encodes the CheckRequest and sends it.
    fn dispatch_check(&self) -> Result<u32, CheckError> {
        let unreadable = |what: &str, status: u32| {
            CheckError::Malformed(format!("cannot read {what} (host status {status})"))
        };
        let map =
            host::header_map(Headers::Request).map_err(|s| unreadable("the request headers", s))?;
        let Some(headers) = header_map::parse(&map) else {
            return Err(CheckError::Malformed(
                "the host's header map is malformed".to_owned(),
            ));
        };
        // Missing properties leave their fields empty, as native leaves them for an unknown peer.
        let source = host::property(&["source", "address"]).ok().flatten();
        let destination = host::property(&["destination", "address"]).ok().flatten();
        let protocol = host::property(&["request", "protocol"]).ok().flatten();
        let attributes = RequestAttributes {
            headers: &headers,
            source: source.as_deref().map(SocketAddress::parse),
            destination: destination.as_deref().map(SocketAddress::parse),
            protocol: protocol.as_deref().unwrap_or_default(),
            time: host::now().unwrap_or_default(),
            body_size: 0,
        };
        let config = &self.plugin.config;
        let message = check_request::encode(&attributes, &config.context_extensions.encoded);
        let grpc = &config.grpc_service;
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

    /// Counts and applies a decision. `Continue` means the request may go on.
    fn decide(&mut self, decision: Decision) -> Action {
        let config = &self.plugin.config;
        self.plugin.stats.record(&decision, config.failure_mode);
        if let Decision::Error(error) = &decision {
            self.log(LogLevel::Warn, &format!("check failed: {error}"));
        }
        self.state = State::Decided;
        match decision.into_verdict(config.failure_mode) {
            Verdict::Continue(allow) => {
                self.allow(allow);
                Action::Continue
            }
            Verdict::Reply(reply) => {
                self.reply(&reply);
                Action::Pause
            }
        }
    }

    fn allow(&mut self, allow: Allow) {
        for mutation in &allow.request_headers {
            self.mutate(Headers::Request, mutation);
        }
        for name in &allow.headers_to_remove {
            if let Err(status) = host::remove_header(Headers::Request, name) {
                self.log(
                    LogLevel::Warn,
                    &format!("cannot remove {name:?} (host status {status})"),
                );
            }
        }
        if allow.changes_query() {
            self.rewrite_query(&allow);
        }
        self.response_headers = allow.response_headers;
    }

    fn rewrite_query(&self, allow: &Allow) {
        let path = match host::header(Headers::Request, ":path") {
            Ok(Some(path)) => path,
            _ => return self.log(LogLevel::Warn, "cannot read :path to rewrite its query"),
        };
        let Ok(path) = String::from_utf8(path) else {
            return self.log(
                LogLevel::Warn,
                "the :path is not UTF-8; its query is left as it is",
            );
        };
        let rewritten = query::rewrite(
            &path,
            &allow.query_parameters_to_set,
            &allow.query_parameters_to_remove,
        );
        if let Err(status) = host::set_header(Headers::Request, ":path", rewritten.as_bytes()) {
            self.log(
                LogLevel::Warn,
                &format!("cannot set :path (host status {status})"),
            );
        }
    }

    /// Applies one header change with `HeaderValueOption` semantics.
    fn mutate(&self, headers: Headers, mutation: &HeaderMutation) {
        let HeaderMutation {
            name,
            value,
            action,
        } = mutation;
        let existing = || host::header(headers, name).ok().flatten();
        let result = match action {
            HeaderAction::Set => host::set_header(headers, name, value),
            HeaderAction::Add => host::add_header(headers, name, value),
            HeaderAction::Append => match existing() {
                Some(mut joined) => {
                    joined.push(b',');
                    joined.extend_from_slice(value);
                    host::set_header(headers, name, &joined)
                }
                None => Ok(()),
            },
            HeaderAction::AddIfAbsent => match existing() {
                Some(_) => Ok(()),
                None => host::add_header(headers, name, value),
            },
            HeaderAction::OverwriteIfExists => match existing() {
                Some(_) => host::set_header(headers, name, value),
                None => Ok(()),
            },
        };
        if let Err(status) = result {
            self.log(
                LogLevel::Warn,
                &format!("cannot write header {name:?} (host status {status})"),
            );
        }
    }

    fn reply(&self, reply: &LocalReply) {
        let headers: Vec<(&str, &[u8])> = reply
            .headers
            .iter()
            .map(|h| (h.name.as_str(), h.value.as_slice()))
            .collect();
        let headers = header_map::serialize(&headers);
        if let Err(status) =
            host::send_local_response(reply.status, reply.details, &reply.body, &headers)
        {
            // The request stays held: failing closed beats letting it through unchecked.
            self.log(
                LogLevel::Error,
                &format!("cannot send the local reply (host status {status})"),
            );
        }
    }

    /// While the check is pending nothing may pass; afterwards everything may.
    fn hold_while_checking(&self) -> Action {
        match self.state {
            State::Checking => Action::Pause,
            State::Start | State::Decided => Action::Continue,
        }
    }
}

impl Context for ExtAuthz {
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
            if let Err(status) = host::resume_request() {
                self.log(
                    LogLevel::Error,
                    &format!("cannot resume the request (host status {status})"),
                );
            }
        }
    }
}

impl HttpContext for ExtAuthz {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        match self.dispatch_check() {
            Ok(_token) => {
                self.state = State::Checking;
                Action::Pause
            }
            Err(error) => self.decide(Decision::Error(error)),
        }
    }

    fn on_http_request_body(&mut self, _body_size: usize, _end_of_stream: bool) -> Action {
        self.hold_while_checking()
    }

    fn on_http_request_trailers(&mut self, _num_trailers: usize) -> Action {
        self.hold_while_checking()
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        for mutation in std::mem::take(&mut self.response_headers) {
            self.mutate(Headers::Response, &mutation);
        }
        Action::Continue
    }
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
