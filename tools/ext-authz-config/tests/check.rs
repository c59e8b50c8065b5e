//! `ext-authz-config check` on good and bad configs, bare and inside an Envoy bootstrap or an Istio
//! WasmPlugin: the verdict is the filter's, each error sits on the line of its field, and the exit
//! code tells.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::process::Command;

use common::{example_files, good_files, BAD};
use ext_authz_config::check::{check, Severity};
use ext_authz_filter::config::Config;

/// The (line, field) of each error of a text.
fn errors(text: &str) -> Vec<(usize, String)> {
    check(text)
        .errors()
        .map(|f| (f.line, f.field.clone()))
        .collect()
}

#[test]
fn accepts_the_good_configs() {
    for file in good_files() {
        let report = check(&std::fs::read_to_string(&file).unwrap());
        assert!(
            report.is_ok(),
            "{}:\n{}",
            file.display(),
            report.render("file")
        );
    }
}

#[test]
fn accepts_every_example_config_and_finds_its_plugin_configs() {
    let mut found = 0;
    for file in example_files() {
        let text = std::fs::read_to_string(&file).unwrap();
        let report = check(&text);
        let oks = report
            .findings
            .iter()
            .filter(|f| f.severity == Severity::Ok)
            .count();
        let name = file.display().to_string();
        let expected = if name.ends_with("envoy.yaml") || name.ends_with("wasmplugin.yaml") {
            1
        } else {
            continue;
        };
        assert!(report.is_ok(), "{name}:\n{}", report.render(&name));
        assert_eq!(oks, expected, "{name}:\n{}", report.render(&name));
        found += oks;
    }
    assert!(
        found >= 3,
        "envoy/envoy.yaml, examples/docker/envoy.yaml, the WasmPlugin"
    );
}

#[test]
fn refuses_the_bad_configs_naming_the_filters_field() {
    for bad in BAD {
        let filter_error = Config::parse(bad.json.as_bytes())
            .map(|_| ())
            .expect_err(bad.name);
        assert_eq!(filter_error.field, bad.field, "{}", bad.name);
        let report = check(bad.json);
        let errors: Vec<_> = report.errors().collect();
        assert_eq!(
            errors.len(),
            1,
            "{}: {}",
            bad.name,
            report.render("bad.json")
        );
        assert_eq!(errors[0].field, filter_error.field, "{}", bad.name);
        assert_eq!(errors[0].message, filter_error.reason, "{}", bad.name);
    }
}

#[test]
fn places_errors_on_their_line_in_json() {
    let text = r#"{
  "grpcService": {
    "envoyGrpc": {"clusterName": "a"},
    "initialMetadata": [
      {"key": "ok"},
      {"key": "bad key"}
    ]
  }
}"#;
    assert_eq!(
        errors(text),
        [(6, "grpc_service.initial_metadata[1].key".to_owned())]
    );
}

#[test]
fn places_errors_on_their_line_in_yaml() {
    let text = "\
grpc_service:
  envoy_grpc:
    cluster_name: a
  timeout: 5
";
    assert_eq!(errors(text), [(4, "grpc_service.timeout".to_owned())]);
    // A missing field: the line of what should hold it.
    let text = "\
failure_mode_allow: true
grpc_service:
  timeout: 1s
";
    assert_eq!(errors(text), [(2, "grpc_service.envoy_grpc".to_owned())]);
}

/// An Envoy bootstrap with the configuration in a literal block, as the examples write it.
const BOOTSTRAP: &str = r#"static_resources:
  listeners:
  - name: ingress
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          http_filters:
          - name: envoy.filters.http.wasm
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm
              config:
                name: my_plugin
                failure_policy: FAIL_OPEN
                vm_config:
                  code: { local: { filename: /etc/envoy/ext_authz.wasm } }
                configuration:
                  "@type": type.googleapis.com/google.protobuf.StringValue
                  value: |
                    {
                      "grpc_service": {
                        "envoy_grpc": { "cluster_name": "ext_authz" },
                        "timeout": "0s"
                      }
                    }
          - name: envoy.filters.http.wasm
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm
              config:
                name: someone_elses_plugin
                vm_config:
                  code: { local: { filename: /etc/envoy/other.wasm } }
          - name: envoy.filters.http.wasm
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm
              config:
                name: ext_authz
                configuration:
                  "@type": type.googleapis.com/google.protobuf.StringValue
                  value: '{"grpc_service": {"envoy_grpc": {"cluster_name": "x"}}, "oops": 1}'
