//! `http_service`: a plain HTTP authorization server, as native ext_authz calls one. A 200 allows,
//! any other answer denies with itself; the config says which headers cross in each direction.

use super::reader::message;
use std::time::Duration;

use serde::Deserialize;

use super::duration::ProtoDuration;
use super::error::ConfigError;
use super::grpc_service::DEFAULT_TIMEOUT;
use super::messages::{header_values, list_string_matcher, RawHeaderValue, RawListStringMatcher};
use super::retry::{retry_policy, HttpRetry, RawRetryPolicy};
use crate::route::matcher::StringMatch;

#[derive(Debug, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RawHttpService {
    /// Where the authorization requests go.
    #[serde(alias = "serverUri")]
    pub server_uri: RawHttpUri,
    /// Put before the request's path in the authorization request.
    #[serde(default, alias = "pathPrefix")]
    pub path_prefix: String,
    #[serde(default, alias = "authorizationRequest")]
    pub authorization_request: RawAuthorizationRequest,
    #[serde(default, alias = "authorizationResponse")]
    pub authorization_response: RawAuthorizationResponse,
    /// Retries of a failed authorization request, made by the filter (see `config::retry`).
    #[serde(default, alias = "retryPolicy")]
    pub retry_policy: Option<RawRetryPolicy>,
}

#[derive(Debug, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RawHttpUri {
    /// `http://host[:port]`: its host is the authorization request's `:authority`.
    pub uri: String,
    /// The Envoy cluster of the server.
    pub cluster: String,
    /// The deadline of one authorization request; default 0.2s.
    pub timeout: Option<ProtoDuration>,
}

#[derive(Debug, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RawAuthorizationRequest {
    /// Request headers sent along, besides `:authority`, `:method`, `:path`, `content-length`
    /// and `authorization`, which always are (unless `disallowed_headers` names them). Set, it
    /// wins over the top-level `allowed_headers`; with neither, only those five go.
    #[serde(default, alias = "allowedHeaders")]
    pub allowed_headers: Option<RawListStringMatcher>,
    /// Headers added to every authorization request.
    #[serde(default, alias = "headersToAdd")]
    pub headers_to_add: Vec<RawHeaderValue>,
}

#[derive(Debug, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RawAuthorizationResponse {
    /// On 200, these server headers are set on the upstream request.
    #[serde(default, alias = "allowedUpstreamHeaders")]
    pub allowed_upstream_headers: Option<RawListStringMatcher>,
    /// On 200, these server headers are appended to the upstream request.
    #[serde(default, alias = "allowedUpstreamHeadersToAppend")]
    pub allowed_upstream_headers_to_append: Option<RawListStringMatcher>,
    /// On a denial, these server headers go to the client; unset, all of them do.
    #[serde(default, alias = "allowedClientHeaders")]
    pub allowed_client_headers: Option<RawListStringMatcher>,
    /// On 200, these server headers are added to the response the client gets.
    #[serde(default, alias = "allowedClientHeadersOnSuccess")]
    pub allowed_client_headers_on_success: Option<RawListStringMatcher>,
}

/// A validated `http_service`.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpService {
    pub cluster: String,
    /// The host of `server_uri.uri`.
    pub authority: String,
    pub path_prefix: String,
    pub timeout: Duration,
    /// The legacy `authorization_request.allowed_headers`; set, it wins over the top level's.
    pub allowed_headers: Option<Vec<StringMatch>>,
    pub headers_to_add: Vec<(String, String)>,
    pub allowed_upstream_headers: Vec<StringMatch>,
    pub allowed_upstream_headers_to_append: Vec<StringMatch>,
    /// `None`: every server header goes to the client on a denial.
    pub allowed_client_headers: Option<Vec<StringMatch>>,
    pub allowed_client_headers_on_success: Vec<StringMatch>,
    pub retry: Option<HttpRetry>,
}

