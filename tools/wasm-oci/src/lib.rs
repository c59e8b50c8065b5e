//! Packs a Wasm module as an OCI image the way Istio pulls it, with no container daemon.
//!
//! Istio's agent (`pkg/wasm/imagefetcher.go`) accepts three shapes. This writes the one every
//! registry and tool takes, the Wasm image spec's *compat* variant
//! (<https://github.com/solo-io/wasm/blob/master/spec/spec-compat.md>): an OCI image manifest
//! with a single `application/vnd.oci.image.layer.v1.tar+gzip` layer holding `plugin.wasm`, and
//! the `module.wasm.image/variant: compat` annotation. (The *oci* variant with the
//! `application/vnd.module.wasm.content.layer.v1+wasm` layer type needs exactly two layers in
//! Istio, and many registries refuse unknown layer types.)
//!
//! The image is written as an OCI image layout directory and as the same layout in a tarball
//! (an `oci-archive`), byte for byte reproducible: fixed timestamps, owners and modes.

use std::io::{self, Write};
use std::path::Path;

use flate2::{Compression, GzBuilder};
use serde_json::json;
use sha2::{Digest, Sha256};

pub const INDEX_MEDIA_TYPE: &str = "application/vnd.oci.image.index.v1+json";
pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.oci.image.config.v1+json";
pub const LAYER_MEDIA_TYPE: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// The file in the layer that Istio loads.
pub const MODULE_FILE: &str = "plugin.wasm";
/// The compat variant's manifest annotation.
pub const VARIANT_ANNOTATION: (&str, &str) = ("module.wasm.image/variant", "compat");
/// The index annotation that names a manifest (the tag of `oci:DIR:TAG`).
pub const REF_NAME_ANNOTATION: &str = "org.opencontainers.image.ref.name";

/// Content-addressed bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blob {
    pub media_type: &'static str,
    pub bytes: Vec<u8>,
}

impl Blob {
    /// `sha256:<hex>`.
    pub fn digest(&self) -> String {
        sha256_digest(&self.bytes)
    }

    pub fn hex(&self) -> String {
        hex(&Sha256::digest(&self.bytes))
    }

    /// The OCI descriptor that points at this blob.
    pub fn descriptor(&self) -> serde_json::Value {
        json!({"mediaType": self.media_type, "digest": self.digest(), "size": self.bytes.len()})
    }
}

/// The three blobs of the image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    pub manifest: Blob,
    pub config: Blob,
    pub layer: Blob,
}

/// Why a module cannot be packed.
#[derive(Debug)]
pub enum Error {
    NotWasm,
    Io(io::Error),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NotWasm => f.write_str("not a WebAssembly module (no \\0asm magic)"),
            Self::Io(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        Self::Io(e)
    }
}

/// Builds the image of `module`.
pub fn image(module: &[u8]) -> Result<Image, Error> {
    if !module.starts_with(b"\0asm") {
        return Err(Error::NotWasm);
    }
    let layer_tar = tar_of(&[(MODULE_FILE, module)])?;
    let diff_id = sha256_digest(&layer_tar);
    let layer = Blob {
        media_type: LAYER_MEDIA_TYPE,
        bytes: gzip(&layer_tar)?,
    };
    // OCI image config: os and architecture as Go names them for this target (GOOS=wasip1,
    // GOARCH=wasm); nothing else is needed to pull the image.
    let config = Blob {
        media_type: CONFIG_MEDIA_TYPE,
        bytes: to_json(&json!({
            "architecture": "wasm",
            "os": "wasip1",
            "config": {},
            "rootfs": {"type": "layers", "diff_ids": [diff_id]}
        })),
    };
    let (variant_key, variant_value) = VARIANT_ANNOTATION;
    let manifest = Blob {
        media_type: MANIFEST_MEDIA_TYPE,
        bytes: to_json(&json!({
            "schemaVersion": 2,
            "mediaType": MANIFEST_MEDIA_TYPE,
            "config": config.descriptor(),
            "layers": [layer.descriptor()],
            "annotations": {variant_key: variant_value}
        })),
    };
    Ok(Image {
        manifest,
        config,
        layer,
    })
}

impl Image {
    /// The files of an OCI image layout naming the image `tag`: `(path, contents)`, directories
    /// first.
    pub fn layout_files(&self, tag: &str) -> Vec<(String, Vec<u8>)> {
        let mut manifest = self.manifest.descriptor();
        manifest["annotations"] = json!({ REF_NAME_ANNOTATION: tag });
        let index = json!({
            "schemaVersion": 2,
            "mediaType": INDEX_MEDIA_TYPE,
            "manifests": [manifest]
        });
        let mut files = vec![
            (
                "oci-layout".to_owned(),
                to_json(&json!({"imageLayoutVersion": "1.0.0"})),
            ),
            ("index.json".to_owned(), to_json(&index)),
        ];
        for blob in [&self.manifest, &self.config, &self.layer] {
            files.push((format!("blobs/sha256/{}", blob.hex()), blob.bytes.clone()));
        }
        files
    }

    /// Writes the OCI image layout into `dir` (created; an existing layout is replaced).
    pub fn write_layout(&self, dir: &Path, tag: &str) -> io::Result<()> {
        if dir.join("oci-layout").exists() {
            std::fs::remove_dir_all(dir)?;
        }
        for (path, bytes) in self.layout_files(tag) {
            let path = dir.join(path);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(path, bytes)?;
        }
        Ok(())
    }

    /// The layout as a tarball (an `oci-archive`).
    pub fn archive(&self, tag: &str) -> io::Result<Vec<u8>> {
        let files = self.layout_files(tag);
        let entries: Vec<(&str, &[u8])> = files
            .iter()
            .map(|(p, b)| (p.as_str(), b.as_slice()))
            .collect();
        tar_of(&entries)
    }
}

/// A reproducible ustar archive of `files`, with the directories their paths need.
fn tar_of(files: &[(&str, &[u8])]) -> io::Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut dirs: Vec<String> = Vec::new();
    for (path, bytes) in files {
        let parts: Vec<&str> = path.split('/').collect();
        let mut parent = String::new();
        for part in &parts[..parts.len() - 1] {
            parent.push_str(part);
            parent.push('/');
            if !dirs.contains(&parent) {
                dirs.push(parent.clone());
                let mut header = header(tar::EntryType::Directory, 0o755, 0);
                builder.append_data(&mut header, &parent, io::empty())?;
            }
        }
        let mut header = header(tar::EntryType::Regular, 0o644, bytes.len() as u64);
        builder.append_data(&mut header, path, *bytes)?;
    }
    builder.into_inner()
}

fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut header = tar::Header::new_ustar();
    header.set_entry_type(kind);
    header.set_mode(mode);
    header.set_size(size);
    header.set_mtime(0);
    header.set_uid(0);
    header.set_gid(0);
    header
}

fn gzip(bytes: &[u8]) -> io::Result<Vec<u8>> {
    // No file name and mtime 0 in the gzip header, so the digest depends on the module only.
    let mut encoder = GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), Compression::best());
    encoder.write_all(bytes)?;
    encoder.finish()
}

fn to_json(value: &serde_json::Value) -> Vec<u8> {
    serde_json::to_vec(value).unwrap_or_default()
}

fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex(&Sha256::digest(bytes)))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
