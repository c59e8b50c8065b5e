//! Building the CheckRequest: the request's attributes, as the shell gathered them from the host,
//! encoded as `envoy.service.auth.v3.CheckRequest` the way Envoy's native ext_authz fills it.
//!
//! Encoding goes straight from the borrowed header buffer to protobuf bytes: repeated headers are
//! joined with `,` while writing, and `context_extensions` arrive pre-encoded from the config.

use std::borrow::Cow;
use std::time::Duration;

use crate::proto::wire::{
    bytes_field, map_entry_message, map_entry_values, message_field, string_field, varint_field,
};
use crate::route::matcher::StringMatch;

mod address;

pub use address::SocketAddress;

/// What the shell knows about a request when it asks for a decision. No host calls in here.
#[derive(Debug, Clone, Default)]
pub struct RequestAttributes<'a> {
    /// All request headers, pseudo-headers included, in the host's order.
    pub headers: &'a [(&'a [u8], &'a [u8])],
    /// The downstream peer (`source.address`).
    pub source: Option<SocketAddress<'a>>,
    /// The local address the request arrived on (`destination.address`).
    pub destination: Option<SocketAddress<'a>>,
    /// `HTTP/1.0`, `HTTP/1.1`, `HTTP/2` or `HTTP/3`, as `request.protocol` reports it.
    pub protocol: &'a [u8],
    /// When the request started, since the Unix epoch.
    pub time: Duration,
    /// The body, under `with_request_body`.
    pub body: Option<RequestBody<'a>>,
    /// `metadata_context`.
    pub metadata: MetadataContext<'a>,
    /// `route_metadata_context`.
    pub route_metadata: MetadataContext<'a>,
    /// Which headers go, and as `headers` or `header_map`; `None` sends all as `headers`.
    pub selection: Option<&'a HeaderSelection>,
    /// Over TLS: the peers' principals and, with `include_tls_session`, the SNI.
    pub tls: Option<Tls<'a>>,
}

/// An `envoy.config.core.v3.Metadata` to send, its values already encoded.
#[derive(Debug, Clone, Copy, Default)]
pub struct MetadataContext<'a> {
    /// `filter_metadata`: namespace and encoded `google.protobuf.Struct`.
    pub filter_metadata: &'a [(&'a str, &'a [u8])],
    /// `typed_filter_metadata`: namespace and encoded `google.protobuf.Any`, type URL and all.
    pub typed_filter_metadata: &'a [(&'a str, &'a [u8])],
}

/// What native reads from a TLS connection.
#[derive(Debug, Clone, Copy, Default)]
pub struct Tls<'a> {
    /// The client certificate's first URI SAN, else its first DNS SAN, else its subject.
    pub source_principal: &'a [u8],
    /// The same of this listener's own certificate.
    pub destination_principal: &'a [u8],
    /// `Some` with `include_tls_session`: the server name the client asked for.
    pub sni: Option<&'a [u8]>,
}

/// `allowed_headers`, `disallowed_headers` and `encode_raw_headers`, as native reads them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HeaderSelection {
    /// Only headers matching one of these go; `None` means all.
    pub allowed: Option<Vec<StringMatch>>,
    /// Headers matching one of these never go, whatever `allowed` says.
    pub disallowed: Vec<StringMatch>,
    /// `header_map` (values apart, bytes untouched) instead of `headers`.
    pub raw: bool,
}

impl HeaderSelection {
    /// Whether every header goes (the default), so nothing needs looking at.
    pub fn keeps_all(&self) -> bool {
        self.allowed.is_none() && self.disallowed.is_empty()
    }

    /// Whether a header (its lower-case name) goes into the CheckRequest.
    pub fn keeps(&self, name: &[u8]) -> bool {
        let allowed = self
            .allowed
            .as_ref()
            .is_none_or(|a| a.iter().any(|m| m.matches(name)));
        allowed && !self.disallowed.iter().any(|m| m.matches(name))
    }
}

/// The part of the body that goes to the auth server, as native's `with_request_body` sends it.
#[derive(Debug, Clone, Copy, Default)]
pub struct RequestBody<'a> {
    /// At most `max_request_bytes` of it.
    pub bytes: &'a [u8],
    /// Everything buffered when the check went out: native reports this as `size`.
    pub buffered: u64,
    /// `raw_body` bytes rather than the `body` string.
    pub pack_as_bytes: bool,
}

