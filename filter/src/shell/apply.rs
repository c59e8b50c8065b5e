//! Applying a verdict to the stream whose context is in effect: header changes and resume, or a
//! local reply. Used by the request's own context and by the root's tick acting on its behalf.

use super::host::{self, Headers, LogLevel};
use crate::decision::{Allow, HeaderAction, HeaderMutation, LocalReply};
use crate::{header_map, query};

/// Logs a line tagged with the request's context id.
pub fn log(context_id: u32, level: LogLevel, message: &str) {
    host::log(level, &format!("ext_authz #{context_id}: {message}"));
}

/// Makes an allowing server's changes to the request. The response-header changes are returned,
/// for when the response comes.
pub fn allow(context_id: u32, allow: Allow) -> Vec<HeaderMutation> {
    for mutation in &allow.request_headers {
        mutate(context_id, Headers::Request, mutation);
    }
    for name in &allow.headers_to_remove {
        if let Err(status) = host::remove_header(Headers::Request, name) {
            log(
                context_id,
                LogLevel::Warn,
                &format!("cannot remove {name:?} (host status {status})"),
            );
        }
    }
    if allow.changes_query() {
        rewrite_query(context_id, &allow);
    }
    allow.response_headers
}

fn rewrite_query(context_id: u32, allow: &Allow) {
    let path = match host::header(Headers::Request, ":path") {
        Ok(Some(path)) => path,
        _ => {
            return log(
                context_id,
                LogLevel::Warn,
                "cannot read :path to rewrite its query",
            )
        }
    };
    let Ok(path) = String::from_utf8(path) else {
        return log(
            context_id,
            LogLevel::Warn,
            "the :path is not UTF-8; its query is left as it is",
        );
    };
    let rewritten = query::rewrite(
        &path,
        &allow.query_parameters_to_set,
        &allow.query_parameters_to_remove,
    );
    if let Err(status) = host::set_header(Headers::Request, ":path", rewritten.as_bytes()) {
        log(
            context_id,
            LogLevel::Warn,
            &format!("cannot set :path (host status {status})"),
        );
    }
}

/// Applies one header change with `HeaderValueOption` semantics.
pub fn mutate(context_id: u32, headers: Headers, mutation: &HeaderMutation) {
    let HeaderMutation {
        name,
        value,
        action,
    } = mutation;
    let existing = || host::header(headers, name).ok().flatten();
    let result = match action {
        HeaderAction::Set => host::set_header(headers, name, value),
        HeaderAction::Add => host::add_header(headers, name, value),
        HeaderAction::Append => match existing() {
            Some(mut joined) => {
                joined.push(b',');
                joined.extend_from_slice(value);
                host::set_header(headers, name, &joined)
            }
            None => Ok(()),
        },
        HeaderAction::AddIfAbsent => match existing() {
            Some(_) => Ok(()),
            None => host::add_header(headers, name, value),
        },
        HeaderAction::OverwriteIfExists => match existing() {
            Some(_) => host::set_header(headers, name, value),
            None => Ok(()),
        },
    };
    if let Err(status) = result {
        log(
            context_id,
            LogLevel::Warn,
            &format!("cannot write header {name:?} (host status {status})"),
        );
    }
}

/// Answers the client.
pub fn reply(context_id: u32, reply: &LocalReply) {
    let headers: Vec<(&str, &[u8])> = reply
        .headers
        .iter()
        .map(|h| (h.name.as_str(), h.value.as_slice()))
        .collect();
    let headers = header_map::serialize(&headers);
    if let Err(status) =
        host::send_local_response(reply.status, reply.details, &reply.body, &headers)
    {
        // The request stays held: failing closed beats letting it through unchecked.
        log(
            context_id,
            LogLevel::Error,
            &format!("cannot send the local reply (host status {status})"),
        );
    }
}

/// Lets a held request go on.
pub fn resume(context_id: u32) {
    if let Err(status) = host::resume_request() {
        log(
            context_id,
            LogLevel::Error,
            &format!("cannot resume the request (host status {status})"),
        );
    }
}
