//! [`Host`] on Envoy: each operation straight over the proxy-wasm ABI.
//!
//! The SDK's `hostcalls` panic on any status they did not expect, and a panic traps the VM and
//! fails every later request on the worker. These return `Err(status)` for every status instead,
//! and read maps and buffers without the SDK's per-pair copies and UTF-8 unwraps. Calls that
//! answer later (gRPC, HTTP) are registered with [`super::abi`], which routes the answer back.

use std::ptr::null_mut;
use std::time::Duration;

#[allow(clippy::wildcard_imports)]
use super::imports::*;
use crate::header_map;
use crate::host::{GrpcCall, Headers, Host, HostStatus, HttpCall, LogLevel, MetricKind, Reply};

const OK: u32 = 0;
const NOT_FOUND: u32 = 1;
const EMPTY: u32 = 7;

// proxy-wasm ABI 0.2.1 enums.
const MAP_REQUEST_HEADERS: u32 = 0;
const MAP_RESPONSE_HEADERS: u32 = 2;
const MAP_HTTP_CALL_RESPONSE_HEADERS: u32 = 6;
const BUFFER_HTTP_CALL_RESPONSE_BODY: u32 = 4;
const BUFFER_REQUEST_BODY: u32 = 0;
const BUFFER_GRPC_RECEIVE: u32 = 5;
const BUFFER_PLUGIN_CONFIGURATION: u32 = 7;
const STREAM_HTTP_REQUEST: u32 = 0;
const METRIC_COUNTER: u32 = 0;
const METRIC_HISTOGRAM: u32 = 2;

fn map_type(headers: Headers) -> u32 {
    match headers {
        Headers::Request => MAP_REQUEST_HEADERS,
        Headers::Response => MAP_RESPONSE_HEADERS,
        Headers::HttpCallResponse => MAP_HTTP_CALL_RESPONSE_HEADERS,
    }
}

fn check(status: u32) -> Result<(), HostStatus> {
    if status == OK {
        Ok(())
    } else {
        Err(status)
    }
}

/// Takes ownership of bytes the host wrote into memory it got from `proxy_on_memory_allocate`
/// (which hands out `Vec<u8>` buffers of exactly the asked size).
fn take(data: *mut u8, size: usize) -> Vec<u8> {
    if data.is_null() || size == 0 {
        return Vec::new();
    }
    // SAFETY: the host filled `size` bytes of a buffer allocated as a Vec<u8> of capacity `size`.
    unsafe { Vec::from_raw_parts(data, size, size) }
}

/// Calls a host function that returns a buffer; NotFound and Empty mean no value.
fn fetch(
    call: impl FnOnce(*mut *mut u8, *mut usize) -> u32,
) -> Result<Option<Vec<u8>>, HostStatus> {
    let mut data: *mut u8 = null_mut();
    let mut size: usize = 0;
    match call(&mut data, &mut size) {
        OK => Ok(Some(take(data, size))),
        NOT_FOUND | EMPTY => Ok(None),
        status => Err(status),
    }
}

fn buffer(buffer_type: u32, max: usize) -> Result<Vec<u8>, HostStatus> {
    // SAFETY: the host writes a pointer and a size.
    fetch(|d, s| unsafe { proxy_get_buffer_bytes(buffer_type, 0, max, d, s) })
        .map(Option::unwrap_or_default)
}

/// The host counts a call's timeout in whole milliseconds.
fn millis(timeout: Duration) -> u32 {
    u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX)
}

thread_local! {
    /// The clock as first read in the running callback.
    static CLOCK: std::cell::Cell<Option<Duration>> = const { std::cell::Cell::new(None) };
}

/// A callback from the host begins: time has moved on since the last one.
pub fn callback_starts() {
    CLOCK.with(|clock| clock.set(None));
}

/// The proxy-wasm host. Stateless: the ABI acts on the context in effect.
#[derive(Debug, Clone, Copy, Default)]
pub struct WasmHost;

impl WasmHost {
    pub fn plugin_configuration(self) -> Result<Vec<u8>, HostStatus> {
        buffer(BUFFER_PLUGIN_CONFIGURATION, usize::MAX)
    }

    /// Makes the following host calls act on another context's stream (from the root's tick).
    pub fn set_effective_context(self, context_id: u32) -> Result<(), HostStatus> {
        // SAFETY: no pointers.
        check(unsafe { proxy_set_effective_context(context_id) })
    }
}

