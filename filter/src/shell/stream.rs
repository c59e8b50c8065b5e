//! A stream's context: each proxy-wasm callback handed to [`ExtAuthz`] on the [`WasmHost`].

use std::rc::Rc;

use super::abi::{Context, HttpContext};
use super::host::WasmHost;
use crate::decision::DETAILS_ERROR;
use crate::host::{Action, Host, Reply};
use crate::plugin::Plugin;
use crate::stream::ExtAuthz;

pub struct Stream(ExtAuthz<WasmHost>);

impl Stream {
    pub fn new(context_id: u32, plugin: Rc<Plugin>) -> Self {
        Self(ExtAuthz::new(context_id, WasmHost, plugin))
    }
}

impl Context for Stream {
    fn on_done(&mut self) -> bool {
        self.0.on_done();
        true
    }

    fn on_http_call_response(
        &mut self,
        token_id: u32,
        _num_headers: usize,
        body_size: usize,
        _num_trailers: usize,
    ) {
        self.0.on_http_call_response(token_id, body_size);
    }

    fn on_grpc_call_response(&mut self, token_id: u32, status_code: u32, response_size: usize) {
        self.0
            .on_grpc_call_response(token_id, status_code, response_size);
    }
}

impl HttpContext for Stream {
    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        self.0.on_http_request_headers(end_of_stream)
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        self.0.on_http_request_body(body_size, end_of_stream)
    }

    fn on_http_request_trailers(&mut self, _num_trailers: usize) -> Action {
        self.0.on_http_request_trailers()
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        self.0.on_http_response_headers()
    }

    fn on_body_timeout(&mut self) {
        self.0.on_body_timeout();
    }

    fn on_retry_due(&mut self) {
        self.0.on_retry_due();
    }
}

/// The context of a plugin whose configuration was refused: every request fails closed.
pub struct Unconfigured;

impl Context for Unconfigured {}

impl HttpContext for Unconfigured {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let _ = WasmHost.send_local_response(Reply {
            status: 500,
            details: DETAILS_ERROR,
            body: b"ext_authz: no valid configuration",
            headers: &[],
        });
        Action::Pause
    }
}
