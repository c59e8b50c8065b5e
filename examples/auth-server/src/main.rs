//! `example-auth-server`: a small Envoy external-authorization gRPC server.
//!
//! It serves `envoy.service.auth.v3.Authorization/Check` over h2c and is what
//! `make run` and the benchmarks put behind the `ext_authz` cluster. The rules
//! follow the Istio `ext-authz` sample and the Gloo "passthrough" sample:
//!
//! * **allow** when the request carries `x-ext-authz: allow` or
//!   `authorization: authorize me`. The OK response tells Envoy to set the
//!   request header `x-ext-authz-check-result: allowed` before the request goes
//!   upstream (append action `OVERWRITE_IF_EXISTS_OR_ADD`, so a client cannot
//!   forge it).
//! * **deny** otherwise: `403 Forbidden`, response header
//!   `x-ext-authz-check-result: denied` and a plain-text body that says why.
//!
//! Header names in a `CheckRequest` are lower-case (Envoy lower-cases them).
//! Both the `headers` map and the `header_map` list (sent by Envoy when
//! `encode_raw_headers` is on) are read.
//!
//! Usage: `example-auth-server [--listen ADDR] [--quiet]`. `ADDR` defaults to
//! `127.0.0.1:9001`. Without `--quiet`, one line per check goes to stdout:
//! method, path and decision.

use std::io::Write as _;
use std::net::SocketAddr;
use std::process::ExitCode;

use envoy_types::ext_authz::v3::pb::{
    Authorization, AuthorizationServer, CheckRequest, CheckResponse, DeniedHttpResponse,
    HeaderAppendAction, HeaderValue, HeaderValueOption, HttpResponse, HttpStatus, HttpStatusCode,
    OkHttpResponse,
};
use envoy_types::pb::google::rpc;
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status};

/// Address used when `--listen` is not given.
const DEFAULT_LISTEN: &str = "127.0.0.1:9001";

/// Header that the response sets, on the upstream request (allowed) or on the
/// local reply (denied).
pub const RESULT_HEADER: &str = "x-ext-authz-check-result";

/// Body of the denied response.
pub const DENIED_BODY: &str = "denied by ext_authz: header `x-ext-authz: allow` or \
                               `authorization: authorize me` is missing\n";

/// gRPC status code `OK`.
const GRPC_OK: i32 = 0;
/// gRPC status code `PERMISSION_DENIED`.
const GRPC_PERMISSION_DENIED: i32 = 7;

/// Returns true when the request carries one of the two allowing headers.
fn is_allowed(request: &CheckRequest) -> bool {
    let Some(http) = request
        .attributes
        .as_ref()
        .and_then(|a| a.request.as_ref())
        .and_then(|r| r.http.as_ref())
    else {
        return false;
    };
    let allows = |key: &str, value: &[u8]| match key {
        "x-ext-authz" => value == b"allow",
        "authorization" => value == b"authorize me",
        _ => false,
    };
    if ["x-ext-authz", "authorization"].iter().any(|key| {
        http.headers
            .get(*key)
            .is_some_and(|v| allows(key, v.as_bytes()))
    }) {
        return true;
    }
    http.header_map.as_ref().is_some_and(|map| {
        map.headers.iter().any(|h| {
            // Envoy fills `raw_value` in a header_map; `value` is the fallback.
            let value = if h.raw_value.is_empty() {
                h.value.as_bytes()
            } else {
                h.raw_value.as_slice()
            };
            allows(h.key.as_str(), value)
        })
    })
}

/// One header to add, overwriting any value already present.
fn overwrite_header(key: &str, value: &str) -> HeaderValueOption {
    #[allow(deprecated)] // `append` is deprecated; it stays unset.
    HeaderValueOption {
        header: Some(HeaderValue {
            key: key.to_owned(),
            value: value.to_owned(),
            raw_value: Vec::new(),
        }),
        append: None,
        append_action: HeaderAppendAction::OverwriteIfExistsOrAdd.into(),
        keep_empty_value: false,
    }
}