impl RequestBody<'_> {
    /// Whether the server gets less than was buffered.
    pub fn partial(&self) -> bool {
        (self.bytes.len() as u64) < self.buffered
    }
}

/// The header native adds to the CheckRequest (not to the request) when it sends a body.
pub const PARTIAL_BODY_HEADER: &[u8] = b"x-envoy-auth-partial-body";

// Field numbers, from envoy/service/auth/v3/{external_auth,attribute_context}.proto.
const CHECK_REQUEST_ATTRIBUTES: u32 = 1;
const ATTRIBUTES_SOURCE: u32 = 1;
const ATTRIBUTES_DESTINATION: u32 = 2;
const ATTRIBUTES_REQUEST: u32 = 4;
const ATTRIBUTES_TLS_SESSION: u32 = 12;
const TLS_SESSION_SNI: u32 = 1;
const PEER_PRINCIPAL: u32 = 4;
const ATTRIBUTES_METADATA_CONTEXT: u32 = 11;
const ATTRIBUTES_ROUTE_METADATA_CONTEXT: u32 = 13;
const METADATA_FILTER_METADATA: u32 = 1;
const METADATA_TYPED_FILTER_METADATA: u32 = 2;
const PEER_ADDRESS: u32 = 1;
const ADDRESS_SOCKET_ADDRESS: u32 = 1;
const SOCKET_ADDRESS_ADDRESS: u32 = 2;
const SOCKET_ADDRESS_PORT_VALUE: u32 = 3;
const REQUEST_TIME: u32 = 1;
const REQUEST_HTTP: u32 = 2;
const TIMESTAMP_SECONDS: u32 = 1;
const TIMESTAMP_NANOS: u32 = 2;
const HTTP_ID: u32 = 1;
const HTTP_METHOD: u32 = 2;
const HTTP_HEADERS: u32 = 3;
const HTTP_PATH: u32 = 4;
const HTTP_HOST: u32 = 5;
const HTTP_SCHEME: u32 = 6;
const HTTP_SIZE: u32 = 9;
const HTTP_PROTOCOL: u32 = 10;
const HTTP_BODY: u32 = 11;
const HTTP_HEADER_MAP: u32 = 13;
const HEADER_MAP_HEADERS: u32 = 1;
const HEADER_VALUE_KEY: u32 = 1;
const HEADER_VALUE_RAW_VALUE: u32 = 3;
const HTTP_RAW_BODY: u32 = 12;

/// Encodes the CheckRequest for `attributes`, with the config's pre-encoded context extensions.
pub fn encode(attributes: &RequestAttributes<'_>, context_extensions: &[u8]) -> Vec<u8> {
    let headers = attributes.headers;
    let header_bytes: usize = headers.iter().map(|(k, v)| k.len() + v.len() + 6).sum();
    let mut buf = Vec::with_capacity(header_bytes + context_extensions.len() + 256);
    message_field(&mut buf, CHECK_REQUEST_ATTRIBUTES, |buf| {
        let tls = attributes.tls.unwrap_or_default();
        // Both peers always, as native: the principal goes even where the address is left out.
        peer(
            buf,
            ATTRIBUTES_SOURCE,
            attributes.source.as_ref(),
            tls.source_principal,
        );
        peer(
            buf,
            ATTRIBUTES_DESTINATION,
            attributes.destination.as_ref(),
            tls.destination_principal,
        );
        message_field(buf, ATTRIBUTES_REQUEST, |buf| {
            message_field(buf, REQUEST_TIME, |buf| {
                varint_field(buf, TIMESTAMP_SECONDS, attributes.time.as_secs());
                varint_field(
                    buf,
                    TIMESTAMP_NANOS,
                    u64::from(attributes.time.subsec_nanos()),
                );
            });
            message_field(buf, REQUEST_HTTP, |buf| http_request(buf, attributes));
        });
        buf.extend_from_slice(context_extensions);
        if let Some(sni) = attributes.tls.and_then(|t| t.sni) {
            message_field(buf, ATTRIBUTES_TLS_SESSION, |buf| {
                string_field(buf, TLS_SESSION_SNI, sni)
            });
        }
        // Present (empty unless steps pass state on), as native sends it.
        message_field(buf, ATTRIBUTES_METADATA_CONTEXT, |buf| {
            metadata(buf, &attributes.metadata)
        });
        message_field(buf, ATTRIBUTES_ROUTE_METADATA_CONTEXT, |buf| {
            metadata(buf, &attributes.route_metadata)
        });
    });
    buf
}

