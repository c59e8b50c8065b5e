//! A gRPC answer's `dynamic_metadata`: handed on to the chain's later steps when it allows, and,
//! unless `enable_dynamic_metadata_ingestion` is false, made readable after this filter whatever
//! the answer, as native sets it.
//!
//! A wasm filter cannot write the stream's dynamic metadata; it writes filter state instead, as
//! JSON text, under `wasm.ext_authz.dynamic_metadata` (see the README).

use std::time::Duration;

use super::ExtAuthz;
use crate::decision::Decision;
use crate::host::{Host, LogLevel};
use crate::proto::structpb;

/// The property (filter state `wasm.ext_authz.dynamic_metadata`) that carries the servers'
/// `dynamic_metadata` on.
pub const DYNAMIC_METADATA_PROPERTY: &str = "ext_authz.dynamic_metadata";

/// Takes an answer's metadata: `elapsed` is how long its call took.
pub(super) fn take<H: Host>(
    stream: &mut ExtAuthz<H>,
    decision: &Decision,
    metadata: &[u8],
    elapsed: Duration,
) {
    let allowed = matches!(decision, Decision::Allow(_));
    if allowed {
        stream.chain.passthrough.extend_from_slice(metadata);
    }
    if !stream.plugin.config.dynamic_metadata_ingestion {
        return;
    }
    // What the steps so far handed on, with this answer's over it.
    let mut merged = stream.chain.passthrough.clone();
    if !allowed {
        merged.extend_from_slice(metadata);
    }
    let Some(mut object) = structpb::decode_struct(&merged) else {
        return stream.log(
            LogLevel::Warn,
            "dynamic_metadata is not a Struct; not handed on",
        );
    };
    if allowed {
        // As native: how long the allowing check took, in milliseconds.
        let millis = crate::stats::millis(elapsed);
        object.insert("ext_authz_duration".to_owned(), millis.into());
    }
    // `to_vec`, not the Value's `Display`: the module already has this serializer (the config
    // reader's), and `Display` would add two more (compact and pretty).
    let Ok(json) = serde_json::to_vec(&serde_json::Value::Object(object)) else {
        return stream.log(LogLevel::Warn, "dynamic_metadata cannot be written as JSON");
    };
    if let Err(status) = stream.host.set_property(DYNAMIC_METADATA_PROPERTY, &json) {
        stream.log(
            LogLevel::Warn,
            &format!("cannot hand on dynamic_metadata (host status {status})"),
        );
    }
}
