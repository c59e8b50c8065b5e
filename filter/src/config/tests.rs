#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use envoy_types::pb::envoy::config::core::v3::grpc_service::{EnvoyGrpc, TargetSpecifier};
use envoy_types::pb::envoy::config::core::v3::GrpcService as PbGrpcService;
use envoy_types::pb::envoy::service::auth::v3::AttributeContext;
use prost::Message;

use super::*;

/// A native ext_authz config as users write it for Envoy, moved over unchanged.
const ISSUE_CONFIG: &str = r#"{
    "grpc_service": {
        "envoy_grpc": {
            "cluster_name": "ext-authz",
            "authority": "authz.internal"
        },
        "timeout": "0.5s",
        "initial_metadata": [
            { "key": "X-Tenant", "value": "acme" },
            { "key": "x-empty" }
        ]
    },
    "transport_api_version": "V3",
    "failure_mode_allow": false,
    "status_on_error": { "code": 503 },
    "context_extensions": {
        "virtual_host": "backend",
        "env": "prod",
        "empty": ""
    },
    "stat_prefix": "authz"
}"#;

const MINIMAL: &str = r#"{"grpc_service": {"envoy_grpc": {"cluster_name": "ext-authz"}}}"#;

fn parse(json: &str) -> Config {
    match Config::parse(json.as_bytes()) {
        Ok(config) => config,
        Err(e) => panic!("{json} was refused: {e}"),
    }
}

fn refuse(json: &str) -> ConfigError {
    match Config::parse(json.as_bytes()) {
        Ok(config) => panic!("{json} was accepted: {config:?}"),
        Err(e) => e,
    }
}

/// Refuses `json` naming `field`, with a reason that mentions `reason_part`.
#[track_caller]
fn assert_refused(json: &str, field: &str, reason_part: &str) {
    let error = refuse(json);
    assert_eq!(error.field, field, "{json}: {error}");
    assert!(
        error.reason.contains(reason_part),
        "{json}: reason {:?} does not mention {reason_part:?}",
        error.reason
    );
}

