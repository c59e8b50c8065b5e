//! CheckResponse and the messages inside it, with Envoy's field numbers, and their decoder.
//! `dynamic_metadata` is kept as the encoded `google.protobuf.Struct`: steps pass it on as it is.
//!
//! The decoder is written by hand rather than derived with prost: it is a few hundred bytes of
//! wasm instead of prost's generic machinery, and it decodes a CheckResponse in a fraction of the
//! instructions. It follows prost's rules exactly (proven against prost-derived twins of these
//! types in the tests below): unknown fields are skipped, a repeated field appends, a singular
//! message merges into what came before, a oneof keeps the last variant, strings must be UTF-8.

use std::collections::BTreeMap;
use std::fmt;

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
/// the stream's dynamic metadata and the route's metadata.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Metadata {
    pub filter_metadata: BTreeMap<String, Vec<u8>>,
    /// Each namespace's `google.protobuf.Any`, encoded, type URL and all.
    pub typed_filter_metadata: BTreeMap<String, Vec<u8>>,
}

/// Bytes that are not the message they should be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError(&'static str);

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "failed to decode Protobuf message: {}", self.0)
    }
}

impl std::error::Error for DecodeError {}

type Result<T> = std::result::Result<T, DecodeError>;

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
                4 => self.dynamic_metadata = r.len_delimited(wire)?.to_vec(),
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
                _ => r.skip(field, wire)?,
            }
        }
        Ok(())
    }
}

impl OkHttpResponse {
    fn merge(&mut self, r: &mut Reader<'_>) -> Result<()> {
        while let Some((field, wire)) = r.key()? {
            match field {
                2 => push_message(r, wire, &mut self.headers, HeaderValueOption::merge)?,
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
            // A map entry: key = 1, value = 2, either may be missing. Like prost, the entry's
            // wire type is not checked: it is read as a length either way.
            let mut entry = r.nested(LEN)?;
            let (mut key, mut value) = (String::new(), Vec::new());
            while let Some((field, wire)) = entry.key()? {
                match field {
                    1 => key = entry.string(wire)?,
                    2 => value = entry.len_delimited(wire)?.to_vec(),
                    _ => entry.skip(field, wire)?,
                }
            }
            map.insert(key, value);
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

const VARINT: u8 = 0;
const FIXED64: u8 = 1;
const LEN: u8 = 2;
const START_GROUP: u8 = 3;
const END_GROUP: u8 = 4;
const FIXED32: u8 = 5;
/// prost's limit on nesting, which only unknown groups can reach here.
const RECURSION_LIMIT: u32 = 100;

/// The unread rest of a message, and how much deeper prost would still go.
struct Reader<'a> {
    bytes: &'a [u8],
    depth_left: u32,
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Self {
            bytes,
            depth_left: RECURSION_LIMIT,
        }
    }

    /// A length-delimited field, as the reader of the message inside it.
    fn nested(&mut self, wire: u8) -> Result<Reader<'a>> {
        if self.depth_left == 0 {
            return Err(DecodeError("recursion limit reached"));
        }
        Ok(Reader {
            bytes: self.len_delimited(wire)?,
            depth_left: self.depth_left - 1,
        })
    }

    fn varint_raw(&mut self) -> Result<u64> {
        let mut value = 0u64;
        for i in 0..10 {
            let Some((&byte, rest)) = self.bytes.split_first() else {
                return Err(DecodeError("invalid varint"));
            };
            self.bytes = rest;
            // The tenth byte may only carry the top bit of a u64.
            if i == 9 && byte > 1 {
                return Err(DecodeError("invalid varint"));
            }
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte < 0x80 {
                return Ok(value);
            }
        }
        Err(DecodeError("invalid varint"))
    }

    /// The next field's number and wire type, or `None` at the end.
    fn key(&mut self) -> Result<Option<(u32, u8)>> {
        if self.bytes.is_empty() {
            return Ok(None);
        }
        let key = self.varint_raw()?;
        let key = u32::try_from(key).map_err(|_| DecodeError("invalid key value"))?;
        let wire = (key & 0x07) as u8;
        if wire > FIXED32 {
            return Err(DecodeError("invalid wire type value"));
        }
        let field = key >> 3;
        if field == 0 {
            return Err(DecodeError("invalid tag value: 0"));
        }
        Ok(Some((field, wire)))
    }

    fn expect(wire: u8, expected: u8) -> Result<()> {
        if wire == expected {
            Ok(())
        } else {
            Err(DecodeError("invalid wire type"))
        }
    }

    fn varint(&mut self, wire: u8) -> Result<u64> {
        Self::expect(wire, VARINT)?;
        self.varint_raw()
    }

    fn int32(&mut self, wire: u8) -> Result<i32> {
        Ok(self.varint(wire)? as i32)
    }

    fn take(&mut self, len: u64) -> Result<&'a [u8]> {
        let len = usize::try_from(len).map_err(|_| DecodeError("buffer underflow"))?;
        if len > self.bytes.len() {
            return Err(DecodeError("buffer underflow"));
        }
        let (taken, rest) = self.bytes.split_at(len);
        self.bytes = rest;
        Ok(taken)
    }

    fn len_delimited(&mut self, wire: u8) -> Result<&'a [u8]> {
        Self::expect(wire, LEN)?;
        let len = self.varint_raw()?;
        self.take(len)
    }

    fn string(&mut self, wire: u8) -> Result<String> {
        let bytes = self.len_delimited(wire)?;
        std::str::from_utf8(bytes)
            .map(str::to_owned)
            .map_err(|_| DecodeError("invalid string value: data is not UTF-8 encoded"))
    }

    /// Skips a field this decoder does not read; a group whole, field by field, as prost does.
    fn skip(&mut self, field: u32, wire: u8) -> Result<()> {
        self.skip_within(field, wire, self.depth_left)
    }

    fn skip_within(&mut self, field: u32, wire: u8, depth_left: u32) -> Result<()> {
        if depth_left == 0 {
            return Err(DecodeError("recursion limit reached"));
        }
        match wire {
            VARINT => self.varint_raw().map(|_| ()),
            FIXED64 => self.take(8).map(|_| ()),
            LEN => {
                let len = self.varint_raw()?;
                self.take(len).map(|_| ())
            }
            START_GROUP => loop {
                let (inner, inner_wire) = self.key()?.ok_or(DecodeError("invalid varint"))?;
                if inner_wire == END_GROUP {
                    return if inner == field {
                        Ok(())
                    } else {
                        Err(DecodeError("unexpected end group tag"))
                    };
                }
                self.skip_within(inner, inner_wire, depth_left - 1)?;
            },
            FIXED32 => self.take(4).map(|_| ()),
            _ => Err(DecodeError("unexpected end group tag")),
        }
    }
}

#[cfg(test)]
mod tests;
