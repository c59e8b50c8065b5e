//! A [`Host`] for unit tests of the stream: a request (headers, body, properties) set up fluently,
//! `MockHost::new().with_header(..).with_property(..)`, and a record of everything the filter did
//! to it (calls sent, headers changed, replies, resumes, logs, metrics, filter state).
//!
//! Clones share one state, so a test keeps a handle while the stream owns another.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

use crate::header_map;
use crate::host::{GrpcCall, Headers, Host, HostStatus, HttpCall, LogLevel, MetricKind, Reply};

/// A call the filter sent.
#[derive(Debug, Clone, PartialEq)]
pub enum SentCall {
    Grpc {
        token: u32,
        upstream: Vec<u8>,
        initial_metadata: Vec<(String, Vec<u8>)>,
        /// The encoded CheckRequest.
        message: Vec<u8>,
        timeout: Duration,
    },
    Http {
        token: u32,
        cluster: String,
        headers: Vec<(String, Vec<u8>)>,
        body: Vec<u8>,
        timeout: Duration,
    },
}

impl SentCall {
    pub fn token(&self) -> u32 {
        match self {
            Self::Grpc { token, .. } | Self::Http { token, .. } => *token,
        }
    }
}

/// A local reply the filter sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentReply {
    pub status: u16,
    pub details: String,
    pub body: Vec<u8>,
    pub headers: Vec<(String, Vec<u8>)>,
}

/// The shared data of one VM id: what every worker's [`MockHost`] made with
/// [`MockHost::with_shared_data`] sees. Key → (value, compare-and-swap token).
#[derive(Debug, Clone, Default)]
pub struct SharedData(Rc<RefCell<Slots>>);

type Slots = BTreeMap<String, (Vec<u8>, u32)>;

impl SharedData {
    /// Every value, by key.
    pub fn values(&self) -> BTreeMap<String, Vec<u8>> {
        self.0
            .borrow()
            .iter()
            .map(|(k, (v, _))| (k.clone(), v.clone()))
            .collect()
    }

    /// Writes a value as another worker (or another plugin of the VM) would.
    pub fn put(&self, key: &str, value: &[u8]) {
        let mut map = self.0.borrow_mut();
        let cas = map.get(key).map_or(0, |(_, cas)| *cas) + 1;
        map.insert(key.to_owned(), (value.to_vec(), cas));
    }
}

#[derive(Debug, Default)]
struct State {
    shared: SharedData,
    now: Duration,
    request_headers: Vec<(String, Vec<u8>)>,
    response_headers: Vec<(String, Vec<u8>)>,
    request_body: Vec<u8>,
    properties: BTreeMap<Vec<String>, Vec<u8>>,
    failing: BTreeMap<&'static str, HostStatus>,
    next_token: u32,
    calls: Vec<SentCall>,
    cancelled: Vec<u32>,
    grpc_answer: Vec<u8>,
    grpc_message: Option<String>,
    http_answer_headers: Vec<(String, Vec<u8>)>,
    http_answer_body: Vec<u8>,
    replies: Vec<SentReply>,
    resumed: usize,
    logs: Vec<(LogLevel, String)>,
    metrics: Vec<(String, MetricKind, Vec<u64>)>,
    filter_state: BTreeMap<String, Vec<u8>>,
    tick_period: Duration,
}

#[derive(Debug, Clone, Default)]
pub struct MockHost(Rc<RefCell<State>>);

impl MockHost {
    /// A GET of `/` to `example.com`, at a fixed time.
    pub fn new() -> Self {
        let host = Self::default();
        host.0.borrow_mut().now = Duration::from_secs(1_700_000_000);
        host.0.borrow_mut().next_token = 1;
        host.with_header(":method", "GET")
            .with_header(":path", "/")
            .with_header(":authority", "example.com")
            .with_header(":scheme", "http")
    }

    /// One more request header (or the value of a pseudo-header, replaced).
    pub fn with_header(self, name: &str, value: impl AsRef<[u8]>) -> Self {
        {
            let mut state = self.0.borrow_mut();
            if name.starts_with(':') {
                state.request_headers.retain(|(k, _)| k != name);
            }
            state
                .request_headers
                .push((name.to_owned(), value.as_ref().to_vec()));
        }
        self
    }

