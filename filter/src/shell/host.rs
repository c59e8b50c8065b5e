//! The host calls the filter makes, straight over the proxy-wasm ABI.
//!
//! The SDK's `hostcalls` panic on any status they did not expect, and a panic traps the VM and
//! fails every later request on the worker. These return `Err(status)` for every status instead,
//! and read maps and buffers without the SDK's per-pair copies and UTF-8 unwraps. Calls that
//! answer later (gRPC, HTTP) are registered with [`super::abi`], which routes the answer back.

use std::ptr::null_mut;

/// A status other than OK from the host, as its raw number.
pub type HostStatus = u32;

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

/// Which header map a call is about.
#[derive(Debug, Clone, Copy)]
pub enum Headers {
    Request,
    Response,
    /// The answer to an `http_service` call, in its callback.
    HttpCallResponse,
}

impl Headers {
    fn map_type(self) -> u32 {
        match self {
            Self::Request => MAP_REQUEST_HEADERS,
            Self::Response => MAP_RESPONSE_HEADERS,
            Self::HttpCallResponse => MAP_HTTP_CALL_RESPONSE_HEADERS,
        }
    }
}

#[link(wasm_import_module = "env")]
extern "C" {
    fn proxy_log(level: u32, message_data: *const u8, message_size: usize) -> u32;
    fn proxy_get_current_time_nanoseconds(return_time: *mut u64) -> u32;
    fn proxy_get_buffer_bytes(
        buffer_type: u32,
        start: usize,
        max_size: usize,
        return_data: *mut *mut u8,
        return_size: *mut usize,
    ) -> u32;
    fn proxy_get_header_map_pairs(
        map_type: u32,
        return_data: *mut *mut u8,
        return_size: *mut usize,
    ) -> u32;
    fn proxy_get_header_map_value(
        map_type: u32,
        key_data: *const u8,
        key_size: usize,
        return_data: *mut *mut u8,
        return_size: *mut usize,
    ) -> u32;
    fn proxy_replace_header_map_value(
        map_type: u32,
        key_data: *const u8,
        key_size: usize,
        value_data: *const u8,
        value_size: usize,
    ) -> u32;
    fn proxy_add_header_map_value(
        map_type: u32,
        key_data: *const u8,
        key_size: usize,
        value_data: *const u8,
        value_size: usize,
    ) -> u32;
    fn proxy_remove_header_map_value(map_type: u32, key_data: *const u8, key_size: usize) -> u32;
    fn proxy_grpc_call(
        upstream_data: *const u8,
        upstream_size: usize,
        service_name_data: *const u8,
        service_name_size: usize,
        method_name_data: *const u8,
        method_name_size: usize,
        initial_metadata_data: *const u8,
        initial_metadata_size: usize,
        message_data: *const u8,
        message_size: usize,
        timeout_milliseconds: u32,
        return_token: *mut u32,
    ) -> u32;
    fn proxy_grpc_cancel(token: u32) -> u32;
    fn proxy_http_call(
        upstream_data: *const u8,
        upstream_size: usize,
        headers_data: *const u8,
        headers_size: usize,
        body_data: *const u8,
        body_size: usize,
        trailers_data: *const u8,
        trailers_size: usize,
        timeout_milliseconds: u32,
        return_token: *mut u32,
    ) -> u32;
    fn proxy_get_property(
        path_data: *const u8,
        path_size: usize,
        return_data: *mut *mut u8,
        return_size: *mut usize,
    ) -> u32;
    fn proxy_send_local_response(
        status_code: u32,
        details_data: *const u8,
        details_size: usize,
        body_data: *const u8,
        body_size: usize,
        headers_data: *const u8,
        headers_size: usize,
        grpc_status: i32,
    ) -> u32;
    fn proxy_continue_stream(stream_type: u32) -> u32;
    fn proxy_set_property(
        path_data: *const u8,
        path_size: usize,
        value_data: *const u8,
        value_size: usize,
    ) -> u32;
    fn proxy_set_effective_context(context_id: u32) -> u32;
    fn proxy_set_tick_period_milliseconds(period: u32) -> u32;
    fn proxy_get_status(
        return_code: *mut u32,
        return_data: *mut *mut u8,
        return_size: *mut usize,
    ) -> u32;
    fn proxy_define_metric(
        metric_type: u32,
        name_data: *const u8,
        name_size: usize,
        return_id: *mut u32,
    ) -> u32;
    fn proxy_increment_metric(metric_id: u32, offset: i64) -> u32;
    fn proxy_record_metric(metric_id: u32, value: u64) -> u32;
}

