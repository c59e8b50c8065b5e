//! The test bed for end-to-end tests: a real Envoy running the built module, an in-process
//! ext_authz gRPC server and an in-process backend, all on loopback.
//!
//! Each test file starts one [`Harness`] (one Envoy with every listener the file needs) and shares
//! it between its tests, which run at once; each test tags its requests with a case of its own.

pub mod auth_server;
pub mod backend;
pub mod bootstrap;
pub mod client;
pub mod compare;
pub mod envoy;
pub mod gate;
pub mod h2_client;
pub mod http_auth_server;
pub mod matrix;
pub mod raw_bed;
pub mod raw_grpc;
pub mod raw_http;
pub mod rng;
pub mod tls;
pub mod traps;

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};

pub use auth_server::{AuthAction, AuthServer};
pub use backend::Backend;
pub use client::{Request, Response};
pub use envoy::{Envoy, Listener};

/// The one Envoy of a test file (each file is its own binary), started by the first test that
/// asks, with the listeners `listeners` builds; every test of the file shares it. Its log is read
/// for wasm traps when the binary exits (see [`traps`]).
pub fn shared(listeners: impl FnOnce() -> Vec<Listener>) -> &'static Harness {
    shared_with_workers(1, listeners)
}

/// As [`shared`], with an Envoy of `workers` worker threads, for what workers share.
pub fn shared_with_workers(
    workers: u32,
    listeners: impl FnOnce() -> Vec<Listener>,
) -> &'static Harness {
    static SHARED: std::sync::OnceLock<Harness> = std::sync::OnceLock::new();
    SHARED.get_or_init(|| Harness::start_with_workers(&listeners(), workers))
}

/// Envoy, the auth server and the backend, with the runtime that serves the last two.
pub struct Harness {
    runtime: tokio::runtime::Runtime,
    pub auth: AuthServer,
    /// A plain HTTP authorization server, behind the `ext_authz_http` cluster.
    pub http_auth: http_auth_server::HttpAuthServer,
    pub backend: Backend,
    pub envoy: Envoy,
    access_log: std::path::PathBuf,
    next_case: AtomicUsize,
}

impl Harness {
    /// Starts everything; Envoy gets `listeners`.
    pub fn start(listeners: &[Listener]) -> Self {
        Self::start_with_workers(listeners, 1)
    }