    pub fn with_property(self, path: &[&str], value: impl AsRef<[u8]>) -> Self {
        let path = path.iter().map(|s| (*s).to_owned()).collect();
        self.0
            .borrow_mut()
            .properties
            .insert(path, value.as_ref().to_vec());
        self
    }

    /// The request body buffered so far.
    pub fn with_body(self, body: impl AsRef<[u8]>) -> Self {
        self.0.borrow_mut().request_body = body.as_ref().to_vec();
        self
    }

    /// Makes a host operation (`"header_map"`, `"request_body"`, `"dispatch_grpc_call"`,
    /// `"dispatch_http_call"`, `"grpc_response"`, `"send_local_response"`, `"resume_request"`,
    /// `"set_property"`) fail with `status`.
    pub fn failing(self, operation: &'static str, status: HostStatus) -> Self {
        self.0.borrow_mut().failing.insert(operation, status);
        self
    }

    /// Shares `data` with the other hosts given it, as Envoy's workers share one VM id's data.
    pub fn with_shared_data(self, data: &SharedData) -> Self {
        self.0.borrow_mut().shared = data.clone();
        self
    }

    pub fn shared_data(&self) -> SharedData {
        self.0.borrow().shared.clone()
    }

    /// Sets the clock.
    pub fn set_now(&self, now: Duration) {
        self.0.borrow_mut().now = now;
    }

    /// Time passes.
    pub fn advance(&self, by: Duration) {
        self.0.borrow_mut().now += by;
    }

    /// The bytes of the gRPC answer the next `on_grpc_call_response` reads.
    pub fn answer_grpc(&self, message: Vec<u8>) {
        self.0.borrow_mut().grpc_answer = message;
    }

    pub fn set_grpc_status_message(&self, message: &str) {
        self.0.borrow_mut().grpc_message = Some(message.to_owned());
    }

    /// The answer the next `on_http_call_response` reads; no `:status` means a failed call.
    pub fn answer_http(&self, headers: &[(&str, &str)], body: &[u8]) {
        let mut state = self.0.borrow_mut();
        state.http_answer_headers = headers
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.as_bytes().to_vec()))
            .collect();
        state.http_answer_body = body.to_vec();
    }

    pub fn calls(&self) -> Vec<SentCall> {
        self.0.borrow().calls.clone()
    }

    pub fn last_call(&self) -> SentCall {
        self.0
            .borrow()
            .calls
            .last()
            .cloned()
            .expect("no call was sent")
    }

    pub fn cancelled(&self) -> Vec<u32> {
        self.0.borrow().cancelled.clone()
    }

    pub fn replies(&self) -> Vec<SentReply> {
        self.0.borrow().replies.clone()
    }

    pub fn resumed(&self) -> usize {
        self.0.borrow().resumed
    }

    /// Every value of a request header, in order.
    pub fn request_header(&self, name: &str) -> Vec<Vec<u8>> {
        values(&self.0.borrow().request_headers, name)
    }

    pub fn response_header(&self, name: &str) -> Vec<Vec<u8>> {
        values(&self.0.borrow().response_headers, name)
    }

    /// The root's tick period as last set.
    pub fn tick_period(&self) -> Duration {
        self.0.borrow().tick_period
    }

    pub fn filter_state(&self, name: &str) -> Option<Vec<u8>> {
        self.0.borrow().filter_state.get(name).cloned()
    }

    pub fn logs(&self) -> Vec<(LogLevel, String)> {
        self.0.borrow().logs.clone()
    }

    /// A counter's value by its name after `ext_authz.` (and the stat prefix); a name the filter
    /// never defined fails the test, so a typo cannot pass as zero.
    pub fn counter(&self, name: &str) -> u64 {
        self.metric(name, MetricKind::Counter).len() as u64
    }

    /// A histogram's samples.
    pub fn histogram(&self, name: &str) -> Vec<u64> {
        self.metric(name, MetricKind::Histogram)
    }

    /// Every counter that is not zero, by name.
    pub fn counters(&self) -> BTreeMap<String, u64> {
        self.0
            .borrow()
            .metrics
            .iter()
            .filter(|(_, kind, v)| *kind == MetricKind::Counter && !v.is_empty())
            .map(|(name, _, v)| (name.clone(), v.len() as u64))
            .collect()
    }

    fn metric(&self, name: &str, kind: MetricKind) -> Vec<u64> {
        let state = self.0.borrow();
        let found = state
            .metrics
            .iter()
            .find(|(full, k, _)| *k == kind && full.rsplit('.').next() == Some(name));
        match found {
            Some((_, _, samples)) => samples.clone(),
            None => panic!(
                "no {kind:?} {name:?}; defined: {:?}",
                state.metrics.iter().map(|m| &m.0).collect::<Vec<_>>()
            ),
        }
    }

    fn fails(&self, operation: &str) -> Result<(), HostStatus> {
        match self.0.borrow().failing.get(operation) {
            Some(status) => Err(*status),
            None => Ok(()),
        }
    }

    fn map(&self, map: Headers) -> std::cell::RefMut<'_, Vec<(String, Vec<u8>)>> {
        std::cell::RefMut::map(self.0.borrow_mut(), |state| match map {
            Headers::Request => &mut state.request_headers,
            Headers::Response => &mut state.response_headers,
            Headers::HttpCallResponse => &mut state.http_answer_headers,
        })
    }

    fn token(&self) -> u32 {
        let mut state = self.0.borrow_mut();
        state.next_token += 1;
        state.next_token
    }
}