impl Host for WasmHost {
    fn log(&self, level: LogLevel, message: &str) {
        // SAFETY: pointer and length describe a live slice. A failure to log is not worth
        // failing a request for.
        unsafe {
            proxy_log(level as u32, message.as_ptr(), message.len());
        }
    }

    /// Read once per callback: a request's start, its CheckRequest's time and its call's start
    /// are the same instant, and each read is a host call.
    fn now(&self) -> Result<Duration, HostStatus> {
        if let Some(now) = CLOCK.with(std::cell::Cell::get) {
            return Ok(now);
        }
        let mut nanos = 0u64;
        // SAFETY: the host writes one u64.
        check(unsafe { proxy_get_current_time_nanoseconds(&mut nanos) })?;
        let now = Duration::from_nanos(nanos);
        CLOCK.with(|clock| clock.set(Some(now)));
        Ok(now)
    }

    fn header_map(&self, map: Headers) -> Result<Vec<u8>, HostStatus> {
        // SAFETY: the host writes a pointer and a size.
        fetch(|d, s| unsafe { proxy_get_header_map_pairs(map_type(map), d, s) })
            .map(Option::unwrap_or_default)
    }

    fn header(&self, map: Headers, name: &str) -> Result<Option<Vec<u8>>, HostStatus> {
        // SAFETY: the key is a live slice; the host writes a pointer and a size.
        fetch(|d, s| unsafe {
            proxy_get_header_map_value(map_type(map), name.as_ptr(), name.len(), d, s)
        })
    }

    fn set_header(&self, map: Headers, name: &str, value: &[u8]) -> Result<(), HostStatus> {
        // SAFETY: key and value are live slices.
        check(unsafe {
            proxy_replace_header_map_value(
                map_type(map),
                name.as_ptr(),
                name.len(),
                value.as_ptr(),
                value.len(),
            )
        })
    }

    fn add_header(&self, map: Headers, name: &str, value: &[u8]) -> Result<(), HostStatus> {
        // SAFETY: key and value are live slices.
        check(unsafe {
            proxy_add_header_map_value(
                map_type(map),
                name.as_ptr(),
                name.len(),
                value.as_ptr(),
                value.len(),
            )
        })
    }

    fn remove_header(&self, map: Headers, name: &str) -> Result<(), HostStatus> {
        // SAFETY: the key is a live slice.
        check(unsafe { proxy_remove_header_map_value(map_type(map), name.as_ptr(), name.len()) })
    }

    fn request_body(&self, max: usize) -> Result<Vec<u8>, HostStatus> {
        buffer(BUFFER_REQUEST_BODY, max)
    }

    fn property(&self, path: &[&str]) -> Result<Option<Vec<u8>>, HostStatus> {
        // The ABI takes the path's segments each followed by a NUL.
        let mut encoded = Vec::with_capacity(path.iter().map(|p| p.len() + 1).sum());
        for segment in path {
            encoded.extend_from_slice(segment.as_bytes());
            encoded.push(0);
        }
        // SAFETY: the path is a live slice; the host writes a pointer and a size.
        fetch(|d, s| unsafe { proxy_get_property(encoded.as_ptr(), encoded.len(), d, s) })
    }

    /// Envoy keeps it as filter state under `wasm.<name>`, for later filters and for access logs
    /// (`%FILTER_STATE(wasm.<name>:PLAIN)%`).
    fn set_property(&self, name: &str, value: &[u8]) -> Result<(), HostStatus> {
        // SAFETY: name and value are live slices.
        check(unsafe { proxy_set_property(name.as_ptr(), name.len(), value.as_ptr(), value.len()) })
    }

    fn dispatch_grpc_call(&self, call: GrpcCall<'_>) -> Result<u32, HostStatus> {
        let metadata = header_map::serialize(call.initial_metadata);
        let mut token = 0u32;
        // SAFETY: every pointer and length describes a live slice; the host writes one u32.
        check(unsafe {
            proxy_grpc_call(
                call.upstream.as_ptr(),
                call.upstream.len(),
                call.service.as_ptr(),
                call.service.len(),
                call.method.as_ptr(),
                call.method.len(),
                metadata.as_ptr(),
                metadata.len(),
                call.message.as_ptr(),
                call.message.len(),
                millis(call.timeout),
                &mut token,
            )
        })?;
        super::abi::register_grpc_call(token);
        Ok(token)
    }

