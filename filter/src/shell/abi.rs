//! The proxy-wasm ABI (0.2.1) entry points, and the contexts they are dispatched to.
//!
//! This replaces the SDK's dispatcher, for cost: Envoy calls every `proxy_on_*` function a module
//! exports, on every request, and each call is a trip into the VM (about a microsecond of proxy
//! CPU). The SDK exports them all; this exports only the callbacks the filter uses, so Envoy skips
//! the response body, response trailers and access-log callbacks, and `on_done` runs from
//! `proxy_on_delete`. Contexts are kept in maps sorted by id ([`IdMap`]), and an unknown context
//! or token is ignored, never a panic.
//!
//! The traits keep the SDK's names and signatures, so the root and HTTP contexts read the same.

use std::cell::{Cell, RefCell};
use std::mem::MaybeUninit;

use super::host::{self, WasmHost};
pub use crate::host::Action;
use crate::host::{Host, Reply};
use crate::id_map::IdMap;

/// Callbacks every context may get.
pub trait Context {
    /// A gRPC call this context made has ended: `status_code` 0 with `response_size` bytes to
    /// read, or a failure status.
    fn on_grpc_call_response(&mut self, _token_id: u32, _status_code: u32, _response_size: usize) {}

    /// An HTTP call this context made has ended (failed calls arrive without headers).
    fn on_http_call_response(
        &mut self,
        _token_id: u32,
        _num_headers: usize,
        _body_size: usize,
        _num_trailers: usize,
    ) {
    }

    /// The stream (or plugin) is finishing; `true` when the context is done.
    fn on_done(&mut self) -> bool {
        true
    }
}

/// The callbacks of an HTTP stream.
pub trait HttpContext: Context {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        Action::Continue
    }

    fn on_http_request_body(&mut self, _body_size: usize, _end_of_stream: bool) -> Action {
        Action::Continue
    }

    fn on_http_request_trailers(&mut self, _num_trailers: usize) -> Action {
        Action::Continue
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        Action::Continue
    }

    /// Not an ABI callback: the root's tick, on this stream's behalf, found that its body is not
    /// coming (see `crate::body_watch`).
    fn on_body_timeout(&mut self) {}
    /// Not an ABI callback either: the root's tick, when this stream's retry back-off has ended.
    fn on_retry_due(&mut self) {}
}

/// The callbacks of a plugin's root context.
pub trait RootContext: Context {
    fn on_vm_start(&mut self, _vm_configuration_size: usize) -> bool {
        true
    }

    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        true
    }

    fn on_tick(&mut self) {}

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        None
    }
}

/// Makes the root context of each plugin.
pub type NewRootContext = fn(u32) -> Box<dyn RootContext>;

struct Dispatcher {
    new_root: Cell<Option<NewRootContext>>,
    /// One per plugin that shares this VM: a handful at most.
    roots: RefCell<Vec<(u32, Box<dyn RootContext>)>>,
    streams: RefCell<IdMap<Box<dyn HttpContext>>>,
    /// The stream whose callback runs now: calls it starts are its own.
    active: Cell<u32>,
    /// Pending gRPC and HTTP calls (separate counters in the host), token -> context.
    grpc_calls: RefCell<IdMap<u32>>,
    http_calls: RefCell<IdMap<u32>>,
}

impl Dispatcher {
    /// Built at compile time, so each `DISPATCHER.with` is a plain static's address, without the
    /// lazy first-use check (and its code) at every one of its 19 call sites.
    const fn new() -> Self {
        Self {
            new_root: Cell::new(None),
            roots: RefCell::new(Vec::new()),
            streams: RefCell::new(IdMap::new()),
            active: Cell::new(0),
            grpc_calls: RefCell::new(IdMap::new()),
            http_calls: RefCell::new(IdMap::new()),
        }
    }
}

thread_local! {
    static DISPATCHER: Dispatcher = const { Dispatcher::new() };
}

/// Sets how each plugin's root context is made; call once, from `_initialize`.
pub fn set_root_context(new_root: NewRootContext) {
    DISPATCHER.with(|d| d.new_root.set(Some(new_root)));
}

/// Remembers that the active context started gRPC call `token`.
pub fn register_grpc_call(token: u32) {
    DISPATCHER.with(|d| {
        if let Ok(mut calls) = d.grpc_calls.try_borrow_mut() {
            calls.insert(token, d.active.get());
        }
    });
}

