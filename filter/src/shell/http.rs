//! One request: gather its attributes (and, under `with_request_body`, its body), dispatch the
//! Check call, hold the request until the answer, then apply the verdict.
//!
//! How the request is held: `Pause` from `on_http_request_headers` becomes Envoy's
//! StopAllIterationAndWatermark, so nothing of the request (headers, body, trailers) moves upstream
//! until it is resumed. When the body and trailer callbacks do run (the Wasm PluginConfig has
//! `allow_on_headers_stop_iteration: true`, which `with_request_body` needs), they answer `Pause`
//! too until the decision, so Envoy buffers the body instead of sending it on.

use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

use super::abi::{Action, Context, HttpContext};

use super::apply;
use super::host::{self, Headers, LogLevel};
use super::root::Plugin;
use crate::chain::{self, StepRef};
use crate::check_request::{
    self, MetadataContext, RequestAttributes, RequestBody, SocketAddress, Tls,
};
use crate::config::{
    Check, ContextExtensions, FailureMode, GrpcService, HeaderSelection, HttpService, Selection,
    WithRequestBody,
};
use crate::decision::{
    Answer, CheckError, Decision, HeaderMutation, LocalReply, Verdict, DETAILS_ERROR,
};
use crate::proto::response::Metadata;
use crate::proto::structpb;
use crate::proto::{AUTHORIZATION_SERVICE, CHECK_METHOD};
use crate::route::matcher::RequestView;
use crate::{header_map, http_check};