fn check(status: u32) -> Result<(), HostStatus> {
    if status == OK {
        Ok(())
    } else {
        Err(status)
    }
}

/// Takes ownership of bytes the host wrote into memory it got from `proxy_on_memory_allocate`
/// (the SDK's allocator hands out `Vec<u8>` buffers of exactly the asked size).
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

#[derive(Debug, Clone, Copy)]
pub enum LogLevel {
    Info = 2,
    Warn = 3,
    Error = 4,
    Critical = 5,
}

/// Logs a line; a failure to log is not worth failing a request for.
pub fn log(level: LogLevel, message: &str) {
    // SAFETY: pointer and length describe a live slice.
    unsafe {
        proxy_log(level as u32, message.as_ptr(), message.len());
    }
}

thread_local! {
    /// The clock as first read in the running callback.
    static CLOCK: std::cell::Cell<Option<std::time::Duration>> = const { std::cell::Cell::new(None) };
}

/// The host's wall clock, since the Unix epoch. Read once per callback: a request's start, its
/// CheckRequest's time and its call's start are the same instant, and each read is a host call.
pub fn now() -> Result<std::time::Duration, HostStatus> {
    if let Some(now) = CLOCK.with(std::cell::Cell::get) {
        return Ok(now);
    }
    let mut nanos = 0u64;
    // SAFETY: the host writes one u64.
    check(unsafe { proxy_get_current_time_nanoseconds(&mut nanos) })?;
    let now = std::time::Duration::from_nanos(nanos);
    CLOCK.with(|clock| clock.set(Some(now)));
    Ok(now)
}

/// A callback from the host begins: time has moved on since the last one.
pub fn callback_starts() {
    CLOCK.with(|clock| clock.set(None));
}

pub fn plugin_configuration() -> Result<Vec<u8>, HostStatus> {
    // SAFETY: the host writes a pointer and a size.
    fetch(|d, s| unsafe {
        proxy_get_buffer_bytes(BUFFER_PLUGIN_CONFIGURATION, 0, usize::MAX, d, s)
    })
    .map(Option::unwrap_or_default)
}

/// The first `max` bytes of the request body buffered so far.
pub fn request_body(max: usize) -> Result<Vec<u8>, HostStatus> {
    // SAFETY: the host writes a pointer and a size.
    fetch(|d, s| unsafe { proxy_get_buffer_bytes(BUFFER_REQUEST_BODY, 0, max, d, s) })
        .map(Option::unwrap_or_default)
}

/// Makes the following host calls act on another context's stream (from the root's tick).
pub fn set_effective_context(context_id: u32) -> Result<(), HostStatus> {
    // SAFETY: no pointers.
    check(unsafe { proxy_set_effective_context(context_id) })
}

/// Calls the root's `on_tick` every `period`; zero stops it.
pub fn set_tick_period(period: std::time::Duration) -> Result<(), HostStatus> {
    let millis = u32::try_from(period.as_millis()).unwrap_or(u32::MAX);
    // SAFETY: no pointers.
    check(unsafe { proxy_set_tick_period_milliseconds(millis) })
}

