//! `routes`: per-route settings for a filter that Envoy gives no per-route config.
//!
//! An ordered list; the first entry whose `match` fits the request applies, and no match means the
//! top-level settings. `match` takes Envoy's RouteMatch shapes plus virtual-host `domains` and
//! `methods`; an entry carries native ExtAuthzPerRoute fields: `disabled`, or `check_settings`.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::raw::{RawGrpcService, RawWithRequestBody};
use super::ConfigError;
use crate::route::matcher::{
    full_match_regex, Domain, HeaderMatch, HeaderRule, PathMatch, QueryMatch, Regex, RouteMatch,
    StringMatch, StringMatchKind,
};

#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RawRoute {
    /// Which requests the entry is for. Every part given must hold.
    #[serde(rename = "match")]
    pub route_match: RawRouteMatch,
    /// No check for these requests (counted in `disabled`).
    #[serde(default)]
    pub disabled: bool,
    /// Settings for these requests, over the top-level ones.
    #[serde(default, alias = "checkSettings")]
    pub check_settings: Option<RawCheckSettings>,
}

#[derive(Debug, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RawRouteMatch {
    pub prefix: Option<String>,
    pub path: Option<String>,
    #[serde(alias = "safeRegex")]
    pub safe_regex: Option<RawRegexMatcher>,
    #[serde(alias = "pathSeparatedPrefix")]
    pub path_separated_prefix: Option<String>,
    /// Whether the path rule minds case; default true.
    #[serde(alias = "caseSensitive")]
    pub case_sensitive: Option<bool>,
    #[serde(default)]
    pub headers: Vec<RawHeaderMatcher>,
    #[serde(default, alias = "queryParameters")]
    pub query_parameters: Vec<RawQueryParameterMatcher>,
    /// Virtual-host domain rules: `example.com`, `*.example.com`, `example.*`, `*`.
    #[serde(default)]
    pub domains: Vec<String>,
    #[serde(default)]
    pub methods: Vec<String>,
}

/// Envoy's RegexMatcher: RE2 syntax, matched against the whole string.
#[derive(Debug, Deserialize)]
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

#[derive(Debug, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RawHeaderMatcher {
    pub name: String,
    #[serde(alias = "exactMatch")]
    pub exact_match: Option<String>,
    #[serde(alias = "prefixMatch")]
    pub prefix_match: Option<String>,
    #[serde(alias = "suffixMatch")]
    pub suffix_match: Option<String>,
    #[serde(alias = "containsMatch")]
    pub contains_match: Option<String>,
    #[serde(alias = "safeRegexMatch")]
    pub safe_regex_match: Option<RawRegexMatcher>,
    #[serde(alias = "presentMatch")]
    pub present_match: Option<bool>,
    #[serde(alias = "stringMatch")]
    pub string_match: Option<RawStringMatcher>,
    #[serde(default, alias = "invertMatch")]
    pub invert_match: bool,
}

#[derive(Debug, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RawQueryParameterMatcher {
    pub name: String,
    #[serde(alias = "stringMatch")]
    pub string_match: Option<RawStringMatcher>,
    #[serde(alias = "presentMatch")]
    pub present_match: Option<bool>,
}

/// Native `CheckSettings` of ExtAuthzPerRoute, plus a service override.
#[derive(Debug, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RawCheckSettings {
    /// Merged over the top-level `context_extensions`; the route's key wins.
    #[serde(default, alias = "contextExtensions")]
    pub context_extensions: BTreeMap<String, String>,
    /// No body to the auth server for these requests.
    #[serde(default, alias = "disableRequestBodyBuffering")]
    pub disable_request_body_buffering: bool,
    #[serde(default, alias = "withRequestBody")]
    pub with_request_body: Option<RawWithRequestBody>,
    /// Another gRPC auth server for these requests.
    #[serde(default, alias = "grpcService")]
    pub grpc_service: Option<RawGrpcService>,
    /// Another HTTP auth server for these requests.
    #[serde(default, alias = "httpService")]
    pub http_service: Option<super::http_service::RawHttpService>,
}