/// The minimal config with `grpc_service` replaced.
fn with_grpc_service(grpc_service: &str) -> String {
    format!(r#"{{"grpc_service": {grpc_service}}}"#)
}

/// The minimal config with more top-level fields.
fn with_top(extra: &str) -> String {
    format!(r#"{{"grpc_service": {{"envoy_grpc": {{"cluster_name": "ext-authz"}}}}, {extra}}}"#)
}

fn snake_case(path: &str) -> String {
    path.chars()
        .flat_map(|c| {
            let lower = c.to_ascii_lowercase();
            if c.is_ascii_uppercase() {
                vec!['_', lower]
            } else {
                vec![c]
            }
        })
        .collect()
}

fn decode_target(target: &[u8]) -> EnvoyGrpc {
    let service = PbGrpcService::decode(target).expect("target is a GrpcService");
    assert_eq!(service.timeout, None);
    assert!(service.initial_metadata.is_empty());
    match service.target_specifier {
        Some(TargetSpecifier::EnvoyGrpc(envoy_grpc)) => envoy_grpc,
        other => panic!("target is not envoy_grpc: {other:?}"),
    }
}

fn decode_context_extensions(encoded: &[u8]) -> HashMap<String, String> {
    AttributeContext::decode(encoded)
        .expect("map entries decode")
        .context_extensions
}

#[test]
fn issue_config_parses_to_the_expected_config() {
    let config = parse(ISSUE_CONFIG);
    let entries: BTreeMap<String, String> =
        [("virtual_host", "backend"), ("env", "prod"), ("empty", "")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
    let expected = Config {
        service: Service::Grpc(GrpcService {
            cluster_name: "ext-authz".into(),
            authority: "authz.internal".into(),
            timeout: Duration::from_millis(500),
            initial_metadata: vec![
                ("x-tenant".into(), "acme".into()),
                ("x-empty".into(), String::new()),
            ],
            retry_policy: None,
            target: config.service.grpc().unwrap().target.clone(),
        }),
        failure_mode: FailureMode::Deny {
            status_on_error: 503,
        },
        status_on_error: 503,
        context_extensions: ContextExtensions::new(entries.clone()),
        with_request_body: None,
        stat_prefix: "authz".into(),
        routes: vec![],
        headers: HeaderSelection::default(),
        metadata: MetadataSelection::default(),
        include_tls_session: false,
        include_forwarded_source_address: false,
        mutations: Default::default(),
        dynamic_metadata_ingestion: true,
        max_denied_response_body_bytes: 0,
        propagate_trace_context: true,
        decision_cache: None,
        shadow_mode: false,
        filter_enabled: crate::config::FilterEnabled::ALWAYS,
        deny_at_disable: None,
        max_request_headers_bytes: 60 * 1024,
    };
    assert_eq!(config, expected);

    let envoy_grpc = decode_target(&config.service.grpc().unwrap().target);
    assert_eq!(envoy_grpc.cluster_name, "ext-authz");
    assert_eq!(envoy_grpc.authority, "authz.internal");

    let decoded = decode_context_extensions(&config.context_extensions.encoded);
    assert_eq!(decoded.into_iter().collect::<BTreeMap<_, _>>(), entries);
}

#[test]
fn minimal_config_takes_native_defaults() {
    let config = parse(MINIMAL);
    assert_eq!(config.service.grpc().unwrap().cluster_name, "ext-authz");
    assert_eq!(config.service.grpc().unwrap().authority, "");
    assert_eq!(
        config.service.grpc().unwrap().timeout,
        Duration::from_millis(200)
    );
    assert_eq!(config.service.grpc().unwrap().timeout, DEFAULT_TIMEOUT);
    assert!(config.service.grpc().unwrap().initial_metadata.is_empty());
    assert_eq!(
        config.failure_mode,
        FailureMode::Deny {
            status_on_error: 403
        }
    );
    assert_eq!(config.stat_prefix, "");
    assert!(config.context_extensions.entries.is_empty());
    assert!(config.context_extensions.encoded.is_empty());

    let envoy_grpc = decode_target(&config.service.grpc().unwrap().target);
    assert_eq!(envoy_grpc.cluster_name, "ext-authz");
    assert_eq!(envoy_grpc.authority, "");
}

#[test]
fn lower_camel_case_names_are_accepted() {
    let camel = r#"{
        "grpcService": {
            "envoyGrpc": { "clusterName": "ext-authz", "authority": "authz.internal" },
            "timeout": "0.5s",
            "initialMetadata": [{ "key": "X-Tenant", "value": "acme" }, { "key": "x-empty" }]
        },
        "transportApiVersion": "V3",
        "failureModeAllow": false,
        "statusOnError": { "code": 503 },
        "contextExtensions": { "virtual_host": "backend", "env": "prod", "empty": "" },
        "statPrefix": "authz"
    }"#;
    assert_eq!(parse(camel), parse(ISSUE_CONFIG));

    let allow = parse(
        r#"{"grpcService": {"envoyGrpc": {"clusterName": "c"}},
            "failureModeAllow": true, "failureModeAllowHeaderAdd": true}"#,
    );
    assert_eq!(allow.failure_mode, FailureMode::Allow { add_header: true });

    // Errors in a camelCase config still name the field (as written, or in snake_case).
    for (json, field) in [
        (
            r#"{"grpcService": {"envoyGrpc": {"clusterName": "c"}, "timeout": "-1s"}}"#,
            "grpc_service.timeout",
        ),
        (
            r#"{"grpcService": {"envoyGrpc": {"clusterName": ""}}}"#,
            "grpc_service.envoy_grpc.cluster_name",
        ),
        (
            r#"{"grpcService": {"envoyGrpc": {"clusterName": "c"}}, "statusOnError": {"code": 99}}"#,
            "status_on_error.code",
        ),
        (
            r#"{"grpcService": {"envoyGrpc": {"clusterName": "c"}}, "failureModeAllow": "yes"}"#,
            "failure_mode_allow",
        ),
    ] {
        let error = refuse(json);
        assert_eq!(snake_case(&error.field), field, "{json}: {error}");
    }
}

#[test]
fn failure_mode_allow_and_its_header() {
    let allow = parse(&with_top(r#""failure_mode_allow": true"#));
    assert_eq!(allow.failure_mode, FailureMode::Allow { add_header: false });

    let allow = parse(&with_top(
        r#""failure_mode_allow": true, "failure_mode_allow_header_add": true"#,
    ));
    assert_eq!(allow.failure_mode, FailureMode::Allow { add_header: true });

    // The header flag alone does not open the filter.
    let deny = parse(&with_top(r#""failure_mode_allow_header_add": true"#));
    assert_eq!(
        deny.failure_mode,
        FailureMode::Deny {
            status_on_error: 403
        }
    );

    // status_on_error only matters when failing closed.
    let deny = parse(&with_top(
        r#""failure_mode_allow": false, "status_on_error": {"code": 500}"#,
    ));
    assert_eq!(
        deny.failure_mode,
        FailureMode::Deny {
            status_on_error: 500
        }
    );
    let allow = parse(&with_top(
        r#""failure_mode_allow": true, "status_on_error": {"code": 500}"#,
    ));
    assert_eq!(allow.failure_mode, FailureMode::Allow { add_header: false });
}

#[test]
fn status_on_error_bounds() {
    for (code, ok) in [
        (199, false),
        (200, true),
        (403, true),
        (599, true),
        (600, false),
    ] {
        let result = Config::parse(
            with_top(&format!(r#""status_on_error": {{"code": {code}}}"#)).as_bytes(),
        );
        match (result, ok) {
            (Ok(config), true) => {
                assert_eq!(
                    config.failure_mode,
                    FailureMode::Deny {
                        status_on_error: code as u16
                    }
                )
            }
            (Err(e), false) => assert_eq!(e.field, "status_on_error.code", "{code}: {e}"),
            (result, _) => panic!("status_on_error {code}: {result:?}"),
        }
    }
    assert_refused(
        &with_top(r#""status_on_error": {"code": 99}"#),
        "status_on_error.code",
        "99",
    );
    assert_refused(
        &with_top(r#""status_on_error": {"code": 600}"#),
        "status_on_error.code",
        "600",
    );
    assert_refused(
        &with_top(r#""status_on_error": {"code": -403}"#),
        "status_on_error.code",
        "-403",
    );
    // Larger than u16: must not wrap around into a valid status (65_939 = 65_536 + 403).
    assert_refused(
        &with_top(r#""status_on_error": {"code": 65939}"#),
        "status_on_error.code",
        "65939",
    );
}

#[test]
fn timeouts() {
    let timeout = |t: &str| {
        parse(&with_grpc_service(&format!(
            r#"{{"envoy_grpc": {{"cluster_name": "c"}}, "timeout": "{t}"}}"#
        )))
        .service
        .timeout()
    };
    assert_eq!(timeout("0.25s"), Duration::from_millis(250));
    assert_eq!(timeout("2s"), Duration::from_secs(2));
    assert_eq!(timeout("0.001s"), Duration::from_millis(1));

    let refused = |t: &str, reason: &str| {
        assert_refused(
            &with_grpc_service(&format!(
                r#"{{"envoy_grpc": {{"cluster_name": "c"}}, "timeout": "{t}"}}"#
            )),
            "grpc_service.timeout",
            reason,
        )
    };
    refused("-1s", "negative");
    refused("500ms", "protobuf JSON duration");
    refused("abc", "protobuf JSON duration");
    refused("0s", "greater than 0s");
    refused("0.000s", "greater than 0s");
    // Below the host's millisecond resolution, and above its u32 of milliseconds.
    refused("0.0001s", "milliseconds");
    refused("4294968s", "milliseconds");
    assert_refused(
        &with_grpc_service(r#"{"envoy_grpc": {"cluster_name": "c"}, "timeout": 5}"#),
        "grpc_service.timeout",
        "invalid type",
    );
}

#[test]
fn whole_document_refusals() {
    for (json, reason) in [
        ("", "empty"),
        ("  \n\t", "empty"),
        ("{", "not JSON"),
        ("grpc_service", "not JSON"),
        ("[]", "JSON object"),
        ("\"text\"", "JSON object"),
        ("null", "JSON object"),
        ("42", "JSON object"),
    ] {
        assert_refused(json, "", reason);
    }
    assert_refused("{}", "grpc_service", "required");
    assert_refused(r#"{"stat_prefix": "x"}"#, "grpc_service", "required");
}

#[test]
fn unknown_fields_are_refused_by_path() {
    assert_refused(&with_top(r#""bogus": 1"#), "bogus", "unknown field");
    assert_refused(
        &with_top(r#""failure_mode_alow": true"#),
        "failure_mode_alow",
        "unknown field",
    );
    assert_refused(
        r#"{"grpc_service": {"envoy_grpc": {"cluster_name": "c", "bogus": 1}}}"#,
        "grpc_service.envoy_grpc.bogus",
        "unknown field",
    );
    assert_refused(
        r#"{"grpc_service": {"envoy_grpc": {"cluster_name": "c"}, "bogus": 1}}"#,
        "grpc_service.bogus",
        "unknown field",
    );
    assert_refused(
        r#"{"grpc_service": {"envoy_grpc": {"cluster_name": "c"},
            "initial_metadata": [{"key": "k", "value": "v", "bogus": 1}]}}"#,
        "grpc_service.initial_metadata[0].bogus",
        "unknown field",
    );
    assert_refused(
        &with_top(r#""status_on_error": {"code": 503, "bogus": 1}"#),
        "status_on_error.bogus",
        "unknown field",
    );
}

#[test]
fn wrong_types_are_refused_by_path() {
    assert_refused(
        &with_top(r#""failure_mode_allow": "yes""#),
        "failure_mode_allow",
        "invalid type",
    );
    assert_refused(
        &with_top(r#""failure_mode_allow_header_add": 1"#),
        "failure_mode_allow_header_add",
        "invalid type",
    );
    assert_refused(
        &with_top(r#""status_on_error": 503"#),
        "status_on_error",
        "invalid type",
    );
    assert_refused(
        &with_top(r#""status_on_error": {"code": "five"}"#),
        "status_on_error.code",
        "invalid type",
    );
    assert_refused(
        &with_top(r#""stat_prefix": 7"#),
        "stat_prefix",
        "invalid type",
    );
    assert_refused(
        &with_top(r#""context_extensions": {"k": 1}"#),
        "context_extensions.k",
        "invalid type",
    );
    assert_refused(
        &with_top(r#""context_extensions": ["k"]"#),
        "context_extensions",
        "invalid type",
    );
    assert_refused(
        r#"{"grpc_service": "ext-authz"}"#,
        "grpc_service",
        "invalid type",
    );
    assert_refused(
        r#"{"grpc_service": {"envoy_grpc": {"cluster_name": 5}}}"#,
        "grpc_service.envoy_grpc.cluster_name",
        "invalid type",
    );
    assert_refused(
        r#"{"grpc_service": {"envoy_grpc": {"cluster_name": "c"}, "initial_metadata": {"k": "v"}}}"#,
        "grpc_service.initial_metadata",
        "invalid type",
    );
}

#[test]
fn grpc_service_requirements() {
    assert_refused(
        r#"{"grpc_service": {}}"#,
        "grpc_service.envoy_grpc",
        "required",
    );
    assert_refused(
        r#"{"grpc_service": {"timeout": "1s"}}"#,
        "grpc_service.envoy_grpc",
        "required",
    );
    assert_refused(
        r#"{"grpc_service": {"envoy_grpc": {}}}"#,
        "grpc_service.envoy_grpc",
        "cluster_name",
    );
    assert_refused(
        r#"{"grpc_service": {"envoy_grpc": {"cluster_name": ""}}}"#,
        "grpc_service.envoy_grpc.cluster_name",
        "empty",
    );
    assert_refused(
        r#"{"grpc_service": {"envoy_grpc": {"cluster_name": "c"}, "google_grpc": {"target_uri": "x:1"}}}"#,
        "grpc_service.google_grpc",
        "use envoy_grpc",
    );
    assert_refused(
        r#"{"grpcService": {"googleGrpc": {"targetUri": "x:1", "statPrefix": "g"}}}"#,
        "grpc_service.google_grpc",
        "use envoy_grpc",
    );
}

#[test]
fn refused_native_fields_name_their_reason() {
    assert_refused(
        &with_top(r#""http_service": {"server_uri": {"uri": "http://a", "cluster": "a"}}"#),
        "http_service",
        "name one of grpc_service, http_service and steps",
    );
    assert_refused(
        &with_top(r#""clearRouteCache": false"#),
        "clear_route_cache",
        "picks the route again",
    );
    assert!(Config::parse(with_top(r#""clear_route_cache": true"#).as_bytes()).is_ok());
    // Refused even when set to its default: the user asked for something not honoured.
    // The peer certificate's PEM cannot be had: asking for it is refused, leaving it off is fine.
    assert_refused(
        &with_top(r#""include_peer_certificate": true"#),
        "include_peer_certificate",
        "PEM",
    );
    assert!(Config::parse(with_top(r#""include_peer_certificate": false"#).as_bytes()).is_ok());
    // The same for the fields native added in 1.36 to 1.40 that a wasm filter cannot honour.
    for (field, camel, reason) in [
        (
            "enforce_response_header_limits",
            "enforceResponseHeaderLimits",
            "header limits",
        ),
        ("emit_client_span", "emitClientSpan", "no client span"),
    ] {
        assert_refused(&with_top(&format!(r#""{field}": true"#)), field, reason);
        assert_refused(&with_top(&format!(r#""{camel}": true"#)), field, reason);
        assert!(Config::parse(with_top(&format!(r#""{field}": false"#)).as_bytes()).is_ok());
    }
    for (field, reason) in [
        ("filter_metadata", "ExtAuthzLoggingInfo"),
        ("emit_filter_state_stats", "ExtAuthzLoggingInfo"),
    ] {
        assert_refused(&with_top(&format!(r#""{field}": {{}}"#)), field, reason);
    }
    let cut = Config::parse(with_top(r#""max_denied_response_body_bytes": 4"#).as_bytes()).unwrap();
    assert_eq!(cut.max_denied_response_body_bytes, 4);
    let mutations = Config::parse(
        with_top(
            r#""validate_mutations": true, "enable_dynamic_metadata_ingestion": false,
               "decoder_header_mutation_rules": {"disallow_all": true, "allowExpression": {"regex": "x-.*"}}"#,
        )
        .as_bytes(),
    )
    .unwrap();
    assert!(mutations.mutations.validate && !mutations.dynamic_metadata_ingestion);
    let rules = mutations.mutations.rules.unwrap();
    assert!(rules.disallow_all && rules.allow_expression.is_some());
    assert_refused(
        &with_top(r#""decoder_header_mutation_rules": {"disallow_expression": {"regex": "("}}"#),
        "decoder_header_mutation_rules.disallow_expression.regex",
        "not a valid regex",
    );
    // Refused before a missing grpc_service is reported: the more specific reason wins.
    assert_refused(
        r#"{"bootstrap_metadata_labels_key": "x"}"#,
        "bootstrap_metadata_labels_key",
        "bootstrap labels",
    );
}

#[test]
fn with_request_body() {
    let config = parse(&with_top(
        r#""with_request_body": {"max_request_bytes": 4096, "allow_partial_message": true}"#,
    ));
    assert_eq!(
        config.with_request_body,
        Some(WithRequestBody {
            max_request_bytes: 4096,
            allow_partial_message: true,
            pack_as_bytes: false
        })
    );
    let camel = parse(&with_top(
        r#""withRequestBody": {"maxRequestBytes": 1, "packAsBytes": true}"#,
    ));
    assert_eq!(
        camel.with_request_body,
        Some(WithRequestBody {
            max_request_bytes: 1,
            allow_partial_message: false,
            pack_as_bytes: true
        })
    );
    assert_refused(
        &with_top(r#""with_request_body": {"max_request_bytes": 0}"#),
        "with_request_body.max_request_bytes",
        "greater than 0",
    );
    assert_refused(
        &with_top(r#""with_request_body": {"max_request_bytes": -1}"#),
        "with_request_body.max_request_bytes",
        "invalid value",
    );
    assert_refused(
        &with_top(r#""with_request_body": {}"#),
        "with_request_body",
        "max_request_bytes",
    );
}

#[test]
fn transport_api_version() {
    assert_eq!(
        parse(&with_top(r#""transport_api_version": "V3""#)),
        parse(MINIMAL)
    );
    assert_refused(
        &with_top(r#""transport_api_version": "V2""#),
        "transport_api_version",
        "V3",
    );
    assert_refused(
        &with_top(r#""transport_api_version": "AUTO""#),
        "transport_api_version",
        "V3",
    );
    assert_refused(
        &with_top(r#""transport_api_version": 3"#),
        "transport_api_version",
        "invalid type",
    );
}

#[test]
fn initial_metadata() {
    let metadata = |entries: &str| {
        with_grpc_service(&format!(
            r#"{{"envoy_grpc": {{"cluster_name": "c"}}, "initial_metadata": [{entries}]}}"#
        ))
    };
    let config = parse(&metadata(
        r#"{"key": "X-Api-Key", "value": "s3cr3t"}, {"key": "x-b3-flags", "value": "1"}"#,
    ));
    assert_eq!(
        config.service.grpc().unwrap().initial_metadata,
        vec![
            ("x-api-key".to_owned(), "s3cr3t".to_owned()),
            ("x-b3-flags".to_owned(), "1".to_owned())
        ]
    );

    for bad_key in ["", "bad key", ":authority", "x:y", "caf\u{e9}", "a\\nb"] {
        let json = metadata(&format!(
            r#"{{"key": "ok"}}, {{"key": {}, "value": "v"}}"#,
            serde_json::to_string(bad_key).unwrap()
        ));
        assert_refused(
            &json,
            "grpc_service.initial_metadata[1].key",
            "not a valid gRPC metadata key",
        );
    }
    for bad_value in ["a\nb", "a\rb", "a\u{0}b"] {
        let json = metadata(&format!(
            r#"{{"key": "k", "value": {}}}"#,
            serde_json::to_string(bad_value).unwrap()
        ));
        assert_refused(
            &json,
            "grpc_service.initial_metadata[0].value",
            "NUL, CR or LF",
        );
    }
    assert_refused(
        &metadata(r#"{"value": "v"}"#),
        "grpc_service.initial_metadata[0]",
        "missing field `key`",
    );
}

#[test]
fn context_extensions_encode_as_the_attribute_context_map() {
    let config = parse(&with_top(
        r#""context_extensions": {"virtual_host": "backend", "unicode": "caf\u00e9 \u2603", "empty": "", "z": "last"}"#,
    ));
    let decoded = decode_context_extensions(&config.context_extensions.encoded);
    let expected: HashMap<String, String> = [
        ("virtual_host", "backend"),
        ("unicode", "café ☃"),
        ("empty", ""),
        ("z", "last"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    assert_eq!(decoded, expected);
    assert_eq!(config.context_extensions.entries.len(), 4);

    // A long value needs multi-byte length prefixes.
    let long = "v".repeat(1000);
    let config = parse(&with_top(&format!(
        r#""context_extensions": {{"long": "{long}"}}"#
    )));
    assert_eq!(
        decode_context_extensions(&config.context_extensions.encoded)["long"],
        long
    );

    assert_refused(
        &with_top(r#""context_extensions": {"": "v"}"#),
        "context_extensions",
        "empty",
    );
}

#[test]
fn target_decodes_as_envoy_grpc_service() {
    let config = parse(
        r#"{"grpc_service": {"envoy_grpc": {
            "cluster_name": "outbound|9000||ext-authz.ns.svc.cluster.local",
            "authority": "ext-authz.ns.svc.cluster.local"}}}"#,
    );
    assert_eq!(
        config.service.grpc().unwrap().cluster_name,
        "outbound|9000||ext-authz.ns.svc.cluster.local"
    );
    let envoy_grpc = decode_target(&config.service.grpc().unwrap().target);
    assert_eq!(
        envoy_grpc.cluster_name,
        "outbound|9000||ext-authz.ns.svc.cluster.local"
    );
    assert_eq!(envoy_grpc.authority, "ext-authz.ns.svc.cluster.local");
    assert_eq!(envoy_grpc.retry_policy, None);

    let istio = parse(
        r#"{"grpc_service": {"envoy_grpc": {"cluster_name": "outbound|9000||ext-authz.ns.svc.cluster.local"}}}"#,
    );
    let envoy_grpc = decode_target(&istio.service.grpc().unwrap().target);
    assert_eq!(
        envoy_grpc.cluster_name,
        "outbound|9000||ext-authz.ns.svc.cluster.local"
    );
    assert_eq!(envoy_grpc.authority, "");
}

#[test]
fn long_target_names_cross_whole() {
    let config_for = |cluster: &str, authority: &str| {
        with_grpc_service(&format!(
            r#"{{"envoy_grpc": {{"cluster_name": "{cluster}", "authority": "{authority}"}}}}"#
        ))
    };
    // Any length, with multi-byte length prefixes, and non-ASCII names, decode back intact.
    for (cluster_len, authority_len) in [(1, 0), (60, 63), (123, 1), (200, 300), (5000, 10)] {
        let cluster = format!("{}é", "c".repeat(cluster_len));
        let authority = "a".repeat(authority_len);
        let config = parse(&config_for(&cluster, &authority));
        let envoy_grpc = decode_target(&config.service.grpc().unwrap().target);
        assert_eq!(
            (envoy_grpc.cluster_name, envoy_grpc.authority),
            (cluster, authority)
        );
    }
}
