//! CheckResponse and the messages inside it, with Envoy's field numbers, and their decoder.
//! `dynamic_metadata` is kept as the encoded `google.protobuf.Struct`: steps pass it on as it is.
//!
//! The decoder is written by hand rather than derived with prost: it is a few hundred bytes of
//! wasm instead of prost's generic machinery, and it decodes a CheckResponse in a fraction of the
//! instructions. It follows prost's rules exactly (proven against prost-derived twins of these
//! types in the tests below): unknown fields are skipped, a repeated field appends, a singular
//! message merges into what came before, a oneof keeps the last variant, strings must be UTF-8.

pub use super::reader::DecodeError;
use super::reader::{Reader, Result};
use super::structpb;

/// `envoy.service.auth.v3.CheckResponse`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CheckResponse {
    pub status: Option<RpcStatus>,
    pub http_response: Option<HttpResponse>,
    /// `google.protobuf.Struct dynamic_metadata`, still encoded.
    pub dynamic_metadata: Vec<u8>,
}

/// `CheckResponse.http_response`.
#[derive(Debug, Clone, PartialEq)]
pub enum HttpResponse {
    DeniedResponse(DeniedHttpResponse),
    OkResponse(OkHttpResponse),
    /// A DeniedHttpResponse that the server sends to report its own failure.
    ErrorResponse(DeniedHttpResponse),
}

/// `google.rpc.Status`, without `details`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RpcStatus {
    pub code: i32,
    pub message: String,
}

/// `envoy.service.auth.v3.OkHttpResponse`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct OkHttpResponse {
    pub headers: Vec<HeaderValueOption>,
    pub headers_to_remove: Vec<String>,
    pub response_headers_to_add: Vec<HeaderValueOption>,
    pub query_parameters_to_set: Vec<QueryParameter>,
    pub query_parameters_to_remove: Vec<String>,
}

/// `envoy.service.auth.v3.DeniedHttpResponse`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DeniedHttpResponse {
    pub status: Option<HttpStatus>,
    pub headers: Vec<HeaderValueOption>,
    pub body: String,
}

/// `envoy.type.v3.HttpStatus`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HttpStatus {
    pub code: i32,
}

/// `envoy.config.core.v3.HeaderValueOption`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HeaderValueOption {
    pub header: Option<HeaderValue>,
    /// Deprecated `google.protobuf.BoolValue append`; its presence matters.
    pub append: Option<BoolValue>,
    pub append_action: i32,
}

/// `envoy.config.core.v3.HeaderValue`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HeaderValue {
    pub key: String,
    pub value: String,
    pub raw_value: Vec<u8>,
}

/// `google.protobuf.BoolValue`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BoolValue {
    pub value: bool,
}

/// `envoy.config.core.v3.QueryParameter`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct QueryParameter {
    pub key: String,
    pub value: String,
}

/// `envoy.config.core.v3.Metadata`, its namespaces' Structs kept encoded: as the host hands over
/// the stream's dynamic metadata and the route's metadata. The maps are lists of distinct
/// namespaces in the order first seen: a handful, looked up by name, so a `BTreeMap` (a few KB of
/// module per key and value type) would buy nothing.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Metadata {
    pub filter_metadata: Vec<(String, Vec<u8>)>,
    /// Each namespace's `google.protobuf.Any`, encoded, type URL and all.
    pub typed_filter_metadata: Vec<(String, Vec<u8>)>,
}

