//! CheckResponse and the messages inside it, as prost types with Envoy's field numbers.
//! `dynamic_metadata` is kept as the encoded `google.protobuf.Struct`: steps pass it on as it is.

use prost::Message;

/// `envoy.service.auth.v3.CheckResponse`.
#[derive(Clone, PartialEq, Message)]
pub struct CheckResponse {
    #[prost(message, optional, tag = "1")]
    pub status: Option<RpcStatus>,
    #[prost(oneof = "HttpResponse", tags = "2, 3, 5")]
    pub http_response: Option<HttpResponse>,
    /// `google.protobuf.Struct dynamic_metadata`, still encoded.
    #[prost(bytes = "vec", tag = "4")]
    pub dynamic_metadata: Vec<u8>,
}

/// `CheckResponse.http_response`.
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum HttpResponse {
    #[prost(message, tag = "2")]
    DeniedResponse(DeniedHttpResponse),
    #[prost(message, tag = "3")]
    OkResponse(OkHttpResponse),
    /// A DeniedHttpResponse that the server sends to report its own failure.
    #[prost(message, tag = "5")]
    ErrorResponse(DeniedHttpResponse),
}

/// `google.rpc.Status`, without `details`.
#[derive(Clone, PartialEq, Message)]
pub struct RpcStatus {
    #[prost(int32, tag = "1")]
    pub code: i32,
    #[prost(string, tag = "2")]
    pub message: String,
}

/// `envoy.service.auth.v3.OkHttpResponse`.
#[derive(Clone, PartialEq, Message)]
pub struct OkHttpResponse {
    #[prost(message, repeated, tag = "2")]
    pub headers: Vec<HeaderValueOption>,
    #[prost(string, repeated, tag = "5")]
    pub headers_to_remove: Vec<String>,
    #[prost(message, repeated, tag = "6")]
    pub response_headers_to_add: Vec<HeaderValueOption>,
    #[prost(message, repeated, tag = "7")]
    pub query_parameters_to_set: Vec<QueryParameter>,
    #[prost(string, repeated, tag = "8")]
    pub query_parameters_to_remove: Vec<String>,
}

/// `envoy.service.auth.v3.DeniedHttpResponse`.
#[derive(Clone, PartialEq, Message)]
pub struct DeniedHttpResponse {
    #[prost(message, optional, tag = "1")]
    pub status: Option<HttpStatus>,
    #[prost(message, repeated, tag = "2")]
    pub headers: Vec<HeaderValueOption>,
    #[prost(string, tag = "3")]
    pub body: String,
}

/// `envoy.type.v3.HttpStatus`.
#[derive(Clone, PartialEq, Message)]
pub struct HttpStatus {
    #[prost(int32, tag = "1")]
    pub code: i32,
}

/// `envoy.config.core.v3.HeaderValueOption`.
#[derive(Clone, PartialEq, Message)]
pub struct HeaderValueOption {
    #[prost(message, optional, tag = "1")]
    pub header: Option<HeaderValue>,
    /// Deprecated `google.protobuf.BoolValue append`; its presence matters.
    #[prost(message, optional, tag = "2")]
    pub append: Option<BoolValue>,
    #[prost(int32, tag = "3")]
    pub append_action: i32,
}

/// `envoy.config.core.v3.HeaderValue`.
#[derive(Clone, PartialEq, Message)]
pub struct HeaderValue {
    #[prost(string, tag = "1")]
    pub key: String,
    #[prost(string, tag = "2")]
    pub value: String,
    #[prost(bytes = "vec", tag = "3")]
    pub raw_value: Vec<u8>,
}

/// `google.protobuf.BoolValue`.
#[derive(Clone, PartialEq, Message)]
pub struct BoolValue {
    #[prost(bool, tag = "1")]
    pub value: bool,
}

/// `envoy.config.core.v3.QueryParameter`.
#[derive(Clone, PartialEq, Message)]
pub struct QueryParameter {
    #[prost(string, tag = "1")]
    pub key: String,
    #[prost(string, tag = "2")]
    pub value: String,
}

/// `envoy.config.core.v3.Metadata`, its namespaces' Structs kept encoded: as the host hands over
/// the stream's dynamic metadata and the route's metadata.
#[derive(Clone, PartialEq, Message)]
pub struct Metadata {
    #[prost(btree_map = "string, bytes", tag = "1")]
    pub filter_metadata: std::collections::BTreeMap<String, Vec<u8>>,
}
