//! `ext-authz-config check FILE...` prints `OK` or each error with its line and field path, and
//! exits 1 on errors (2 on a usage or read error). `ext-authz-config schema` prints the JSON Schema.

use std::process::ExitCode;

use ext_authz_config::{check, schema};

const USAGE: &str = "\
usage: ext-authz-config check FILE...   check plugin configs: a JSON/YAML plugin config, an Envoy
                                        bootstrap (its ext_authz wasm filters) or Kubernetes
                                        manifests (their Istio WasmPlugins)
       ext-authz-config schema          print the plugin config's JSON Schema";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("check") if args.len() > 1 => {
            let mut failed = false;
            for file in &args[1..] {
                let text = match std::fs::read_to_string(file) {
                    Ok(text) => text,
                    Err(error) => {
                        eprintln!("{file}: cannot read: {error}");
                        return ExitCode::from(2);
                    }
                };
                let report = check::check(&text);
                print!("{}", report.render(file));
                failed |= !report.is_ok();
            }
            if failed {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            }
        }
        Some("schema") if args.len() == 1 => {
            print!("{}", schema::render());
            ExitCode::SUCCESS
        }
        Some("-h" | "--help" | "help") => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
    }
}
