//! `example-backend`: the upstream that `make run` and the benchmarks put
//! behind Envoy.
//!
//! It speaks HTTP/1.1 and h2c (prior knowledge) on one port and answers every
//! request with `200 OK` and a plain-text body that echoes what it received:
//! the method and path on the first line, then every request header as
//! `name: value`, one per line. A user running curl through Envoy can so see
//! the headers the filter and the auth server added, for example
//! `x-ext-authz-check-result: allowed`.
//!
//! The request body is read and dropped; its size is returned in the response
//! header `x-backend-request-body-bytes`.
//!
//! Usage: `example-backend [--listen ADDR]`, `ADDR` defaults to `127.0.0.1:8080`.

use std::convert::Infallible;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use http_body_util::{BodyExt as _, Full};
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;

/// Address used when `--listen` is not given.
const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

const USAGE: &str = "usage: example-backend [--listen ADDR]\n\
                     \n\
                     --listen ADDR   address to serve HTTP/1.1 and h2c on, default 127.0.0.1:8080";

/// Answers one request: drains the body, echoes method, path and headers.
async fn echo(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, mut body) = request.into_parts();

    // Read the body so that an HTTP/1.1 connection stays reusable; keep only its size.
    let mut body_bytes: u64 = 0;
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(frame) => {
                if let Some(data) = frame.data_ref() {
                    body_bytes += data.len() as u64;
                }
            }
            // The client went away or sent a broken body: answer anyway, the
            // connection is closed by hyper.
            Err(_) => break,
        }
    }

    let path = parts
        .uri
        .path_and_query()
        .map_or_else(|| parts.uri.path(), |pq| pq.as_str());
    let mut text = String::with_capacity(64 + parts.headers.len() * 48);
    // Writing to a String cannot fail.
    let _ = writeln!(text, "{} {}", parts.method, path);
    for (name, value) in &parts.headers {
        let _ = writeln!(
            text,
            "{}: {}",
            name,
            String::from_utf8_lossy(value.as_bytes())
        );
    }

    let mut response = Response::new(Full::new(Bytes::from(text)));
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(
        "x-backend-request-body-bytes",
        HeaderValue::from(body_bytes),
    );
    Ok(response)
}

/// Parses the arguments (without the program name). `Ok(None)` means `--help`.
fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Option<SocketAddr>, String> {
    let mut listen = DEFAULT_LISTEN.to_owned();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--listen" => {
                listen = args
                    .next()
                    .ok_or_else(|| "--listen needs an address".to_owned())?
            }
            "--help" | "-h" => return Ok(None),
            other => match other.strip_prefix("--listen=") {
                Some(addr) => listen = addr.to_owned(),
                None => return Err(format!("unknown argument `{other}`")),
            },
        }
    }
    listen
        .parse()
        .map(Some)
        .map_err(|e| format!("bad --listen address `{listen}`: {e}"))
}

#[tokio::main]
async fn main() -> ExitCode {
    let addr = match parse_args(std::env::args().skip(1)) {
        Ok(Some(addr)) => addr,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("example-backend: {message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let listener = match TcpListener::bind(addr).await {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("example-backend: cannot listen on {addr}: {e}");
            return ExitCode::from(1);
        }
    };
    println!("example-backend: serving HTTP/1.1 and h2c on {addr}");

    let builder = auto::Builder::new(TokioExecutor::new());
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _peer)) => stream,
            Err(e) => {
                // Typically EMFILE under load: back off briefly instead of spinning.
                eprintln!("example-backend: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let builder = builder.clone();
        tokio::spawn(async move {
            // Errors here are per connection (client reset, bad request): ignore them.
            let _ = builder
                .serve_connection(TokioIo::new(stream), service_fn(echo))
                .await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_arguments() {
        let parse = |args: &[&str]| parse_args(args.iter().map(|s| (*s).to_owned()));
        assert_eq!(
            parse(&[]),
            Ok(Some(DEFAULT_LISTEN.parse().expect("parses")))
        );
        assert_eq!(
            parse(&["--listen", "0.0.0.0:9"]),
            Ok(Some("0.0.0.0:9".parse().expect("parses")))
        );
        assert_eq!(
            parse(&["--listen=127.0.0.1:1"]),
            Ok(Some("127.0.0.1:1".parse().expect("parses")))
        );
        assert_eq!(parse(&["-h"]), Ok(None));
        assert!(parse(&["--listen"]).is_err());
        assert!(parse(&["x"]).is_err());
    }
}
