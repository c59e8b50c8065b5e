//! Chaos: the auth server is killed and started again on the same port several times while a few
//! clients send a bounded load through this filter and through native ext_authz in the same
//! Envoy. No request may reach the upstream without an OK from the server, every request gets an
//! answer, and after each restart both listeners allow again (polled with a generous bound; the
//! recovery times are printed, not asserted).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use envoy_types::pb::envoy::service::auth::v3::CheckRequest;
use host_tests::auth_server::{allow, deny};
use host_tests::raw_bed::{RawBed, LISTENERS};
use host_tests::raw_grpc::{case_of, RawAnswer};
use host_tests::Request;
use prost::Message;

const CLIENTS: usize = 3;
/// Requests per client, alternating listeners: a few hundred in all.
const PER_CLIENT: usize = 100;
const RESTARTS: usize = 4;
/// How long a restarted server may take before both listeners allow again (generous: the test
/// waits on the event, this only bounds a hang).
const RECOVERY_BOUND: Duration = Duration::from_secs(30);

/// Allows a case whose number is not a multiple of three; denies the others.
fn verdict(check: &CheckRequest) -> RawAnswer {
    if allowed(&case_of(check)) {
        RawAnswer::message(&allow().encode_to_vec())
    } else {
        RawAnswer::message(&deny(403, Vec::new(), "no").encode_to_vec())
    }
}

fn allowed(case: &str) -> bool {
    case.rsplit('-')
        .next()
        .and_then(|n| n.parse::<usize>().ok())
        .is_some_and(|n| n % 3 != 0)
}

#[test]
fn auth_server_killed_and_restarted_under_load() {
    let RawBed {
        runtime,
        raw,
        backend,
        envoy,
    } = RawBed::start("chaos");
    let ports: Vec<u16> = LISTENERS.iter().map(|l| envoy.port(l)).collect();
    let send = |listener: usize, case: &str| {
        raw.script(case, verdict);
        runtime
            .block_on(host_tests::client::send(
                ports[listener],
                &Request::get("/chaos").case(case),
            ))
            .map(|r| r.status)
    };

    let mut recoveries = Vec::new();
    let results: Vec<(String, Result<u16, String>)> = std::thread::scope(|scope| {
        let clients: Vec<_> = (0..CLIENTS)
            .map(|client| {
                let send = &send;
                scope.spawn(move || {
                    let mut results = Vec::new();
                    for i in 0..PER_CLIENT {
                        let listener = i % LISTENERS.len();
                        let case = format!("load-{}-{client}-{i}", LISTENERS[listener]);
                        let status = send(listener, &case);
                        results.push((case, status));
                        std::thread::sleep(Duration::from_millis(25));
                    }
                    results
                })
            })
            .collect();
        for round in 0..RESTARTS {
            std::thread::sleep(Duration::from_millis(300));
            raw.kill();
            std::thread::sleep(Duration::from_millis(300));
            runtime.block_on(raw.restart());
            let restarted = Instant::now();
            for (listener, name) in LISTENERS.iter().enumerate() {
                let mut probe = 0;
                loop {
                    // Probes are numbered 1, 2, 4, 5...: never a multiple of three, so allowed.
                    probe += if probe % 3 == 2 { 2 } else { 1 };
                    let case = format!("probe-{name}-{round}-{probe}");
                    if send(listener, &case) == Ok(200) {
                        break;
                    }
                    assert!(
                        restarted.elapsed() < RECOVERY_BOUND,
                        "{name} did not allow again within {RECOVERY_BOUND:?} of restart {round}"
                    );
                    std::thread::sleep(Duration::from_millis(10));
                }
                recoveries.push((round, *name, restarted.elapsed()));
            }
        }
        clients
            .into_iter()
            .flat_map(|c| c.join().unwrap())
            .collect()
    });
    eprintln!("recovery after each restart (restart to first 200): {recoveries:?}");

    let mut failures = Vec::new();
    let mut tally = std::collections::BTreeMap::<(String, String), usize>::new();
    for (case, status) in &results {
        let listener = case.split('-').nth(1).unwrap_or_default().to_owned();
        let reached = backend.arrivals(case) > 0;
        if reached && !allowed(case) {
            failures.push(format!("{case}: reached the upstream on a denial"));
        }
        if reached && raw.calls(case) == 0 {
            failures.push(format!(
                "{case}: reached the upstream with no call to the server"
            ));
        }
        match status {
            Ok(200) if !reached => failures.push(format!("{case}: 200 without the upstream")),
            Ok(_) => {}
            Err(error) => failures.push(format!("{case}: no answer: {error}")),
        }
        let outcome = match status {
            Ok(code) => code.to_string(),
            Err(_) => "none".into(),
        };
        *tally.entry((listener, outcome)).or_default() += 1;
    }
    eprintln!("chaos outcomes (listener, status) -> requests: {tally:?}");
    let log = envoy.log();
    let traps: Vec<&str> = log
        .lines()
        .filter(|l| {
            l.contains("Function: proxy_on_") || l.contains("Uncaught") || l.contains("panicked")
        })
        .collect();
    assert!(traps.is_empty(), "the VM trapped:\n{}", traps.join("\n"));
    assert_eq!(results.len(), CLIENTS * PER_CLIENT);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    for name in LISTENERS {
        assert_eq!(
            recoveries.iter().filter(|r| r.1 == name).count(),
            RESTARTS,
            "{name} did not recover after every restart"
        );
    }
}