pub fn http_service(field: &str, raw: RawHttpService) -> Result<HttpService, ConfigError> {
    let uri_field = format!("{field}.server_uri");
    if raw.server_uri.cluster.is_empty() {
        return Err(ConfigError::new(
            format!("{uri_field}.cluster"),
            "must not be empty",
        ));
    }
    let authority = authority_of(&raw.server_uri.uri).ok_or_else(|| {
        ConfigError::new(
            format!("{uri_field}.uri"),
            format!("{:?} is not an http:// or https:// URI", raw.server_uri.uri),
        )
    })?;
    let timeout = raw.server_uri.timeout.map_or(DEFAULT_TIMEOUT, |t| t.0);
    if timeout < Duration::from_millis(1) || timeout.as_millis() > u128::from(u32::MAX) {
        return Err(ConfigError::new(
            format!("{uri_field}.timeout"),
            "must be between 0.001s and 4294967.295s (the host counts whole milliseconds)",
        ));
    }
    if !raw.path_prefix.is_empty() && !raw.path_prefix.starts_with('/') {
        return Err(ConfigError::new(
            format!("{field}.path_prefix"),
            "must start with `/`",
        ));
    }
    let request = raw.authorization_request;
    let request_field = format!("{field}.authorization_request");
    let headers_to_add = header_values(
        &format!("{request_field}.headers_to_add"),
        request.headers_to_add,
        "is not a header name",
    )?;
    let retry = raw
        .retry_policy
        .map(|raw| retry_policy(&format!("{field}.retry_policy"), raw))
        .transpose()?
        .map(|policy| policy.for_http());
    let response = raw.authorization_response;
    let response_field = format!("{field}.authorization_response");
    Ok(HttpService {
        cluster: raw.server_uri.cluster,
        authority,
        path_prefix: raw.path_prefix,
        timeout,
        allowed_headers: list_string_matcher(
            &format!("{request_field}.allowed_headers"),
            request.allowed_headers,
        )?,
        headers_to_add,
        allowed_upstream_headers: list_string_matcher(
            &format!("{response_field}.allowed_upstream_headers"),
            response.allowed_upstream_headers,
        )?
        .unwrap_or_default(),
        allowed_upstream_headers_to_append: list_string_matcher(
            &format!("{response_field}.allowed_upstream_headers_to_append"),
            response.allowed_upstream_headers_to_append,
        )?
        .unwrap_or_default(),
        allowed_client_headers: list_string_matcher(
            &format!("{response_field}.allowed_client_headers"),
            response.allowed_client_headers,
        )?,
        allowed_client_headers_on_success: list_string_matcher(
            &format!("{response_field}.allowed_client_headers_on_success"),
            response.allowed_client_headers_on_success,
        )?
        .unwrap_or_default(),
        retry,
    })
}

/// Native refuses `allowed_headers` given both at the top level and in the top-level
/// `http_service.authorization_request`; so does this filter, in native's words.
pub fn one_allowed_headers(
    service: Option<&HttpService>,
    top_level: bool,
) -> Result<(), ConfigError> {
    if top_level && service.is_some_and(|s| s.allowed_headers.is_some()) {
        return Err(ConfigError::new(
            "allowed_headers",
            "Invalid duplicate configuration for allowed_headers. \
             (http_service.authorization_request.allowed_headers is set too)",
        ));
    }
    Ok(())
}

/// `host[:port]` of an `http://` or `https://` URI.
fn authority_of(uri: &str) -> Option<String> {
    let rest = uri
        .strip_prefix("http://")
        .or_else(|| uri.strip_prefix("https://"))?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    (!authority.is_empty()).then(|| authority.to_owned())
}

message!(RawHttpService {
    "server_uri" => server_uri required,
    "path_prefix" => path_prefix,
    "authorization_request" => authorization_request,
    "authorization_response" => authorization_response,
    "retry_policy" => retry_policy,
});

message!(RawHttpUri {
    "uri" => uri required,
    "cluster" => cluster required,
    "timeout" => timeout,
});

message!(RawAuthorizationRequest {
    "allowed_headers" => allowed_headers,
    "headers_to_add" => headers_to_add,
});

message!(RawAuthorizationResponse {
    "allowed_upstream_headers" => allowed_upstream_headers,
    "allowed_upstream_headers_to_append" => allowed_upstream_headers_to_append,
    "allowed_client_headers" => allowed_client_headers,
    "allowed_client_headers_on_success" => allowed_client_headers_on_success,
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allowed_headers_at_both_levels_are_refused_as_native_refuses_them() {
        let config = |top: &str, legacy: &str| {
            format!(
                r#"{{"http_service": {{"server_uri": {{"uri": "http://a", "cluster": "c"}},
                    "authorization_request": {{{legacy}}}}}{top}}}"#
            )
        };
        let list = r#""allowed_headers": {"patterns": [{"exact": "x-a"}]}"#;
        let error = crate::config::Config::parse(config(&format!(", {list}"), list).as_bytes())
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            error.contains("Invalid duplicate configuration for allowed_headers"),
            "{error}"
        );
        for (top, legacy) in [(format!(", {list}"), ""), (String::new(), list)] {
            assert!(crate::config::Config::parse(config(&top, legacy).as_bytes()).is_ok());
        }
    }

    #[test]
    fn authority_comes_from_the_uri() {
        assert_eq!(
            authority_of("http://authz:8000/check").as_deref(),
            Some("authz:8000")
        );
        assert_eq!(
            authority_of("https://authz.example.com").as_deref(),
            Some("authz.example.com")
        );
        assert_eq!(authority_of("authz:8000"), None);
        assert_eq!(authority_of("http:///x"), None);
    }
}