impl CheckResponse {
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let mut message = Self::default();
        message.merge(bytes)?;
        Ok(message)
    }

    fn merge(&mut self, bytes: &[u8]) -> Result<()> {
        let mut r = Reader::new(bytes);
        while let Some((field, wire)) = r.key()? {
            match field {
                1 => merge_message(
                    &mut r,
                    wire,
                    self.status.get_or_insert_with(Default::default),
                    RpcStatus::merge,
                )?,
                2 => {
                    // A oneof: the same variant merges, another one starts afresh.
                    if !matches!(self.http_response, Some(HttpResponse::DeniedResponse(_))) {
                        self.http_response = Some(HttpResponse::DeniedResponse(Default::default()));
                    }
                    if let Some(HttpResponse::DeniedResponse(value)) = &mut self.http_response {
                        merge_message(&mut r, wire, value, DeniedHttpResponse::merge)?;
                    }
                }
                3 => {
                    // A oneof: the same variant merges, another one starts afresh.
                    if !matches!(self.http_response, Some(HttpResponse::OkResponse(_))) {
                        self.http_response = Some(HttpResponse::OkResponse(Default::default()));
                    }
                    if let Some(HttpResponse::OkResponse(value)) = &mut self.http_response {
                        merge_message(&mut r, wire, value, OkHttpResponse::merge)?;
                    }
                }
                5 => {
                    // A oneof: the same variant merges, another one starts afresh.
                    if !matches!(self.http_response, Some(HttpResponse::ErrorResponse(_))) {
                        self.http_response = Some(HttpResponse::ErrorResponse(Default::default()));
                    }
                    if let Some(HttpResponse::ErrorResponse(value)) = &mut self.http_response {
                        merge_message(&mut r, wire, value, DeniedHttpResponse::merge)?;
                    }
                }
                // Checked as prost would decode the Struct, to the same depth. A repeated
                // message field merges, which for encoded bytes is appending them.
                4 => {
                    let mut metadata = r.nested(wire)?;
                    let bytes = metadata.rest();
                    structpb::check_struct(&mut metadata)?;
                    self.dynamic_metadata.extend_from_slice(bytes);
                }
                _ => r.skip(field, wire)?,
            }
        }
        Ok(())
    }
}

impl RpcStatus {
    fn merge(&mut self, r: &mut Reader<'_>) -> Result<()> {
        while let Some((field, wire)) = r.key()? {
            match field {
                1 => self.code = r.int32(wire)?,
                2 => self.message = r.string(wire)?,
                // `details`, not read, but checked as prost and Envoy decode them.
                3 => check_any(&mut r.nested(wire)?)?,
                _ => r.skip(field, wire)?,
            }
        }
        Ok(())
    }
}

/// A `google.protobuf.Any`: its type URL must be UTF-8; its value is bytes, decoded by no one.
fn check_any(r: &mut Reader<'_>) -> Result<()> {
    while let Some((field, wire)) = r.key()? {
        match field {
            1 => r.str(wire).map(|_| ())?,
            2 => r.len_delimited(wire).map(|_| ())?,
            _ => r.skip(field, wire)?,
        }
    }
    Ok(())
}

impl OkHttpResponse {
    fn merge(&mut self, r: &mut Reader<'_>) -> Result<()> {
        while let Some((field, wire)) = r.key()? {
            match field {
                2 => push_message(r, wire, &mut self.headers, HeaderValueOption::merge)?,
                // The deprecated `dynamic_metadata`, which native no longer reads: checked, as
                // Envoy decodes it, to the same depth, and dropped.
                3 => structpb::check_struct(&mut r.nested(wire)?)?,
                5 => self.headers_to_remove.push(r.string(wire)?),
                6 => push_message(
                    r,
                    wire,
                    &mut self.response_headers_to_add,
                    HeaderValueOption::merge,
                )?,
                7 => push_message(
                    r,
                    wire,
                    &mut self.query_parameters_to_set,
                    QueryParameter::merge,
                )?,
                8 => self.query_parameters_to_remove.push(r.string(wire)?),
                _ => r.skip(field, wire)?,
            }
        }
        Ok(())
    }
}

impl DeniedHttpResponse {
    fn merge(&mut self, r: &mut Reader<'_>) -> Result<()> {
        while let Some((field, wire)) = r.key()? {
            match field {
                1 => merge_message(
                    r,
                    wire,
                    self.status.get_or_insert_with(Default::default),
                    HttpStatus::merge,
                )?,
                2 => push_message(r, wire, &mut self.headers, HeaderValueOption::merge)?,
                3 => self.body = r.string(wire)?,
                _ => r.skip(field, wire)?,
            }
        }
        Ok(())
    }
}

