//! A check against a plain HTTP authorization server (`http_service`), as native ext_authz makes
//! it: the request that goes to the server, and the [`Decision`] its answer means.
//!
//! The server gets the original method and path (after `path_prefix`), the original
//! `:authority`, the request headers native selects ([`request_headers`]), `headers_to_add`, and
//! the body under `with_request_body`. A 200 allows; a 5xx or an unreadable status is an error;
//! anything else denies with itself.

use crate::check_request::{HeaderSelection, RequestBody, PARTIAL_BODY_HEADER};
use crate::config::{is_header_name, is_header_value, HttpService};
use crate::decision::{
    Allow, CheckError, Decision, HeaderAction, HeaderMutation, LocalReply, DETAILS_DENIED,
};
use crate::route::matcher::StringMatch;

/// Request headers native adds to any `allowed_headers` list for an HTTP server, and sends
/// alone when no list is set. `disallowed_headers` still holds for them.
const ALWAYS_SENT: &[&[u8]] = &[b"authorization", b":method", b":path", b":authority"];
/// The response header in which a server lists request headers to remove, as native reads it.
const HEADERS_TO_REMOVE: &[u8] = b"x-envoy-auth-headers-to-remove";

/// The headers of the authorization request, as native 1.40 builds them: the request headers
/// the legacy `authorization_request.allowed_headers` (else the top-level `allowed_headers`)
/// and [`ALWAYS_SENT`] select, less `disallowed_headers`, a repeated one joined with `,`; the
/// path after `path_prefix`; `content-length` of the body sent and, with a body,
/// `x-envoy-auth-partial-body`; then `headers_to_add` over them. Pseudo-headers first.
pub fn request_headers(
    service: &HttpService,
    selection: &HeaderSelection,
    headers: &[(&[u8], &[u8])],
    body: Option<RequestBody<'_>>,
) -> Vec<(String, Vec<u8>)> {
    let allowed = if service.allowed_headers.is_some() {
        service.allowed_headers.as_deref()
    } else {
        selection.allowed.as_deref()
    };
    let sent = |name: &[u8]| {
        (ALWAYS_SENT.contains(&name) || allowed.is_some_and(|a| a.iter().any(|m| m.matches(name))))
            && !selection.disallowed.iter().any(|m| m.matches(name))
    };
    let get = |name: &[u8]| {
        headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_vec())
            .unwrap_or_default()
    };
    let mut path = service.path_prefix.as_bytes().to_vec();
    path.extend_from_slice(&get(b":path"));
    // The host cannot send a call without these three, whatever `disallowed_headers` says.
    let mut out = vec![
        (":method".to_owned(), get(b":method")),
        (":path".to_owned(), path),
        (":authority".to_owned(), get(b":authority")),
        (":scheme".to_owned(), b"http".to_vec()),
        (
            "content-length".to_owned(),
            body.map_or(0, |b| b.bytes.len()).to_string().into_bytes(),
        ),
    ];
    for (name, value) in headers {
        let lower = name.to_ascii_lowercase();
        if lower.starts_with(b":")
            || matches!(&lower[..], b"content-length" | b"host")
            || lower == PARTIAL_BODY_HEADER
            || !sent(&lower)
        {
            continue;
        }
        let Ok(name) = String::from_utf8(lower) else {
            continue;
        };
        match out.iter_mut().find(|(k, _)| *k == name) {
            Some((_, joined)) => {
                joined.push(b',');
                joined.extend_from_slice(value);
            }
            None => out.push((name, value.to_vec())),
        }
    }
    if let Some(body) = body {
        let partial: &[u8] = if body.partial() { b"true" } else { b"false" };
        out.push((
            String::from_utf8_lossy(PARTIAL_BODY_HEADER).into_owned(),
            partial.to_vec(),
        ));
    }
    for (name, value) in &service.headers_to_add {
        out.retain(|(k, _)| k != name);
        out.push((name.clone(), value.clone().into_bytes()));
    }
    out
}

fn matches_any(patterns: &[StringMatch], name: &str) -> bool {
    patterns.iter().any(|p| p.matches(name.as_bytes()))
}

