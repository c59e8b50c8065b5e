//! Comparing what two filters did with the same request: the views the differential tests put
//! side by side, without what differs between any two requests whoever handles them.

use envoy_types::pb::envoy::service::auth::v3::{attribute_context::Peer, CheckRequest};

use crate::auth_server::{RecordedCheck, CASE_HEADER};
use crate::backend::RecordedRequest;
use crate::client::Response;

/// Headers as recorded: name and raw value, in order.
pub type Headers = Vec<(String, Vec<u8>)>;
/// (method, path, headers, body) of a request that reached a server.
pub type RequestView = (String, String, Headers, Vec<u8>);
/// (status, headers, body) of what the client got.
pub type ResponseView = (u16, Headers, Vec<u8>);

/// Headers that differ between any two requests.
const VOLATILE: &[&str] = &[
    "date",
    "x-request-id",
    "x-case",
    "x-envoy-upstream-service-time",
    "x-envoy-expected-rq-timeout-ms",
];

/// The headers that must match, by name: the order of different names carries no meaning in HTTP,
/// the order of one name's values does, and a stable sort keeps it.
pub fn stable(headers: &[(String, Vec<u8>)]) -> Headers {
    let mut kept: Headers = headers
        .iter()
        .filter(|(k, _)| !VOLATILE.contains(&k.as_str()))
        .cloned()
        .collect();
    kept.sort_by(|a, b| a.0.cmp(&b.0));
    kept
}

pub fn requests(requests: &[RecordedRequest]) -> Vec<RequestView> {
    requests
        .iter()
        .map(|r| {
            (
                r.method.clone(),
                r.path.clone(),
                stable(&r.headers),
                r.body.clone(),
            )
        })
        .collect()
}

pub fn response(response: &Response) -> ResponseView {
    (
        response.status,
        stable(&response.headers),
        response.body.clone(),
    )
}

/// Where two values first differ, with some context: one side, then the other.
pub fn difference<T: std::fmt::Debug>(left: &T, right: &T) -> String {
    let (left, right) = (format!("{left:?}"), format!("{right:?}"));
    let at = left
        .bytes()
        .zip(right.bytes())
        .position(|(a, b)| a != b)
        .unwrap_or(left.len().min(right.len()));
    let from = at.saturating_sub(300);
    let window = |s: &str| {
        s.get(from..(at + 300).min(s.len()))
            .unwrap_or_default()
            .to_owned()
    };
    format!(
        "left:  ...{}...\nright: ...{}...",
        window(&left),
        window(&right)
    )
}

/// A CheckRequest without what differs by design between native and this filter: the stream id
/// (native) against `x-request-id` (wasm), times, the case tag, and `x-request-id` itself. Peer
/// ports differ with every connection and listener, so a port is kept only as zero or not.
pub fn check(check: &RecordedCheck) -> CheckRequest {
    let mut request = check.request.clone();
    if let Some(attributes) = request.attributes.as_mut() {
        for peer in [&mut attributes.source, &mut attributes.destination]
            .into_iter()
            .flatten()
        {
            normalize_port(peer);
        }
        if let Some(req) = attributes.request.as_mut() {
            req.time = None;
            if let Some(http) = req.http.as_mut() {
                http.id.clear();
                http.headers.remove(CASE_HEADER);
                http.headers.remove("x-request-id");
                if let Some(map) = http.header_map.as_mut() {
                    map.headers
                        .retain(|h| h.key != CASE_HEADER && h.key != "x-request-id");
                }
            }
        }
    }
    request
}

/// Any port but zero becomes 1.
fn normalize_port(peer: &mut Peer) {
    use envoy_types::pb::envoy::config::core::v3::{address, socket_address::PortSpecifier};
    if let Some(address::Address::SocketAddress(socket)) =
        peer.address.as_mut().and_then(|a| a.address.as_mut())
    {
        if let Some(PortSpecifier::PortValue(port)) = socket.port_specifier.as_mut() {
            *port = u32::from(*port != 0);
        }
    }
}

/// Asserts that in every named run the wasm view equals the native one, listing every
/// difference at once rather than stopping at the first.
pub fn assert_runs_match<T: PartialEq + std::fmt::Debug>(runs: Vec<(String, T, T)>) {
    let differences: Vec<String> = runs
        .iter()
        .filter(|(_, native, wasm)| wasm != native)
        .map(|(name, native, wasm)| format!("{name}:\n{}", difference(wasm, native)))
        .collect();
    assert!(
        differences.is_empty(),
        "{} of {} runs differ, wasm (left) and native (right):\n{}",
        differences.len(),
        runs.len(),
        differences.join("\n\n")
    );
}
