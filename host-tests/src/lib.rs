//! The test bed for end-to-end tests: a real Envoy running the built module, an in-process
//! ext_authz gRPC server and an in-process backend, all on loopback.
//!
//! Each test file starts one [`Harness`] (one Envoy with every listener the file needs) and shares
//! it between its tests, which run at once; each test tags its requests with a case of its own.

pub mod auth_server;
pub mod backend;
pub mod client;
pub mod compare;
pub mod envoy;
pub mod h2_client;
pub mod http_auth_server;
pub mod raw_http;
pub mod tls;

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};

pub use auth_server::{AuthAction, AuthServer};
pub use backend::Backend;
pub use client::{Request, Response};
pub use envoy::{Envoy, Listener};

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
        let envoy = match Envoy::start(&bootstrap) {
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
    /// Envoy writes access logs asynchronously, so this waits up to 5 s for `count` lines.
    pub fn access_log(&self, case: &str, count: usize) -> Vec<(u16, String)> {
        self.access_log_lines(case, count)
            .into_iter()
            .map(|(status, details, _)| (status, details))
            .collect()
    }

    /// As [`Harness::access_log`], with the filter state `wasm.ext_authz.dynamic_metadata`
    /// (`-` when unset) as a third part.
    pub fn access_log_lines(&self, case: &str, count: usize) -> Vec<(u16, String, String)> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let lines: Vec<(u16, String, String)> = std::fs::read_to_string(&self.access_log)
                .unwrap_or_default()
                .lines()
                .filter_map(|line| {
                    let mut fields = line.splitn(4, ' ');
                    (fields.next()? == case).then_some(())?;
                    let status = fields.next()?.parse().ok()?;
                    Some((
                        status,
                        fields.next()?.to_owned(),
                        fields.next().unwrap_or("-").to_owned(),
                    ))
                })
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
