//! Builds the OCI image of the real module with the `wasm-oci` binary, as `make oci` does, then
//! reads it back with code of its own and checks what Istio's image fetcher
//! (`pkg/wasm/imagefetcher.go`) relies on: an OCI (not Docker) manifest whose last layer is
//! `application/vnd.oci.image.layer.v1.tar+gzip` and holds `plugin.wasm`, the module byte for
//! byte; and what every registry checks: digests and sizes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use sha2::{Digest, Sha256};

const TAG: &str = "9.9.9-test";

/// The module `make build` wrote (or `EXT_AUTHZ_WASM`).
fn module_path() -> PathBuf {
    let path = std::env::var_os("EXT_AUTHZ_WASM")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../dist/ext_authz.wasm"));
    assert!(
        path.exists(),
        "no module at {}: run `make build`",
        path.display()
    );
    path
}

fn sha256(bytes: &[u8]) -> String {
    format!(
        "sha256:{}",
        Sha256::digest(bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    )
}

/// Runs the binary as the Makefile does; returns (layout dir, archive path).
fn build(dir: &Path, module: &Path) -> (PathBuf, PathBuf) {
    let layout = dir.join("ext_authz.oci");
    let archive = dir.join("ext_authz.oci.tar");
    let output = Command::new(env!("CARGO_BIN_EXE_wasm-oci"))
        .arg("--wasm")
        .arg(module)
        .arg("--layout")
        .arg(&layout)
        .arg("--archive")
        .arg(&archive)
        .args(["--tag", TAG])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "wasm-oci failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    (layout, archive)
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("wasm-oci-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Every file of a layout directory, by relative path.
fn read_dir_files(root: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let name = path
                    .strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                out.insert(name, std::fs::read(&path).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

/// Every regular file of a tarball, by path.
fn read_tar_files(bytes: &[u8]) -> BTreeMap<String, Vec<u8>> {
    let mut archive = tar::Archive::new(bytes);
    let mut out = BTreeMap::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let kind = entry.header().entry_type();
        let name = entry.path().unwrap().to_string_lossy().into_owned();
        match kind {
            tar::EntryType::Directory => {}
            tar::EntryType::Regular => {
                let mut contents = Vec::new();
                entry.read_to_end(&mut contents).unwrap();
                assert!(out.insert(name.clone(), contents).is_none(), "{name} twice");
            }
            other => panic!("{name}: unexpected tar entry type {other:?}"),
        }
    }
    out
}

/// A blob of the layout that a descriptor points at, checked against the descriptor.
fn blob<'a>(files: &'a BTreeMap<String, Vec<u8>>, descriptor: &Value) -> &'a [u8] {
    let digest = descriptor["digest"].as_str().unwrap();
    let hex = digest.strip_prefix("sha256:").expect("a sha256 digest");
    let bytes = files
        .get(&format!("blobs/sha256/{hex}"))
        .unwrap_or_else(|| panic!("no blob {digest}"));
    assert_eq!(
        sha256(bytes),
        digest,
        "the blob's content matches its digest"
    );
    assert_eq!(
        descriptor["size"].as_u64(),
        Some(bytes.len() as u64),
        "the descriptor's size is the blob's"
    );
    bytes
}

/// Reads an image layout back and checks it is what Istio pulls; returns the manifest digest.
fn check_layout(files: &BTreeMap<String, Vec<u8>>, module: &[u8]) -> String {
    let layout: Value = serde_json::from_slice(&files["oci-layout"]).unwrap();
    assert_eq!(layout, serde_json::json!({"imageLayoutVersion": "1.0.0"}));

    let index: Value = serde_json::from_slice(&files["index.json"]).unwrap();
    assert_eq!(index["schemaVersion"], 2);
    assert_eq!(
        index["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );
    let manifests = index["manifests"].as_array().unwrap();
    assert_eq!(manifests.len(), 1, "one image in the layout");
    let entry = &manifests[0];
    assert_eq!(
        entry["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    assert_eq!(
        entry["annotations"]["org.opencontainers.image.ref.name"],
        TAG
    );

    let manifest: Value = serde_json::from_slice(blob(files, entry)).unwrap();
    assert_eq!(manifest["schemaVersion"], 2);
    // Istio reads a Docker manifest another way; this must be an OCI one.
    assert_eq!(
        manifest["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    assert_eq!(
        manifest["annotations"]["module.wasm.image/variant"],
        "compat"
    );
    assert_eq!(
        manifest["config"]["mediaType"],
        "application/vnd.oci.image.config.v1+json"
    );
    let layers = manifest["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 1, "a single layer");
    assert_eq!(
        layers[0]["mediaType"],
        "application/vnd.oci.image.layer.v1.tar+gzip"
    );

    let compressed = blob(files, &layers[0]);
    let mut layer_tar = Vec::new();
    flate2::read::GzDecoder::new(compressed)
        .read_to_end(&mut layer_tar)
        .unwrap();
    let layer_files = read_tar_files(&layer_tar);
    assert_eq!(
        layer_files.keys().collect::<Vec<_>>(),
        ["plugin.wasm"],
        "the layer holds plugin.wasm only"
    );
    assert!(
        layer_files["plugin.wasm"] == module,
        "plugin.wasm is the module byte for byte"
    );

    let config: Value = serde_json::from_slice(blob(files, &manifest["config"])).unwrap();
    assert_eq!(config["rootfs"]["type"], "layers");
    assert_eq!(
        config["rootfs"]["diff_ids"],
        serde_json::json!([sha256(&layer_tar)]),
        "diff_ids name the uncompressed layer"
    );
    assert!(config["os"].is_string() && config["architecture"].is_string());

    let blobs = files.keys().filter(|k| k.starts_with("blobs/")).count();
    assert_eq!(blobs, 3, "manifest, config and layer, nothing else");
    entry["digest"].as_str().unwrap().to_owned()
}

#[test]
fn the_image_holds_the_module_as_istio_expects_it() {
    let module_path = module_path();
    let module = std::fs::read(&module_path).unwrap();
    let dir = temp_dir("real");
    let (layout, archive) = build(&dir, &module_path);

    let from_dir = read_dir_files(&layout);
    let digest = check_layout(&from_dir, &module);

    // The tarball is the same layout, file for file.
    let from_tar = read_tar_files(&std::fs::read(&archive).unwrap());
    assert_eq!(from_tar, from_dir);
    assert_eq!(check_layout(&from_tar, &module), digest);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_image_is_reproducible() {
    let module_path = module_path();
    let dirs = [temp_dir("again-1"), temp_dir("again-2")];
    let archives: Vec<Vec<u8>> = dirs
        .iter()
        .map(|dir| std::fs::read(build(dir, &module_path).1).unwrap())
        .collect();
    assert!(archives[0] == archives[1], "same module, same bytes");
    for dir in dirs {
        let _ = std::fs::remove_dir_all(dir);
    }
}

#[test]
fn refuses_a_file_that_is_not_wasm() {
    let dir = temp_dir("not-wasm");
    let not_wasm = dir.join("plugin.txt");
    std::fs::write(&not_wasm, "hello").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_wasm-oci"))
        .arg("--wasm")
        .arg(&not_wasm)
        .arg("--layout")
        .arg(dir.join("layout"))
        .arg("--archive")
        .arg(dir.join("archive.tar"))
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("not a WebAssembly module"));
    assert!(!dir.join("layout").exists());
    let _ = std::fs::remove_dir_all(&dir);
}
