//! ext_authz for Envoy as a proxy-wasm HTTP filter.
//!
//! For every request the filter builds an `envoy.service.auth.v3.CheckRequest`, calls the user's
//! authorization server from inside Envoy, holds the request until the answer arrives, and then
//! lets it through with the server's changes or answers the client itself.
//!
//! The crate is a pure core, built and tested on the host, and a thin proxy-wasm shell:
//! - [`stream`]: one request's whole life, generic over the [`host::Host`] trait;
//! - [`plugin`]: what a plugin's requests share; [`stats`]: its metrics;
//! - [`config`]: the plugin configuration, parsed and validated once;
//! - [`check_request`]: a request's attributes to CheckRequest bytes;
//! - [`decision`]: CheckResponse bytes to a [`decision::Decision`], and the failure mode to a
//!   [`decision::Verdict`];
//! - [`http_check`]: the request to an `http_service` server, and what its answer means;
//! - [`route`]: which settings a request gets;
//! - [`trace_context`]: the request's W3C and B3 trace context, as a child span's, for the server;
//! - [`query`]: query parameter rewriting; [`header_map`]: the ABI's map format;
//! - [`id_map`]: the shell's contexts and calls by id;
//! - [`body_watch`]: the bound on waiting for body callbacks that may never come;
//! - [`cache`]: the decision cache, shared by every worker through proxy-wasm shared data;
//! - [`mock_host`] (tests only): a [`host::Host`] to run the stream on without a VM;
//! - `shell` (wasm32 only): the ABI's entry points, the `Host` on proxy-wasm, and the contexts.

pub mod body_watch;
pub mod cache;
pub mod check_request;
pub mod config;
pub mod decision;
pub mod header_map;
pub mod host;
pub mod http_check;
pub mod id_map;
#[cfg(test)]
pub mod mock_host;
pub mod mutation_rules;
pub mod plugin;
pub mod proto;
pub mod query;
pub mod retry_queue;
pub mod route;
pub mod sampler;
pub mod stats;
pub mod stream;
pub mod trace_context;

#[cfg(target_arch = "wasm32")]
mod shell;
