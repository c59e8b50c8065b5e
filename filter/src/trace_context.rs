//! The request's trace context, handed to the auth server as a child span's: W3C `traceparent`
//! (with `tracestate`) and B3, multi-header and single `b3`. The child keeps the trace id and the
//! sampling decision, gets a new span id, and names the request's span as its parent, so the
//! server's spans join the request's trace. A malformed value is not passed on.
//!
//! Native ext_authz does this only with a tracer configured in the connection manager; a wasm
//! filter cannot read that, so this is on unless `propagate_trace_context` is false.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;

/// The header names this module writes, and so replaces in what goes to the auth server.
pub const NAMES: &[&str] = &[
    TRACEPARENT,
    TRACESTATE,
    B3_TRACE_ID,
    B3_SPAN_ID,
    B3_PARENT_SPAN_ID,
    B3_SAMPLED,
    B3_FLAGS,
    B3,
];

const TRACEPARENT: &str = "traceparent";
const TRACESTATE: &str = "tracestate";
const B3_TRACE_ID: &str = "x-b3-traceid";
const B3_SPAN_ID: &str = "x-b3-spanid";
const B3_PARENT_SPAN_ID: &str = "x-b3-parentspanid";
const B3_SAMPLED: &str = "x-b3-sampled";
const B3_FLAGS: &str = "x-b3-flags";
const B3: &str = "b3";

/// The child context's headers for a request with `headers` (lower-case names), its span id
/// `span_id`; empty when the request carries none (or only malformed ones).
pub fn child(
    headers: &[(&[u8], &[u8])],
    span_id: impl FnOnce() -> u64,
) -> Vec<(&'static str, Vec<u8>)> {
    // Most requests carry none: one look, no span id drawn.
    let traced = |name: &[u8]| NAMES.iter().any(|n| n.as_bytes() == name);
    if !headers.iter().any(|(name, _)| traced(name)) {
        return Vec::new();
    }
    let span = hex16(span_id());
    let mut out = Vec::new();
    if let Some(parent) = one(headers, TRACEPARENT).and_then(TraceParent::parse) {
        out.push((TRACEPARENT, parent.child(&span)));
        // Only beside a valid traceparent, as W3C says; repeats are one list.
        let state = joined(headers, TRACESTATE);
        if !state.is_empty() && state.iter().all(|b| (0x20..0x7f).contains(b)) {
            out.push((TRACESTATE, state));
        }
    }
    out.extend(b3_multi(headers, &span));
    if let Some(single) = one(headers, B3).and_then(|v| b3_single(v, &span)) {
        out.push((B3, single));
    }
    out
}

/// A fresh span id, never 0 (which W3C and B3 read as none): SipHash of a counter under the keys
/// std draws from WASI `random_get` for each thread's first `RandomState`.
pub fn new_span_id() -> u64 {
    thread_local! {
        static KEYS: RandomState = RandomState::new();
        static COUNT: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
    }
    let n = COUNT.with(|c| {
        let n = c.get().wrapping_add(1);
        c.set(n);
        n
    });
    KEYS.with(|keys| keys.hash_one(n)).max(1)
}

/// `version-traceid-parentid-flags`, as W3C Trace Context level 1 reads it.
struct TraceParent<'a> {
    trace_id: &'a [u8],
    flags: &'a [u8],
}

impl<'a> TraceParent<'a> {
    fn parse(value: &'a [u8]) -> Option<Self> {
        // A later version may add fields after these, behind a `-`; `ff` is invalid.
        let head = value.get(..55)?;
        let version = &head[..2];
        let fits = match version {
            b"00" => value.len() == 55,
            b"ff" => false,
            _ => value.len() == 55 || value.get(55) == Some(&b'-'),
        };
        let dashes = head[2] == b'-' && head[35] == b'-' && head[52] == b'-';
        let (trace_id, parent_id, flags) = (&head[3..35], &head[36..52], &head[53..55]);
        (fits
            && dashes
            && [version, trace_id, parent_id, flags]
                .iter()
                .all(|f| lower_hex(f))
            && !zero(trace_id)
            && !zero(parent_id))
        .then_some(Self { trace_id, flags })
    }

    /// The child's `traceparent`: its parent-id field is the child's own span id.
    fn child(&self, span: &[u8]) -> Vec<u8> {
        [b"00-", self.trace_id, b"-", span, b"-", self.flags].concat()
    }
}

