//! From the auth server's answer to what happens to the request.
//!
//! [`Decision`] is what the server said (or why it could not say it); [`Verdict`] is what the shell
//! does, after the failure mode has been applied in exactly one place, [`Decision::into_verdict`].

use std::borrow::Cow;

mod review;

pub use review::review;

use crate::config::FailureMode;
use crate::mutation_rules::MutationPolicy;
use crate::proto::response::{
    self, CheckResponse, DeniedHttpResponse, HeaderValueOption, HttpResponse,
};

/// The header native ext_authz adds upstream when a failed check is let through.
pub const FAILURE_MODE_ALLOWED_HEADER: &str = "x-envoy-auth-failure-mode-allowed";
/// Response-code details of local replies, as native sets them, for access logs.
pub const DETAILS_DENIED: &str = "ext_authz_denied";
pub const DETAILS_ERROR: &str = "ext_authz_error";
pub const DETAILS_INVALID: &str = "ext_authz_invalid";

/// What the auth server decided.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// `OK`, with the changes to make to the request and its response.
    Allow(Allow),
    /// Any other status: the client gets this reply and the upstream nothing.
    Deny(LocalReply),
    /// No decision could be had.
    Error(CheckError),
    /// The server asked for changes that must not be made: the client gets this reply whatever
    /// the failure mode, as native answers them.
    Invalid(Invalid),
}

/// An answer refused for the changes it asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct Invalid {
    pub reply: LocalReply,
    /// What was wrong, for the log.
    pub why: String,
    /// The server had denied: native counts such an answer as denied as well as invalid.
    pub denied: bool,
}

/// A CheckResponse, read: the decision, and the `dynamic_metadata` that comes with any answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub decision: Decision,
    /// An encoded `google.protobuf.Struct`, empty if none.
    pub dynamic_metadata: Vec<u8>,
}

/// Changes an allowing server asked for.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Allow {
    /// Applied to the request headers, in order.
    pub request_headers: Vec<HeaderMutation>,
    /// Removed from the request; never pseudo-headers or `host`.
    pub headers_to_remove: Vec<String>,
    /// Applied to the response the client gets.
    pub response_headers: Vec<HeaderMutation>,
    pub query_parameters_to_set: Vec<(String, String)>,
    pub query_parameters_to_remove: Vec<String>,
}

impl Allow {
    pub fn changes_query(&self) -> bool {
        !self.query_parameters_to_set.is_empty() || !self.query_parameters_to_remove.is_empty()
    }
}

/// One header change, with Envoy's `HeaderValueOption` semantics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderMutation {
    pub name: String,
    pub value: Vec<u8>,
    pub action: HeaderAction,
}

/// How a header is written, from `append_action` or the deprecated `append`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderAction {
    /// Replace every value of the header, or add it: `OVERWRITE_IF_EXISTS_OR_ADD`, `append: false`,
    /// and (as native) the default `APPEND_IF_EXISTS_OR_ADD`.
    Set,
    /// Add one more value beside any there: `append: true` on a response header, as native.
    Add,
    /// Join to the existing value with `,`: `append: true` on a request header. As native 1.40, a
    /// header the request does not have is not added.
    Append,
    /// Add only when absent (`ADD_IF_ABSENT`).
    AddIfAbsent,
    /// Replace only when present (`OVERWRITE_IF_EXISTS`).
    OverwriteIfExists,
}

/// A reply the filter sends the client itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalReply {
    pub status: u16,
    pub headers: Vec<HeaderMutation>,
    pub body: Vec<u8>,
    /// Response-code details for access logs: [`DETAILS_DENIED`], [`DETAILS_ERROR`],
    /// [`DETAILS_INVALID`], or what Envoy itself would have written.
    pub details: Cow<'static, str>,
}

/// Why no decision was had: one cause each, mapped to the failure mode in
/// [`Decision::into_verdict`] and to its counters in [`crate::stats::Stats::record`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckError {
    /// The host could not hand over what the check needs (the request's headers or body, the
    /// answer's bytes): `status` is the host's, or `None` when what it handed over is malformed.
    HostRead {
        what: &'static str,
        status: Option<u32>,
    },
    /// The host refused to start the call (an unknown cluster, say), with its status.
    Dispatch(u32),
    /// The call ended with a non-zero gRPC status: unreachable, reset, timed out, unimplemented.
    Grpc { status: u32, message: String },
    /// The HTTP call ended without an answer: unreachable, reset, timed out.
    HttpCall,
    /// The answer could not be read: not a CheckResponse, or a status that is no HTTP status.
    Undecodable(String),
    /// The chain's deadline (`timeout` of `steps`) passed before this step could start.
    DeadlineExceeded,
    /// The HTTP auth server answered with a 5xx status: its own failure, as native reads it.
    ServerError(u16),
    /// `with_request_body` is set but Envoy delivers no body to the filter: the Wasm PluginConfig
    /// lacks `allow_on_headers_stop_iteration: true`.
    BodyNotDelivered,
    /// The server answered `error_response`: its own failure, with an optional reply.
    ErrorResponse {
        status: Option<u16>,
        headers: Vec<HeaderMutation>,
        body: Vec<u8>,
    },
}

