//! The connection manager's header limit, after the server's changes: native refuses a request
//! they push past `max_request_headers_kb` with 500 (`ext_authz_invalid`) and sends nothing
//! upstream. A wasm filter cannot read the connection manager's limit, so it is the plugin's
//! `max_request_headers_kb` (Envoy's default, 60, unless set).
//!
//! Native also counts `request_header_limits_reached`, a connection manager stat a wasm filter
//! cannot bump; `invalid` is counted as native counts it.

use std::borrow::Cow;

use super::{apply, ExtAuthz};
use crate::decision::{Allow, Decision, Invalid, LocalReply, DETAILS_INVALID};
use crate::header_map;
use crate::host::{Action, Headers, Host};

const INTERNAL_SERVER_ERROR: u16 = 500;

/// The request's headers as Envoy sizes them (`HeaderMap::byteSize`): every name and value's
/// bytes, pseudo-headers included, nothing for separators.
pub(super) fn byte_size(headers: &[(&[u8], &[u8])]) -> usize {
    headers.iter().map(|(k, v)| k.len() + v.len()).sum()
}

/// The most an allow's request changes can add to the headers' size: every header set or
/// appended as if new (with the `,` of an append), every query parameter set with its `&` and
/// `=`. Removals and replacements only make it smaller.
pub(super) fn growth(allow: &Allow) -> usize {
    let headers: usize = allow
        .request_headers
        .iter()
        .map(|h| h.name.len() + h.value.len() + 1)
        .sum();
    let query: usize = allow
        .query_parameters_to_set
        .iter()
        .map(|(k, v)| k.len() + v.len() + 2)
        .sum();
    headers + query
}

impl<H: Host> ExtAuthz<H> {
    /// Whether the changes may have pushed the request's headers past the limit: only then are
    /// they read back and measured, so a request whose changes are small costs no host call.
    pub(super) fn may_be_over_header_limit(&self) -> bool {
        self.header_bytes + self.grown > self.plugin.config.max_request_headers_bytes
    }

    /// Whether the request's headers, as changed, are within the limit. A map that cannot be read
    /// cannot be measured: refused, as failing closed.
    pub(super) fn within_header_limit(&self) -> Result<(), String> {
        let limit = self.plugin.config.max_request_headers_bytes;
        let map = self.host.header_map(Headers::Request).map_err(|status| {
            format!("cannot read the changed request headers (host status {status})")
        })?;
        let headers = header_map::parse(&map)
            .ok_or_else(|| "the changed request headers are malformed".to_owned())?;
        let size = byte_size(&headers);
        if size > limit {
            return Err(format!(
                "its changes make the request headers {size} bytes, over max_request_headers_kb ({limit} bytes)"
            ));
        }
        Ok(())
    }

    /// Answers 500 for a request whose headers the changes pushed over the limit.
    pub(super) fn refuse_oversized(&mut self, why: String) -> Action {
        let invalid = Decision::Invalid(Invalid {
            reply: LocalReply {
                status: INTERNAL_SERVER_ERROR,
                headers: Vec::new(),
                body: Vec::new(),
                details: Cow::Borrowed(DETAILS_INVALID),
            },
            why,
            denied: false,
        });
        self.count_and_log(&invalid);
        if let Decision::Invalid(invalid) = invalid {
            apply::reply(&self.host, self.context_id, &invalid.reply);
        }
        Action::Pause
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn growth_is_an_upper_bound() {
        let allow = Allow {
            request_headers: vec![crate::decision::HeaderMutation {
                name: "x-a".into(),
                value: b"bc".to_vec(),
                action: crate::decision::HeaderAction::Append,
            }],
            query_parameters_to_set: vec![("k".into(), "v".into())],
            ..Allow::default()
        };
        assert_eq!(growth(&allow), 3 + 2 + 1 + 1 + 1 + 2);
    }

    #[test]
    fn names_and_values_count_and_nothing_else() {
        let headers: [(&[u8], &[u8]); 2] = [(b":path", b"/"), (b"x-a", b"bc")];
        assert_eq!(byte_size(&headers), 5 + 1 + 3 + 2);
        assert_eq!(byte_size(&[]), 0);
    }
}
