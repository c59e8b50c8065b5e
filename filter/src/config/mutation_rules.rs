//! `decoder_header_mutation_rules` as written, and its validation.

use super::reader::message;
use serde::Deserialize;

use super::error::ConfigError;
use super::messages::RawRegexMatcher;
use crate::mutation_rules::HeaderMutationRules;
use crate::route::matcher::full_match_regex;

/// Native `envoy.config.common.mutation_rules.v3.HeaderMutationRules`.
#[derive(Debug, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RawHeaderMutationRules {
    /// Allow changes to `host`, `:authority`, `:method` and `:scheme`.
    #[serde(default, alias = "allowAllRouting")]
    pub allow_all_routing: bool,
    /// Allow changes to `x-envoy-*` headers.
    #[serde(default, alias = "allowEnvoy")]
    pub allow_envoy: bool,
    /// Disallow changes to pseudo-headers.
    #[serde(default, alias = "disallowSystem")]
    pub disallow_system: bool,
    /// Disallow every change that allow_expression does not allow.
    #[serde(default, alias = "disallowAll")]
    pub disallow_all: bool,
    /// Changes to matching headers are allowed, whatever else says.
    #[serde(default, alias = "allowExpression")]
    pub allow_expression: Option<RawRegexMatcher>,
    /// Changes to matching headers are disallowed, unless allow_expression allows them.
    #[serde(default, alias = "disallowExpression")]
    pub disallow_expression: Option<RawRegexMatcher>,
    /// A disallowed change refuses the whole answer (500) instead of being dropped.
    #[serde(default, alias = "disallowIsError")]
    pub disallow_is_error: bool,
}

pub(super) fn header_mutation_rules(
    field: &str,
    raw: RawHeaderMutationRules,
) -> Result<HeaderMutationRules, ConfigError> {
    let regex = |name: &str, matcher: Option<RawRegexMatcher>| {
        matcher
            .map(|m| full_match_regex(&m.regex))
            .transpose()
            .map_err(|reason| ConfigError::new(format!("{field}.{name}.regex"), reason))
    };
    Ok(HeaderMutationRules {
        allow_all_routing: raw.allow_all_routing,
        allow_envoy: raw.allow_envoy,
        disallow_system: raw.disallow_system,
        disallow_all: raw.disallow_all,
        allow_expression: regex("allow_expression", raw.allow_expression)?,
        disallow_expression: regex("disallow_expression", raw.disallow_expression)?,
        disallow_is_error: raw.disallow_is_error,
    })
}

message!(RawHeaderMutationRules {
    "allow_all_routing" => allow_all_routing,
    "allow_envoy" => allow_envoy,
    "disallow_system" => disallow_system,
    "disallow_all" => disallow_all,
    "allow_expression" => allow_expression,
    "disallow_expression" => disallow_expression,
    "disallow_is_error" => disallow_is_error,
});
