//! `wasm-oci`: writes a Wasm module as an OCI image layout directory and tarball that Istio pulls.
//!
//! Usage: `wasm-oci --wasm FILE --layout DIR --archive FILE [--tag TAG]`. The tag defaults to the
//! crate version; it names the image inside the layout (`oci:DIR:TAG` for skopeo).

use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "usage: wasm-oci --wasm FILE --layout DIR --archive FILE [--tag TAG]";

struct Args {
    wasm: PathBuf,
    layout: PathBuf,
    archive: PathBuf,
    tag: String,
}

fn parse_args() -> Result<Args, String> {
    let (mut wasm, mut layout, mut archive) = (None, None, None);
    let mut tag = env!("CARGO_PKG_VERSION").to_owned();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--wasm" => wasm = Some(PathBuf::from(value()?)),
            "--layout" => layout = Some(PathBuf::from(value()?)),
            "--archive" => archive = Some(PathBuf::from(value()?)),
            "--tag" => tag = value()?,
            _ => return Err(format!("unknown argument {arg:?}")),
        }
    }
    match (wasm, layout, archive) {
        (Some(wasm), Some(layout), Some(archive)) => Ok(Args {
            wasm,
            layout,
            archive,
            tag,
        }),
        _ => Err("--wasm, --layout and --archive are required".into()),
    }
}

fn run(args: &Args) -> Result<(), String> {
    let module = std::fs::read(&args.wasm)
        .map_err(|e| format!("cannot read {}: {e}", args.wasm.display()))?;
    let image = wasm_oci::image(&module).map_err(|e| format!("{}: {e}", args.wasm.display()))?;
    image
        .write_layout(&args.layout, &args.tag)
        .map_err(|e| format!("cannot write {}: {e}", args.layout.display()))?;
    let archive = image
        .archive(&args.tag)
        .and_then(|bytes| std::fs::write(&args.archive, bytes));
    archive.map_err(|e| format!("cannot write {}: {e}", args.archive.display()))?;
    let (layout, tarball) = (args.layout.display(), args.archive.display());
    println!(
        "OCI image of {} ({} bytes)",
        args.wasm.display(),
        module.len()
    );
    println!("  manifest {}", image.manifest.digest());
    println!(
        "  layer    {} ({} bytes, {})",
        image.layer.digest(),
        image.layer.bytes.len(),
        wasm_oci::MODULE_FILE
    );
    println!("  layout   {layout} (tag {})", args.tag);
    println!("  archive  {tarball}");
    println!("push it with one of:");
    println!(
        "  oras cp --from-oci-layout {layout}:{} REGISTRY/REPO:{}",
        args.tag, args.tag
    );
    println!("  crane push {layout} REGISTRY/REPO:{}", args.tag);
    println!(
        "  skopeo copy oci-archive:{tarball}:{} docker://REGISTRY/REPO:{}",
        args.tag, args.tag
    );
    Ok(())
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(error) => {
            eprintln!("wasm-oci: {error}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("wasm-oci: {error}");
            ExitCode::FAILURE
        }
    }
}
