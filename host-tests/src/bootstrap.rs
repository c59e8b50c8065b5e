//! The bootstrap Envoy runs for the tests: listeners with their HTTP filters, the clusters of the
//! in-process servers, and the builders of filter configs (this module, native ext_authz, set_metadata).

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

/// The workspace root, where `dist/` and `.venv/` live.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The Envoy binary: `ENVOY_BIN`, or the one `make envoy` links into the venv.
pub fn envoy_bin() -> PathBuf {
    let path = std::env::var_os("ENVOY_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join(".venv/envoy-bin"));
    assert!(
        path.exists(),
        "no Envoy at {}: run `make envoy` (or set ENVOY_BIN)",
        path.display()
    );
    path
}

/// The built module: `EXT_AUTHZ_WASM`, or `dist/ext_authz.wasm` from `make build`.
pub fn wasm_module() -> PathBuf {
    let path = std::env::var_os("EXT_AUTHZ_WASM")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("dist/ext_authz.wasm"));
    assert!(
        path.exists(),
        "no module at {}: run `make build`",
        path.display()
    );
    path.canonicalize().unwrap_or(path)
}

/// One listener of the bootstrap: its HTTP filters, then the router to the `backend` cluster.
#[derive(Debug, Clone)]
pub struct Listener {
    pub name: String,
    pub http_filters: Vec<Value>,
    /// Upgrade types the connection manager accepts (`upgrade_configs`), e.g. `websocket`.
    pub upgrades: Vec<String>,
    /// The route's `metadata` (`{"filter_metadata": {...}}`), if any.
    pub route_metadata: Option<Value>,
    /// The filter chain's `transport_socket` (TLS), if any.
    pub transport_socket: Option<Value>,
    /// The connection manager's `use_remote_address`: Envoy's default, false, unless set.
    pub use_remote_address: bool,
    /// Routes tried before the listener's own catch-all one.
    pub routes_before: Vec<Value>,
}

impl Listener {
    pub fn new(name: &str, http_filters: Vec<Value>) -> Self {
        Self {
            name: name.to_owned(),
            http_filters,
            upgrades: Vec::new(),
            route_metadata: None,
            transport_socket: None,
            use_remote_address: false,
            routes_before: Vec::new(),
        }
    }

    /// Tries `route` (an Envoy route, to the `backend` cluster say) before the catch-all one.
    pub fn route_before(mut self, route: Value) -> Self {
        self.routes_before.push(route);
        self
    }

    /// Sets `use_remote_address: true` on the connection manager, as at an edge proxy: the
    /// stream's remote address is then the connection's peer, whatever `x-forwarded-for` says.
    pub fn use_remote_address(mut self) -> Self {
        self.use_remote_address = true;
        self
    }

    /// Serves the listener over TLS with this `transport_socket` (see [`crate::tls`]).
    pub fn tls(mut self, transport_socket: Value) -> Self {
        self.transport_socket = Some(transport_socket);
        self
    }

    /// Gives the listener's one route this metadata.
    pub fn route_metadata(mut self, metadata: Value) -> Self {
        self.route_metadata = Some(metadata);
        self
    }

    /// Accepts `Upgrade: <upgrade_type>` requests (`upgrade_configs` on the connection manager).
    pub fn upgrade(mut self, upgrade_type: &str) -> Self {
        self.upgrades.push(upgrade_type.to_owned());
        self
    }
}

fn route(listener: &Listener) -> Value {
    let mut route =
        json!({"match": {"prefix": "/"}, "route": {"cluster": "backend", "timeout": "10s"}});
    if let Some(metadata) = &listener.route_metadata {
        route["metadata"] = metadata.clone();
    }
    route
}

/// Envoy's `set_metadata` filter, putting `value` in the stream's dynamic metadata under `namespace`.
pub fn set_metadata(namespace: &str, value: &Value) -> Value {
    json!({
        "name": "envoy.filters.http.set_metadata",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.set_metadata.v3.Config",
            "metadata": [{"metadata_namespace": namespace, "value": value}]
        }
    })
}

