//! Route rules: which settings a request gets, since a wasm filter sees no per-route config.

pub mod matcher;
