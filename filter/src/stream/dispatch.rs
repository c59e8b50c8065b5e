//! Sending a remote step's call: gathering what the CheckRequest carries besides the headers
//! (peers, protocol, TLS facts, metadata namespaces, context extensions), encoding it, and starting
//! the gRPC or HTTP call through the [`Host`].

use std::time::Duration;

use super::chain::{PASSTHROUGH_CONFIG_NAMESPACE, PASSTHROUGH_NAMESPACE};
use crate::check_request::{
    self, MetadataContext, RequestAttributes, RequestBody, SocketAddress, Tls,
};
use crate::config::steps::GrpcStep;
use crate::config::{Check, Config, ContextExtensions, GrpcService, HttpService};
use crate::decision::CheckError;
use crate::host::{GrpcCall, Host, HttpCall};
use crate::http_check;
use crate::proto::response::Metadata;
use crate::proto::{AUTHORIZATION_SERVICE, CHECK_METHOD};
use crate::trace_context;

/// The request as a step sees it: its headers (as earlier steps left them) and its body.
#[derive(Clone, Copy)]
pub struct Request<'a> {
    pub headers: &'a [(&'a [u8], &'a [u8])],
    pub body: Option<RequestBody<'a>>,
}

/// A gRPC step's call: the service, the step's own settings if it is one of `steps`, and what the
/// steps before it handed on.
pub struct GrpcCheck<'a> {
    pub service: &'a GrpcService,
    pub step: Option<&'a GrpcStep>,
    pub passthrough: &'a [u8],
    pub timeout: Duration,
}

/// Encodes the CheckRequest and sends it to the gRPC server.
pub fn grpc(
    host: &impl Host,
    config: &Config,
    settings: Check<'_>,
    check: GrpcCheck<'_>,
    request: Request<'_>,
) -> Result<u32, CheckError> {
    // A step's own context extensions go over the request's; the step's key wins.
    let merged;
    let extensions = match check.step.filter(|s| !s.context_extensions.is_empty()) {
        None => &settings.context_extensions.encoded,
        Some(step) => {
            let mut entries = settings.context_extensions.entries.clone();
            entries.extend(step.context_extensions.clone());
            merged = ContextExtensions::new(entries);
            &merged.encoded
        }
    };
    let wanted = &config.metadata;
    let stream = Namespaces::read(
        host,
        &["metadata"],
        &wanted.dynamic_namespaces,
        &wanted.typed_dynamic_namespaces,
    );
    let route = Namespaces::read(
        host,
        &["xds", "route_metadata"],
        &wanted.route_namespaces,
        &wanted.typed_route_namespaces,
    );
    // The config's own first, then the stream's, then what steps pass on: on a namespace given
    // twice, the later wins.
    let mut metadata: Vec<(&str, &[u8])> = wanted
        .fixed
        .iter()
        .map(|(ns, s)| (ns.as_str(), s.as_slice()))
        .collect();
    metadata.extend(borrowed(&stream.untyped));
    if !check.passthrough.is_empty() {
        metadata.push((PASSTHROUGH_NAMESPACE, check.passthrough));
    }
    if let Some(config) = check.step.map(|s| &s.config).filter(|c| !c.is_empty()) {
        metadata.push((PASSTHROUGH_CONFIG_NAMESPACE, config));
    }
    // Missing properties leave their fields empty, as native leaves them for an unknown peer.
    let property = |path: &[&str]| host.property(path).ok().flatten();
    let source = property(&["source", "address"]);
    let destination = property(&["destination", "address"]);
    let protocol = property(&["request", "protocol"]);
    let tls = TlsFacts::read(host, config.include_tls_session);
    let attributes = RequestAttributes {
        headers: request.headers,
        source: source
            .as_deref()
            .and_then(|text| SocketAddress::source(text, config.include_forwarded_source_address)),
        destination: destination.as_deref().map(SocketAddress::parse),
        protocol: protocol.as_deref().unwrap_or_default(),
        time: host.now().unwrap_or_default(),
        body: request.body,
        metadata: MetadataContext {
            filter_metadata: &metadata,
            typed_filter_metadata: &borrowed(&stream.typed),
        },
        route_metadata: MetadataContext {
            filter_metadata: &borrowed(&route.untyped),
            typed_filter_metadata: &borrowed(&route.typed),
        },
        selection: Some(&config.headers),
        tls: tls.as_ref().map(TlsFacts::view),
    };
    let message = check_request::encode(&attributes, extensions);
    let trace = trace(config, request.headers);
    let mut initial_metadata: Vec<(&str, &[u8])> = check
        .service
        .initial_metadata
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_bytes()))
        .collect();
    // The config's own metadata wins over the trace context of the same name.
    for (name, value) in &trace {
        if !initial_metadata.iter().any(|(k, _)| k == name) {
            initial_metadata.push((name, value));
        }
    }
    host.dispatch_grpc_call(GrpcCall {
        upstream: &check.service.target,
        service: AUTHORIZATION_SERVICE,
        method: CHECK_METHOD,
        initial_metadata: &initial_metadata,
        message: &message,
        timeout: check.timeout,
    })
    .map_err(CheckError::Dispatch)
}

