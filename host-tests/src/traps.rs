//! The guard against wasm traps nobody asserted on: a trap kills the VM of a worker and every
//! later request on it, so every Envoy the tests start has its log read when it stops, and a
//! trap line fails the test binary.
//!
//! An Envoy that is dropped is read in its `Drop` (a panic fails the test that owned it). A
//! file's shared Envoy lives in a `static` and is never dropped: an `atexit` hook stops it (so
//! its log is flushed), reads the log and ends the process with a failing exit code.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The log lines that show a wasm trap or panic, in order.
pub fn trap_lines(log: &str) -> Vec<&str> {
    log.lines().filter(|line| is_trap(line)).collect()
}

/// What Envoy (proxy-wasm-cpp-host) and the Rust SDK write when a VM call goes wrong:
/// `Function: proxy_on_grpc_receive failed: Uncaught RangeError: Maximum call stack size
/// exceeded` (V8 turns a trap into a JavaScript error), and the SDK's panic hook, which logs
/// `panicked at ...` at critical level through `wasm log`.
fn is_trap(line: &str) -> bool {
    let lower = line.to_ascii_lowercase();
    (line.contains("Function: proxy_on_") && line.contains(" failed"))
        || line.contains("Uncaught ")
        || line.contains("RuntimeError")
        || lower.contains("panicked")
        || (line.contains("wasm log") && lower.contains("panic"))
        || (line.contains("[critical]") && lower.contains("unreachable"))
}

/// An Envoy whose log is still to be read.
struct Watched {
    pid: u32,
    log: PathBuf,
}

static WATCHED: Mutex<Vec<Watched>> = Mutex::new(Vec::new());

/// Reads `log` when the test binary exits, after stopping `pid`, unless [`unwatch`] came first.
pub(crate) fn watch(pid: u32, log: PathBuf) {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        // SAFETY: registers a plain extern "C" function with no captured state.
        unsafe {
            libc::atexit(check_at_exit);
        }
    });
    if let Ok(mut watched) = WATCHED.lock() {
        watched.push(Watched { pid, log });
    }
}

/// Forgets `pid`: its owner reads the log itself.
pub(crate) fn unwatch(pid: u32) {
    if let Ok(mut watched) = WATCHED.lock() {
        watched.retain(|w| w.pid != pid);
    }
}

extern "C" fn check_at_exit() {
    let watched = match WATCHED.lock() {
        Ok(mut watched) => std::mem::take(&mut *watched),
        Err(_) => return,
    };
    let mut trapped = false;
    for w in watched {
        stop(w.pid);
        let log = std::fs::read_to_string(&w.log).unwrap_or_default();
        let lines = trap_lines(&log);
        if !lines.is_empty() {
            trapped = true;
            eprintln!(
                "\nwasm trap guard: the log of Envoy (pid {}, {}) has {} trap line(s):\n{}\n",
                w.pid,
                w.log.display(),
                lines.len(),
                lines.join("\n")
            );
        }
    }
    if trapped {
        // exit() may not be called again from an atexit hook; _exit ends at once with the code.
        // SAFETY: _exit has no preconditions.
        unsafe { libc::_exit(1) }
    }
}

/// SIGTERM, so that Envoy flushes its log; SIGKILL if it is still there after 10 s.
fn stop(pid: u32) {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return;
    };
    // SAFETY: signals and reaps our own child by its pid.
    unsafe {
        libc::kill(pid, libc::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(10);
        while libc::waitpid(pid, std::ptr::null_mut(), libc::WNOHANG) == 0 {
            if Instant::now() > deadline {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, std::ptr::null_mut(), 0);
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::trap_lines;

    const PREFIX: &str = "[2026-12-02 16:46:42.743][11679]";

    #[test]
    fn finds_the_lines_a_trapped_vm_leaves() {
        let traps = [
            // V8, a stack overflow in a decoder (FIELD-NOTES, issue 15).
            "[error][wasm] [source/extensions/common/wasm/wasm_vm.cc:38] Function: proxy_on_grpc_receive failed: Uncaught RangeError: Maximum call stack size exceeded",
            // V8, a Rust panic with panic = "abort" (the `unreachable` instruction).
            "[error][wasm] [source/extensions/common/wasm/wasm_vm.cc:38] Function: proxy_on_request_headers failed: Uncaught RuntimeError: unreachable",
            // The filter's panic hook (filter/src/shell/mod.rs), and the SDK's.
            "[critical][wasm] [source/extensions/common/wasm/context.cc:1157] wasm log ext_authz: panicked at filter/src/decision.rs:10:5:",
            "[critical][wasm] [source/extensions/common/wasm/context.cc:1157] wasm log ext_authz: ext_authz: panic: called `Option::unwrap()` on a `None` value",
            "[critical][wasm] [source/extensions/common/wasm/wasm_vm.cc:38] wasm trap: unreachable",
        ];
        let fine = [
            "[info][wasm] [source/extensions/common/wasm/context.cc:1151] wasm log ext_authz: ext_authz: configured: cluster \"ext_authz\", timeout 2s",
            "[warning][wasm] [source/extensions/common/wasm/context.cc:1151] wasm log ext_authz: ext_authz: check failed: gRPC status 14 (upstream request timeout)",
            "[warning][main] [source/server/server.cc:936] There is no configured cluster health check panic threshold",
            "[info][wasm] [source/extensions/common/wasm/context.cc:1151] wasm log ext_authz: auth server unreachable, failure mode deny",
        ];
        let log: String = traps
            .iter()
            .chain(&fine)
            .map(|line| format!("{PREFIX}{line}\n"))
            .collect();
        let found = trap_lines(&log);
        assert_eq!(found.len(), traps.len(), "{found:#?}");
        for (found, want) in found.iter().zip(traps) {
            assert!(found.ends_with(want), "{found}");
        }
    }

    #[test]
    fn a_clean_log_has_none() {
        assert!(trap_lines("").is_empty());
        assert!(trap_lines(&format!(
            "{PREFIX}[info][main] starting main dispatch loop\n"
        ))
        .is_empty());
    }
}