fn metadata(buf: &mut Vec<u8>, metadata: &MetadataContext<'_>) {
    for (namespace, value) in metadata.filter_metadata {
        map_entry_message(buf, METADATA_FILTER_METADATA, namespace.as_bytes(), value);
    }
    for (namespace, value) in metadata.typed_filter_metadata {
        map_entry_message(
            buf,
            METADATA_TYPED_FILTER_METADATA,
            namespace.as_bytes(),
            value,
        );
    }
}

fn peer(buf: &mut Vec<u8>, field: u32, address: Option<&SocketAddress<'_>>, principal: &[u8]) {
    message_field(buf, field, |buf| {
        if let Some(address) = address {
            message_field(buf, PEER_ADDRESS, |buf| {
                message_field(buf, ADDRESS_SOCKET_ADDRESS, |buf| {
                    string_field(buf, SOCKET_ADDRESS_ADDRESS, address.address);
                    varint_field(buf, SOCKET_ADDRESS_PORT_VALUE, u64::from(address.port));
                });
            });
        }
        string_field(buf, PEER_PRINCIPAL, principal);
    });
}

/// The first value of each header the `HttpRequest` fields come from, found in one pass.
#[derive(Default)]
struct Named<'a> {
    request_id: &'a [u8],
    method: &'a [u8],
    path: &'a [u8],
    authority: &'a [u8],
    scheme: &'a [u8],
}

impl<'a> Named<'a> {
    fn find(headers: &[(&'a [u8], &'a [u8])]) -> Self {
        let mut named = Self::default();
        let mut seen = [false; 5];
        for &(key, value) in headers {
            let (slot, i) = match key {
                b"x-request-id" => (&mut named.request_id, 0),
                b":method" => (&mut named.method, 1),
                b":path" => (&mut named.path, 2),
                b":authority" => (&mut named.authority, 3),
                b":scheme" => (&mut named.scheme, 4),
                _ => continue,
            };
            if !seen[i] {
                seen[i] = true;
                *slot = value;
            }
        }
        named
    }
}

fn http_request(buf: &mut Vec<u8>, attributes: &RequestAttributes<'_>) {
    let headers = attributes.headers;
    let named = Named::find(headers);
    // Native sends its stream id, which a wasm filter cannot see; x-request-id identifies the
    // request in the same logs.
    string_field(buf, HTTP_ID, named.request_id);
    string_field(buf, HTTP_METHOD, named.method);
    // The headers that go: those the selection keeps, and (with a body) the partial-body header,
    // which native sets over anything a client sent.
    let selection = attributes.selection;
    let partial: Option<&[u8]> =
        attributes
            .body
            .map(|b| if b.partial() { &b"true"[..] } else { b"false" });
    let filtered: Vec<(&[u8], &[u8])>;
    let sent: &[(&[u8], &[u8])] =
        if selection.is_none_or(HeaderSelection::keeps_all) && partial.is_none() {
            headers
        } else {
            // A loop, not an iterator chain: fewer bytes of module.
            let mut kept = Vec::with_capacity(headers.len() + 1);
            for &(key, value) in headers {
                let replaced = partial.is_some() && key.eq_ignore_ascii_case(PARTIAL_BODY_HEADER);
                if !replaced && selection.is_none_or(|s| s.keeps(&lower_case(key))) {
                    kept.push((key, value));
                }
            }
            if let Some(partial) = partial {
                kept.push((PARTIAL_BODY_HEADER, partial));
            }
            filtered = kept;
            &filtered
        };
    if selection.is_some_and(|s| s.raw) {
        raw_headers(buf, sent);
    } else {
        joined_headers(buf, sent);
    }
    string_field(buf, HTTP_PATH, named.path);
    string_field(buf, HTTP_HOST, named.authority);
    string_field(buf, HTTP_SCHEME, named.scheme);
    // As native: the size of the body buffered for the check, 0 without one.
    let body = attributes.body.unwrap_or_default();
    varint_field(buf, HTTP_SIZE, body.buffered);
    string_field(buf, HTTP_PROTOCOL, attributes.protocol);
    if body.pack_as_bytes {
        bytes_field(buf, HTTP_RAW_BODY, body.bytes);
    } else {
        // Bytes that are not UTF-8 become `!`, as native sends them.
        string_field(buf, HTTP_BODY, body.bytes);
    }
}