/// The property (filter state `wasm.ext_authz.dynamic_metadata`) that carries the servers'
/// `dynamic_metadata` on.
const DYNAMIC_METADATA_PROPERTY: &str = "ext_authz.dynamic_metadata";

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
    /// The pending Check call, while `Checking`.
    call: Option<u32>,
    /// When the pending call went out, for the latency histogram.
    call_started: std::time::Duration,
    /// The step of the chain that runs now (a single service is a chain of one).
    step: usize,
    /// When the chain started, for its deadline.
    started: std::time::Duration,
    /// `dynamic_metadata` of the gRPC steps so far, encoded Structs back to back (a merge).
    passthrough: Vec<u8>,
    /// A step failed and `failure_mode_allow` let the chain go on: not counted as `ok` then.
    failed_open: bool,
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
            call: None,
            call_started: std::time::Duration::ZERO,
            step: 0,
            started: std::time::Duration::ZERO,
            passthrough: Vec::new(),
            failed_open: false,
        }
    }

    /// Runs the chain from the current step: local steps at once, a remote one by sending its
    /// call and holding the request. Returns `Continue` once every step has allowed.
    fn run(&mut self, headers: &[(&[u8], &[u8])], body: Option<RequestBody<'_>>) -> Action {
        if self.step == 0 && self.started.is_zero() {
            self.started = host::now().unwrap_or_default();
        }
        loop {
            let plugin = Rc::clone(&self.plugin);
            let Some(settings) = plugin.config.check(self.selection) else {
                return Action::Continue;
            };
            let Some(step) = chain::step(settings.service, self.step) else {
                return self.allow_request();
            };
            let decision = match step {
                StepRef::RequiredHeader(required) => chain::required_header(required, headers),
                StepRef::Grpc { .. } | StepRef::Http(_) => {
                    match self.dispatch(settings, step, headers, body) {
                        Ok(token) => {
                            self.state = State::Checking;
                            self.call = Some(token);
                            self.call_started = host::now().unwrap_or_default();
                            return Action::Pause;
                        }
                        Err(error) => Decision::Error(error),
                    }
                }
            };
            if let Some(action) = self.step_decided(decision) {
                return action;
            }
        }
    }

    /// A step's decision. An allowing one (or a failure that `failure_mode_allow` lets through)
    /// has its changes made to the request at once, so later steps and the upstream see them,
    /// and moves on: `None`. A denial or a failure ends the chain: `Some(action)`.
    fn step_decided(&mut self, decision: Decision) -> Option<Action> {
        let failure_mode = self.plugin.config.failure_mode;
        match decision {
            Decision::Allow(allow) => {
                let response_headers = apply::allow(self.context_id, allow);
                self.response_headers.extend(response_headers);
            }
            Decision::Error(error) if matches!(failure_mode, FailureMode::Allow { .. }) => {
                apply::log(
                    self.context_id,
                    LogLevel::Warn,
                    &format!("check failed: {error}"),
                );
                let decision = Decision::Error(error);
                self.plugin.stats.record(&decision, failure_mode);
                self.failed_open = true;
                if let Verdict::Continue(allow) = decision.into_verdict(failure_mode) {
                    let response_headers = apply::allow(self.context_id, allow);
                    self.response_headers.extend(response_headers);
                }
            }
            other => return Some(self.decide(other)),
        }
        self.step += 1;
        None
    }

    /// A gRPC answer's `dynamic_metadata`: passed on to later steps when it allows, and, unless
    /// `enable_dynamic_metadata_ingestion` is false, made readable after this filter whatever
    /// the answer, as native sets it. A wasm filter cannot write the stream's dynamic metadata;
    /// it writes filter state instead, as JSON text, under `wasm.ext_authz.dynamic_metadata`
    /// (see the README).
    fn take_dynamic_metadata(&mut self, decision: &Decision, metadata: &[u8], elapsed: Duration) {
        let allowed = matches!(decision, Decision::Allow(_));
        if allowed {
            self.passthrough.extend_from_slice(metadata);
        }
        if !self.plugin.config.dynamic_metadata_ingestion {
            return;
        }
        // What the steps so far handed on, with this answer's over it.
        let mut merged = self.passthrough.clone();
        if !allowed {
            merged.extend_from_slice(metadata);
        }
        let Some(mut object) = structpb::decode_struct(&merged) else {
            return apply::log(
                self.context_id,
                LogLevel::Warn,
                "dynamic_metadata is not a Struct; not handed on",
            );
        };
        if allowed {
            // As native: how long the allowing check took, in milliseconds.
            let millis = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX);
            object.insert("ext_authz_duration".to_owned(), millis.into());
        }
        let json = serde_json::Value::Object(object).to_string();
        if let Err(status) = host::set_property(DYNAMIC_METADATA_PROPERTY, json.as_bytes()) {
            apply::log(
                self.context_id,
                LogLevel::Warn,
                &format!("cannot hand on dynamic_metadata (host status {status})"),
            );
        }
    }

    /// Every step allowed: count it and let the request go.
    fn allow_request(&mut self) -> Action {
        if !self.failed_open {
            self.plugin.stats.record(
                &Decision::Allow(Default::default()),
                self.plugin.config.failure_mode,
            );
        }
        self.finish();
        Action::Continue
    }

    /// A remote step answered: decide it, then run the rest of the chain with the request as the
    /// step left it. Resumes the request when the chain has allowed.
    fn answered(&mut self, decision: Decision) {
        self.answered_with_metadata(decision, Vec::new());
    }

    /// As [`Self::answered`], for a gRPC answer with its `dynamic_metadata`.
    fn answered_with_metadata(&mut self, decision: Decision, dynamic_metadata: Vec<u8>) {
        self.call = None;
        let elapsed = host::now()
            .unwrap_or_default()
            .saturating_sub(self.call_started);
        self.plugin.stats.record_latency(elapsed);
        if !dynamic_metadata.is_empty() {
            self.take_dynamic_metadata(&decision, &dynamic_metadata, elapsed);
        }
        let action = match self.step_decided(decision) {
            Some(action) => action,
            None => self.run_again(),
        };
        if action == Action::Continue {
            apply::resume(self.context_id);
        }
    }

    /// Runs the remaining steps after an answer, reading the request headers (and the body) anew.
    fn run_again(&mut self) -> Action {
        // The last step has answered (a single service always has): nothing needs the request.
        let service = self.settings().map(|s| s.service);
        if service.and_then(|s| chain::step(s, self.step)).is_none() {
            return self.run(&[], None);
        }
        self.with_request_headers(|this, headers| {
            let settings = this.settings().and_then(|s| s.with_request_body);
            let bytes = match settings {
                Some(settings) if this.buffered > 0 => {
                    host::request_body(this.buffered.min(settings.max_request_bytes as usize))
                        .unwrap_or_default()
                }
                _ => Vec::new(),
            };
            let body = settings
                .filter(|_| this.buffered > 0)
                .map(|settings| RequestBody {
                    bytes: &bytes,
                    buffered: this.buffered as u64,
                    pack_as_bytes: settings.pack_as_bytes,
                });
            this.run(headers, body)
        })
    }

    /// Reads and parses the request headers, then goes on with them; a failed read fails the
    /// check. The one place the request headers are read.
    fn with_request_headers(
        &mut self,
        then: impl FnOnce(&mut Self, &[(&[u8], &[u8])]) -> Action,
    ) -> Action {
        let map = match request_headers() {
            Ok(map) => map,
            Err(error) => return self.decide(Decision::Error(error)),
        };
        match header_map::parse(&map) {
            Some(headers) => then(self, &headers),
            None => self.decide(Decision::Error(malformed_header_map())),
        }
    }

    /// The settings that apply to this request.
    fn settings(&self) -> Option<Check<'_>> {
        self.plugin.config.check(self.selection)
    }

    /// Sends a remote step's call.
    fn dispatch(
        &self,
        settings: Check<'_>,
        step: StepRef<'_>,
        headers: &[(&[u8], &[u8])],
        body: Option<RequestBody<'_>>,
    ) -> Result<u32, CheckError> {
        let elapsed = host::now().unwrap_or_default().saturating_sub(self.started);
        let within = |own| {
            chain::step_timeout(settings.service, own, elapsed).ok_or(CheckError::DeadlineExceeded)
        };
        match step {
            StepRef::Grpc { service, step } => {
                let timeout = within(service.timeout)?;
                // A step's own context extensions go over the request's; the step's key wins.
                let merged;
                let extensions = match step.filter(|s| !s.context_extensions.is_empty()) {
                    None => &settings.context_extensions.encoded,
                    Some(step) => {
                        let mut entries = settings.context_extensions.entries.clone();
                        entries.extend(step.context_extensions.clone());
                        merged = ContextExtensions::new(entries);
                        &merged.encoded
                    }
                };
                let wanted = &self.plugin.config.metadata;
                let stream = Namespaces::read(
                    &["metadata"],
                    &wanted.dynamic_namespaces,
                    &wanted.typed_dynamic_namespaces,
                );
                let route = Namespaces::read(
                    &["xds", "route_metadata"],
                    &wanted.route_namespaces,
                    &wanted.typed_route_namespaces,
                );
                // The config's own first, then the stream's, then what steps pass on: on a
                // namespace given twice, the later wins.
                let mut metadata: Vec<(&str, &[u8])> = wanted
                    .fixed
                    .iter()
                    .map(|(ns, s)| (ns.as_str(), s.as_slice()))
                    .collect();
                metadata.extend(borrowed(&stream.untyped));
                if !self.passthrough.is_empty() {
                    metadata.push((chain::PASSTHROUGH_NAMESPACE, &self.passthrough));
                }
                if let Some(config) = step.map(|s| &s.config).filter(|c| !c.is_empty()) {
                    metadata.push((chain::PASSTHROUGH_CONFIG_NAMESPACE, config));
                }
                let selection = &self.plugin.config.headers;
                let context = CheckContext {
                    include_tls_session: self.plugin.config.include_tls_session,
                    include_forwarded_source_address: self
                        .plugin
                        .config
                        .include_forwarded_source_address,
                    selection,
                    extensions,
                    metadata: MetadataContext {
                        filter_metadata: &metadata,
                        typed_filter_metadata: &borrowed(&stream.typed),
                    },
                    route_metadata: MetadataContext {
                        filter_metadata: &borrowed(&route.untyped),
                        typed_filter_metadata: &borrowed(&route.typed),
                    },
                };
                dispatch_grpc(service, timeout, &context, headers, body)
            }
            StepRef::Http(service) => {
                dispatch_http(service, within(service.timeout)?, headers, body)
            }
            StepRef::RequiredHeader(_) => {
                Err(CheckError::Malformed("a local step has no call".to_owned()))
            }
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
        self.with_request_headers(|this, headers| this.run(headers, Some(body)))
    }

    /// Checks the request by its headers alone.
    fn check_without_body(&mut self) -> Action {
        self.with_request_headers(|this, headers| this.run(headers, None))
    }

    /// Counts and applies a decision. `Continue` means the request may go on.
    fn decide(&mut self, decision: Decision) -> Action {
        let failure_mode = self.plugin.config.failure_mode;
        self.plugin.stats.record(&decision, failure_mode);
        match &decision {
            Decision::Error(error) => apply::log(
                self.context_id,
                LogLevel::Warn,
                &format!("check failed: {error}"),
            ),
            Decision::Invalid(invalid) => apply::log(
                self.context_id,
                LogLevel::Warn,
                &format!("the auth server's answer is refused: {}", invalid.why),
            ),
            _ => {}
        }
        self.finish();
        let denied = matches!(decision, Decision::Deny(_));
        match decision.into_verdict(failure_mode) {
            Verdict::Continue(allow) => {
                let response_headers = apply::allow(self.context_id, allow);
                self.response_headers.extend(response_headers);
                Action::Continue
            }
            Verdict::Reply(mut reply) => {
                if denied {
                    reply.truncate_body(self.plugin.config.max_denied_response_body_bytes);
                }
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
    /// The stream is over. A Check call still pending belongs to a request that went away (the
    /// client hung up, or the stream was reset): cancel it, as native does, rather than leave the
    /// auth server working on an answer nobody waits for. Envoy does not cancel it by itself. (The
    /// ABI has no way to cancel an HTTP call; that one runs to its end and its answer is dropped.)
    fn on_done(&mut self) -> bool {
        if let (State::Checking, Some(token)) = (self.state, self.call.take()) {
            let service = self.settings().map(|s| s.service);
            if let Some(StepRef::Grpc { .. }) = service.and_then(|s| chain::step(s, self.step)) {
                // Ok, or NotFound if the answer is already in: nothing more to do either way.
                let _ = host::cancel_grpc_call(token);
            }
            self.state = State::Decided;
        }
        true
    }

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
        let plugin = Rc::clone(&self.plugin);
        let service = plugin.config.check(self.selection).map(|s| s.service);
        let Some(StepRef::Http(http)) = service.and_then(|s| chain::step(s, self.step)) else {
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
        self.answered(decision);
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
                Ok(bytes) => {
                    let answer = Answer::from_check_response(&bytes, &self.plugin.config.mutations);
                    return self.answered_with_metadata(answer.decision, answer.dynamic_metadata);
                }
                Err(status) => Decision::Error(CheckError::Malformed(format!(
                    "cannot read the response (host status {status})"
                ))),
            }
        };
        self.answered(decision);
    }
}

impl HttpContext for ExtAuthz {
    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        self.with_request_headers(|this, headers| {
            this.selection = this.plugin.config.select(&RequestView::new(headers));
            let Some(settings) = this.settings() else {
                // A disabled route: no check, no hold.
                this.plugin.stats.record_disabled();
                this.state = State::Decided;
                return Action::Continue;
            };
            // Without a body to wait for, the check goes out at once. The bytes after an upgrade
            // request are the upgraded stream, not a body: native checks it at once too.
            if settings.with_request_body.is_none() || end_of_stream || is_upgrade(headers) {
                return this.run(headers, None);
            }
            this.state = State::Buffering;
            this.plugin
                .body_watch
                .wait(this.context_id, host::now().unwrap_or_default());
            Action::Pause
        })
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        // Only a body callback for a request still held proves allow_on_headers_stop_iteration:
        // once a request is let go (checked at its headers and allowed), Envoy delivers its body
        // either way, and taking that for proof would switch the watch off for good.
        let held = matches!(self.state, State::Buffering | State::Checking);
        if held && !self.plugin.body_watch.arrived(self.context_id) {
            // The watch gave up on this request and already answered for it.
            self.state = State::Decided;
            return Action::Continue;
        }
        let with_body = self.settings().and_then(|s| s.with_request_body);
        let (State::Buffering, Some(settings)) = (self.state, with_body) else {
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
                    details: DETAILS_PAYLOAD_TOO_LARGE.into(),
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
            (State::Buffering, Some(settings)) => {
                // Trailers while held prove the setting as a body callback does.
                if !self.plugin.body_watch.arrived(self.context_id) {
                    self.state = State::Decided;
                    return Action::Continue;
                }
                if self.buffered == 0 {
                    // Trailers right after the headers: no body to send, and no
                    // x-envoy-auth-partial-body, as native, which has no buffer then.
                    self.check_without_body()
                } else {
                    self.check_body(settings)
                }
            }
            _ => self.hold(),
        }
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        apply::response_headers(self.context_id, &std::mem::take(&mut self.response_headers));
        Action::Continue
    }
}

