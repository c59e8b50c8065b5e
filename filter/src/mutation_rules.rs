//! Which header changes an auth server may make: native's `validate_mutations` and
//! `decoder_header_mutation_rules` (`envoy.config.common.mutation_rules.v3.HeaderMutationRules`).
//!
//! The rules were read off native 1.40 by sending the same answers through both filters
//! (`host-tests/tests/mutation_rules.rs`): which headers each rule lets through, drops, or turns
//! into a 500, and which checks apply to values.

use crate::config::is_header_value;
use crate::route::matcher::Regex;

/// `decoder_header_mutation_rules`, validated.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HeaderMutationRules {
    /// Allow `host`, `:authority`, `:method` and `:scheme`.
    pub allow_all_routing: bool,
    /// Allow `x-envoy-*`.
    pub allow_envoy: bool,
    /// Disallow every pseudo-header (and, unless `allow_all_routing`, `host`).
    pub disallow_system: bool,
    /// Disallow everything `allow_expression` does not allow.
    pub disallow_all: bool,
    /// Allowed whatever else says: checked first.
    pub allow_expression: Option<Regex>,
    /// Disallowed unless `allow_expression` allows.
    pub disallow_expression: Option<Regex>,
    /// A disallowed change fails the check (500) instead of being dropped.
    pub disallow_is_error: bool,
}

/// How an answer's changes are checked: native's `validate_mutations` and
/// `decoder_header_mutation_rules`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MutationPolicy {
    /// `validate_mutations`: an invalid header or query change refuses the whole answer (500).
    pub validate: bool,
    pub rules: Option<HeaderMutationRules>,
}

/// What a change is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// Set, add or append.
    Write,
    Remove,
}

/// What happens to one change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Apply,
    /// Dropped silently.
    Ignore,
    /// The whole answer is refused.
    Fail,
}

impl HeaderMutationRules {
    /// The outcome of one change to a request header. `name` is lower-case.
    pub fn check(&self, operation: Operation, name: &str, value: &[u8]) -> Outcome {
        let allowed = match operation {
            // Once there are rules, these are never removed (without them they are skipped).
            Operation::Remove if name.starts_with(':') || name == "host" => false,
            Operation::Write if !is_header_value(value) => false,
            _ => self.allows(name),
        };
        match (allowed, self.disallow_is_error) {
            (true, _) => Outcome::Apply,
            (false, false) => Outcome::Ignore,
            (false, true) => Outcome::Fail,
        }
    }

    fn allows(&self, name: &str) -> bool {
        // As native: `disallow_expression` first, over `allow_expression` when both match.
        if self
            .disallow_expression
            .as_ref()
            .is_some_and(|r| r.is_match(name))
        {
            return false;
        }
        if self
            .allow_expression
            .as_ref()
            .is_some_and(|r| r.is_match(name))
        {
            return true;
        }
        if self.disallow_all {
            return false;
        }
        // `host` is a routing header, not a system one: `disallow_system` leaves it to
        // `allow_all_routing`, where it does not leave `:authority`.
        if name == "host" {
            return self.allow_all_routing;
        }
        if name.starts_with(':') {
            if self.disallow_system {
                return false;
            }
            return match name {
                ":authority" | ":method" | ":scheme" => self.allow_all_routing,
                _ => true,
            };
        }
        if name.starts_with("x-envoy") {
            return self.allow_envoy;
        }
        true
    }
}

/// A query parameter key or value `validate_mutations` accepts: what needs no percent-encoding.
pub fn is_query_text(text: &str) -> bool {
    text.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"*-._".contains(&b))
}

#[cfg(test)]
mod tests;