/// Writes `header_map`: every header apart, in the host's order, keys lower-cased, values as the
/// bytes they are (`raw_value`), as native's `encode_raw_headers` sends them.
fn raw_headers(buf: &mut Vec<u8>, headers: &[(&[u8], &[u8])]) {
    message_field(buf, HTTP_HEADER_MAP, |buf| {
        for (key, value) in headers {
            message_field(buf, HEADER_MAP_HEADERS, |buf| {
                bytes_field(buf, HEADER_VALUE_KEY, &lower_case(key));
                bytes_field(buf, HEADER_VALUE_RAW_VALUE, value);
            });
        }
    });
}

/// A header name lower-cased. Envoy's header maps are lower-case already, so this only copies
/// for a name that is not.
fn lower_case(name: &[u8]) -> Cow<'_, [u8]> {
    if has_upper_case(name) {
        Cow::Owned(name.to_ascii_lowercase())
    } else {
        Cow::Borrowed(name)
    }
}

/// Whether a name has an upper-case ASCII letter; branch-free, as names are short and have none.
fn has_upper_case(name: &[u8]) -> bool {
    name.iter()
        .fold(false, |any, b| any | b.is_ascii_uppercase())
}

/// Writes `headers` as the `map<string, string>`: keys lower-cased, the values of a repeated
/// header joined with `,` in the order they came.
fn joined_headers(buf: &mut Vec<u8>, headers: &[(&[u8], &[u8])]) {
    if headers.iter().any(|(k, _)| has_upper_case(k)) {
        let lowered: Vec<(Cow<'_, [u8]>, &[u8])> =
            headers.iter().map(|(k, v)| (lower_case(k), *v)).collect();
        let lowered: Vec<(&[u8], &[u8])> = lowered.iter().map(|(k, v)| (&**k, *v)).collect();
        return joined_lower_case(buf, &lowered);
    }
    joined_lower_case(buf, headers);
}

/// [`joined_headers`] for names that are lower-case: one copy of the pairs, sorted by name so
/// repeats sit together (a stable sort keeps their values in arrival order), and no other
/// allocation.
fn joined_lower_case(buf: &mut Vec<u8>, headers: &[(&[u8], &[u8])]) {
    let mut sorted = headers.to_vec();
    crate::header_map::sort_by_name(&mut sorted);
    let mut rest = sorted.as_slice();
    while let Some(&(key, _)) = rest.first() {
        let repeats = rest.iter().take_while(|(k, _)| *k == key).count();
        let (same, after) = rest.split_at(repeats);
        map_entry_values(buf, HTTP_HEADERS, key, same.iter().map(|(_, v)| *v));
        rest = after;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_addresses_split_like_envoy() {
        let v4 = SocketAddress::parse(b"127.0.0.1:8080");
        assert_eq!((v4.address, v4.port), (&b"127.0.0.1"[..], 8080));
        let v6 = SocketAddress::parse(b"[::1]:443");
        assert_eq!((v6.address, v6.port), (&b"::1"[..], 443));
        let pipe = SocketAddress::parse(b"/tmp/envoy.sock");
        assert_eq!((pipe.address, pipe.port), (&b"/tmp/envoy.sock"[..], 0));
        let bare_v6 = SocketAddress::parse(b"::1");
        assert_eq!((bare_v6.address, bare_v6.port), (&b"::1"[..], 0));
    }

    #[test]
    fn a_source_address_taken_from_a_header_is_left_out_unless_trusted() {
        let peer = |text: &'static [u8], trusted| {
            SocketAddress::source(text, trusted).map(|a| (a.address, a.port))
        };
        // Read from the socket: a port, sent either way.
        assert_eq!(
            peer(b"10.0.0.1:51000", false),
            Some((&b"10.0.0.1"[..], 51000))
        );
        assert_eq!(
            peer(b"[2001:db8::1]:443", false),
            Some((&b"2001:db8::1"[..], 443))
        );
        // From x-forwarded-for: port 0.
        assert_eq!(peer(b"203.0.113.7:0", false), None);
        assert_eq!(peer(b"[2001:db8::7]:0", false), None);
        assert_eq!(peer(b"203.0.113.7:0", true), Some((&b"203.0.113.7"[..], 0)));
        // Not an IP address (a pipe): no port to tell by, sent as it is.
        assert_eq!(
            peer(b"/tmp/envoy.sock", false),
            Some((&b"/tmp/envoy.sock"[..], 0))
        );
    }
}