"#;

#[test]
fn checks_each_ext_authz_filter_of_a_bootstrap_on_its_line() {
    let report = check(BOOTSTRAP);
    let errors: Vec<_> = report
        .errors()
        .map(|f| (f.line, f.field.as_str()))
        .collect();
    // The first filter loads an ext_authz module; the second is not this module's; the third is
    // named ext_authz.
    assert_eq!(errors, [(24, "grpc_service.timeout"), (41, "oops")]);
    let warnings: Vec<_> = report
        .findings
        .iter()
        .filter(|f| f.severity == Severity::Warning)
        .collect();
    assert_eq!(warnings.len(), 1, "FAIL_OPEN is worth a warning");
    assert!(warnings[0].message.contains("skip authorization"));
}

#[test]
fn a_bootstrap_without_the_filter_is_an_error() {
    let text = BOOTSTRAP.replace("ext_authz", "something");
    let report = check(&text);
    assert!(!report.is_ok());
    assert!(
        report.render("f").contains("no wasm filter of this module"),
        "{}",
        report.render("f")
    );
}

#[test]
fn checks_wasmplugins_among_other_manifests() {
    let text = "\
apiVersion: v1
kind: Service
metadata: {name: ext-authz}
---
apiVersion: extensions.istio.io/v1alpha1
kind: WasmPlugin
metadata:
  name: ext-authz
  namespace: foo
spec:
  url: oci://registry/ext-authz:1
  failStrategy: FAIL_OPEN
  pluginConfig:
    grpc_service:
      envoy_grpc:
        cluster_name: outbound|9001||ext-authz.foo.svc.cluster.local
      timeout: 0.5s
    status_on_error:
      code: 600
";
    let report = check(text);
    let errors: Vec<_> = report.errors().collect();
    assert_eq!(errors.len(), 1, "{}", report.render("f"));
    assert_eq!(
        (errors[0].line, errors[0].field.as_str()),
        (19, "status_on_error.code")
    );
    assert!(errors[0].origin.contains("foo/ext-authz"));
    assert!(report
        .findings
        .iter()
        .any(|f| f.severity == Severity::Warning && f.message.contains("FAIL_OPEN")));
    // Numbers from a Struct arrive as protobuf JSON prints doubles: 403, not 403.0.
    assert!(check(&text.replace("600", "403.0")).is_ok());
    // No pluginConfig: Istio sends no configuration at all.
    let bare = text.split("  pluginConfig:").next().unwrap();
    assert_eq!(errors_of(bare), [""]);
}

fn errors_of(text: &str) -> Vec<String> {
    check(text).errors().map(|f| f.field.clone()).collect()
}

#[test]
fn a_file_without_plugin_configs_is_an_error() {
    let report = check("apiVersion: v1\nkind: Service\nmetadata: {name: x}\n");
    assert!(!report.is_ok());
    assert!(!check("a: [1\n").is_ok());
}

