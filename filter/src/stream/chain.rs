//! Running a check as a chain of steps: which step runs now ([`Chain`], the one place that knows),
//! what a local step decides, how much of the chain's deadline a remote step may use, and the
//! state steps hand on.
//!
//! A single `grpc_service` or `http_service` is a chain of one step.

use std::time::Duration;

use crate::config::steps::{GrpcStep, RequiredHeader, Step};
use crate::config::{GrpcService, HttpService, Service};
use crate::decision::{Allow, CheckError, Decision, LocalReply, DETAILS_DENIED};

/// Where a gRPC step's `dynamic_metadata` goes for the steps after it, as Gloo's passthrough.
pub const PASSTHROUGH_NAMESPACE: &str = "solo.auth.passthrough";
/// Where a gRPC step's own `config` goes.
pub const PASSTHROUGH_CONFIG_NAMESPACE: &str = "solo.auth.passthrough.config";

/// Where a request is in its chain.
#[derive(Debug, Default)]
pub struct Chain {
    /// The step that runs now; past the last, the chain has allowed.
    step: usize,
    /// When the first step started, for the chain's deadline.
    started: Option<Duration>,
    /// `dynamic_metadata` of the allowing gRPC steps so far, encoded Structs back to back (which
    /// protobuf reads as their merge).
    pub passthrough: Vec<u8>,
    /// A step failed and `failure_mode_allow` let the chain go on: counted when it failed.
    pub failed_open: bool,
}

impl Chain {
    /// The step that runs now, or `None` once every step has allowed.
    pub fn current<'s>(&self, service: &'s Service) -> Option<StepRef<'s>> {
        step(service, self.step)
    }

    /// Which step runs now, counted from 0.
    pub fn position(&self) -> usize {
        self.step
    }

    /// The current step is done and allowed (or failed open): on to the next.
    pub fn advance(&mut self) {
        self.step += 1;
    }

    /// Marks the chain's start, the first time only.
    pub fn start(&mut self, now: Duration) {
        self.started.get_or_insert(now);
    }

    /// How long the current remote step may take; the deadline passed is an error.
    pub fn timeout(
        &self,
        service: &Service,
        own: Duration,
        now: Duration,
    ) -> Result<Duration, CheckError> {
        let elapsed = now.saturating_sub(self.started.unwrap_or(now));
        step_timeout(service, own, elapsed).ok_or(CheckError::DeadlineExceeded)
    }
}

/// One step of a chain, borrowed from the config.
#[derive(Debug, Clone, Copy)]
pub enum StepRef<'a> {
    Grpc {
        service: &'a GrpcService,
        step: Option<&'a GrpcStep>,
    },
    Http(&'a HttpService),
    RequiredHeader(&'a RequiredHeader),
}

/// The `index`th step of a service's chain, or `None` past the end.
pub fn step(service: &Service, index: usize) -> Option<StepRef<'_>> {
    match (service, index) {
        (Service::Grpc(service), 0) => Some(StepRef::Grpc {
            service,
            step: None,
        }),
        (Service::Http(service), 0) => Some(StepRef::Http(service)),
        (Service::Steps(steps), i) => steps.steps.get(i).map(|s| match s {
            Step::Grpc(step) => StepRef::Grpc {
                service: &step.service,
                step: Some(step),
            },
            Step::Http(service) => StepRef::Http(service),
            Step::RequiredHeader(required) => StepRef::RequiredHeader(required),
        }),
        _ => None,
    }
}

/// How long a remote step may take: its own timeout, within what is left of the chain's deadline.
/// `None` once the deadline has passed.
pub fn step_timeout(service: &Service, own: Duration, elapsed: Duration) -> Option<Duration> {
    let Service::Steps(steps) = service else {
        return Some(own);
    };
    let left = steps.deadline.checked_sub(elapsed)?;
    // The host counts whole milliseconds; less than one is no time at all.
    let timeout = own.min(left);
    (timeout >= Duration::from_millis(1)).then_some(timeout)
}