impl HttpStatus {
    fn merge(&mut self, r: &mut Reader<'_>) -> Result<()> {
        while let Some((field, wire)) = r.key()? {
            match field {
                1 => self.code = r.int32(wire)?,
                _ => r.skip(field, wire)?,
            }
        }
        Ok(())
    }
}

impl HeaderValueOption {
    fn merge(&mut self, r: &mut Reader<'_>) -> Result<()> {
        while let Some((field, wire)) = r.key()? {
            match field {
                1 => merge_message(
                    r,
                    wire,
                    self.header.get_or_insert_with(Default::default),
                    HeaderValue::merge,
                )?,
                2 => merge_message(
                    r,
                    wire,
                    self.append.get_or_insert_with(Default::default),
                    BoolValue::merge,
                )?,
                3 => self.append_action = r.int32(wire)?,
                // `keep_empty_value`, not read by this filter, but it must be a varint.
                4 => r.varint(wire).map(|_| ())?,
                _ => r.skip(field, wire)?,
            }
        }
        Ok(())
    }
}

impl HeaderValue {
    fn merge(&mut self, r: &mut Reader<'_>) -> Result<()> {
        while let Some((field, wire)) = r.key()? {
            match field {
                1 => self.key = r.string(wire)?,
                2 => self.value = r.string(wire)?,
                3 => self.raw_value = r.len_delimited(wire)?.to_vec(),
                _ => r.skip(field, wire)?,
            }
        }
        Ok(())
    }
}

impl BoolValue {
    fn merge(&mut self, r: &mut Reader<'_>) -> Result<()> {
        while let Some((field, wire)) = r.key()? {
            match field {
                1 => self.value = r.varint(wire)? != 0,
                _ => r.skip(field, wire)?,
            }
        }
        Ok(())
    }
}

impl QueryParameter {
    fn merge(&mut self, r: &mut Reader<'_>) -> Result<()> {
        while let Some((field, wire)) = r.key()? {
            match field {
                1 => self.key = r.string(wire)?,
                2 => self.value = r.string(wire)?,
                _ => r.skip(field, wire)?,
            }
        }
        Ok(())
    }
}

impl Metadata {
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let mut message = Self::default();
        let mut r = Reader::new(bytes);
        while let Some((field, wire)) = r.key()? {
            let map = match field {
                1 => &mut message.filter_metadata,
                2 => &mut message.typed_filter_metadata,
                _ => {
                    r.skip(field, wire)?;
                    continue;
                }
            };
            // A map entry: key = 1, value = 2, either may be missing.
            let mut entry = r.map_entry()?;
            let (mut key, mut value) = (String::new(), Vec::new());
            while let Some((field, wire)) = entry.key()? {
                match field {
                    1 => key = entry.string(wire)?,
                    2 => value = entry.len_delimited(wire)?.to_vec(),
                    _ => entry.skip(field, wire)?,
                }
            }
            // As a protobuf map: a repeated key keeps its last value.
            match map.iter_mut().find(|(k, _)| *k == key) {
                Some((_, earlier)) => *earlier = value,
                None => map.push((key, value)),
            }
        }
        Ok(message)
    }
}

/// Merges a length-delimited message field into `value`.
fn merge_message<T>(
    r: &mut Reader<'_>,
    wire: u8,
    value: &mut T,
    merge: fn(&mut T, &mut Reader<'_>) -> Result<()>,
) -> Result<()> {
    let mut inner = r.nested(wire)?;
    merge(value, &mut inner)
}

/// Appends one element of a repeated message field.
fn push_message<T: Default>(
    r: &mut Reader<'_>,
    wire: u8,
    values: &mut Vec<T>,
    merge: fn(&mut T, &mut Reader<'_>) -> Result<()>,
) -> Result<()> {
    let mut value = T::default();
    merge_message(r, wire, &mut value, merge)?;
    values.push(value);
    Ok(())
}

#[cfg(test)]
mod tests;