    /// As [`Harness::start`], with `workers` Envoy worker threads.
    pub fn start_with_workers(listeners: &[Listener], workers: u32) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime");
        let (auth, http_auth, backend, hangup_port) = runtime.block_on(async {
            (
                AuthServer::start().await,
                http_auth_server::HttpAuthServer::start().await,
                Backend::start().await,
                start_hangup().await,
            )
        });
        let closed_port = closed_port();
        static NEXT_LOG: AtomicUsize = AtomicUsize::new(0);
        let access_log = std::env::temp_dir().join(format!(
            "ext-authz-access-{}-{}.log",
            std::process::id(),
            NEXT_LOG.fetch_add(1, Ordering::Relaxed)
        ));
        let bootstrap = envoy::bootstrap_with_clusters(
            listeners,
            auth.addr.port(),
            backend.addr.port(),
            closed_port,
            &access_log,
            vec![
                envoy::static_cluster(envoy::HANGUP_CLUSTER, hangup_port, true),
                envoy::static_cluster(envoy::HTTP_AUTH_CLUSTER, http_auth.addr.port(), false),
            ],
        );
        let envoy = match Envoy::start_with_workers(&bootstrap, workers) {
            Ok(envoy) => envoy,
            Err(failure) => panic!("Envoy did not start:\n{}", failure.log),
        };
        Self {
            runtime,
            auth,
            http_auth,
            backend,
            envoy,
            access_log,
            next_case: AtomicUsize::new(0),
        }
    }

    /// The access log lines of a case: `(status, response code details)`, as Envoy wrote them.
    /// Envoy writes access logs asynchronously, so this waits up to 10 s for `count` lines.
    pub fn access_log(&self, case: &str, count: usize) -> Vec<(u16, String)> {
        self.access_log_lines(case, count)
            .into_iter()
            .map(|line| (line.status, line.details))
            .collect()
    }

    /// As [`Harness::access_log`], whole: with what the filters left for access logs.
    pub fn access_log_lines(&self, case: &str, count: usize) -> Vec<AccessLogLine> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let lines: Vec<AccessLogLine> = std::fs::read_to_string(&self.access_log)
                .unwrap_or_default()
                .lines()
                .filter_map(|line| AccessLogLine::parse(line).filter(|l| l.case == case))
                .collect();
            if lines.len() >= count || std::time::Instant::now() > deadline {
                return lines;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// A fresh case name for one test's requests.
    pub fn case(&self, name: &str) -> String {
        format!("{name}-{}", self.next_case.fetch_add(1, Ordering::Relaxed))
    }

    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }

    /// Sends a request to a listener by name.
    pub fn send(&self, listener: &str, request: &Request) -> Response {
        let port = self.envoy.port(listener);
        match self.block_on(client::send(port, request)) {
            Ok(response) => response,
            Err(error) => panic!(
                "request to {listener} failed: {error}\nEnvoy log:\n{}",
                self.envoy.log()
            ),
        }
    }

    /// A stat of this plugin, under the `wasmcustom.` prefix Envoy gives wasm metrics.
    pub fn plugin_stat(&self, name: &str) -> u64 {
        self.envoy.stat(&format!("wasmcustom.{name}"))
    }
}

/// An "auth server" that accepts every connection and closes it at once, without a byte: the
/// endpoint of [`envoy::HANGUP_CLUSTER`].
async fn start_hangup() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the hang-up server");
    let port = listener.local_addr().expect("hang-up address").port();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            drop(stream);
        }
    });
    port
}

/// A loopback port with nothing listening: bound, then released.
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// One access log line, as the harness's Envoy writes it (JSON).
#[derive(Debug, Clone, PartialEq)]
pub struct AccessLogLine {
    pub case: String,
    pub status: u16,
    /// `%RESPONSE_CODE_DETAILS%`.
    pub details: String,
    /// `%RESPONSE_FLAGS%` (`-` for none).
    pub flags: String,
    /// The filter state `wasm.ext_authz.dynamic_metadata` (this filter's), or `None`.
    pub filter_state: Option<String>,
    /// The dynamic metadata namespace `envoy.filters.http.ext_authz` (native's), or `None`.
    pub dynamic_metadata: Option<serde_json::Value>,
    /// `shadow_mode`'s decision: filter state `wasm.ext_authz.shadow_decision` (this filter's),
    /// or else `envoy.filters.http.ext_authz.shadow` (native's).
    pub shadow: Option<String>,
}

impl AccessLogLine {
    fn parse(line: &str) -> Option<Self> {
        let json: serde_json::Value = serde_json::from_str(line).ok()?;
        // Envoy writes an unset field as null (or "-" in a string field).
        let present = |v: &serde_json::Value| !v.is_null() && v != "-";
        Some(Self {
            case: json.get("case")?.as_str()?.to_owned(),
            status: json.get("status")?.as_u64()?.try_into().ok()?,
            details: json.get("details")?.as_str()?.to_owned(),
            flags: json.get("flags")?.as_str()?.to_owned(),
            filter_state: json
                .get("filter_state")
                .filter(|v| present(v))
                .and_then(|v| v.as_str())
                .map(str::to_owned),
            dynamic_metadata: json.get("dynamic_metadata").filter(|v| present(v)).cloned(),
            shadow: ["shadow", "native_shadow"]
                .iter()
                .filter_map(|key| json.get(*key).filter(|v| present(v)))
                .find_map(|v| v.as_str().map(str::to_owned)),
        })
    }
}