/// What the server's answer means.
pub fn decision(service: &HttpService, headers: &[(&[u8], &[u8])], body: Vec<u8>) -> Decision {
    let status = headers
        .iter()
        .find(|(k, _)| *k == b":status")
        .and_then(|(_, v)| std::str::from_utf8(v).ok())
        // Read as u64, the module's one integer parser, then narrowed: the same numbers pass.
        .and_then(|v| u16::try_from(v.parse::<u64>().ok()?).ok());
    if headers.is_empty() {
        // How the host reports a call that failed (reset, timeout, no such cluster).
        return Decision::Error(CheckError::HttpCall);
    }
    let Some(status) = status.filter(|s| (100..=599).contains(s)) else {
        return Decision::Error(CheckError::Undecodable(
            "the HTTP auth server's answer has no valid :status".into(),
        ));
    };
    if (500..=599).contains(&status) {
        return Decision::Error(CheckError::ServerError(status));
    }
    let pick = |patterns: &[StringMatch], action: HeaderAction| {
        server_headers(headers, &|name| matches_any(patterns, name), action)
    };
    let result = if status == 200 {
        (|| {
            let mut request_headers = pick(&service.allowed_upstream_headers, HeaderAction::Set)?;
            // As native: each value is one more value of the header, whether the request had it.
            request_headers.extend(pick(
                &service.allowed_upstream_headers_to_append,
                HeaderAction::Add,
            )?);
            let headers_to_remove = headers_to_remove(headers);
            Ok(Decision::Allow(Allow {
                request_headers,
                headers_to_remove,
                response_headers: pick(
                    &service.allowed_client_headers_on_success,
                    HeaderAction::Add,
                )?,
                ..Allow::default()
            }))
        })()
    } else {
        let headers: Result<Vec<HeaderMutation>, String> = match &service.allowed_client_headers {
            Some(patterns) => pick(patterns, HeaderAction::Add),
            // Unset: every header of the answer, but those that describe its own framing.
            None => server_headers(
                headers,
                &|name| {
                    !matches!(
                        name,
                        "host" | "content-length" | "transfer-encoding" | "connection"
                    )
                },
                HeaderAction::Add,
            ),
        };
        headers.map(|headers| {
            Decision::Deny(LocalReply {
                status,
                headers,
                body,
                details: DETAILS_DENIED.into(),
            })
        })
    };
    result.unwrap_or_else(|why| Decision::Error(CheckError::Undecodable(why)))
}

/// The request headers the answer lists in [`HEADERS_TO_REMOVE`], lower-cased; never a
/// pseudo-header or `host`. Loops, not an iterator chain: fewer bytes of module.
fn headers_to_remove(headers: &[(&[u8], &[u8])]) -> Vec<String> {
    let mut names = Vec::new();
    for (key, value) in headers {
        if *key != HEADERS_TO_REMOVE {
            continue;
        }
        for name in value.split(|&b| b == b',') {
            let Ok(name) = std::str::from_utf8(name) else {
                continue;
            };
            let name = name.trim().to_ascii_lowercase();
            if !name.is_empty() && !name.starts_with(':') && name != "host" {
                names.push(name);
            }
        }
    }
    names
}

/// The answer's headers that `keep` picks, pseudo-headers and names that are not UTF-8 left out,
/// as changes; the first one that is not a valid header fails them all. One loop for every list,
/// rather than an iterator chain per list: fewer bytes of module.
fn server_headers(
    headers: &[(&[u8], &[u8])],
    keep: &dyn Fn(&str) -> bool,
    action: HeaderAction,
) -> Result<Vec<HeaderMutation>, String> {
    let mut picked = Vec::new();
    for (name, value) in headers {
        let Ok(name) = std::str::from_utf8(name) else {
            continue;
        };
        if !name.starts_with(':') && keep(name) {
            picked.push(mutation(name, value, action)?);
        }
    }
    Ok(picked)
}

fn mutation(name: &str, value: &[u8], action: HeaderAction) -> Result<HeaderMutation, String> {
    if !is_header_name(name.as_bytes()) || !is_header_value(value) {
        return Err(format!(
            "the HTTP auth server's header {name:?} is not a valid header"
        ));
    }
    Ok(HeaderMutation {
        name: name.to_ascii_lowercase(),
        value: value.to_vec(),
        action,
    })
}

#[cfg(test)]
mod tests;