fn values(map: &[(String, Vec<u8>)], name: &str) -> Vec<Vec<u8>> {
    map.iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.clone())
        .collect()
}

fn owned(pairs: &[(&str, &[u8])]) -> Vec<(String, Vec<u8>)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.to_vec()))
        .collect()
}

impl Host for MockHost {
    fn log(&self, level: LogLevel, message: &str) {
        self.0.borrow_mut().logs.push((level, message.to_owned()));
    }

    fn now(&self) -> Result<Duration, HostStatus> {
        Ok(self.0.borrow().now)
    }

    fn header_map(&self, map: Headers) -> Result<Vec<u8>, HostStatus> {
        self.fails("header_map")?;
        Ok(header_map::serialize(&self.map(map)))
    }

    fn header(&self, map: Headers, name: &str) -> Result<Option<Vec<u8>>, HostStatus> {
        Ok(values(&self.map(map), name).into_iter().next())
    }

    fn set_header(&self, map: Headers, name: &str, value: &[u8]) -> Result<(), HostStatus> {
        // As Envoy: the first value's place keeps the header; every other value goes.
        let mut headers = self.map(map);
        let first = headers
            .iter()
            .position(|(k, _)| k.eq_ignore_ascii_case(name));
        headers.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
        let at = first.unwrap_or(headers.len()).min(headers.len());
        headers.insert(at, (name.to_owned(), value.to_vec()));
        Ok(())
    }

    fn add_header(&self, map: Headers, name: &str, value: &[u8]) -> Result<(), HostStatus> {
        self.map(map).push((name.to_owned(), value.to_vec()));
        Ok(())
    }

    fn remove_header(&self, map: Headers, name: &str) -> Result<(), HostStatus> {
        self.map(map).retain(|(k, _)| !k.eq_ignore_ascii_case(name));
        Ok(())
    }

    fn request_body(&self, max: usize) -> Result<Vec<u8>, HostStatus> {
        self.fails("request_body")?;
        let body = &self.0.borrow().request_body;
        Ok(body[..body.len().min(max)].to_vec())
    }

    fn property(&self, path: &[&str]) -> Result<Option<Vec<u8>>, HostStatus> {
        let path: Vec<String> = path.iter().map(|s| (*s).to_owned()).collect();
        Ok(self.0.borrow().properties.get(&path).cloned())
    }

    fn set_property(&self, name: &str, value: &[u8]) -> Result<(), HostStatus> {
        self.fails("set_property")?;
        let mut state = self.0.borrow_mut();
        state.filter_state.insert(name.to_owned(), value.to_vec());
        Ok(())
    }