/// The authorization rule: a pure function from a check request to its answer.
pub fn authorize(request: &CheckRequest) -> CheckResponse {
    if is_allowed(request) {
        #[allow(deprecated)] // `dynamic_metadata` in OkHttpResponse is deprecated.
        let ok = OkHttpResponse {
            headers: vec![overwrite_header(RESULT_HEADER, "allowed")],
            ..Default::default()
        };
        CheckResponse {
            status: Some(rpc::Status {
                code: GRPC_OK,
                ..Default::default()
            }),
            http_response: Some(HttpResponse::OkResponse(ok)),
            ..Default::default()
        }
    } else {
        CheckResponse {
            status: Some(rpc::Status {
                code: GRPC_PERMISSION_DENIED,
                ..Default::default()
            }),
            http_response: Some(HttpResponse::DeniedResponse(DeniedHttpResponse {
                status: Some(HttpStatus {
                    code: HttpStatusCode::Forbidden.into(),
                }),
                headers: vec![
                    overwrite_header(RESULT_HEADER, "denied"),
                    overwrite_header("content-type", "text/plain"),
                ],
                body: DENIED_BODY.to_owned(),
            })),
            ..Default::default()
        }
    }
}

/// The gRPC service.
struct AuthService {
    /// When false, print one line per check.
    quiet: bool,
}

#[tonic::async_trait]
impl Authorization for AuthService {
    async fn check(
        &self,
        request: Request<CheckRequest>,
    ) -> Result<Response<CheckResponse>, Status> {
        let request = request.into_inner();
        let response = authorize(&request);
        if !self.quiet {
            log_check(&request, &response);
        }
        Ok(Response::new(response))
    }
}

/// Prints `METHOD PATH -> allowed|denied` to stdout; write errors (a closed
/// pipe) are ignored rather than allowed to panic.
fn log_check(request: &CheckRequest, response: &CheckResponse) {
    let http = request
        .attributes
        .as_ref()
        .and_then(|a| a.request.as_ref())
        .and_then(|r| r.http.as_ref());
    let (method, path) = http.map_or(("-", "-"), |h| (h.method.as_str(), h.path.as_str()));
    let decision = match response.http_response {
        Some(HttpResponse::OkResponse(_)) => "allowed",
        _ => "denied",
    };
    let _ = writeln!(std::io::stdout().lock(), "{method} {path} -> {decision}");
}

/// Command-line options.
#[derive(Debug, PartialEq)]
struct Options {
    listen: SocketAddr,
    quiet: bool,
}

const USAGE: &str = "usage: example-auth-server [--listen ADDR] [--quiet]\n\
                     \n\
                     --listen ADDR   address to serve gRPC (h2c) on, default 127.0.0.1:9001\n\
                     --quiet         do not print a line per check";

/// Parses the arguments (without the program name). `Err` carries the message
/// to print; `Ok(None)` means `--help` was asked for.
fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Option<Options>, String> {
    let mut listen = DEFAULT_LISTEN.to_owned();
    let mut quiet = false;
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--quiet" | "-q" => quiet = true,
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
    let listen = listen
        .parse()
        .map_err(|e| format!("bad --listen address `{listen}`: {e}"))?;
    Ok(Some(Options { listen, quiet }))
}