/// Remembers that the active context started HTTP call `token`.
pub fn register_http_call(token: u32) {
    DISPATCHER.with(|d| {
        if let Ok(mut calls) = d.http_calls.try_borrow_mut() {
            calls.insert(token, d.active.get());
        }
    });
}

/// Runs `f` on a stream's context, or answers `default` for a context this VM does not have.
fn with_stream<R>(context_id: u32, default: R, f: impl FnOnce(&mut dyn HttpContext) -> R) -> R {
    DISPATCHER.with(|d| {
        let Ok(mut streams) = d.streams.try_borrow_mut() else {
            return default;
        };
        let Some(stream) = streams.get_mut(context_id) else {
            return default;
        };
        host::callback_starts();
        d.active.set(context_id);
        f(stream.as_mut())
    })
}

/// Runs `f` on a stream's context from another context's callback (the root's tick); a stream
/// this VM does not have is skipped.
pub fn with_http_context(context_id: u32, f: impl FnOnce(&mut dyn HttpContext)) {
    with_stream(context_id, (), f);
}

/// Runs `f` on a root context, or answers `default`.
fn with_root<R>(context_id: u32, default: R, f: impl FnOnce(&mut dyn RootContext) -> R) -> R {
    DISPATCHER.with(|d| {
        let Ok(mut roots) = d.roots.try_borrow_mut() else {
            return default;
        };
        let Some((_, root)) = roots.iter_mut().find(|(id, _)| *id == context_id) else {
            return default;
        };
        host::callback_starts();
        d.active.set(context_id);
        f(root.as_mut())
    })
}

/// How a call ended, for the context that made it.
#[derive(Clone, Copy)]
enum CallEnd {
    Grpc {
        token: u32,
        status_code: u32,
        response_size: usize,
    },
    Http {
        token: u32,
        num_headers: usize,
        body_size: usize,
        num_trailers: usize,
    },
}

impl CallEnd {
    fn deliver<C: Context + ?Sized>(self, context: &mut C) {
        match self {
            Self::Grpc {
                token,
                status_code,
                response_size,
            } => context.on_grpc_call_response(token, status_code, response_size),
            Self::Http {
                token,
                num_headers,
                body_size,
                num_trailers,
            } => context.on_http_call_response(token, num_headers, body_size, num_trailers),
        }
    }
}

/// Hands a finished call to the context that made it. Calls are made on the root context, so
/// the answer arrives there: the stream is made the effective context first, so what the answer
/// does (headers, resume, reply) lands on the right stream.
fn call_ended(calls: &RefCell<IdMap<u32>>, token: u32, end: CallEnd) {
    let context_id = calls
        .try_borrow_mut()
        .ok()
        .and_then(|mut c| c.remove(token));
    let Some(context_id) = context_id else {
        return;
    };
    if WasmHost.set_effective_context(context_id).is_err() {
        return;
    }
    let delivered = with_stream(context_id, false, |stream| {
        end.deliver(stream);
        true
    });
    if !delivered {
        with_root(context_id, (), |root| end.deliver(root));
    }
}

fn action(action: Action) -> u32 {
    action as u32
}

// --- exports ------------------------------------------------------------------------------------

#[no_mangle]
pub extern "C" fn proxy_abi_version_0_2_1() {}

/// Memory the host fills for the module: header maps, properties, buffers. [`host`] takes it back
/// as a `Vec<u8>` of exactly this capacity.
#[no_mangle]
pub extern "C" fn proxy_on_memory_allocate(size: usize) -> *mut u8 {
    let mut buffer: Vec<MaybeUninit<u8>> = Vec::with_capacity(size);
    // SAFETY: `MaybeUninit` bytes need no initialising; the host writes all `size` of them.
    unsafe { buffer.set_len(size) };
    Box::into_raw(buffer.into_boxed_slice()).cast::<u8>()
}

#[no_mangle]
pub extern "C" fn proxy_on_context_create(context_id: u32, root_context_id: u32) {
    DISPATCHER.with(|d| {
        if root_context_id == 0 {
            let Some(new_root) = d.new_root.get() else {
                return;
            };
            if let Ok(mut roots) = d.roots.try_borrow_mut() {
                roots.push((context_id, new_root(context_id)));
            }
            return;
        }
        let stream = d.roots.try_borrow().ok().and_then(|roots| {
            let (_, root) = roots.iter().find(|(id, _)| *id == root_context_id)?;
            root.create_http_context(context_id)
        });
        if let (Some(stream), Ok(mut streams)) = (stream, d.streams.try_borrow_mut()) {
            streams.insert(context_id, stream);
        }
    });
}

