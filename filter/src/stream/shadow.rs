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

/// Native's JSON, keys in its order; `response_headers` only when there are any.
fn decision_json(result: &str, status: u16, headers: &[HeaderMutation]) -> String {
    let mut json = format!(r#"{{"check_result":"{result}","status_code":{status}"#);
    if !headers.is_empty() {
        let headers: Vec<serde_json::Value> = headers
            .iter()
            .map(|h| {
                serde_json::json!({
                    "key": h.name,
                    "value": String::from_utf8_lossy(&h.value),
                })
            })
            .collect();
        json.push_str(r#","response_headers":"#);
        // `to_string`, not the Value's `Display`: see `metadata::take`.
        let headers = serde_json::to_string(&serde_json::Value::Array(headers));
        json.push_str(headers.as_deref().unwrap_or("[]"));
    }
    json.push('}');
    json
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decision::HeaderAction;

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