impl std::fmt::Display for CheckError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::HostRead {
                what,
                status: Some(status),
            } => write!(f, "cannot read {what} (host status {status})"),
            Self::HostRead { what, status: None } => write!(f, "the host's {what} is malformed"),
            Self::Dispatch(status) => write!(f, "the host refused the call (status {status})"),
            Self::Grpc { status, message } => write!(f, "gRPC status {status}: {message}"),
            Self::HttpCall => write!(f, "the HTTP call to the auth server got no answer"),
            Self::Undecodable(why) => write!(f, "the auth server's answer cannot be read: {why}"),
            Self::DeadlineExceeded => write!(f, "the steps' deadline passed"),
            Self::ServerError(status) => write!(f, "the HTTP auth server answered {status}"),
            Self::BodyNotDelivered => write!(
                f,
                "no request body arrived for with_request_body: set allow_on_headers_stop_iteration: true in the Wasm PluginConfig"
            ),
            Self::ErrorResponse { .. } => write!(f, "the auth server answered error_response"),
        }
    }
}

/// What the shell does with the request.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Let the request through after these changes.
    Continue(Allow),
    /// Answer the client; nothing goes upstream.
    Reply(LocalReply),
}

impl LocalReply {
    /// `max_denied_response_body_bytes`: cuts the body to `max` bytes; 0 leaves it whole.
    pub fn truncate_body(&mut self, max: u32) {
        if max > 0 {
            self.body.truncate(max as usize);
        }
    }
}

impl Answer {
    /// No decision could be had, and no metadata comes with that.
    pub fn error(error: CheckError) -> Self {
        Self {
            decision: Decision::Error(error),
            dynamic_metadata: Vec::new(),
        }
    }

    /// Decodes a CheckResponse; its changes are not reviewed yet (see [`review`]). An
    /// undecodable answer is an error, never a panic.
    pub fn decode(bytes: &[u8]) -> Self {
        match CheckResponse::decode(bytes) {
            Ok(response) => {
                let dynamic_metadata = response.dynamic_metadata.clone();
                let decision = Decision::from_response(response)
                    .unwrap_or_else(|why| Decision::Error(CheckError::Undecodable(why)));
                Self {
                    decision,
                    dynamic_metadata,
                }
            }
            Err(e) => Self::error(CheckError::Undecodable(e.to_string())),
        }
    }

    /// Decodes a CheckResponse and reviews its changes against `policy`.
    pub fn from_check_response(bytes: &[u8], policy: &MutationPolicy) -> Self {
        let mut answer = Self::decode(bytes);
        answer.decision = review(answer.decision, policy);
        answer
    }
}

impl Decision {
    fn from_response(response: CheckResponse) -> Result<Self, String> {
        let code = response.status.map_or(0, |s| s.code);
        match (code, response.http_response) {
            (_, Some(HttpResponse::ErrorResponse(error))) => error_response(error),
            (0, Some(HttpResponse::OkResponse(ok))) => Ok(Self::Allow(allow(ok))),
            (0, _) => Ok(Self::Allow(Allow::default())),
            (_, Some(HttpResponse::DeniedResponse(denied))) => deny(denied).map(Self::Deny),
            (_, _) => Ok(Self::Deny(LocalReply {
                status: 403,
                headers: Vec::new(),
                body: Vec::new(),
                details: DETAILS_DENIED.into(),
            })),
        }
    }

    /// Applies the failure mode: the one place an error becomes an answer or a pass.
    pub fn into_verdict(self, failure_mode: FailureMode) -> Verdict {
        match (self, failure_mode) {
            (Self::Allow(allow), _) => Verdict::Continue(allow),
            (Self::Deny(reply), _) => Verdict::Reply(reply),
            (Self::Invalid(invalid), _) => Verdict::Reply(invalid.reply),
            (Self::Error(_), FailureMode::Allow { add_header }) => {
                let mut allow = Allow::default();
                if add_header {
                    allow.request_headers.push(HeaderMutation {
                        name: FAILURE_MODE_ALLOWED_HEADER.to_owned(),
                        value: b"true".to_vec(),
                        action: HeaderAction::Set,
                    });
                }
                Verdict::Continue(allow)
            }
            (Self::Error(error), FailureMode::Deny { status_on_error }) => {
                let (status, headers, body) = match error {
                    CheckError::ErrorResponse {
                        status,
                        headers,
                        body,
                    } => (status.unwrap_or(status_on_error), headers, body),
                    _ => (status_on_error, Vec::new(), Vec::new()),
                };
                Verdict::Reply(LocalReply {
                    status,
                    headers,
                    body,
                    details: DETAILS_ERROR.into(),
                })
            }
        }
    }
}

