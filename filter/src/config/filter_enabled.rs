//! `filter_enabled` and `deny_at_disable`: which share of requests is checked, and what happens to
//! the others. Native reads both from runtime first and takes their `default_value` when the
//! runtime has no value; a wasm filter cannot read runtime, so the `default_value` is what applies
//! (as on an Envoy with no runtime override). A `runtime_key` is accepted and not read.

use super::reader::{message, FromJson, Reader};
use serde::Deserialize;

use super::error::ConfigError;

/// Native `envoy.config.core.v3.RuntimeFractionalPercent`.
#[derive(Debug, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RawRuntimeFractionalPercent {
    /// The share of requests checked.
    #[serde(alias = "defaultValue")]
    pub default_value: RawFractionalPercent,
    /// Accepted and not read: a wasm filter cannot read runtime.
    #[serde(default, alias = "runtimeKey")]
    #[allow(dead_code)]
    pub runtime_key: String,
}

/// Native `envoy.type.v3.FractionalPercent`.
#[derive(Debug, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RawFractionalPercent {
    #[serde(default)]
    pub numerator: u32,
    /// Default HUNDRED.
    #[serde(default)]
    pub denominator: RawDenominator,
}

#[derive(Debug, Default, Clone, Copy, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RawDenominator {
    #[default]
    Hundred,
    TenThousand,
    Million,
}

impl FromJson for RawDenominator {
    fn from_json(value: &serde_json::Value, reader: &mut Reader) -> Option<Self> {
        const NAMES: &[&str] = &["HUNDRED", "TEN_THOUSAND", "MILLION"];
        match reader.enumerated(value, NAMES)? {
            0 => Some(Self::Hundred),
            1 => Some(Self::TenThousand),
            _ => Some(Self::Million),
        }
    }
}

/// Native `envoy.config.core.v3.RuntimeFeatureFlag`.
#[derive(Debug, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RawRuntimeFeatureFlag {
    #[serde(alias = "defaultValue")]
    pub default_value: bool,
    /// Accepted and not read: a wasm filter cannot read runtime.
    #[serde(default, alias = "runtimeKey")]
    pub runtime_key: String,
}

/// The share of requests checked: `numerator` out of `denominator`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FilterEnabled {
    pub numerator: u32,
    pub denominator: u32,
}

impl FilterEnabled {
    /// Every request: what an unset `filter_enabled` means.
    pub const ALWAYS: Self = Self {
        numerator: 1,
        denominator: 1,
    };

    /// Whether a request with this random draw is checked, as Envoy evaluates a fractional
    /// percent: the draw modulo the denominator below the numerator.
    pub fn enabled(&self, random: u64) -> bool {
        self.numerator >= self.denominator
            || random % u64::from(self.denominator) < u64::from(self.numerator)
    }

    /// Whether sampling can turn a request away, so that a draw is needed at all.
    pub fn samples(&self) -> bool {
        self.numerator < self.denominator
    }
}

pub(super) fn filter_enabled(
    raw: Option<RawRuntimeFractionalPercent>,
) -> Result<FilterEnabled, ConfigError> {
    let Some(raw) = raw else {
        return Ok(FilterEnabled::ALWAYS);
    };
    let denominator = match raw.default_value.denominator {
        RawDenominator::Hundred => 100,
        RawDenominator::TenThousand => 10_000,
        RawDenominator::Million => 1_000_000,
    };
    Ok(FilterEnabled {
        numerator: raw.default_value.numerator,
        denominator,
    })
}

pub(super) fn deny_at_disable(raw: Option<RawRuntimeFeatureFlag>) -> Result<bool, ConfigError> {
    match raw {
        None => Ok(false),
        // As native's proto validation: a feature flag names its runtime key.
        Some(flag) if flag.runtime_key.is_empty() => Err(ConfigError::new(
            "deny_at_disable.runtime_key",
            "must not be empty (it is not read: a wasm filter cannot read runtime)",
        )),
        Some(flag) => Ok(flag.default_value),
    }
}

message!(RawRuntimeFractionalPercent {
    "default_value" => default_value required,
    "runtime_key" => runtime_key,
});

message!(RawFractionalPercent {
    "numerator" => numerator,
    "denominator" => denominator,
});

message!(RawRuntimeFeatureFlag {
    "default_value" => default_value required,
    "runtime_key" => runtime_key,
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fraction_is_evaluated_as_envoy_does() {
        let half = FilterEnabled {
            numerator: 50,
            denominator: 100,
        };
        assert!(half.enabled(49));
        assert!(!half.enabled(50));
        assert!(half.enabled(149));
        let none = FilterEnabled {
            numerator: 0,
            denominator: 100,
        };
        assert!((0..1000).all(|r| !none.enabled(r)));
        assert!((0..1000).all(|r| FilterEnabled::ALWAYS.enabled(r)));
        let over = FilterEnabled {
            numerator: 200,
            denominator: 100,
        };
        assert!(!over.samples() && over.enabled(99));
    }
}

#[cfg(test)]
mod config_tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::FilterEnabled;
    use crate::config::Config;

    const SERVICE: &str = r#""grpc_service": {"envoy_grpc": {"cluster_name": "authz"}}"#;

    fn parse(extra: &str) -> Result<Config, crate::config::ConfigError> {
        Config::parse(format!("{{{SERVICE}, {extra}}}").as_bytes())
    }

    #[test]
    fn the_default_values_apply_and_the_runtime_keys_are_not_read() {
        let config = parse(
            r#""filter_enabled": {"default_value": {"numerator": 25, "denominator": "TEN_THOUSAND"}, "runtime_key": "authz.enabled"},
               "denyAtDisable": {"defaultValue": true, "runtimeKey": "authz.deny"},
               "status_on_error": {"code": 503}"#,
        )
        .unwrap();
        assert_eq!(
            config.filter_enabled,
            FilterEnabled {
                numerator: 25,
                denominator: 10_000
            }
        );
        assert_eq!(config.deny_at_disable, Some(503));
        let hundred = parse(r#""filterEnabled": {"defaultValue": {"numerator": 100}}"#).unwrap();
        assert!(!hundred.filter_enabled.samples());
        let off = parse(r#""deny_at_disable": {"default_value": false, "runtime_key": "k"}"#);
        assert_eq!(off.unwrap().deny_at_disable, None);
    }

    #[test]
    fn a_feature_flag_names_its_runtime_key_and_a_percent_its_default() {
        let error = parse(r#""deny_at_disable": {"default_value": true}"#).unwrap_err();
        assert_eq!(error.field, "deny_at_disable.runtime_key");
        assert!(parse(r#""filter_enabled": {"runtime_key": "k"}"#).is_err());
        assert!(
            parse(r#""filter_enabled": {"default_value": {"denominator": "THOUSAND"}}"#).is_err()
        );
    }

    #[test]
    fn max_request_headers_kb_takes_envoys_range() {
        assert_eq!(
            parse(r#""max_request_headers_kb": 96"#)
                .unwrap()
                .max_request_headers_bytes,
            96 * 1024
        );
        for kb in [0, 8193] {
            let error = parse(&format!(r#""max_request_headers_kb": {kb}"#)).unwrap_err();
            assert_eq!(error.field, "max_request_headers_kb");
        }
    }
}