#[tokio::main]
async fn main() -> ExitCode {
    let options = match parse_args(std::env::args().skip(1)) {
        Ok(Some(options)) => options,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("example-auth-server: {message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let incoming = match TcpIncoming::bind(options.listen) {
        Ok(incoming) => incoming.with_nodelay(Some(true)),
        Err(e) => {
            eprintln!(
                "example-auth-server: cannot listen on {}: {e}",
                options.listen
            );
            return ExitCode::from(1);
        }
    };
    println!(
        "example-auth-server: serving ext_authz gRPC on {}",
        options.listen
    );
    let service = AuthorizationServer::new(AuthService {
        quiet: options.quiet,
    });
    match tonic::transport::Server::builder()
        .add_service(service)
        .serve_with_incoming(incoming)
        .await
    {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("example-auth-server: server error: {e}");
            ExitCode::from(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use envoy_types::pb::envoy::config::core::v3::HeaderMap;
    use envoy_types::pb::envoy::service::auth::v3::attribute_context::{
        HttpRequest, Request as AttrRequest,
    };
    use envoy_types::pb::envoy::service::auth::v3::AttributeContext;

    fn request_with(headers: &[(&str, &str)]) -> CheckRequest {
        let http = HttpRequest {
            method: "GET".into(),
            path: "/hello".into(),
            headers: headers
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            ..Default::default()
        };
        request_from_http(http)
    }

    fn request_from_http(http: HttpRequest) -> CheckRequest {
        CheckRequest {
            attributes: Some(AttributeContext {
                request: Some(AttrRequest {
                    http: Some(http),
                    ..Default::default()
                }),
                ..Default::default()
            }),
        }
    }

    fn assert_allowed(response: &CheckResponse) {
        assert_eq!(response.status.as_ref().map(|s| s.code), Some(GRPC_OK));
        let Some(HttpResponse::OkResponse(ok)) = &response.http_response else {
            panic!("expected an OK response, got {response:?}");
        };
        assert_eq!(ok.headers.len(), 1);
        let header = &ok.headers[0];
        let value = header.header.as_ref().expect("header set");
        assert_eq!(value.key, RESULT_HEADER);
        assert_eq!(value.value, "allowed");
        assert_eq!(
            header.append_action,
            i32::from(HeaderAppendAction::OverwriteIfExistsOrAdd)
        );
    }

    fn assert_denied(response: &CheckResponse) {
        assert_eq!(
            response.status.as_ref().map(|s| s.code),
            Some(GRPC_PERMISSION_DENIED)
        );
        let Some(HttpResponse::DeniedResponse(denied)) = &response.http_response else {
            panic!("expected a denied response, got {response:?}");
        };
        assert_eq!(
            denied.status.as_ref().map(|s| s.code),
            Some(i32::from(HttpStatusCode::Forbidden))
        );
        assert_eq!(denied.status.as_ref().map(|s| s.code), Some(403));
        assert!(denied.headers.iter().any(|h| h
            .header
            .as_ref()
            .is_some_and(|v| v.key == RESULT_HEADER && v.value == "denied")));
        assert_eq!(denied.body, DENIED_BODY);
        assert!(denied.body.contains("x-ext-authz: allow"));
    }

    #[test]
    fn allows_x_ext_authz_allow() {
        assert_allowed(&authorize(&request_with(&[("x-ext-authz", "allow")])));
    }

    #[test]
    fn allows_authorization_authorize_me() {
        assert_allowed(&authorize(&request_with(&[(
            "authorization",
            "authorize me",
        )])));
    }

    #[test]
    fn allows_with_other_headers_present() {
        assert_allowed(&authorize(&request_with(&[
            (":authority", "example.com"),
            ("user-agent", "curl"),
            ("x-ext-authz", "allow"),
        ])));
    }

    #[test]
    fn denies_without_headers() {
        assert_denied(&authorize(&request_with(&[])));
    }

    #[test]
    fn denies_wrong_values() {
        for (k, v) in [
            ("x-ext-authz", "deny"),
            ("x-ext-authz", "allow "),
            ("x-ext-authz", "ALLOW"),
            ("authorization", "Bearer abc"),
            ("authorization", "authorize me please"),
            ("x-other", "allow"),
        ] {
            assert_denied(&authorize(&request_with(&[(k, v)])));
        }
    }

    #[test]
    fn denies_empty_request() {
        assert_denied(&authorize(&CheckRequest::default()));
        assert_denied(&authorize(&CheckRequest {
            attributes: Some(AttributeContext::default()),
        }));
    }

    #[test]
    fn reads_header_map_raw_values() {
        let http = HttpRequest {
            header_map: Some(HeaderMap {
                headers: vec![HeaderValue {
                    key: "x-ext-authz".into(),
                    value: String::new(),
                    raw_value: b"allow".to_vec(),
                }],
            }),
            ..Default::default()
        };
        assert_allowed(&authorize(&request_from_http(http)));

        let http = HttpRequest {
            header_map: Some(HeaderMap {
                headers: vec![HeaderValue {
                    key: "authorization".into(),
                    value: String::new(),
                    raw_value: b"authorize me\xff".to_vec(),
                }],
            }),
            ..Default::default()
        };
        assert_denied(&authorize(&request_from_http(http)));
    }

    #[test]
    fn parses_arguments() {
        let parse = |args: &[&str]| parse_args(args.iter().map(|s| (*s).to_owned()));
        assert_eq!(
            parse(&[]),
            Ok(Some(Options {
                listen: DEFAULT_LISTEN.parse().expect("default parses"),
                quiet: false
            }))
        );
        assert_eq!(
            parse(&["--listen", "0.0.0.0:7000", "--quiet"]),
            Ok(Some(Options {
                listen: "0.0.0.0:7000".parse().expect("parses"),
                quiet: true
            }))
        );
        assert_eq!(
            parse(&["--listen=[::1]:7001"]).map(|o| o.map(|o| o.listen)),
            Ok(Some("[::1]:7001".parse().expect("parses")))
        );
        assert_eq!(parse(&["--help"]), Ok(None));
        assert!(parse(&["--listen"]).is_err());
        assert!(parse(&["--listen", "nope"]).is_err());
        assert!(parse(&["--bogus"]).is_err());
    }
}
