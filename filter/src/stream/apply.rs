//! Making a decision's changes on the stream through the [`Host`]: the request's headers and
//! query, the response's headers, a local reply, and resuming. A change the host refuses is
//! logged; the request is never let through because of one.

use crate::decision::{Allow, HeaderAction, HeaderMutation, LocalReply};
use crate::host::{Headers, Host, HostStatus, LogLevel, Reply};
use crate::{header_map, query};

/// Logs a line tagged with the request's context id.
pub fn log(host: &impl Host, context_id: u32, level: LogLevel, message: &str) {
    host.log(level, &format!("ext_authz #{context_id}: {message}"));
}

/// Makes an allowing server's changes to the request. The response-header changes are returned,
/// for when the response comes.
pub fn allow(host: &impl Host, context_id: u32, allow: Allow) -> Vec<HeaderMutation> {
    // Native's order: every header to set first, then the appends (which may append to a value
    // the same answer set).
    in_two_passes(
        host,
        context_id,
        Headers::Request,
        &allow.request_headers,
        |action| action == HeaderAction::Append,
    );
    for name in &allow.headers_to_remove {
        if let Err(status) = host.remove_header(Headers::Request, name) {
            log(
                host,
                context_id,
                LogLevel::Warn,
                &format!("cannot remove {name:?} (host status {status})"),
            );
        }
    }
    if allow.changes_query() {
        rewrite_query(host, context_id, &allow);
    }
    allow.response_headers
}

fn rewrite_query(host: &impl Host, context_id: u32, allow: &Allow) {
    let path = match host.header(Headers::Request, ":path") {
        Ok(Some(path)) => path,
        _ => {
            return log(
                host,
                context_id,
                LogLevel::Warn,
                "cannot read :path to rewrite its query",
            )
        }
    };
    let Ok(path) = String::from_utf8(path) else {
        return log(
            host,
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
    if let Err(status) = host.set_header(Headers::Request, ":path", rewritten.as_bytes()) {
        log(
            host,
            context_id,
            LogLevel::Warn,
            &format!("cannot set :path (host status {status})"),
        );
    }
}

/// Changes the response headers in native's order: the values to add (`append: true`) first, then
/// the headers to set, each replacing every value before it.
pub fn response_headers(host: &impl Host, context_id: u32, mutations: &[HeaderMutation]) {
    in_two_passes(host, context_id, Headers::Response, mutations, |action| {
        action != HeaderAction::Add
    });
}

/// Makes the changes whose action does not go last, then those that do, each group in its order.
/// Two passes over the list rather than a partition: no copies, and one function for both lists.
fn in_two_passes(
    host: &impl Host,
    context_id: u32,
    headers: Headers,
    mutations: &[HeaderMutation],
    goes_last: fn(HeaderAction) -> bool,
) {
    for last in [false, true] {
        for mutation in mutations {
            if goes_last(mutation.action) == last {
                mutate(host, context_id, headers, mutation);
            }
        }
    }
}

/// Applies one header change with `HeaderValueOption` semantics.
pub fn mutate(host: &impl Host, context_id: u32, headers: Headers, mutation: &HeaderMutation) {
    let HeaderMutation {
        name,
        value,
        action,
    } = mutation;
    let existing = || host.header(headers, name).ok().flatten();
    let result = match action {
        HeaderAction::Set => host.set_header(headers, name, value),
        HeaderAction::Add => host.add_header(headers, name, value),
        HeaderAction::Append => append(host, headers, name, value),
        HeaderAction::AddIfAbsent => match existing() {
            Some(_) => Ok(()),
            None => host.add_header(headers, name, value),
        },
        HeaderAction::OverwriteIfExists => match existing() {
            Some(_) => host.set_header(headers, name, value),
            None => Ok(()),
        },
    };
    if let Err(status) = result {
        log(
            host,
            context_id,
            LogLevel::Warn,
            &format!("cannot write header {name:?} (host status {status})"),
        );
    }
}

/// Appends to a header as Envoy's `appendCopy`: to its first value, joined with `,` (`; ` for
/// `cookie`, none after an empty value), keeping any further values as they are; nothing when the header is absent.
fn append(host: &impl Host, headers: Headers, name: &str, value: &[u8]) -> Result<(), HostStatus> {
    let map = host.header_map(headers)?;
    let values: Vec<&[u8]> = header_map::parse(&map)
        .unwrap_or_default()
        .into_iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case(name.as_bytes()))
        .map(|(_, v)| v)
        .collect();
    // Nothing to append to, or nothing to append: as Envoy, no change.
    let (Some((first, rest)), false) = (values.split_first(), value.is_empty()) else {
        return Ok(());
    };
    let mut joined = first.to_vec();
    if !joined.is_empty() {
        // Envoy joins cookies with "; ", everything else with ",".
        let delimiter: &[u8] = if name.eq_ignore_ascii_case("cookie") {
            b"; "
        } else {
            b","
        };
        joined.extend_from_slice(delimiter);
    }
    joined.extend_from_slice(value);
    host.set_header(headers, name, &joined)?;
    for other in rest {
        host.add_header(headers, name, other)?;
    }
    Ok(())
}

/// Answers the client.
pub fn reply(host: &impl Host, context_id: u32, reply: &LocalReply) {
    let headers: Vec<(&str, &[u8])> = reply
        .headers
        .iter()
        .map(|h| (h.name.as_str(), h.value.as_slice()))
        .collect();
    let sent = host.send_local_response(Reply {
        status: reply.status,
        details: &reply.details,
        body: &reply.body,
        headers: &headers,
    });
    if let Err(status) = sent {
        // The request stays held: failing closed beats letting it through unchecked.
        log(
            host,
            context_id,
            LogLevel::Error,
            &format!("cannot send the local reply (host status {status})"),
        );
    }
}

/// Lets a held request go on.
pub fn resume(host: &impl Host, context_id: u32) {
    if let Err(status) = host.resume_request() {
        log(
            host,
            context_id,
            LogLevel::Error,
            &format!("cannot resume the request (host status {status})"),
        );
    }
}