/// Sends the authorization request to the HTTP server.
pub fn http(
    host: &impl Host,
    config: &Config,
    service: &HttpService,
    timeout: Duration,
    request: Request<'_>,
) -> Result<u32, CheckError> {
    let body = request.body.map(|b| b.bytes).unwrap_or_default();
    let mut headers =
        http_check::request_headers(service, &config.headers, request.headers, request.body);
    let trace = trace(config, request.headers);
    if !trace.is_empty() {
        // The request's own trace headers give way to the child's, unless headers_to_add set them.
        let added = |name: &str| service.headers_to_add.iter().any(|(k, _)| k == name);
        headers.retain(|(k, _)| added(k) || !trace_context::NAMES.contains(&k.as_str()));
        for (name, value) in trace {
            if !added(name) {
                headers.push((name.to_owned(), value));
            }
        }
    }
    let headers: Vec<(&str, &[u8])> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_slice()))
        .collect();
    host.dispatch_http_call(HttpCall {
        cluster: &service.cluster,
        headers: &headers,
        body,
        timeout,
    })
    .map_err(CheckError::Dispatch)
}

/// The child trace context for the auth server, unless `propagate_trace_context` is off.
fn trace(config: &Config, headers: &[(&[u8], &[u8])]) -> Vec<(&'static str, Vec<u8>)> {
    if !config.propagate_trace_context {
        return Vec::new();
    }
    trace_context::child(headers, trace_context::new_span_id)
}

/// What native reads from a TLS connection, read from the host's connection properties.
struct TlsFacts {
    source_principal: Vec<u8>,
    destination_principal: Vec<u8>,
    sni: Option<Vec<u8>>,
}

impl TlsFacts {
    /// `None` on a plaintext connection, which costs one host call to tell.
    fn read(host: &impl Host, include_tls_session: bool) -> Option<Self> {
        connection_property(host, "tls_version")?;
        Some(Self {
            source_principal: principal(host, "peer"),
            destination_principal: principal(host, "local"),
            sni: include_tls_session
                .then(|| connection_property(host, "requested_server_name").unwrap_or_default()),
        })
    }

    fn view(&self) -> Tls<'_> {
        Tls {
            source_principal: &self.source_principal,
            destination_principal: &self.destination_principal,
            sni: self.sni.as_deref(),
        }
    }
}

/// The TLS peer's principal as the CheckRequest's `source.principal` reads it; `None` on a
/// plaintext connection. The decision cache keys on it (`stream::cache`).
pub(super) fn source_principal(host: &impl Host) -> Option<Vec<u8>> {
    connection_property(host, "tls_version")?;
    Some(principal(host, "peer"))
}

/// As native: the first URI SAN, else the first DNS SAN, else the subject, of the `peer` or
/// `local` certificate.
fn principal(host: &impl Host, side: &str) -> Vec<u8> {
    ["uri_san", "dns_san", "subject"]
        .iter()
        .find_map(|kind| connection_property(host, &format!("{kind}_{side}_certificate")))
        .unwrap_or_default()
}

/// A connection property; `None` when the host has none or an empty one.
fn connection_property(host: &impl Host, name: &str) -> Option<Vec<u8>> {
    host.property(&["connection", name])
        .ok()
        .flatten()
        .filter(|v| !v.is_empty())
}

/// The namespaces asked for, out of the metadata the host has at a path (the stream's dynamic
/// metadata, or the route's): the untyped ones each an encoded Struct, the typed ones each an
/// encoded Any. The host hands over the whole `Metadata` message, so an Any keeps its type URL.
#[derive(Default)]
struct Namespaces {
    untyped: Vec<(String, Vec<u8>)>,
    typed: Vec<(String, Vec<u8>)>,
}

impl Namespaces {
    /// Nothing asked, no host call.
    fn read(host: &impl Host, path: &[&str], wanted: &[String], wanted_typed: &[String]) -> Self {
        if wanted.is_empty() && wanted_typed.is_empty() {
            return Self::default();
        }
        let Some(bytes) = host.property(path).ok().flatten() else {
            return Self::default();
        };
        let Ok(mut metadata) = Metadata::decode(&bytes) else {
            return Self::default();
        };
        let pick = |all: &mut Vec<(String, Vec<u8>)>, wanted: &[String]| {
            let mut picked = Vec::new();
            for namespace in wanted {
                if let Some(at) = all.iter().position(|(name, _)| name == namespace) {
                    picked.push(all.swap_remove(at));
                }
            }
            picked
        };
        Self {
            untyped: pick(&mut metadata.filter_metadata, wanted),
            typed: pick(&mut metadata.typed_filter_metadata, wanted_typed),
        }
    }
}

fn borrowed(namespaces: &[(String, Vec<u8>)]) -> Vec<(&str, &[u8])> {
    namespaces
        .iter()
        .map(|(ns, value)| (ns.as_str(), value.as_slice()))
        .collect()
}