/// Envoy's `set_metadata` filter, putting `typed_value` (an `Any` as JSON, with `@type`) in the
/// stream's typed dynamic metadata under `namespace`.
pub fn set_typed_metadata(namespace: &str, typed_value: &Value) -> Value {
    json!({
        "name": "envoy.filters.http.set_metadata",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.set_metadata.v3.Config",
            "metadata": [{"metadata_namespace": namespace, "typed_value": typed_value}]
        }
    })
}

/// The Wasm HTTP filter loading this project's module with `plugin_config` as its configuration.
pub fn wasm_filter(plugin_config: &Value) -> Value {
    wasm_filter_named("ext_authz", plugin_config)
}

/// As [`wasm_filter`], with a plugin name of its own (for several instances in one chain).
pub fn wasm_filter_named(name: &str, plugin_config: &Value) -> Value {
    wasm_filter_with(name, plugin_config, false)
}

/// The filter with `allow_on_headers_stop_iteration: true` in its PluginConfig, which
/// `with_request_body` needs to see the body before the decision.
pub fn wasm_filter_for_bodies(plugin_config: &Value) -> Value {
    wasm_filter_with("ext_authz", plugin_config, true)
}

fn wasm_filter_with(
    name: &str,
    plugin_config: &Value,
    allow_on_headers_stop_iteration: bool,
) -> Value {
    let mut filter = wasm_filter_config(name, plugin_config);
    if allow_on_headers_stop_iteration {
        filter["typed_config"]["config"]["allow_on_headers_stop_iteration"] = json!(true);
    }
    filter
}

fn wasm_filter_config(name: &str, plugin_config: &Value) -> Value {
    json!({
        "name": "envoy.filters.http.wasm",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
            "config": {
                "name": name,
                "vm_config": {
                    "vm_id": "ext_authz",
                    "runtime": "envoy.wasm.runtime.v8",
                    "code": {"local": {"filename": wasm_module().display().to_string()}}
                },
                "configuration": {
                    "@type": "type.googleapis.com/google.protobuf.StringValue",
                    "value": plugin_config.to_string()
                },
                "fail_open": false
            }
        }
    })
}

/// Envoy's native ext_authz filter with `config`: the same JSON the plugin takes.
pub fn native_ext_authz(config: &Value) -> Value {
    let mut typed = config.clone();
    if let Value::Object(map) = &mut typed {
        map.insert(
            "@type".into(),
            json!("type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz"),
        );
    }
    json!({"name": "envoy.filters.http.ext_authz", "typed_config": typed})
}

/// The cluster names the bootstrap defines for auth servers.
pub const AUTH_CLUSTER: &str = "ext_authz";
/// The same auth server under an Istio-style name.
pub const ISTIO_AUTH_CLUSTER: &str = "outbound|9000||ext-authz.ns.svc.cluster.local";
/// The plain HTTP authorization server.
pub const HTTP_AUTH_CLUSTER: &str = "ext_authz_http";
/// A cluster whose endpoint refuses connections.
pub const DOWN_CLUSTER: &str = "ext_authz_down";
/// A cluster whose endpoint accepts connections and closes them at once (see [`crate::Harness`]).
pub const HANGUP_CLUSTER: &str = "ext_authz_hangup";

/// A STATIC cluster of one loopback endpoint; `http2` for gRPC.
pub fn static_cluster(name: &str, port: u16, http2: bool) -> Value {
    let mut cluster = json!({
        "name": name,
        "type": "STATIC",
        "connect_timeout": "1s",
        "load_assignment": {
            "cluster_name": name,
            "endpoints": [{"lb_endpoints": [{"endpoint": {"address": {
                "socket_address": {"address": "127.0.0.1", "port_value": port}
            }}}]}]
        }
    });
    if http2 {
        cluster["typed_extension_protocol_options"] = json!({
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                "explicit_http_config": {"http2_protocol_options": {}}
            }
        });
    }
    cluster
}