    fn cancel_grpc_call(&self, token: u32) -> Result<(), HostStatus> {
        // SAFETY: no pointers.
        check(unsafe { proxy_grpc_cancel(token) })
    }

    fn grpc_response(&self, size: usize) -> Result<Vec<u8>, HostStatus> {
        buffer(BUFFER_GRPC_RECEIVE, size)
    }

    fn grpc_status_message(&self) -> Option<String> {
        let mut code = 0u32;
        // SAFETY: the host writes a code, a pointer and a size.
        let message = fetch(|d, s| unsafe { proxy_get_status(&mut code, d, s) }).ok()??;
        Some(String::from_utf8_lossy(&message).into_owned())
    }

    fn dispatch_http_call(&self, call: HttpCall<'_>) -> Result<u32, HostStatus> {
        let headers = header_map::serialize(call.headers);
        let trailers = header_map::serialize::<&str, &[u8]>(&[]);
        let mut token = 0u32;
        // SAFETY: every pointer and length describes a live slice; the host writes one u32.
        check(unsafe {
            proxy_http_call(
                call.cluster.as_ptr(),
                call.cluster.len(),
                headers.as_ptr(),
                headers.len(),
                call.body.as_ptr(),
                call.body.len(),
                trailers.as_ptr(),
                trailers.len(),
                millis(call.timeout),
                &mut token,
            )
        })?;
        super::abi::register_http_call(token);
        Ok(token)
    }

    fn http_call_response_body(&self, size: usize) -> Result<Vec<u8>, HostStatus> {
        buffer(BUFFER_HTTP_CALL_RESPONSE_BODY, size)
    }

    fn send_local_response(&self, reply: Reply<'_>) -> Result<(), HostStatus> {
        let headers = header_map::serialize(reply.headers);
        // SAFETY: every pointer and length describes a live slice; -1 means "not a gRPC status".
        check(unsafe {
            proxy_send_local_response(
                u32::from(reply.status),
                reply.details.as_ptr(),
                reply.details.len(),
                reply.body.as_ptr(),
                reply.body.len(),
                headers.as_ptr(),
                headers.len(),
                -1,
            )
        })
    }

    fn resume_request(&self) -> Result<(), HostStatus> {
        // SAFETY: no pointers.
        check(unsafe { proxy_continue_stream(STREAM_HTTP_REQUEST) })
    }

    fn get_shared_data(&self, key: &str) -> Result<Option<(Vec<u8>, u32)>, HostStatus> {
        let mut cas = 0u32;
        // SAFETY: the key is a live slice; the host writes a pointer, a size and one u32.
        let value = fetch(|d, s| unsafe {
            proxy_get_shared_data(key.as_ptr(), key.len(), d, s, &mut cas)
        })?;
        Ok(value.map(|value| (value, cas)))
    }

    fn set_shared_data(&self, key: &str, value: &[u8], cas: u32) -> Result<(), HostStatus> {
        // SAFETY: key and value are live slices.
        check(unsafe {
            proxy_set_shared_data(key.as_ptr(), key.len(), value.as_ptr(), value.len(), cas)
        })
    }

    fn set_tick_period(&self, period: Duration) -> Result<(), HostStatus> {
        // SAFETY: no pointers. From a stream's context the host sets its root's tick.
        check(unsafe { proxy_set_tick_period_milliseconds(millis(period)) })
    }

    fn define_metric(&self, kind: MetricKind, name: &str) -> Result<u32, HostStatus> {
        let metric_type = match kind {
            MetricKind::Counter => METRIC_COUNTER,
            MetricKind::Histogram => METRIC_HISTOGRAM,
        };
        let mut id = 0u32;
        // SAFETY: the name is a live slice; the host writes one u32.
        check(unsafe { proxy_define_metric(metric_type, name.as_ptr(), name.len(), &mut id) })?;
        Ok(id)
    }

    fn increment_metric(&self, metric: u32) {
        // SAFETY: no pointers.
        unsafe {
            proxy_increment_metric(metric, 1);
        }
    }

    fn record_metric(&self, metric: u32, value: u64) {
        // SAFETY: no pointers.
        unsafe {
            proxy_record_metric(metric, value);
        }
    }
}
