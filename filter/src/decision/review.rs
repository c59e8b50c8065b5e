//! Reviewing an answer's changes before any is made: `validate_mutations`,
//! `decoder_header_mutation_rules`, and what Envoy itself would refuse after the filter. Every
//! answer, gRPC or HTTP, a chain's step or its last, goes through [`review`].

use super::{Allow, CheckError, Decision, HeaderMutation, Invalid, LocalReply, DETAILS_INVALID};
use crate::config::{is_header_name, is_header_value};
use crate::mutation_rules::{is_query_text, MutationPolicy, Operation, Outcome};

/// Checks an answer's changes as native does, with `validate_mutations` and
/// `decoder_header_mutation_rules`; what no rule covers, it checks as Envoy would after the filter.
/// Every answer, gRPC or HTTP, goes through here.
pub fn review(decision: Decision, policy: &MutationPolicy) -> Decision {
    // A reply's headers are checked whatever the policy (see `review_allow` for why).
    let reply_headers = match &decision {
        Decision::Deny(reply) => first_invalid(&reply.headers).map(|why| (why, true)),
        Decision::Error(CheckError::ErrorResponse { headers, .. }) => {
            first_invalid(headers).map(|why| (why, false))
        }
        _ => None,
    };
    if let Some((why, denied)) = reply_headers {
        return Decision::Invalid(invalid(why, denied));
    }
    match decision {
        Decision::Allow(allow) => {
            review_allow(allow, policy).map_or_else(Decision::Invalid, Decision::Allow)
        }
        other => other,
    }
}

fn review_allow(mut allow: Allow, policy: &MutationPolicy) -> Result<Allow, Invalid> {
    if policy.validate {
        if let Some(why) = first_invalid(&allow.request_headers) {
            return Err(invalid(why, false));
        }
        let query = allow
            .query_parameters_to_set
            .iter()
            .flat_map(|(k, v)| [k, v])
            .find(|text| !is_query_text(text));
        if let Some(text) = query {
            return Err(invalid(format!("query parameter text {text:?}"), false));
        }
    }
    // As native, a removal that cannot be made (pseudo-headers, `host`, what is not a header
    // name) is skipped; rules may turn skipping into failing.
    let removable =
        |name: &String| is_header_name(name.as_bytes()) && !name.starts_with(':') && name != "host";
    match &policy.rules {
        None => allow.headers_to_remove.retain(removable),
        Some(rules) => {
            let mut failed = None;
            let mut fails = |name: &String| {
                failed.get_or_insert_with(|| name.clone());
                false
            };
            allow.request_headers.retain(|m| {
                match rules.check(Operation::Write, &m.name, &m.value) {
                    Outcome::Apply => true,
                    Outcome::Ignore => false,
                    Outcome::Fail => fails(&m.name),
                }
            });
            allow.headers_to_remove.retain(|name| {
                match rules.check(Operation::Remove, name, b"") {
                    Outcome::Apply => removable(name),
                    Outcome::Ignore => false,
                    Outcome::Fail => fails(name),
                }
            });
            if let Some(name) = failed {
                return Err(invalid(
                    format!("decoder_header_mutation_rules disallow changing {name:?}"),
                    false,
                ));
            }
        }
    }
    // Without validate_mutations native makes the change, and Envoy then refuses the request
    // before the upstream: the same reply here, without putting the bytes into the request.
    if let Some(reason) = first_invalid(&allow.request_headers) {
        let details = format!(
            "filter_removed_required_request_headers{{{}}}",
            reason.replace(|c: char| c.is_ascii_whitespace(), "_")
        );
        return Err(Invalid {
            reply: LocalReply {
                status: 503,
                headers: Vec::new(),
                body: reason.clone().into_bytes(),
                details: details.into(),
            },
            why: reason,
            denied: false,
        });
    }
    // Native writes such response headers as they are, which lets a server inject headers into
    // the client's response; this filter refuses the answer as validate_mutations would.
    if let Some(why) = first_invalid(&allow.response_headers) {
        return Err(invalid(why, false));
    }
    Ok(allow)
}

/// What is wrong with the first header change that is not a valid header, if any, in Envoy's
/// words: `invalid header name: <name>` or `invalid header value for: <name>`.
fn first_invalid(headers: &[HeaderMutation]) -> Option<String> {
    headers.iter().find_map(|m| {
        if !is_header_name(m.name.as_bytes()) {
            Some(format!("invalid header name: {}", escaped(&m.name)))
        } else if !is_header_value(&m.value) {
            Some(format!("invalid header value for: {}", escaped(&m.name)))
        } else {
            None
        }
    })
}

/// A name as Envoy quotes it in that text: escaped as in a JSON string (`\"`, `\\`, `\n`,
/// `\r`, `\t`, `\u000b`, ...), without the quotes, so a server cannot break the reply's lines.
fn escaped(name: &str) -> String {
    let quoted = serde_json::to_string(name).unwrap_or_default();
    quoted
        .strip_prefix('"')
        .and_then(|q| q.strip_suffix('"'))
        .unwrap_or_default()
        .to_owned()
}

/// Native's answer to an invalid answer: 500, whatever the failure mode and `status_on_error`.
fn invalid(why: String, denied: bool) -> Invalid {
    Invalid {
        reply: LocalReply {
            status: 500,
            headers: Vec::new(),
            body: Vec::new(),
            details: DETAILS_INVALID.into(),
        },
        why,
        denied,
    }
}
