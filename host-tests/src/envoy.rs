//! A real Envoy for the tests: a bootstrap built from listeners, the process started and owned by
//! the test binary, readiness polled on the admin endpoint, and the listeners' ports read back.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

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
                            "filter_state": "%FILTER_STATE(wasm.ext_authz.dynamic_metadata:PLAIN)%",
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
        "static_resources": {
            "listeners": listeners,
            "clusters": clusters
        }
    })
}

/// A running Envoy, killed when dropped (or, for a shared one, when the test binary exits).
pub struct Envoy {
    child: Option<Child>,
    pid: u32,
    pub dir: PathBuf,
    pub admin_port: u16,
    ports: HashMap<String, u16>,
}

/// Envoy's output when it refused to start.
#[derive(Debug)]
pub struct StartFailure {
    pub log: String,
}

static NEXT_DIR: AtomicUsize = AtomicUsize::new(0);

impl Envoy {
    /// Starts Envoy with `bootstrap` and waits until every listener is bound.
    pub fn start(bootstrap: &Value) -> Result<Self, StartFailure> {
        let dir = std::env::temp_dir().join(format!(
            "ext-authz-host-tests-{}-{}",
            std::process::id(),
            NEXT_DIR.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| StartFailure { log: e.to_string() })?;
        let config = dir.join("envoy.yaml");
        std::fs::write(
            &config,
            serde_json::to_vec_pretty(bootstrap).unwrap_or_default(),
        )
        .map_err(|e| StartFailure { log: e.to_string() })?;
        let admin_path = dir.join("admin-address");
        let log_path = dir.join("envoy.log");
        let mut command = Command::new(envoy_bin());
        command
            .arg("-c")
            .arg(&config)
            .args([
                "--concurrency",
                "1",
                "--disable-hot-restart",
                "--log-level",
                "warning",
            ])
            .args(["--component-log-level", "wasm:info"])
            // Access logs are read by the tests: flush them often (the default is 10 s).
            .args(["--file-flush-interval-msec", "50"])
            .arg("--admin-address-path")
            .arg(&admin_path)
            .arg("--log-path")
            .arg(&log_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut child = spawn_owned(command).map_err(|e| StartFailure { log: e.to_string() })?;
        let pid = child.id();
        let read_log = || std::fs::read_to_string(&log_path).unwrap_or_default();
        let deadline = Instant::now() + Duration::from_secs(60);
        let admin_port = loop {
            if let Ok(Some(_)) = child.try_wait() {
                let log = read_log();
                let _ = std::fs::remove_dir_all(&dir);
                return Err(StartFailure { log });
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                return Err(StartFailure {
                    log: format!("Envoy did not start in time\n{}", read_log()),
                });
            }
            if let Some(port) = std::fs::read_to_string(&admin_path).ok().and_then(|a| {
                a.trim()
                    .rsplit(':')
                    .next()
                    .and_then(|p| p.parse::<u16>().ok())
            }) {
                if admin_get(port, "/ready").is_some_and(|r| r.contains("LIVE")) {
                    break port;
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let ports = listener_ports(admin_port).ok_or_else(|| StartFailure { log: read_log() })?;
        Ok(Self {
            child: Some(child),
            pid,
            dir,
            admin_port,
            ports,
        })
    }

    /// Starts Envoy expecting it to refuse the config; returns its log.
    pub fn start_expecting_refusal(bootstrap: &Value) -> String {
        match Self::start(bootstrap) {
            Ok(envoy) => panic!(
                "Envoy accepted a config it should refuse; log:\n{}",
                envoy.log()
            ),
            Err(failure) => failure.log,
        }
    }

    /// The port a named listener is bound to.
    pub fn port(&self, listener: &str) -> u16 {
        match self.ports.get(listener) {
            Some(port) => *port,
            None => panic!("no listener {listener:?}; have {:?}", self.ports.keys()),
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("envoy.log")).unwrap_or_default()
    }

    /// Every stat as `name -> value` (counters and gauges).
    pub fn stats(&self) -> HashMap<String, u64> {
        admin_get(self.admin_port, "/stats")
            .unwrap_or_default()
            .lines()
            .filter_map(|line| {
                let (name, value) = line.split_once(": ")?;
                Some((name.to_owned(), value.trim().parse().ok()?))
            })
            .collect()
    }

    /// One stat's value, 0 when absent.
    pub fn stat(&self, name: &str) -> u64 {
        self.stats().get(name).copied().unwrap_or(0)
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }
}

impl Drop for Envoy {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Reads a plain admin endpoint over a blocking socket (no runtime needed).
pub fn admin_get(port: u16, path: &str) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    let status = head.split(' ').nth(1)?;
    if status != "200" {
        return None;
    }
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        Some(body.to_owned())
    }
}

fn dechunk(mut body: &str) -> Option<String> {
    let mut out = String::new();
    loop {
        let (size, rest) = body.split_once("\r\n")?;
        let size = usize::from_str_radix(size.trim(), 16).ok()?;
        if size == 0 {
            return Some(out);
        }
        out.push_str(rest.get(..size)?);
        body = rest.get(size + 2..)?;
    }
}

fn listener_ports(admin_port: u16) -> Option<HashMap<String, u16>> {
    let body = admin_get(admin_port, "/listeners?format=json")?;
    let value: Value = serde_json::from_str(&body).ok()?;
    let mut ports = HashMap::new();
    for status in value["listener_statuses"].as_array()? {
        let name = status["name"].as_str()?.to_owned();
        let port = status["local_address"]["socket_address"]["port_value"].as_u64()?;
        ports.insert(name, u16::try_from(port).ok()?);
    }
    Some(ports)
}

/// Spawns a child from one long-lived thread, with the kernel told to kill it when that thread
/// (and so the test binary) goes away: a shared Envoy in a `static` is never dropped.
fn spawn_owned(command: Command) -> std::io::Result<Child> {
    type Job = (Command, mpsc::Sender<std::io::Result<Child>>);
    static KEEPER: std::sync::OnceLock<std::sync::Mutex<mpsc::Sender<Job>>> =
        std::sync::OnceLock::new();
    let keeper = KEEPER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::spawn(move || {
            for (mut command, reply) in rx {
                use std::os::unix::process::CommandExt;
                // SAFETY: prctl is async-signal-safe; it only sets this child's death signal.
                unsafe {
                    command.pre_exec(|| {
                        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                        Ok(())
                    });
                }
                let _ = reply.send(command.spawn());
            }
        });
        std::sync::Mutex::new(tx)
    });
    let (reply_tx, reply_rx) = mpsc::channel();
    keeper
        .lock()
        .map_err(|_| std::io::Error::other("keeper lock poisoned"))?
        .send((command, reply_tx))
        .map_err(|_| std::io::Error::other("keeper thread gone"))?;
    reply_rx
        .recv()
        .map_err(|_| std::io::Error::other("keeper thread gone"))?
}
