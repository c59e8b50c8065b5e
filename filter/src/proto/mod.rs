//! The subset of `envoy.service.auth.v3` this filter speaks, with Envoy's field numbers.
//!
//! `envoy-types` cannot be built for wasm32, so the filter carries its own: a hand-written encoder
//! for CheckRequest (see [`crate::check_request`]) and a hand-written decoder for CheckResponse
//! (see [`response`]). The host-side tests prove both against `envoy-types` and prost.

pub mod reader;
pub mod response;
pub mod structpb;
pub mod wire;

/// `AttributeContext.context_extensions`.
pub const ATTRIBUTES_CONTEXT_EXTENSIONS: u32 = 10;

/// The gRPC service and method the filter calls.
pub const AUTHORIZATION_SERVICE: &str = "envoy.service.auth.v3.Authorization";
pub const CHECK_METHOD: &str = "Check";
