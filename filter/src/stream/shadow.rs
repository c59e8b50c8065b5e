//! `shadow_mode`: the check runs and is counted as usual, but a denial or a failure is not
//! enforced; what would have happened is recorded instead, as native 1.40 records it, so a new
//! auth server can be rolled out against real traffic ("fail open protects against the server
//! being down, not against it being wrong").
//!
//! Native keeps the decision in filter state `envoy.filters.http.ext_authz.shadow`, an object a
//! wasm filter cannot create. This filter writes the same JSON as text to filter state
//! `wasm.ext_authz.shadow_decision`, which an access log reads with
//! `%FILTER_STATE(wasm.ext_authz.shadow_decision:PLAIN)%`.

use super::ExtAuthz;
use crate::decision::{Allow, CheckError, Decision, HeaderMutation};
use crate::host::{Host, LogLevel};

/// The property (filter state `wasm.ext_authz.shadow_decision`) that carries the decision.
pub const SHADOW_DECISION_PROPERTY: &str = "ext_authz.shadow_decision";

/// Records a decision made in shadow mode and returns the one to enforce: an allow as it is (its
/// changes are made as usual), a denial or a failure as an allow without changes. An answer whose
/// changes are refused (`Invalid`) is enforced still: the changes it asked for cannot be made,
/// and going on without them is not what the server asked either.
pub(super) fn record<H: Host>(stream: &ExtAuthz<H>, decision: Decision) -> Decision {
    let (result, status, headers): (&str, u16, &[HeaderMutation]) = match &decision {
        Decision::Allow(_) => ("OK", 200, &[]),
        Decision::Deny(reply) => ("DENIED", reply.status, &reply.headers),
        Decision::Error(error) => (
            "ERROR",
            error_status(error, stream.plugin.config.status_on_error),
            &[],
        ),
        Decision::Invalid(_) => return decision,
    };
    let stats = &stream.plugin.stats;
    match &decision {
        Decision::Deny(_) => stats.record_shadow_denied(&stream.host),
        Decision::Error(_) => stats.record_shadow_error(&stream.host),
        _ => {}
    }
    let json = decision_json(result, status, headers);
    if let Err(status) = stream
        .host
        .set_property(SHADOW_DECISION_PROPERTY, json.as_bytes())
    {
        stream.log(
            LogLevel::Warn,
            &format!("cannot record the shadow decision (host status {status})"),
        );
    }
    match decision {
        Decision::Allow(allow) => Decision::Allow(allow),
        _ => Decision::Allow(Allow::default()),
    }
}

/// The status the client would have got for a failure failing closed, whatever the failure mode.
fn error_status(error: &CheckError, status_on_error: u16) -> u16 {
    match error {
        CheckError::ErrorResponse {
            status: Some(status),
            ..
        } => *status,
        _ => status_on_error,
    }
}

/// Native's JSON, keys in its order; `response_headers` only when there are any. Written by hand
/// around serde_json's string escaping, rather than built as a `Value` (a map per header).
fn decision_json(result: &str, status: u16, headers: &[HeaderMutation]) -> String {
    let mut json = format!(r#"{{"check_result":"{result}","status_code":{status}"#);
    if !headers.is_empty() {
        json.push_str(r#","response_headers":["#);
        for (at, header) in headers.iter().enumerate() {
            if at > 0 {
                json.push(',');
            }
            json.push_str(r#"{"key":"#);
            push_json_string(&mut json, &header.name);
            json.push_str(r#","value":"#);
            push_json_string(&mut json, &String::from_utf8_lossy(&header.value));
            json.push('}');
        }
        json.push(']');
    }
    json.push('}');
    json
}

/// `text` as a JSON string, quotes and escapes as serde_json writes them.
fn push_json_string(json: &mut String, text: &str) {
    json.push_str(serde_json::to_string(text).as_deref().unwrap_or(r#""""#));
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::decision::HeaderAction;

    #[test]
    fn headers_are_escaped_as_json_strings() {
        let header = |name: &str, value: &[u8]| HeaderMutation {
            name: name.into(),
            value: value.to_vec(),
            action: HeaderAction::Set,
        };
        let json = decision_json(
            "DENIED",
            403,
            &[header("x-a", b"q\"\\\n\x01"), header("x-b", b"\xff")],
        );
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(
            value,
            serde_json::json!({
                "check_result": "DENIED",
                "status_code": 403,
                "response_headers": [
                    {"key": "x-a", "value": "q\"\\\n\u{1}"},
                    {"key": "x-b", "value": "\u{fffd}"},
                ],
            })
        );
    }

    #[test]
    fn the_json_is_natives() {
        assert_eq!(
            decision_json("OK", 200, &[]),
            r#"{"check_result":"OK","status_code":200}"#
        );
        let header = HeaderMutation {
            name: "x-deny".into(),
            value: b"no".to_vec(),
            action: HeaderAction::Set,
        };
        assert_eq!(
            decision_json("DENIED", 401, &[header]),
            r#"{"check_result":"DENIED","status_code":401,"response_headers":[{"key":"x-deny","value":"no"}]}"#
        );
    }
}
