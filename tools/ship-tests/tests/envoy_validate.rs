//! Every Envoy config in `envoy/` and `examples/` passes `envoy --mode validate` with the real
//! module: Envoy loads the module and runs its `on_configure` on the plugin config, so a config the
//! filter refuses fails here too (shown by the last test).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::Command;

use host_tests::envoy::{envoy_bin, wasm_module};
use ship_tests::{load, module_files, workspace_root, yaml_files, YamlFile};

/// Runs `envoy --mode validate` on `text` from the workspace root; returns (success, output).
fn validate(name: &str, text: &str) -> (bool, String) {
    let dir = std::env::temp_dir().join(format!("ship-validate-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join(name.replace('/', "_"));
    std::fs::write(&file, text).unwrap();
    let output = Command::new(envoy_bin())
        .current_dir(workspace_root())
        .args(["--mode", "validate", "--log-level", "warn", "-c"])
        .arg(&file)
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&file);
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success() && log.contains(" OK"), log)
}

/// The file's text with every Wasm module file name pointing at the built module.
fn with_real_module(path: &Path, text: &str) -> String {
    let YamlFile::Envoy(doc) = load(path).unwrap() else {
        panic!("{} is not an Envoy config", path.display());
    };
    let modules = module_files(&doc.to_json(ext_authz_config::yaml::Numbers::AsWritten));
    assert!(
        !modules.is_empty(),
        "{}: no wasm module file in this Envoy config",
        path.display()
    );
    let real = wasm_module().display().to_string();
    let mut text = text.to_owned();
    for module in modules {
        assert!(module.ends_with(".wasm"), "{module}");
        text = text.replace(&format!("filename: {module}"), &format!("filename: {real}"));
    }
    text
}

fn envoy_configs() -> Vec<std::path::PathBuf> {
    let mut files = yaml_files("envoy");
    files.extend(yaml_files("examples"));
    files
        .into_iter()
        .filter(|f| matches!(load(f), Ok(YamlFile::Envoy(_))))
        .collect()
}

#[test]
fn every_yaml_file_is_a_known_kind() {
    let mut files = yaml_files("envoy");
    files.extend(yaml_files("examples"));
    for file in &files {
        if let Err(error) = load(file) {
            panic!("{error}: teach tools/ship-tests what it is, so that it gets checked");
        }
    }
}

#[test]
fn every_envoy_config_passes_validate_mode_with_the_real_module() {
    let configs = envoy_configs();
    let names: Vec<String> = configs
        .iter()
        .map(|f| {
            f.strip_prefix(workspace_root())
                .unwrap()
                .display()
                .to_string()
        })
        .collect();
    for expected in ["envoy/envoy.yaml", "examples/docker/envoy.yaml"] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} not found in {names:?}"
        );
    }
    for (file, name) in configs.iter().zip(&names) {
        let text = std::fs::read_to_string(file).unwrap();
        let (ok, log) = validate(name, &with_real_module(file, &text));
        assert!(ok, "{name} fails `envoy --mode validate`:\n{log}");
    }
}

#[test]
fn validate_mode_runs_the_module_on_the_plugin_config() {
    let file = workspace_root().join("examples/docker/envoy.yaml");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains(r#""timeout": "0.5s""#));
    let broken = text.replace(r#""timeout": "0.5s""#, r#""timeout": "0s""#);
    let (ok, log) = validate("broken.yaml", &with_real_module(&file, &broken));
    assert!(!ok, "a config the filter refuses passed:\n{log}");
    assert!(
        log.contains("grpc_service.timeout: must be greater than 0s"),
        "the module's own error is in the log:\n{log}"
    );
}
