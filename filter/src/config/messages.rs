//! The shared Envoy message types the configuration is built of: string and regex matchers,
//! `HeaderValue`, `BufferSettings` (`with_request_body`), and what a header name or value may hold.
//! A leaf: every section above reads them, and they read nothing of the configuration but the error.

use super::reader::message;
use serde::Deserialize;

use super::error::ConfigError;
use crate::route::matcher::{full_match_regex, Regex, StringMatch, StringMatchKind};

/// Envoy's RegexMatcher: RE2 syntax, matched against the whole string.
#[derive(Debug, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RawRegexMatcher {
    pub regex: String,
    /// Accepted as native configs carry it; it selects nothing here.
    #[serde(default, rename = "google_re2", alias = "googleRe2")]
    pub _google_re2: Option<serde_json::Value>,
}

#[derive(Debug, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RawStringMatcher {
    pub exact: Option<String>,
    pub prefix: Option<String>,
    pub suffix: Option<String>,
    pub contains: Option<String>,
    #[serde(alias = "safeRegex")]
    pub safe_regex: Option<RawRegexMatcher>,
    #[serde(default, alias = "ignoreCase")]
    pub ignore_case: bool,
}

pub(super) fn regex_field(field: &str, pattern: &str) -> Result<Regex, ConfigError> {
    full_match_regex(pattern).map_err(|reason| ConfigError::new(field, reason))
}

pub(super) fn string_match(field: &str, raw: RawStringMatcher) -> Result<StringMatch, ConfigError> {
    let mut kinds = Vec::new();
    if let Some(s) = raw.exact {
        kinds.push(StringMatchKind::Exact(s));
    }
    if let Some(s) = raw.prefix {
        kinds.push(StringMatchKind::Prefix(s));
    }
    if let Some(s) = raw.suffix {
        kinds.push(StringMatchKind::Suffix(s));
    }
    if let Some(s) = raw.contains {
        kinds.push(StringMatchKind::Contains(s));
    }
    if let Some(regex) = raw.safe_regex {
        kinds.push(StringMatchKind::Regex(regex_field(
            &format!("{field}.safe_regex"),
            &regex.regex,
        )?));
    }
    match (kinds.pop(), kinds.is_empty()) {
        (Some(kind), true) => Ok(StringMatch {
            kind,
            ignore_case: raw.ignore_case,
        }),
        _ => Err(ConfigError::new(
            field,
            "takes exactly one of exact, prefix, suffix, contains and safe_regex",
        )),
    }
}

/// Envoy's ListStringMatcher.
#[derive(Debug, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RawListStringMatcher {
    pub patterns: Vec<RawStringMatcher>,
}

/// Envoy's ListStringMatcher, validated; `None` when unset.
pub fn list_string_matcher(
    field: &str,
    raw: Option<RawListStringMatcher>,
) -> Result<Option<Vec<StringMatch>>, ConfigError> {
    raw.map(|list| {
        list.patterns
            .into_iter()
            .enumerate()
            .map(|(i, p)| string_match(&format!("{field}.patterns[{i}]"), p))
            .collect()
    })
    .transpose()
}

/// Native `envoy.config.core.v3.HeaderValue`.
#[derive(Debug, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RawHeaderValue {
    #[cfg_attr(
        feature = "schema",
        schemars(pattern(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$"))
    )]
    pub key: String,
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(pattern(r"^[^\u0000\r\n]*$")))]
    pub value: String,
}

/// A list of `HeaderValue`s to send as they are: each key a header name but no pseudo-header,
/// lower-cased; each value one Envoy accepts. `not_a_key` says what a bad key is not.
pub(super) fn header_values(
    field: &str,
    raw: Vec<RawHeaderValue>,
    not_a_key: &str,
) -> Result<Vec<(String, String)>, ConfigError> {
    let mut headers = Vec::with_capacity(raw.len());
    for (i, header) in raw.into_iter().enumerate() {
        let at = format!("{field}[{i}]");
        if !is_header_name(header.key.as_bytes()) || header.key.starts_with(':') {
            return Err(ConfigError::new(
                format!("{at}.key"),
                format!("{:?} {not_a_key}", header.key),
            ));
        }
        if !is_header_value(header.value.as_bytes()) {
            return Err(ConfigError::new(
                format!("{at}.value"),
                "must not contain NUL, CR or LF",
            ));
        }
        headers.push((header.key.to_ascii_lowercase(), header.value));
    }
    Ok(headers)
}

/// `with_request_body`, as native's `BufferSettings`.
#[derive(Debug, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RawWithRequestBody {
    /// The most body bytes sent to the auth server; more gets 413 unless allow_partial_message.
    #[serde(alias = "maxRequestBytes")]
    pub max_request_bytes: u32,
    /// Over max_request_bytes, send the first max_request_bytes instead of answering 413.
    #[serde(default, alias = "allowPartialMessage")]
    pub allow_partial_message: bool,
    /// Send the body as `raw_body` bytes instead of the `body` string.
    #[serde(default, alias = "packAsBytes")]
    pub pack_as_bytes: bool,
}

/// How much of the request body the auth server gets, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WithRequestBody {
    pub max_request_bytes: u32,
    /// Over the limit: send the first `max_request_bytes` (true) or answer 413 (false).
    pub allow_partial_message: bool,
    /// `raw_body` bytes (true) or the `body` string (false).
    pub pack_as_bytes: bool,
}

pub(super) fn with_request_body(
    field: &str,
    body: RawWithRequestBody,
) -> Result<WithRequestBody, ConfigError> {
    if body.max_request_bytes == 0 {
        return Err(ConfigError::new(
            format!("{field}.max_request_bytes"),
            "must be greater than 0",
        ));
    }
    Ok(WithRequestBody {
        max_request_bytes: body.max_request_bytes,
        allow_partial_message: body.allow_partial_message,
        pack_as_bytes: body.pack_as_bytes,
    })
}

/// An HTTP header name: RFC 7230 token characters.
pub fn is_header_name(name: &[u8]) -> bool {
    !name.is_empty()
        && name.iter().enumerate().all(|(i, &b)| {
            (i == 0 && b == b':') || b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
        })
}

/// An HTTP header value Envoy accepts (as `validate_mutations` checks one): no control byte but
/// tab, so no NUL, CR or LF, and no DEL. Bytes from 0x80 up (UTF-8) and spaces anywhere are fine.
pub fn is_header_value(value: &[u8]) -> bool {
    value
        .iter()
        .all(|&b| b == b'\t' || (b >= 0x20 && b != 0x7f))
}

message!(RawRegexMatcher {
    "regex" => regex required,
    "google_re2" => _google_re2,
});

message!(RawStringMatcher {
    "exact" => exact,
    "prefix" => prefix,
    "suffix" => suffix,
    "contains" => contains,
    "safe_regex" => safe_regex,
    "ignore_case" => ignore_case,
});

message!(RawListStringMatcher {
    "patterns" => patterns required,
});

message!(RawHeaderValue {
    "key" => key required,
    "value" => value,
});

message!(RawWithRequestBody {
    "max_request_bytes" => max_request_bytes required,
    "allow_partial_message" => allow_partial_message,
    "pack_as_bytes" => pack_as_bytes,
});