/// The body of an `http_service` answer, in its callback.
pub fn http_call_response_body(size: usize) -> Result<Vec<u8>, HostStatus> {
    // SAFETY: the host writes a pointer and a size.
    fetch(|d, s| unsafe { proxy_get_buffer_bytes(BUFFER_HTTP_CALL_RESPONSE_BODY, 0, size, d, s) })
        .map(Option::unwrap_or_default)
}

pub fn grpc_response(size: usize) -> Result<Vec<u8>, HostStatus> {
    // SAFETY: the host writes a pointer and a size.
    fetch(|d, s| unsafe { proxy_get_buffer_bytes(BUFFER_GRPC_RECEIVE, 0, size, d, s) })
        .map(Option::unwrap_or_default)
}

/// A header map serialized in the ABI's format; parse it with [`crate::header_map::parse`].
pub fn header_map(headers: Headers) -> Result<Vec<u8>, HostStatus> {
    // SAFETY: the host writes a pointer and a size.
    fetch(|d, s| unsafe { proxy_get_header_map_pairs(headers.map_type(), d, s) })
        .map(Option::unwrap_or_default)
}

pub fn header(headers: Headers, name: &str) -> Result<Option<Vec<u8>>, HostStatus> {
    // SAFETY: the key is a live slice; the host writes a pointer and a size.
    fetch(|d, s| unsafe {
        proxy_get_header_map_value(headers.map_type(), name.as_ptr(), name.len(), d, s)
    })
}

pub fn set_header(headers: Headers, name: &str, value: &[u8]) -> Result<(), HostStatus> {
    // SAFETY: key and value are live slices.
    check(unsafe {
        proxy_replace_header_map_value(
            headers.map_type(),
            name.as_ptr(),
            name.len(),
            value.as_ptr(),
            value.len(),
        )
    })
}

pub fn add_header(headers: Headers, name: &str, value: &[u8]) -> Result<(), HostStatus> {
    // SAFETY: key and value are live slices.
    check(unsafe {
        proxy_add_header_map_value(
            headers.map_type(),
            name.as_ptr(),
            name.len(),
            value.as_ptr(),
            value.len(),
        )
    })
}

pub fn remove_header(headers: Headers, name: &str) -> Result<(), HostStatus> {
    // SAFETY: the key is a live slice.
    check(unsafe { proxy_remove_header_map_value(headers.map_type(), name.as_ptr(), name.len()) })
}

/// A property such as `["source", "address"]`, or `None` when the host has no value for it.
pub fn property(path: &[&str]) -> Result<Option<Vec<u8>>, HostStatus> {
    // The ABI takes the path's segments each followed by a NUL.
    let mut encoded = Vec::with_capacity(path.iter().map(|p| p.len() + 1).sum());
    for segment in path {
        encoded.extend_from_slice(segment.as_bytes());
        encoded.push(0);
    }
    // SAFETY: the path is a live slice; the host writes a pointer and a size.
    fetch(|d, s| unsafe { proxy_get_property(encoded.as_ptr(), encoded.len(), d, s) })
}

/// The host counts a call's timeout in whole milliseconds.
fn millis(timeout: std::time::Duration) -> u32 {
    u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX)
}

/// Starts a unary gRPC call to `upstream` (a cluster name or a serialized GrpcService); the answer
/// comes to the calling context's `on_grpc_call_response`.
pub fn dispatch_grpc_call(
    upstream: &str,
    service: &str,
    method: &str,
    initial_metadata: Vec<(&str, &[u8])>,
    message: Option<&[u8]>,
    timeout: std::time::Duration,
) -> Result<u32, HostStatus> {
    let metadata = crate::header_map::serialize(&initial_metadata);
    let message = message.unwrap_or_default();
    let mut token = 0u32;
    // SAFETY: every pointer and length describes a live slice; the host writes one u32.
    check(unsafe {
        proxy_grpc_call(
            upstream.as_ptr(),
            upstream.len(),
            service.as_ptr(),
            service.len(),
            method.as_ptr(),
            method.len(),
            metadata.as_ptr(),
            metadata.len(),
            message.as_ptr(),
            message.len(),
            millis(timeout),
            &mut token,
        )
    })?;
    super::abi::register_grpc_call(token);
    Ok(token)
}