/// The multi-header B3 child: trace id kept, the request's span as parent, sampling kept. A
/// request with only a sampling decision hands that on; one with a malformed id, nothing.
fn b3_multi(headers: &[(&[u8], &[u8])], span: &[u8]) -> Vec<(&'static str, Vec<u8>)> {
    let sampled = one(headers, B3_SAMPLED).map(|v| match v {
        b"1" | b"true" => Some(b"1"),
        b"0" | b"false" => Some(b"0"),
        _ => None,
    });
    let flags = one(headers, B3_FLAGS).map(|v| (v == b"1").then_some(b"1"));
    if sampled == Some(None) || flags == Some(None) {
        return Vec::new();
    }
    let (trace_id, span_id) = (one(headers, B3_TRACE_ID), one(headers, B3_SPAN_ID));
    let mut child = Vec::new();
    match (trace_id, span_id) {
        (None, None) => {}
        (Some(trace_id), Some(span_id)) if trace_id_ok(trace_id) && span_id_ok(span_id) => {
            child.push((B3_TRACE_ID, trace_id.to_vec()));
            child.push((B3_SPAN_ID, span.to_vec()));
            child.push((B3_PARENT_SPAN_ID, span_id.to_vec()));
        }
        _ => return Vec::new(),
    }
    // The sampling decision after the ids (or alone), written out rather than chained
    // iterators: fewer bytes of module.
    if let Some(sampled) = sampled.flatten() {
        child.push((B3_SAMPLED, sampled.to_vec()));
    }
    if let Some(flags) = flags.flatten() {
        child.push((B3_FLAGS, flags.to_vec()));
    }
    child
}

/// The single-header B3 child: `{trace}-{span}[-{sampling}[-{parent}]]`, or a lone sampling
/// decision, which goes as it is.
fn b3_single(value: &[u8], span: &[u8]) -> Option<Vec<u8>> {
    let sampling_ok = |s: &[u8]| matches!(s, b"0" | b"1" | b"d");
    if sampling_ok(value) {
        return Some(value.to_vec());
    }
    let fields: Vec<&[u8]> = value.split(|&b| b == b'-').collect();
    let (trace_id, span_id, sampling) = match fields[..] {
        [t, s] => (t, s, None),
        [t, s, d] | [t, s, d, _] => (t, s, Some(d)),
        _ => return None,
    };
    let parent_ok = fields.get(3).is_none_or(|p| span_id_ok(p));
    if !(trace_id_ok(trace_id) && span_id_ok(span_id) && parent_ok)
        || sampling.is_some_and(|d| !sampling_ok(d))
    {
        return None;
    }
    Some(match sampling {
        // The parent field needs the sampling field before it.
        Some(d) => [trace_id, b"-", span, b"-", d, b"-", span_id].concat(),
        None => [trace_id, b"-", span].concat(),
    })
}

fn trace_id_ok(id: &[u8]) -> bool {
    matches!(id.len(), 16 | 32) && lower_hex(id) && !zero(id)
}

fn span_id_ok(id: &[u8]) -> bool {
    id.len() == 16 && lower_hex(id) && !zero(id)
}

fn lower_hex(field: &[u8]) -> bool {
    field
        .iter()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
}

fn zero(field: &[u8]) -> bool {
    field.iter().all(|&b| b == b'0')
}

/// `n` as 16 lower-case hex digits (what `{:016x}` writes, without the formatter).
fn hex16(n: u64) -> Vec<u8> {
    (0..16)
        .rev()
        .map(|nibble| b"0123456789abcdef"[(n >> (nibble * 4)) as usize & 0xf])
        .collect()
}

/// The value of a header that must appear once; `None` when absent or repeated.
fn one<'a>(headers: &[(&[u8], &'a [u8])], name: &str) -> Option<&'a [u8]> {
    let mut values = headers
        .iter()
        .filter(|(k, _)| *k == name.as_bytes())
        .map(|(_, v)| *v);
    let first = values.next()?;
    values.next().is_none().then_some(first)
}

fn joined(headers: &[(&[u8], &[u8])], name: &str) -> Vec<u8> {
    let values: Vec<&[u8]> = headers
        .iter()
        .filter(|(k, _)| *k == name.as_bytes())
        .map(|(_, v)| *v)
        .collect();
    values.join(&b","[..])
}

#[cfg(test)]
mod tests;
