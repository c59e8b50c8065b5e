//! `ext-authz-config`: checks ext_authz plugin configurations before they reach a proxy, with the
//! filter's own config code, and generates the config's JSON Schema.
//!
//! - [`yaml`]: JSON and YAML documents as trees that remember lines;
//! - [`find`]: the plugin configs in a document (bare, in an Envoy bootstrap, in an Istio WasmPlugin);
//! - [`envoy_gateway`]: the plugin configs of an Envoy Gateway `EnvoyExtensionPolicy`;
//! - [`check`]: each config through `Config::parse`, errors placed on the line of their field;
//! - [`schema`]: the JSON Schema, from the filter's serde types.

pub mod check;
pub mod envoy_gateway;
pub mod find;
pub mod schema;
pub mod yaml;
