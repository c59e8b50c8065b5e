#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use crate::config::{Config, RouteAction, Selection};
use crate::route::matcher::RequestView;

const TOP: &str = r#""grpc_service": {"envoy_grpc": {"cluster_name": "top"}, "timeout": "1s"},
    "context_extensions": {"tenant": "top", "zone": "z1"},
    "with_request_body": {"max_request_bytes": 1024}"#;

fn parse(routes: &str) -> Result<Config, crate::config::ConfigError> {
    Config::parse(format!(r#"{{{TOP}, "routes": {routes}}}"#).as_bytes())
}

fn select(config: &Config, method: &str, path: &str) -> Selection {
    let headers: [(&[u8], &[u8]); 3] = [
        (b":method", method.as_bytes()),
        (b":path", path.as_bytes()),
        (b":authority", b"h"),
    ];
    config.select(&RequestView::new(&headers))
}

#[test]
fn first_matching_route_wins_and_no_match_is_the_top_level() {
    let config = parse(
        r#"[{"match": {"path": "/health"}, "disabled": true},
            {"match": {"prefix": "/"}, "check_settings": {"context_extensions": {"tenant": "route"}}},
            {"match": {"prefix": "/never"}, "disabled": true}]"#,
    )
    .unwrap();
    assert_eq!(select(&config, "GET", "/health"), Selection::Disabled);
    assert_eq!(select(&config, "GET", "/never"), Selection::Route(1));
    let only_post = parse(r#"[{"match": {"methods": ["post"]}, "disabled": true}]"#).unwrap();
    assert_eq!(select(&only_post, "GET", "/"), Selection::TopLevel);
    assert_eq!(select(&only_post, "POST", "/"), Selection::Disabled);
    assert!(config.check(Selection::Disabled).is_none());
}

#[test]
fn check_settings_merge_over_the_top_level() {
    let config = parse(
        r#"[{"match": {"prefix": "/a"}, "check_settings": {
                "context_extensions": {"tenant": "route", "extra": "x"},
                "disable_request_body_buffering": true,
                "grpc_service": {"envoy_grpc": {"cluster_name": "other"}, "timeout": "0.05s"}}},
            {"match": {"prefix": "/b"}, "check_settings": {"with_request_body": {"max_request_bytes": 7, "pack_as_bytes": true}}},
            {"match": {"prefix": "/c"}}]"#,
    )
    .unwrap();
    let a = config.check(Selection::Route(0)).unwrap();
    let entries: Vec<(&str, &str)> = a
        .context_extensions
        .entries
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        entries,
        [("extra", "x"), ("tenant", "route"), ("zone", "z1")],
        "the route's key wins"
    );
    assert_eq!(a.with_request_body, None);
    assert_eq!(a.service.cluster(), "other");
    assert_eq!(a.service.timeout(), Duration::from_millis(50));

    let b = config.check(Selection::Route(1)).unwrap();
    assert_eq!(
        b.with_request_body
            .map(|w| (w.max_request_bytes, w.pack_as_bytes)),
        Some((7, true))
    );
    assert_eq!(b.service.cluster(), "top");

    let c = config.check(Selection::Route(2)).unwrap();
    let top = config.check(Selection::TopLevel).unwrap();
    assert_eq!(c.context_extensions, top.context_extensions);
    assert_eq!(c.with_request_body, top.with_request_body);
    assert!(config.sends_bodies());
    assert!(matches!(config.routes[2].action, RouteAction::Check(_)));
}

#[test]
fn bad_routes_are_refused_with_the_field_named() {
    let refused = |routes: &str, field: &str, reason: &str| {
        let error = parse(routes).expect_err(routes);
        assert_eq!(error.field, field, "{routes}: {error}");
        assert!(error.reason.contains(reason), "{routes}: {error}");
    };
    refused(
        r#"[{"match": {"safe_regex": {"regex": "("}}}]"#,
        "routes[0].match.safe_regex",
        "not a valid regex",
    );
    refused(
        r#"[{"match": {"prefix": "/", "path": "/x"}}]"#,
        "routes[0].match",
        "one of prefix",
    );
    refused(
        r#"[{"match": {"path_separated_prefix": "/api/"}}]"#,
        "routes[0].match.path_separated_prefix",
        "must not end",
    );
    refused(
        r#"[{}, {"match": {}}]"#,
        "routes[0]",
        "missing field `match`",
    );
    refused(
        r#"[{"match": {"headers": [{"name": "x", "exact_match": "a", "present_match": true}]}}]"#,
        "routes[0].match.headers[0]",
        "one rule",
    );
    refused(
        r#"[{"match": {"headers": [{"name": "x", "string_match": {}}]}}]"#,
        "routes[0].match.headers[0].string_match",
        "exactly one",
    );
    refused(
        r#"[{"match": {"headers": [{"name": ""}]}}]"#,
        "routes[0].match.headers[0].name",
        "empty",
    );
    refused(
        r#"[{"match": {"query_parameters": [{"name": "q", "present_match": false}]}}]"#,
        "routes[0].match.query_parameters[0].present_match",
        "only be true",
    );
    refused(
        r#"[{"match": {"domains": ["a.*.com"]}}]"#,
        "routes[0].match.domains[0]",
        "not a domain rule",
    );
    refused(
        r#"[{"match": {"methods": ["G E T"]}}]"#,
        "routes[0].match.methods[0]",
        "not an HTTP method",
    );
    refused(
        r#"[{"match": {}, "disabled": true, "check_settings": {}}]"#,
        "routes[0]",
        "not both",
    );
    refused(
        r#"[{"match": {}, "check_settings": {"with_request_body": {"max_request_bytes": 0}}}]"#,
        "routes[0].check_settings.with_request_body.max_request_bytes",
        "greater than 0",
    );
    refused(
        r#"[{"match": {}, "check_settings": {"grpc_service": {"envoy_grpc": {"cluster_name": ""}}}}]"#,
        "routes[0].check_settings.grpc_service.envoy_grpc.cluster_name",
        "empty",
    );
    refused(
        r#"[{"match": {"prefixx": "/"}}]"#,
        "routes[0].match.prefixx",
        "unknown field `prefixx`",
    );
}

#[test]
fn camel_case_names_are_accepted() {
    let config = parse(
        r#"[{"match": {"pathSeparatedPrefix": "/api", "queryParameters": [{"name": "q", "presentMatch": true}],
                       "headers": [{"name": "x", "stringMatch": {"exact": "A", "ignoreCase": true}, "invertMatch": false}]},
             "checkSettings": {"contextExtensions": {"k": "v"}, "disableRequestBodyBuffering": true}}]"#,
    )
    .unwrap();
    let headers: [(&[u8], &[u8]); 3] =
        [(b":path", b"/api/x?q"), (b":method", b"GET"), (b"x", b"a")];
    assert_eq!(
        config.select(&RequestView::new(&headers)),
        Selection::Route(0)
    );
}