/// Encodes the CheckRequest and sends it to the gRPC server.
/// What a CheckRequest carries besides the request: header selection, context, metadata.
struct CheckContext<'a> {
    selection: &'a HeaderSelection,
    include_tls_session: bool,
    include_forwarded_source_address: bool,
    extensions: &'a [u8],
    metadata: MetadataContext<'a>,
    route_metadata: MetadataContext<'a>,
}

/// What native reads from a TLS connection, read from the host's connection properties.
struct TlsFacts {
    source_principal: Vec<u8>,
    destination_principal: Vec<u8>,
    sni: Option<Vec<u8>>,
}

impl TlsFacts {
    /// `None` on a plaintext connection, which costs one host call to tell.
    fn read(include_tls_session: bool) -> Option<Self> {
        let connection = |name: &str| {
            host::property(&["connection", name])
                .ok()
                .flatten()
                .filter(|v| !v.is_empty())
        };
        connection("tls_version")?;
        // As native: the first URI SAN, else the first DNS SAN, else the subject.
        let principal = |side: &str| {
            ["uri_san", "dns_san", "subject"]
                .iter()
                .find_map(|kind| connection(&format!("{kind}_{side}_certificate")))
                .unwrap_or_default()
        };
        Some(Self {
            source_principal: principal("peer"),
            destination_principal: principal("local"),
            sni: include_tls_session
                .then(|| connection("requested_server_name").unwrap_or_default()),
        })
    }

