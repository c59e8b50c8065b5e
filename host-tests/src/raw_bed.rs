//! The test bed of the files that script the raw gRPC server ([`crate::raw_grpc`]): a runtime of
//! their own, the raw server, a backend, and one Envoy whose `wasm` and `native` listeners check
//! every request against that server with the same config.

use serde_json::json;

use crate::envoy::{bootstrap_with_clusters, native_ext_authz, wasm_filter, Envoy};
use crate::raw_grpc::{RawGrpcServer, RAW_GRPC_CLUSTER};
use crate::{Backend, Listener};

/// The listeners, this filter's first.
pub const LISTENERS: [&str; 2] = ["wasm", "native"];

pub struct RawBed {
    pub runtime: tokio::runtime::Runtime,
    pub raw: RawGrpcServer,
    pub backend: Backend,
    pub envoy: Envoy,
}

impl RawBed {
    /// Starts everything; `name` tells this bed's access log from another file's.
    pub fn start(name: &str) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime");
        let (raw, backend) =
            runtime.block_on(async { (RawGrpcServer::start().await, Backend::start().await) });
        let config = json!({
            "grpc_service": {"envoy_grpc": {"cluster_name": RAW_GRPC_CLUSTER}, "timeout": "1s"},
            "transport_api_version": "V3"
        });
        let listeners = [
            Listener::new(LISTENERS[0], vec![wasm_filter(&config)]),
            Listener::new(LISTENERS[1], vec![native_ext_authz(&config)]),
        ];
        let log = std::env::temp_dir().join(format!("{name}-access-{}.log", std::process::id()));
        let bootstrap = bootstrap_with_clusters(
            &listeners,
            raw.port,
            backend.addr.port(),
            raw.port,
            &log,
            vec![raw.cluster()],
        );
        let envoy = Envoy::start(&bootstrap).unwrap_or_else(|f| panic!("Envoy: {}", f.log));
        Self {
            runtime,
            raw,
            backend,
            envoy,
        }
    }
}