fn allow(ok: response::OkHttpResponse) -> Allow {
    Allow {
        request_headers: mutations(ok.headers, REQUEST_HEADERS),
        headers_to_remove: {
            let mut names = ok.headers_to_remove;
            names
                .iter_mut()
                .for_each(|name| name.make_ascii_lowercase());
            names
        },
        response_headers: mutations(ok.response_headers_to_add, RESPONSE_HEADERS),
        query_parameters_to_set: ok
            .query_parameters_to_set
            .into_iter()
            .map(|p| (p.key, p.value))
            .collect(),
        query_parameters_to_remove: ok.query_parameters_to_remove,
    }
}

fn deny(denied: DeniedHttpResponse) -> Result<LocalReply, String> {
    let (status, headers, body) = reply_parts("denied_response", denied)?;
    Ok(LocalReply {
        status: status.unwrap_or(403),
        headers,
        body,
        details: DETAILS_DENIED.into(),
    })
}

fn error_response(error: DeniedHttpResponse) -> Result<Decision, String> {
    let (status, headers, body) = reply_parts("error_response", error)?;
    Ok(Decision::Error(CheckError::ErrorResponse {
        status,
        headers,
        body,
    }))
}

type ReplyParts = (Option<u16>, Vec<HeaderMutation>, Vec<u8>);

fn reply_parts(field: &str, response: DeniedHttpResponse) -> Result<ReplyParts, String> {
    let status = match response.status.map(|s| s.code) {
        None | Some(0) => None,
        Some(code @ 100..=599) => Some(code as u16),
        Some(code) => return Err(format!("{field}.status: {code} is not an HTTP status")),
    };
    // As native: a local reply takes the headers to set; those sent with `append: true` have
    // nothing to append to and are dropped.
    let mut headers = mutations(response.headers, REPLY_HEADERS);
    headers.retain(|h| h.action != HeaderAction::Append);
    Ok((status, headers, response.body.into_bytes()))
}

/// How one list of header options is read: what `append: true` and the default action mean.
#[derive(Clone, Copy)]
struct Reading {
    /// `append: true`: joined for request headers, a second entry for response headers.
    when_appended: HeaderAction,
    /// Neither `append` nor an `append_action` other than the default `APPEND_IF_EXISTS_OR_ADD`.
    by_default: HeaderAction,
}

/// Request headers: native 1.40 reads only the deprecated `append` here, and overwrites otherwise,
/// the default action included, so a client cannot smuggle a second value past the server's.
const REQUEST_HEADERS: Reading = Reading {
    when_appended: HeaderAction::Append,
    by_default: HeaderAction::Set,
};
/// Response headers: native honours `append_action` here, and the default adds.
const RESPONSE_HEADERS: Reading = Reading {
    when_appended: HeaderAction::Add,
    by_default: HeaderAction::Add,
};
/// A local reply's headers: native sets them; `append: true` ones are dropped by the caller.
const REPLY_HEADERS: Reading = Reading {
    when_appended: HeaderAction::Append,
    by_default: HeaderAction::Set,
};

/// Reads header options the way native ext_authz 1.40 does, with one difference: an
/// `append_action` a server set explicitly to `ADD_IF_ABSENT` or `OVERWRITE_IF_EXISTS` is honoured
/// on request headers too, where native overwrites regardless. Names are lower-cased; whether
/// they and their values may be written is [`review`]'s to say.
fn mutations(options: Vec<HeaderValueOption>, reading: Reading) -> Vec<HeaderMutation> {
    // A loop rather than `into_iter().map().collect()`, whose in-place specialisation costs
    // the module more than it saves here.
    let mut mutations = Vec::with_capacity(options.len());
    for option in options {
        let header = option.header.unwrap_or_default();
        let action = match (option.append, option.append_action) {
            (Some(append), _) if append.value => reading.when_appended,
            (Some(_), _) => HeaderAction::Set,
            (None, 0) => reading.by_default,
            (None, 1) => HeaderAction::AddIfAbsent,
            (None, 3) => HeaderAction::OverwriteIfExists,
            // OVERWRITE_IF_EXISTS_OR_ADD, and, as native, an action it does not know.
            (None, _) => HeaderAction::Set,
        };
        mutations.push(HeaderMutation {
            name: header.key.to_ascii_lowercase(),
            // As native: `value` only; a `raw_value` is not read.
            value: header.value.into_bytes(),
            action,
        });
    }
    mutations
}

#[cfg(test)]
mod tests;