    fn view(&self) -> Tls<'_> {
        Tls {
            source_principal: &self.source_principal,
            destination_principal: &self.destination_principal,
            sni: self.sni.as_deref(),
        }
    }
}

/// The namespaces asked for, out of the metadata the host has at a path (the stream's dynamic
/// metadata, or the route's): the untyped ones each an encoded Struct, the typed ones each an
/// encoded Any. The host hands over the whole `Metadata` message, so an Any keeps its type URL.
#[derive(Default)]
struct Namespaces {
    untyped: Vec<(String, Vec<u8>)>,
    typed: Vec<(String, Vec<u8>)>,
}

impl Namespaces {
    /// Nothing asked, no host call.
    fn read(path: &[&str], wanted: &[String], wanted_typed: &[String]) -> Self {
        if wanted.is_empty() && wanted_typed.is_empty() {
            return Self::default();
        }
        let Some(bytes) = host::property(path).ok().flatten() else {
            return Self::default();
        };
        let Ok(mut metadata) = Metadata::decode(&bytes) else {
            return Self::default();
        };
        let pick = |all: &mut BTreeMap<String, Vec<u8>>, wanted: &[String]| {
            wanted
                .iter()
                .filter_map(|ns| all.remove_entry(ns))
                .collect()
        };
        Self {
            untyped: pick(&mut metadata.filter_metadata, wanted),
            typed: pick(&mut metadata.typed_filter_metadata, wanted_typed),
        }
    }
}