/// A bootstrap with `listeners` on ephemeral loopback ports, the auth server under its cluster
/// names, a cluster that is down, and the backend.
/// Every listener writes `<x-case> <status> <response code details> <dynamic metadata handed on>`
/// lines to `access_log`.
pub fn bootstrap(
    listeners: &[Listener],
    auth_port: u16,
    backend_port: u16,
    closed_port: u16,
    access_log: &Path,
) -> Value {
    bootstrap_with_clusters(
        listeners,
        auth_port,
        backend_port,
        closed_port,
        access_log,
        Vec::new(),
    )
}

/// As [`bootstrap`], with more clusters (see [`static_cluster`]).
pub fn bootstrap_with_clusters(
    listeners: &[Listener],
    auth_port: u16,
    backend_port: u16,
    closed_port: u16,
    access_log: &Path,
    extra_clusters: Vec<Value>,
) -> Value {
    let listeners: Vec<Value> = listeners
        .iter()
        .map(|l| {
            let mut filters = l.http_filters.clone();
            filters.push(json!({
                "name": "envoy.filters.http.router",
                "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}
            }));
            let mut hcm = json!({
                "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                "stat_prefix": l.name,
                "codec_type": "AUTO",
                "access_log": [{
                    "name": "envoy.access_loggers.file",
                    "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
                        "path": access_log.display().to_string(),
                        // One JSON object a line: what the filters leave for access logs.
                        "log_format": {"json_format": {
                            "case": "%REQ(X-CASE)%",
                            "status": "%RESPONSE_CODE%",
                            "details": "%RESPONSE_CODE_DETAILS%",
                            "flags": "%RESPONSE_FLAGS%",
                            "filter_state": "%FILTER_STATE(wasm.ext_authz.dynamic_metadata:PLAIN)%",
                            "shadow": "%FILTER_STATE(wasm.ext_authz.shadow_decision:PLAIN)%",
                            "native_shadow": "%FILTER_STATE(envoy.filters.http.ext_authz.shadow:PLAIN)%",
                            "dynamic_metadata": "%DYNAMIC_METADATA(envoy.filters.http.ext_authz)%"
                        }}
                    }
                }],
                "route_config": {"virtual_hosts": [{
                    "name": "all",
                    "domains": ["*"],
                    "routes": l.routes_before.iter().cloned().chain([route(l)]).collect::<Vec<_>>()
                }]},
                "http_filters": filters
            });
            if l.use_remote_address {
                hcm["use_remote_address"] = json!(true);
            }
            if !l.upgrades.is_empty() {
                hcm["upgrade_configs"] = l
                    .upgrades
                    .iter()
                    .map(|u| json!({"upgrade_type": u}))
                    .collect();
            }
            let mut chain = json!({"filters": [{
                "name": "envoy.filters.network.http_connection_manager",
                "typed_config": hcm
            }]});
            if let Some(socket) = &l.transport_socket {
                chain["transport_socket"] = socket.clone();
            }
            let mut listener = json!({
                "name": l.name,
                // Per-listener stats (`listener.<name>.worker_<n>.…`), not one set for all.
                "stat_prefix": l.name,
                "address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}},
                "filter_chains": [chain]
            });
            if l.transport_socket.is_some() {
                // As TLS listeners usually have it: the TLS inspector reads the SNI, which is
                // where a wasm filter finds it (`connection.requested_server_name`).
                listener["listener_filters"] = json!([{
                    "name": "envoy.filters.listener.tls_inspector",
                    "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector"}
                }]);
            }
            listener
        })
        .collect();
    let mut clusters = vec![
        static_cluster(AUTH_CLUSTER, auth_port, true),
        static_cluster(ISTIO_AUTH_CLUSTER, auth_port, true),
        static_cluster(DOWN_CLUSTER, closed_port, true),
        static_cluster("backend", backend_port, false),
    ];
    clusters.extend(extra_clusters);
    json!({
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}}},
        // Histograms show their samples after a flush (5 s by default): the tests wait on it.
        "stats_flush_interval": "1s",
        "static_resources": {
            "listeners": listeners,
            "clusters": clusters
        }
    })
}