/// Gloo's RequiredHeader check: the header present (repeats joined with `,`), and one of the
/// allowed values when any are listed. A refusal is a bare 403, as the plugin answers.
pub fn required_header(required: &RequiredHeader, headers: &[(&[u8], &[u8])]) -> Decision {
    let values = crate::header_map::values(headers, required.name.as_bytes());
    let joined = values.join(&b',');
    let allowed = !values.is_empty()
        && (required.allowed_values.is_empty()
            || required
                .allowed_values
                .iter()
                .any(|v| v.as_bytes() == joined));
    if allowed {
        Decision::Allow(Allow::default())
    } else {
        Decision::Deny(LocalReply {
            status: 403,
            headers: Vec::new(),
            body: Vec::new(),
            details: DETAILS_DENIED.into(),
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use crate::config::Config;

    fn steps_config(json: &str) -> Config {
        match Config::parse(json.as_bytes()) {
            Ok(config) => config,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn a_single_service_is_a_chain_of_one() {
        let config = steps_config(r#"{"grpc_service": {"envoy_grpc": {"cluster_name": "a"}}}"#);
        assert!(matches!(
            step(&config.service, 0),
            Some(StepRef::Grpc { step: None, .. })
        ));
        assert!(step(&config.service, 1).is_none());
    }

    #[test]
    fn steps_in_order_with_one_deadline() {
        let config = steps_config(
            r#"{"steps": [
                {"required_header": {"name": "X-Key", "allowed_values": ["k1"]}},
                {"grpc_service": {"envoy_grpc": {"cluster_name": "g"}, "timeout": "0.3s"}, "config": {"a": 1}},
                {"http_service": {"server_uri": {"uri": "http://h", "cluster": "h", "timeout": "0.2s"}}}
            ]}"#,
        );
        assert!(
            matches!(step(&config.service, 0), Some(StepRef::RequiredHeader(r)) if r.name == "x-key")
        );
        assert!(
            matches!(step(&config.service, 1), Some(StepRef::Grpc { step: Some(s), .. }) if !s.config.is_empty())
        );
        assert!(matches!(step(&config.service, 2), Some(StepRef::Http(_))));
        assert!(step(&config.service, 3).is_none());
        assert_eq!(
            config.service.timeout(),
            Duration::from_millis(500),
            "the sum of the step timeouts"
        );
        let ms = Duration::from_millis;
        assert_eq!(step_timeout(&config.service, ms(300), ms(0)), Some(ms(300)));
        assert_eq!(
            step_timeout(&config.service, ms(300), ms(400)),
            Some(ms(100)),
            "what is left of the deadline"
        );
        assert_eq!(step_timeout(&config.service, ms(300), ms(500)), None);

        let bounded =
            steps_config(r#"{"timeout": "1s", "steps": [{"required_header": {"name": "x"}}]}"#);
        assert_eq!(bounded.service.timeout(), Duration::from_secs(1));
    }

    #[test]
    fn required_header_allows_listed_values_only() {
        let required = RequiredHeader {
            name: "my-header".into(),
            allowed_values: vec!["foo".into(), "bar".into()],
        };
        let with = |v: &'static [u8]| required_header(&required, &[(b"my-header", v)]);
        assert!(matches!(with(b"foo"), Decision::Allow(_)));
        assert!(matches!(with(b"bar"), Decision::Allow(_)));
        assert!(
            matches!(with(b"baz"), Decision::Deny(ref r) if r.status == 403 && r.body.is_empty())
        );
        assert!(matches!(required_header(&required, &[]), Decision::Deny(_)));
        let any = RequiredHeader {
            name: "my-header".into(),
            allowed_values: vec![],
        };
        assert!(matches!(
            required_header(&any, &[(b"my-header", b"anything")]),
            Decision::Allow(_)
        ));
    }

    #[test]
    fn bad_steps_are_refused_with_the_field_named() {
        let refused = |json: &str, field: &str, reason: &str| match Config::parse(json.as_bytes()) {
            Ok(_) => panic!("{json} was accepted"),
            Err(e) => {
                assert_eq!(e.field, field, "{e}");
                assert!(e.reason.contains(reason), "{e}");
            }
        };
        refused(r#"{"steps": []}"#, "steps", "at least one");
        refused(r#"{"steps": [{}]}"#, "steps[0]", "exactly one");
        refused(
            r#"{"steps": [{"required_header": {"name": "x"}, "config": {}}]}"#,
            "steps[0].config",
            "grpc_service only",
        );
        refused(
            r#"{"steps": [{"required_header": {"name": "a b"}}]}"#,
            "steps[0].required_header.name",
            "not a header name",
        );
        refused(
            r#"{"steps": [{"grpc_service": {"envoy_grpc": {"cluster_name": ""}}}]}"#,
            "steps[0].grpc_service.envoy_grpc.cluster_name",
            "empty",
        );
        refused(
            r#"{"grpc_service": {"envoy_grpc": {"cluster_name": "a"}}, "steps": [{"required_header": {"name": "x"}}]}"#,
            "steps",
            "one of grpc_service",
        );
        refused(
            r#"{"grpc_service": {"envoy_grpc": {"cluster_name": "a"}}, "timeout": "1s"}"#,
            "timeout",
            "deadline of steps",
        );
    }
}