fn borrowed(namespaces: &[(String, Vec<u8>)]) -> Vec<(&str, &[u8])> {
    namespaces
        .iter()
        .map(|(ns, value)| (ns.as_str(), value.as_slice()))
        .collect()
}

fn dispatch_grpc(
    grpc: &GrpcService,
    timeout: std::time::Duration,
    context: &CheckContext<'_>,
    headers: &[(&[u8], &[u8])],
    body: Option<RequestBody<'_>>,
) -> Result<u32, CheckError> {
    // Missing properties leave their fields empty, as native leaves them for an unknown peer.
    let source = host::property(&["source", "address"]).ok().flatten();
    let destination = host::property(&["destination", "address"]).ok().flatten();
    let protocol = host::property(&["request", "protocol"]).ok().flatten();
    let tls = TlsFacts::read(context.include_tls_session);
    let attributes = RequestAttributes {
        headers,
        source: source
            .as_deref()
            .and_then(|text| SocketAddress::source(text, context.include_forwarded_source_address)),
        destination: destination.as_deref().map(SocketAddress::parse),
        protocol: protocol.as_deref().unwrap_or_default(),
        time: host::now().unwrap_or_default(),
        body,
        metadata: context.metadata,
        route_metadata: context.route_metadata,
        selection: Some(context.selection),
        tls: tls.as_ref().map(TlsFacts::view),
    };
    let message = check_request::encode(&attributes, context.extensions);
    let metadata: Vec<(&str, &[u8])> = grpc
        .initial_metadata
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_bytes()))
        .collect();
    host::dispatch_grpc_call(
        &grpc.target,
        AUTHORIZATION_SERVICE,
        CHECK_METHOD,
        metadata,
        Some(&message),
        timeout,
    )
    .map_err(CheckError::Dispatch)
}

/// Sends the authorization request to the HTTP server.
fn dispatch_http(
    http: &HttpService,
    timeout: std::time::Duration,
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
    host::dispatch_http_call(
        &http.cluster,
        pairs,
        (!bytes.is_empty()).then_some(bytes),
        Vec::new(),
        timeout,
    )
    .map_err(CheckError::Dispatch)
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