#[test]
fn the_binary_prints_ok_or_each_error_and_exits_accordingly() {
    let dir = std::env::temp_dir().join(format!("ext-authz-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.yaml");
    std::fs::write(&bad, BOOTSTRAP).unwrap();
    let good = &good_files()[0];
    let run = |args: &[&std::path::Path]| {
        Command::new(env!("CARGO_BIN_EXE_ext-authz-config"))
            .arg("check")
            .args(args)
            .output()
            .unwrap()
    };

    let output = run(&[good]);
    assert!(output.status.success());
    assert!(String::from_utf8_lossy(&output.stdout).ends_with("OK\n"));

    let output = run(&[&bad]);
    assert_eq!(output.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let name = bad.display();
    assert!(
        stdout.contains(&format!(
            "{name}:24:25: error: grpc_service.timeout: must be greater than 0s"
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("{name}:41: error: oops: unknown field")),
        "{stdout}"
    );
    assert!(stdout.ends_with("2 errors\n"), "{stdout}");

    let output = run(&[&dir.join("missing.yaml")]);
    assert_eq!(output.status.code(), Some(2));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn checks_a_struct_configuration_as_envoy_hands_it_over() {
    let text = r#"static_resources:
  listeners:
  - name: ingress
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          http_filters:
          - name: envoy.filters.http.wasm
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm
              config:
                name: ext_authz
                configuration:
                  "@type": type.googleapis.com/google.protobuf.Struct
                  value:
                    grpc_service:
                      envoy_grpc: {cluster_name: ext_authz}
                    status_on_error: {code: 403}
"#;
    let report = check(text);
    assert!(report.is_ok(), "{}", report.render("f"));
    let bad = text.replace("code: 403", "code: 42");
    assert_eq!(errors(&bad), [(20, "status_on_error.code".to_owned())]);
}

#[test]
fn checks_the_ext_authz_entries_of_an_envoy_extension_policy() {
    let text = "\
apiVersion: gateway.envoyproxy.io/v1alpha1
kind: EnvoyExtensionPolicy
metadata:
  name: ext-authz
  namespace: foo
spec:
  targetRefs:
  - {group: gateway.networking.k8s.io, kind: Gateway, name: eg}
  wasm:
  - name: another-plugin
    code: {type: HTTP, http: {url: https://example.com/other.wasm}}
    config: {anything: 1}
  - name: authz
    code: {type: Image, image: {url: registry/ext-authz-wasm:0.1.0}}
    failOpen: true
    config:
      grpc_service:
        envoy_grpc:
          cluster_name: httproute/foo/ext-authz/rule/0
        timeout: 0.5s
      status_on_error:
        code: 600
";
    let report = check(text);
    let errors: Vec<_> = report.errors().collect();
    assert_eq!(errors.len(), 1, "{}", report.render("f"));
    assert_eq!(
        (errors[0].line, errors[0].field.as_str()),
        (22, "status_on_error.code")
    );
    assert!(errors[0].origin.contains("foo/ext-authz\" spec.wasm[1]"));
    assert!(report
        .findings
        .iter()
        .any(|f| f.severity == Severity::Warning && f.message.contains("failOpen")));
    // Envoy Gateway hands the config over as the JSON the API server keeps: 403 stays an integer.
    assert!(check(&text.replace("600", "403")).is_ok());
    // Without `config`, the filter gets an empty configuration, which it refuses.
    let bare = text.split("    config:\n      grpc").next().unwrap();
    assert!(!check(bare).is_ok());
    // A policy with no entry of this module is some other object.
    let other = text.split("  - name: authz").next().unwrap();
    assert!(check(other)
        .errors()
        .any(|f| f.message.contains("no plugin configuration found")));
}

/// The (line, column, field, message) of each error of a text, in the report's order.
fn placed(text: &str) -> Vec<(usize, Option<usize>, String, String)> {
    check(text)
        .errors()
        .map(|f| (f.line, f.column, f.field.clone(), f.message.clone()))
        .collect()
}

#[test]
fn reports_every_error_of_a_json_file_at_its_line_and_column() {
    let text = r#"{
  "grpc_service": {
    "envoy_grpc": {"cluster_name": "ext_authz"},
    "timeout": "0.25"
  },
  "failure_mode_alow": true,
  "status_on_error": {"code": 700},
  "grpcService_x": 1
}"#;
    let found = placed(text);
    assert_eq!(
        found,
        [
            (
                4,
                Some(5),
                "grpc_service.timeout".to_owned(),
                r#"duration "0.25" is not a protobuf JSON duration: durations are seconds with up to nine decimals and end in "s", such as "0.25s""#.to_owned()
            ),
            (
                6,
                Some(3),
                "failure_mode_alow".to_owned(),
                "unknown field `failure_mode_alow`: did you mean `failure_mode_allow`?".to_owned()
            ),
            (
                7,
                Some(23),
                "status_on_error.code".to_owned(),
                "700 is not an HTTP status between 200 and 599".to_owned()
            ),
            (
                8,
                Some(3),
                "grpcService_x".to_owned(),
                "unknown field `grpcService_x`: did you mean `grpc_service`?".to_owned()
            ),
        ]
    );
    // The same messages as the module logs at load: one code.
    let filter: Vec<String> = Config::parse_all(text.as_bytes())
        .unwrap_err()
        .errors()
        .iter()
        .map(|e| e.reason.clone())
        .collect();
    let mut ours: Vec<String> = found.into_iter().map(|(.., message)| message).collect();
    let mut theirs = filter;
    ours.sort();
    theirs.sort();
    assert_eq!(ours, theirs);
    let rendered = check(text).render("my.json");
    assert!(rendered.contains("my.json:6:3: error: failure_mode_alow: unknown field `failure_mode_alow`: did you mean `failure_mode_allow`? [plugin configuration]\n"), "{rendered}");
    assert!(rendered.ends_with("4 errors\n"), "{rendered}");
}

#[test]
fn reports_every_error_of_a_wasmplugin_in_yaml() {
    let text = "\
apiVersion: extensions.istio.io/v1alpha1
kind: WasmPlugin
metadata:
  name: ext-authz
  namespace: foo
spec:
  url: oci://registry/ext-authz:1
  pluginConfig:
    grpcService:
      envoyGrpc:
        clusterNme: outbound|9001||ext-authz.foo.svc.cluster.local
      timeout: 250ms
    failureModeAlow: true
    with_request_body:
      max_request_bytes: -5
";
    assert_eq!(
        placed(text),
        [
            (
                11,
                Some(9),
                "grpcService.envoyGrpc.clusterNme".to_owned(),
                "unknown field `clusterNme`: did you mean `cluster_name`?".to_owned()
            ),
            (
                12,
                Some(7),
                "grpcService.timeout".to_owned(),
                r#"duration "250ms" is not a protobuf JSON duration: durations are seconds with up to nine decimals and end in "s", such as "0.25s""#.to_owned()
            ),
            (
                13,
                Some(5),
                "failureModeAlow".to_owned(),
                "unknown field `failureModeAlow`: did you mean `failure_mode_allow`?".to_owned()
            ),
            (
                15,
                Some(7),
                "with_request_body.max_request_bytes".to_owned(),
                // A Struct's number, as Istio hands it over (-5.0), read as protobuf JSON does.
                "invalid value: integer `-5`, expected a whole number from 0 to 4294967295".to_owned()
            ),
        ]
    );
}

#[test]
fn reports_every_error_of_two_plugins_of_a_bootstrap() {
    let text = BOOTSTRAP
        .replace(
            r#""timeout": "0s""#,
            r#""timeout": "0s",
                        "initialMetadata": {"key": "k"}"#,
        )
        .replace(
            r#""oops": 1}'"#,
            r#""stat_prefix": 5, "failure_mode_alow": true}'"#,
        );
    let found = placed(&text);
    let at: Vec<(usize, Option<usize>, &str)> = found
        .iter()
        .map(|(l, c, f, _)| (*l, *c, f.as_str()))
        .collect();
    assert_eq!(
        at,
        [
            (24, Some(25), "grpc_service.timeout"),
            (25, Some(25), "grpc_service.initialMetadata"),
            // A quoted one-line string: its line, but not its columns, are the config's.
            (42, None, "failure_mode_alow"),
            (42, None, "stat_prefix"),
        ],
        "{found:?}"
    );
    assert_eq!(found[1].3, "invalid type: map, expected a list");
    assert_eq!(found[3].3, "invalid type: integer `5`, expected a string");
}
