//! The floor of any wasm ext_authz filter, for `make bench`: a module that holds each request for
//! one gRPC `Check` call to the auth server and lets it go on when the answer comes, and does
//! nothing else. It reads no header, property or answer, counts nothing and changes nothing; the
//! CheckRequest is a fixed 28 bytes (`x-ext-authz: allow`, which the example server allows).
//!
//! What it costs over no auth is what the proxy-wasm ABI and V8 charge for the call itself:
//! the filter's own work is what it costs above this.

use std::cell::RefCell;

#[link(wasm_import_module = "env")]
extern "C" {
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
    fn proxy_continue_stream(stream_type: u32) -> u32;
    fn proxy_set_effective_context(context_id: u32) -> u32;
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
}

/// The bench's auth cluster (bench.py).
const CLUSTER: &[u8] = b"ext_authz";
const SERVICE: &[u8] = b"envoy.service.auth.v3.Authorization";
const METHOD: &[u8] = b"Check";
/// CheckRequest { attributes { request { http { headers { "x-ext-authz": "allow" } } } } }.
const CHECK_REQUEST: &[u8] = b"\x0a\x1a\x22\x18\x12\x16\x1a\x14\x0a\x0bx-ext-authz\x12\x05allow";
const TIMEOUT_MS: u32 = 500;
const ACTION_CONTINUE: u32 = 0;
const ACTION_PAUSE: u32 = 1;
const STREAM_REQUEST: u32 = 0;

thread_local! {
    /// Calls in flight: (token, the stream that made it).
    static CALLS: RefCell<Vec<(u32, u32)>> = const { RefCell::new(Vec::new()) };
}

fn take_call(token: u32) -> Option<u32> {
    CALLS.with(|calls| {
        let mut calls = calls.borrow_mut();
        let at = calls.iter().position(|(t, _)| *t == token)?;
        Some(calls.swap_remove(at).1)
    })
}

#[no_mangle]
pub extern "C" fn proxy_abi_version_0_2_1() {}

#[no_mangle]
pub extern "C" fn proxy_on_memory_allocate(size: usize) -> *mut u8 {
    let mut buffer: Vec<u8> = Vec::with_capacity(size);
    let at = buffer.as_mut_ptr();
    std::mem::forget(buffer);
    at
}

#[no_mangle]
pub extern "C" fn proxy_on_context_create(_context_id: u32, _root_context_id: u32) {}

#[no_mangle]
pub extern "C" fn proxy_on_vm_start(_context_id: u32, _size: usize) -> u32 {
    1
}

#[no_mangle]
pub extern "C" fn proxy_on_configure(_context_id: u32, _size: usize) -> u32 {
    1
}

#[no_mangle]
pub extern "C" fn proxy_on_request_headers(context_id: u32, _headers: usize, _end: u32) -> u32 {
    let mut token = 0u32;
    // SAFETY: every pointer is to a live constant or local for the length given.
    let status = unsafe {
        proxy_grpc_call(
            CLUSTER.as_ptr(),
            CLUSTER.len(),
            SERVICE.as_ptr(),
            SERVICE.len(),
            METHOD.as_ptr(),
            METHOD.len(),
            std::ptr::null(),
            0,
            CHECK_REQUEST.as_ptr(),
            CHECK_REQUEST.len(),
            TIMEOUT_MS,
            &mut token,
        )
    };
    if status != 0 {
        return ACTION_CONTINUE;
    }
    CALLS.with(|calls| calls.borrow_mut().push((token, context_id)));
    ACTION_PAUSE
}

#[no_mangle]
pub extern "C" fn proxy_on_grpc_receive(_context_id: u32, token: u32, _size: usize) {
    if let Some(stream) = take_call(token) {
        // SAFETY: plain host calls with no pointers.
        unsafe {
            proxy_set_effective_context(stream);
            proxy_continue_stream(STREAM_REQUEST);
        }
    }
}

#[no_mangle]
pub extern "C" fn proxy_on_grpc_close(_context_id: u32, token: u32, _status: u32) {
    if let Some(stream) = take_call(token) {
        // A failed call fails closed, as the filter does by default.
        // SAFETY: empty slices are passed as null with length 0.
        unsafe {
            proxy_set_effective_context(stream);
            proxy_send_local_response(
                403,
                std::ptr::null(),
                0,
                std::ptr::null(),
                0,
                std::ptr::null(),
                0,
                -1,
            );
        }
    }
}

#[no_mangle]
pub extern "C" fn proxy_on_delete(context_id: u32) {
    CALLS.with(|calls| {
        calls
            .borrow_mut()
            .retain(|(_, stream)| *stream != context_id)
    });
}