#[no_mangle]
pub extern "C" fn proxy_on_vm_start(context_id: u32, vm_configuration_size: usize) -> u32 {
    u32::from(with_root(context_id, true, |root| {
        root.on_vm_start(vm_configuration_size)
    }))
}

#[no_mangle]
pub extern "C" fn proxy_on_configure(context_id: u32, plugin_configuration_size: usize) -> u32 {
    u32::from(with_root(context_id, false, |root| {
        root.on_configure(plugin_configuration_size)
    }))
}

#[no_mangle]
pub extern "C" fn proxy_on_tick(context_id: u32) {
    with_root(context_id, (), |root| root.on_tick());
}

#[no_mangle]
pub extern "C" fn proxy_on_request_headers(
    context_id: u32,
    num_headers: usize,
    end_of_stream: u32,
) -> u32 {
    let action = with_stream(context_id, None, |s| {
        Some(s.on_http_request_headers(num_headers, end_of_stream != 0))
    });
    // A stream without a context would pass unchecked: fail it closed instead.
    action.map_or_else(no_context, |a| a as u32)
}

/// Answers a request whose stream has no context (which should never happen) with a 500.
fn no_context() -> u32 {
    let _ = WasmHost.send_local_response(Reply {
        status: 500,
        details: crate::decision::DETAILS_ERROR,
        body: b"ext_authz: no context for this stream",
        headers: &[],
    });
    Action::Pause as u32
}

#[no_mangle]
pub extern "C" fn proxy_on_request_body(
    context_id: u32,
    body_size: usize,
    end_of_stream: u32,
) -> u32 {
    action(with_stream(context_id, Action::Continue, |s| {
        s.on_http_request_body(body_size, end_of_stream != 0)
    }))
}

#[no_mangle]
pub extern "C" fn proxy_on_request_trailers(context_id: u32, num_trailers: usize) -> u32 {
    action(with_stream(context_id, Action::Continue, |s| {
        s.on_http_request_trailers(num_trailers)
    }))
}

#[no_mangle]
pub extern "C" fn proxy_on_response_headers(
    context_id: u32,
    num_headers: usize,
    end_of_stream: u32,
) -> u32 {
    action(with_stream(context_id, Action::Continue, |s| {
        s.on_http_response_headers(num_headers, end_of_stream != 0)
    }))
}

/// The context is finished. Envoy calls `proxy_on_done` and then `proxy_on_delete` back to back
/// (`Context::onDestroy`), so the module exports only this one, and runs the context's `on_done`
/// here before dropping it: one trip into the VM fewer per request.
#[no_mangle]
pub extern "C" fn proxy_on_delete(context_id: u32) {
    DISPATCHER.with(|d| {
        // Taken out and dropped outside the borrow: what a context does on its way out (cancel its
        // call) must not find the map borrowed.
        let stream = d
            .streams
            .try_borrow_mut()
            .ok()
            .and_then(|mut s| s.remove(context_id));
        if let Some(mut stream) = stream {
            host::callback_starts();
            d.active.set(context_id);
            stream.on_done();
            return;
        }
        let root = d.roots.try_borrow_mut().ok().and_then(|mut roots| {
            let at = roots.iter().position(|(id, _)| *id == context_id)?;
            Some(roots.remove(at))
        });
        if let Some((_, mut root)) = root {
            root.on_done();
        }
    });
}

#[no_mangle]
pub extern "C" fn proxy_on_grpc_receive(_context_id: u32, token: u32, response_size: usize) {
    let end = CallEnd::Grpc {
        token,
        status_code: 0,
        response_size,
    };
    DISPATCHER.with(|d| call_ended(&d.grpc_calls, token, end));
}

#[no_mangle]
pub extern "C" fn proxy_on_grpc_close(_context_id: u32, token: u32, status_code: u32) {
    let end = CallEnd::Grpc {
        token,
        status_code,
        response_size: 0,
    };
    DISPATCHER.with(|d| call_ended(&d.grpc_calls, token, end));
}

#[no_mangle]
pub extern "C" fn proxy_on_http_call_response(
    _context_id: u32,
    token: u32,
    num_headers: usize,
    body_size: usize,
    num_trailers: usize,
) {
    let end = CallEnd::Http {
        token,
        num_headers,
        body_size,
        num_trailers,
    };
    DISPATCHER.with(|d| call_ended(&d.http_calls, token, end));
}
