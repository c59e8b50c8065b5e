//! `routes`: per-route settings for a filter that Envoy gives no per-route config.
//!
//! An ordered list; the first entry whose `match` fits the request applies, and no match means the
//! top-level settings. `match` takes Envoy's RouteMatch shapes plus virtual-host `domains` and
//! `methods`; an entry carries native ExtAuthzPerRoute fields: `disabled`, or `check_settings`.

use super::reader::message;
use std::collections::BTreeMap;

use serde::Deserialize;

use super::error::ConfigError;
use super::grpc_service::{grpc_service, RawGrpcService};
use super::http_service::{http_service, RawHttpService};
use super::messages::{
    regex_field, string_match, with_request_body, RawRegexMatcher, RawStringMatcher,
    RawWithRequestBody,
};
use super::settings::{context_extensions, CheckSettings, ContextExtensions, Service};
use crate::route::matcher::{
    Domain, HeaderMatch, HeaderRule, PathMatch, QueryMatch, RouteMatch, StringMatch,
    StringMatchKind,
};

/// One entry of `routes`.
#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    pub matcher: RouteMatch,
    pub action: RouteAction,
}

#[derive(Debug, Clone, PartialEq)]
pub enum RouteAction {
    /// `disabled: true`: no check.
    Disabled,
    /// `check_settings`, already merged over the top level.
    Check(Box<CheckSettings>),
}

#[derive(Debug, Default, Deserialize)]
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
    pub http_service: Option<RawHttpService>,
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

/// One `routes` entry, its settings merged over the top level's.
pub(super) fn route(field: &str, raw: RawRoute, top: &CheckSettings) -> Result<Route, ConfigError> {
    let matcher = route_match(&format!("{field}.match"), raw.route_match)?;
    let action = match (raw.disabled, raw.check_settings) {
        (true, Some(_)) => {
            return Err(ConfigError::new(
                field,
                "takes disabled or check_settings, not both",
            ))
        }
        (true, None) => RouteAction::Disabled,
        (false, None) => RouteAction::Check(Box::new(top.clone())),
        (false, Some(settings)) => {
            let field = format!("{field}.check_settings");
            let mut extensions = top.context_extensions.entries.clone();
            let own = context_extensions(
                &format!("{field}.context_extensions"),
                settings.context_extensions,
            )?;
            extensions.extend(own.entries);
            let body = match (
                settings.disable_request_body_buffering,
                settings.with_request_body,
            ) {
                (true, Some(_)) => {
                    return Err(ConfigError::new(
                        &field,
                        "takes disable_request_body_buffering or with_request_body, not both",
                    ))
                }
                (true, None) => None,
                (false, Some(body)) => Some(with_request_body(
                    &format!("{field}.with_request_body"),
                    body,
                )?),
                (false, None) => top.with_request_body,
            };
            let service = match (settings.grpc_service, settings.http_service) {
                (Some(grpc), None) => {
                    Service::Grpc(grpc_service(&format!("{field}.grpc_service"), grpc)?)
                }
                (None, Some(http)) => {
                    Service::Http(http_service(&format!("{field}.http_service"), http)?)
                }
                (Some(_), Some(_)) => {
                    return Err(ConfigError::new(
                        format!("{field}.http_service"),
                        "cannot be set beside grpc_service",
                    ))
                }
                (None, None) => top.service.clone(),
            };
            RouteAction::Check(Box::new(CheckSettings {
                service,
                context_extensions: ContextExtensions::new(extensions),
                with_request_body: body,
            }))
        }
    };
    Ok(Route { matcher, action })
}

message!(RawRoute {
    "match" => route_match required,
    "disabled" => disabled,
    "check_settings" => check_settings,
});

message!(RawRouteMatch {
    "prefix" => prefix,
    "path" => path,
    "safe_regex" => safe_regex,
    "path_separated_prefix" => path_separated_prefix,
    "case_sensitive" => case_sensitive,
    "headers" => headers,
    "query_parameters" => query_parameters,
    "domains" => domains,
    "methods" => methods,
});

message!(RawHeaderMatcher {
    "name" => name required,
    "exact_match" => exact_match,
    "prefix_match" => prefix_match,
    "suffix_match" => suffix_match,
    "contains_match" => contains_match,
    "safe_regex_match" => safe_regex_match,
    "present_match" => present_match,
    "string_match" => string_match,
    "invert_match" => invert_match,
});

message!(RawQueryParameterMatcher {
    "name" => name required,
    "string_match" => string_match,
    "present_match" => present_match,
});

message!(RawCheckSettings {
    "context_extensions" => context_extensions,
    "disable_request_body_buffering" => disable_request_body_buffering,
    "with_request_body" => with_request_body,
    "grpc_service" => grpc_service,
    "http_service" => http_service,
});

#[cfg(test)]
mod tests;