    fn dispatch_grpc_call(&self, call: GrpcCall<'_>) -> Result<u32, HostStatus> {
        self.fails("dispatch_grpc_call")?;
        let token = self.token();
        self.0.borrow_mut().calls.push(SentCall::Grpc {
            token,
            upstream: call.upstream.to_vec(),
            initial_metadata: owned(call.initial_metadata),
            message: call.message.to_vec(),
            timeout: call.timeout,
        });
        Ok(token)
    }

    fn cancel_grpc_call(&self, token: u32) -> Result<(), HostStatus> {
        self.0.borrow_mut().cancelled.push(token);
        Ok(())
    }

    fn grpc_response(&self, size: usize) -> Result<Vec<u8>, HostStatus> {
        self.fails("grpc_response")?;
        let answer = &self.0.borrow().grpc_answer;
        Ok(answer[..answer.len().min(size)].to_vec())
    }

    fn grpc_status_message(&self) -> Option<String> {
        self.0.borrow().grpc_message.clone()
    }

    fn dispatch_http_call(&self, call: HttpCall<'_>) -> Result<u32, HostStatus> {
        self.fails("dispatch_http_call")?;
        let token = self.token();
        self.0.borrow_mut().calls.push(SentCall::Http {
            token,
            cluster: call.cluster.to_owned(),
            headers: owned(call.headers),
            body: call.body.to_vec(),
            timeout: call.timeout,
        });
        Ok(token)
    }

    fn http_call_response_body(&self, size: usize) -> Result<Vec<u8>, HostStatus> {
        let body = &self.0.borrow().http_answer_body;
        Ok(body[..body.len().min(size)].to_vec())
    }

    fn send_local_response(&self, reply: Reply<'_>) -> Result<(), HostStatus> {
        self.fails("send_local_response")?;
        self.0.borrow_mut().replies.push(SentReply {
            status: reply.status,
            details: reply.details.to_owned(),
            body: reply.body.to_vec(),
            headers: owned(reply.headers),
        });
        Ok(())
    }

    fn resume_request(&self) -> Result<(), HostStatus> {
        self.fails("resume_request")?;
        self.0.borrow_mut().resumed += 1;
        Ok(())
    }

    fn get_shared_data(&self, key: &str) -> Result<Option<(Vec<u8>, u32)>, HostStatus> {
        self.fails("get_shared_data")?;
        let shared = self.0.borrow().shared.clone();
        let value = shared.0.borrow().get(key).cloned();
        Ok(value)
    }

    fn set_shared_data(&self, key: &str, value: &[u8], cas: u32) -> Result<(), HostStatus> {
        self.fails("set_shared_data")?;
        let shared = self.0.borrow().shared.clone();
        let current = shared.0.borrow().get(key).map(|(_, cas)| *cas);
        // As Envoy: a token of 0 writes whatever is there.
        if cas != 0 && current.is_some_and(|current| current != cas) {
            return Err(crate::host::CAS_MISMATCH);
        }
        shared.put(key, value);
        Ok(())
    }

    fn set_tick_period(&self, period: Duration) -> Result<(), HostStatus> {
        self.fails("set_tick_period")?;
        self.0.borrow_mut().tick_period = period;
        Ok(())
    }

    fn define_metric(&self, kind: MetricKind, name: &str) -> Result<u32, HostStatus> {
        let mut state = self.0.borrow_mut();
        if let Some(at) = state.metrics.iter().position(|(n, _, _)| n == name) {
            return Ok(at as u32);
        }
        state.metrics.push((name.to_owned(), kind, Vec::new()));
        Ok((state.metrics.len() - 1) as u32)
    }

    fn increment_metric(&self, metric: u32) {
        if let Some(m) = self.0.borrow_mut().metrics.get_mut(metric as usize) {
            m.2.push(1);
        }
    }

    fn record_metric(&self, metric: u32, value: u64) {
        if let Some(m) = self.0.borrow_mut().metrics.get_mut(metric as usize) {
            m.2.push(value);
        }
    }
}
