//! A real Envoy for the tests: the process started and owned by the test binary, readiness polled
//! on the admin endpoint, the listeners' ports and the stats read back. The bootstrap it runs is
//! built in [`crate::bootstrap`], whose builders are re-exported here.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

pub use crate::bootstrap::*;

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
        Self::start_with_workers(bootstrap, 1)
    }

    /// As [`Envoy::start`], with `workers` worker threads (`--concurrency`).
    pub fn start_with_workers(bootstrap: &Value, workers: u32) -> Result<Self, StartFailure> {
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
            .args(["--concurrency", &workers.to_string()])
            .args(["--disable-hot-restart", "--log-level", "warning"])
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
        crate::traps::watch(pid, log_path.clone());
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

    /// One stat's value. A stat Envoy does not have fails the test, naming the close ones: a
    /// typo must not read as 0.
    pub fn stat(&self, name: &str) -> u64 {
        let stats = self.stats();
        if let Some(value) = stats.get(name) {
            return *value;
        }
        panic!(
            "Envoy has no stat {name:?}; close ones: {:?}",
            close_names(name, stats.keys())
        );
    }

    /// The sample count of a histogram as `/stats/prometheus` gives it (`name` in Prometheus
    /// form: a wasm filter's `ext_authz_counted_check_latency_ms`), or `None` while it is not
    /// listed (a histogram shows after the first stats flush).
    pub fn histogram_count(&self, name: &str) -> Option<u64> {
        let body = admin_get(self.admin_port, "/stats/prometheus")?;
        let count = format!("{name}_count");
        body.lines().find_map(|line| {
            let rest = line.strip_prefix(&count)?;
            if !rest.starts_with(['{', ' ']) {
                return None;
            }
            rest.rsplit(' ').next()?.trim().parse().ok()
        })
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }
}

impl Drop for Envoy {
    fn drop(&mut self) {
        crate::traps::unwatch(self.pid);
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let log = self.log();
        let _ = std::fs::remove_dir_all(&self.dir);
        let traps = crate::traps::trap_lines(&log);
        if !traps.is_empty() && !std::thread::panicking() {
            panic!("the wasm VM trapped in this Envoy:\n{}", traps.join("\n"));
        }
    }
}

/// The stats whose name shares its last part with `name`, or all but the last part.
fn close_names<'a>(name: &str, names: impl Iterator<Item = &'a String>) -> Vec<&'a str> {
    let (scope, last) = name.rsplit_once('.').unwrap_or(("", name));
    let mut close: Vec<&str> = names
        .map(String::as_str)
        .filter(|n| {
            let (s, l) = n.rsplit_once('.').unwrap_or(("", n));
            l == last || (!scope.is_empty() && s == scope)
        })
        .collect();
    close.sort_unstable();
    close.truncate(20);
    close
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