/// Cancels a pending gRPC call; its answer, if it comes, is dropped by the host.
pub fn cancel_grpc_call(token: u32) -> Result<(), HostStatus> {
    // SAFETY: no pointers.
    check(unsafe { proxy_grpc_cancel(token) })
}

/// Starts an HTTP call to cluster `upstream`; the answer comes to `on_http_call_response`.
pub fn dispatch_http_call(
    upstream: &str,
    headers: Vec<(&str, &str)>,
    body: Option<&[u8]>,
    trailers: Vec<(&str, &str)>,
    timeout: std::time::Duration,
) -> Result<u32, HostStatus> {
    let headers = crate::header_map::serialize(&headers);
    let trailers = crate::header_map::serialize(&trailers);
    let body = body.unwrap_or_default();
    let mut token = 0u32;
    // SAFETY: every pointer and length describes a live slice; the host writes one u32.
    check(unsafe {
        proxy_http_call(
            upstream.as_ptr(),
            upstream.len(),
            headers.as_ptr(),
            headers.len(),
            body.as_ptr(),
            body.len(),
            trailers.as_ptr(),
            trailers.len(),
            millis(timeout),
            &mut token,
        )
    })?;
    super::abi::register_http_call(token);
    Ok(token)
}

/// Sets a property of the stream. Envoy keeps it as filter state under `wasm.<name>`, for later
/// filters and for access logs (`%FILTER_STATE(wasm.<name>:PLAIN)%`).
pub fn set_property(name: &str, value: &[u8]) -> Result<(), HostStatus> {
    // SAFETY: name and value are live slices.
    check(unsafe { proxy_set_property(name.as_ptr(), name.len(), value.as_ptr(), value.len()) })
}

/// Answers the client. `details` lands in the access log's response-code details.
pub fn send_local_response(
    status: u16,
    details: &str,
    body: &[u8],
    headers: &[u8],
) -> Result<(), HostStatus> {
    // SAFETY: every pointer and length describes a live slice; -1 means "not a gRPC status".
    check(unsafe {
        proxy_send_local_response(
            u32::from(status),
            details.as_ptr(),
            details.len(),
            body.as_ptr(),
            body.len(),
            headers.as_ptr(),
            headers.len(),
            -1,
        )
    })
}

pub fn resume_request() -> Result<(), HostStatus> {
    // SAFETY: no pointers.
    check(unsafe { proxy_continue_stream(STREAM_HTTP_REQUEST) })
}

/// The status message of the gRPC call whose callback is running.
pub fn grpc_status_message() -> Option<String> {
    let mut code = 0u32;
    // SAFETY: the host writes a code, a pointer and a size.
    let message = fetch(|d, s| unsafe { proxy_get_status(&mut code, d, s) }).ok()??;
    Some(String::from_utf8_lossy(&message).into_owned())
}

pub fn define_counter(name: &str) -> Result<u32, HostStatus> {
    define_metric(METRIC_COUNTER, name)
}

pub fn define_histogram(name: &str) -> Result<u32, HostStatus> {
    define_metric(METRIC_HISTOGRAM, name)
}

fn define_metric(metric_type: u32, name: &str) -> Result<u32, HostStatus> {
    let mut id = 0u32;
    // SAFETY: the name is a live slice; the host writes one u32.
    check(unsafe { proxy_define_metric(metric_type, name.as_ptr(), name.len(), &mut id) })?;
    Ok(id)
}

pub fn record(metric: u32, value: u64) {
    // SAFETY: no pointers. A lost sample is not worth failing a request for.
    unsafe {
        proxy_record_metric(metric, value);
    }
}

pub fn increment(metric: u32) {
    // SAFETY: no pointers. A lost count is not worth failing a request for.
    unsafe {
        proxy_increment_metric(metric, 1);
    }
}