pub fn route_match(field: &str, raw: RawRouteMatch) -> Result<RouteMatch, ConfigError> {
    let mut paths = Vec::new();
    if let Some(prefix) = raw.prefix {
        paths.push(PathMatch::Prefix(prefix));
    }
    if let Some(path) = raw.path {
        paths.push(PathMatch::Exact(path));
    }
    if let Some(regex) = raw.safe_regex {
        paths.push(PathMatch::Regex(regex_field(
            &format!("{field}.safe_regex"),
            &regex.regex,
        )?));
    }
    if let Some(prefix) = raw.path_separated_prefix {
        if prefix.ends_with('/') || prefix.contains(['?', '#']) {
            return Err(ConfigError::new(
                format!("{field}.path_separated_prefix"),
                "must not end with `/` nor hold `?` or `#`",
            ));
        }
        paths.push(PathMatch::SeparatedPrefix(prefix));
    }
    if paths.len() > 1 {
        return Err(ConfigError::new(
            field,
            "takes one of prefix, path, safe_regex and path_separated_prefix",
        ));
    }
    let headers = raw
        .headers
        .into_iter()
        .enumerate()
        .map(|(i, h)| header_match(&format!("{field}.headers[{i}]"), h))
        .collect::<Result<_, _>>()?;
    let query_parameters = raw
        .query_parameters
        .into_iter()
        .enumerate()
        .map(|(i, q)| query_match(&format!("{field}.query_parameters[{i}]"), q))
        .collect::<Result<_, _>>()?;
    for (i, domain) in raw.domains.iter().enumerate() {
        let wildcards = domain.matches('*').count();
        let misplaced =
            wildcards == 1 && domain != "*" && !domain.starts_with('*') && !domain.ends_with('*');
        if domain.is_empty() || wildcards > 1 || misplaced {
            return Err(ConfigError::new(
                format!("{field}.domains[{i}]"),
                format!("{domain:?} is not a domain rule: a name, `*`, `*suffix` or `prefix*`"),
            ));
        }
    }
    for (i, method) in raw.methods.iter().enumerate() {
        if method.is_empty() || !method.bytes().all(|b| b.is_ascii_alphabetic() || b == b'-') {
            return Err(ConfigError::new(
                format!("{field}.methods[{i}]"),
                format!("{method:?} is not an HTTP method"),
            ));
        }
    }
    Ok(RouteMatch {
        path: paths.pop(),
        case_sensitive: raw.case_sensitive.unwrap_or(true),
        headers,
        query_parameters,
        domains: raw.domains.iter().map(|d| Domain::parse(d)).collect(),
        methods: raw.methods.iter().map(|m| m.to_ascii_uppercase()).collect(),
    })
}

fn regex_field(field: &str, pattern: &str) -> Result<Regex, ConfigError> {
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

fn header_match(field: &str, raw: RawHeaderMatcher) -> Result<HeaderMatch, ConfigError> {
    if raw.name.is_empty() {
        return Err(ConfigError::new(
            format!("{field}.name"),
            "must not be empty",
        ));
    }
    let plain = |kind| StringMatch {
        kind,
        ignore_case: false,
    };
    let mut rules = Vec::new();
    if let Some(s) = raw.exact_match {
        rules.push(HeaderRule::Value(plain(StringMatchKind::Exact(s))));
    }
    if let Some(s) = raw.prefix_match {
        rules.push(HeaderRule::Value(plain(StringMatchKind::Prefix(s))));
    }
    if let Some(s) = raw.suffix_match {
        rules.push(HeaderRule::Value(plain(StringMatchKind::Suffix(s))));
    }
    if let Some(s) = raw.contains_match {
        rules.push(HeaderRule::Value(plain(StringMatchKind::Contains(s))));
    }
    if let Some(regex) = raw.safe_regex_match {
        let regex = regex_field(&format!("{field}.safe_regex_match"), &regex.regex)?;
        rules.push(HeaderRule::Value(plain(StringMatchKind::Regex(regex))));
    }
    if let Some(present) = raw.present_match {
        rules.push(HeaderRule::Present(present));
    }
    if let Some(s) = raw.string_match {
        rules.push(HeaderRule::Value(string_match(
            &format!("{field}.string_match"),
            s,
        )?));
    }
    if rules.len() > 1 {
        return Err(ConfigError::new(
            field,
            "takes one rule: string_match, present_match, or a *_match",
        ));
    }
    Ok(HeaderMatch {
        name: raw.name.to_ascii_lowercase(),
        // As Envoy: a matcher with no rule matches when the header is present.
        rule: rules.pop().unwrap_or(HeaderRule::Present(true)),
        invert: raw.invert_match,
    })
}

fn query_match(field: &str, raw: RawQueryParameterMatcher) -> Result<QueryMatch, ConfigError> {
    if raw.name.is_empty() {
        return Err(ConfigError::new(
            format!("{field}.name"),
            "must not be empty",
        ));
    }
    let value = match (raw.string_match, raw.present_match) {
        (Some(s), None) => Some(string_match(&format!("{field}.string_match"), s)?),
        (None, Some(true) | None) => None,
        (None, Some(false)) => {
            return Err(ConfigError::new(
                format!("{field}.present_match"),
                "can only be true",
            ))
        }
        (Some(_), Some(_)) => {
            return Err(ConfigError::new(
                field,
                "takes string_match or present_match, not both",
            ))
        }
    };
    Ok(QueryMatch {
        name: raw.name,
        value,
    })
}

#[cfg(test)]
mod tests;
