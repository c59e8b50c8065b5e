//! What the filter needs from the proxy, as one trait: the request's headers and body, properties,
//! calls to an auth server, local replies, resuming, time, logs, metrics and filter state.
//!
//! The stream's whole life ([`crate::stream`]) is written against [`Host`], so it runs the same on
//! Envoy (`shell`, over the proxy-wasm ABI) and on the test host ([`crate::mock_host`]). Every host
//! operation that can fail returns `Err(HostStatus)`: the proxy's answer is data, never a panic.

use std::time::Duration;

/// A status other than OK from the host, as its raw proxy-wasm number.
pub type HostStatus = u32;

/// proxy-wasm's CasMismatch: the shared value changed since it was read.
pub const CAS_MISMATCH: HostStatus = 8;

/// What a stream callback tells the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum Action {
    Continue = 0,
    /// Stop iteration: headers become StopAllIterationAndWatermark, a body is buffered.
    Pause = 1,
}

/// Which header map an operation is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Headers {
    Request,
    Response,
    /// The answer to an `http_service` call, in its callback.
    HttpCallResponse,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    Info = 2,
    Warn = 3,
    Error = 4,
    Critical = 5,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    Counter,
    Histogram,
}

/// A unary gRPC call to start.
#[derive(Debug, Clone, Copy)]
pub struct GrpcCall<'a> {
    /// A cluster name or a serialized `envoy.config.core.v3.GrpcService`.
    pub upstream: &'a [u8],
    pub service: &'a str,
    pub method: &'a str,
    pub initial_metadata: &'a [(&'a str, &'a [u8])],
    pub message: &'a [u8],
    pub timeout: Duration,
}

/// An HTTP call to start.
#[derive(Debug, Clone, Copy)]
pub struct HttpCall<'a> {
    pub cluster: &'a str,
    pub headers: &'a [(&'a str, &'a [u8])],
    pub body: &'a [u8],
    pub timeout: Duration,
}

/// A reply to the client, sent by the filter instead of the upstream's.
#[derive(Debug, Clone, Copy)]
pub struct Reply<'a> {
    pub status: u16,
    /// Response-code details, for access logs.
    pub details: &'a str,
    pub body: &'a [u8],
    pub headers: &'a [(&'a str, &'a [u8])],
}

/// The proxy, as the stream sees it. Each call acts on the stream whose callback is running.
pub trait Host {
    fn log(&self, level: LogLevel, message: &str);
    /// Wall-clock time since the Unix epoch; the host may read it once per callback.
    fn now(&self) -> Result<Duration, HostStatus>;

    /// A header map in the ABI's serialized form ([`crate::header_map::parse`] reads it).
    fn header_map(&self, map: Headers) -> Result<Vec<u8>, HostStatus>;
    fn header(&self, map: Headers, name: &str) -> Result<Option<Vec<u8>>, HostStatus>;
    /// Replaces every value of `name`, or adds it.
    fn set_header(&self, map: Headers, name: &str, value: &[u8]) -> Result<(), HostStatus>;
    /// Adds one more value.
    fn add_header(&self, map: Headers, name: &str, value: &[u8]) -> Result<(), HostStatus>;
    fn remove_header(&self, map: Headers, name: &str) -> Result<(), HostStatus>;
    /// The first `max` bytes of the request body buffered so far.
    fn request_body(&self, max: usize) -> Result<Vec<u8>, HostStatus>;

    /// A property such as `["source", "address"]`; `None` when the host has no value.
    fn property(&self, path: &[&str]) -> Result<Option<Vec<u8>>, HostStatus>;
    /// Filter state `wasm.<name>`, readable by later filters and access logs.
    fn set_property(&self, name: &str, value: &[u8]) -> Result<(), HostStatus>;

    /// Starts a gRPC call; its end arrives as [`crate::stream::ExtAuthz::on_grpc_call_response`].
    fn dispatch_grpc_call(&self, call: GrpcCall<'_>) -> Result<u32, HostStatus>;
    fn cancel_grpc_call(&self, token: u32) -> Result<(), HostStatus>;
    /// The message of the gRPC call whose answer is being delivered.
    fn grpc_response(&self, size: usize) -> Result<Vec<u8>, HostStatus>;
    /// The status message of the gRPC call that just ended.
    fn grpc_status_message(&self) -> Option<String>;
    /// Starts an HTTP call; its end arrives as [`crate::stream::ExtAuthz::on_http_call_response`].
    fn dispatch_http_call(&self, call: HttpCall<'_>) -> Result<u32, HostStatus>;
    fn http_call_response_body(&self, size: usize) -> Result<Vec<u8>, HostStatus>;

    /// Answers the client; nothing more of the request goes upstream.
    fn send_local_response(&self, reply: Reply<'_>) -> Result<(), HostStatus>;
    /// Lets a held request go on.
    fn resume_request(&self) -> Result<(), HostStatus>;

    /// A value of the shared data of the VM id (every worker's), with its compare-and-swap token;
    /// `None` when the key was never set.
    fn get_shared_data(&self, key: &str) -> Result<Option<(Vec<u8>, u32)>, HostStatus>;
    /// Sets a shared value if its token is still `cas` (0: whatever it is), else [`CAS_MISMATCH`].
    fn set_shared_data(&self, key: &str, value: &[u8], cas: u32) -> Result<(), HostStatus>;

    /// Calls the plugin's root back every `period` (whole milliseconds); zero stops it.
    fn set_tick_period(&self, period: Duration) -> Result<(), HostStatus>;

    fn define_metric(&self, kind: MetricKind, name: &str) -> Result<u32, HostStatus>;
    /// A lost count is not worth failing a request for: no result.
    fn increment_metric(&self, metric: u32);
    fn record_metric(&self, metric: u32, value: u64);
}
