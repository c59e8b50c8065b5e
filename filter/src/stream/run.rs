//! Running a request's chain of checks, and the one ending path: every step's answer, local or
//! remote, gRPC or HTTP, is reviewed, decided, counted and applied in [`ExtAuthz::conclude`] and
//! [`ExtAuthz::end`], and nowhere else.

use std::rc::Rc;
use std::time::Duration;

use super::chain::{self, StepRef};
use super::dispatch::{self, GrpcCheck, Request};
use super::{apply, header_limit, metadata, shadow, ExtAuthz, Flow, PendingCall, State};
use crate::check_request::RequestBody;
use crate::config::steps::GrpcStep;
use crate::config::{Check, FailureMode, GrpcService, HttpService};
use crate::decision::{self, Allow, Answer, CheckError, Decision, Verdict};
use crate::host::{Action, Host, LogLevel};

impl<H: Host> ExtAuthz<H> {
    /// Runs the chain from its current step: local steps at once, a remote one by sending its
    /// call and holding the request. Returns `Continue` once every step has allowed.
    pub(super) fn run(&mut self, request: Request<'_>) -> Action {
        let now = self.now();
        self.chain.start(now);
        loop {
            let plugin = Rc::clone(&self.plugin);
            let Some(settings) = plugin.config.check(self.selection) else {
                return Action::Continue;
            };
            let Some(step) = self.chain.current(settings.service) else {
                return self.end(Decision::Allow(Allow::default()));
            };
            // A remote step's answer may come from the decision cache (`stream::cache`).
            let sent = match (step, self.cached(settings, step, request)) {
                (_, Some(hit)) => Err(hit),
                (StepRef::RequiredHeader(required), None) => Err(Answer {
                    decision: chain::required_header(required, request.headers),
                    dynamic_metadata: Vec::new(),
                }),
                (StepRef::Grpc { service, step }, None) => self
                    .send_grpc(settings, service, step, request, now)
                    .map_err(|error| self.fresh_answer(Answer::error(error))),
                (StepRef::Http(service), None) => self
                    .send_http(settings, service, request, now)
                    .map_err(|error| self.fresh_answer(Answer::error(error))),
            };
            let answer = match sent {
                Ok(call) => {
                    self.state = State::Checking;
                    self.call = Some(call);
                    return Action::Pause;
                }
                // A local step's decision, or a call that could not be sent.
                Err(answer) => answer,
            };
            if let Flow::Done(action) = self.conclude(answer, None) {
                return action;
            }
        }
    }

    fn send_grpc(
        &self,
        settings: Check<'_>,
        service: &GrpcService,
        step: Option<&GrpcStep>,
        request: Request<'_>,
        now: Duration,
    ) -> Result<PendingCall, CheckError> {
        let check = GrpcCheck {
            service,
            step,
            passthrough: &self.chain.passthrough,
            timeout: self.chain.timeout(settings.service, service.timeout, now)?,
        };
        let token = dispatch::grpc(&self.host, &self.plugin.config, settings, check, request)?;
        Ok(PendingCall {
            token,
            started: now,
            grpc: true,
        })
    }

    fn send_http(
        &mut self,
        settings: Check<'_>,
        service: &HttpService,
        request: Request<'_>,
        now: Duration,
    ) -> Result<PendingCall, CheckError> {
        let timeout = self.chain.timeout(settings.service, service.timeout, now)?;
        let timeout = self.try_timeout(service, timeout, now);
        let token = dispatch::http(&self.host, &self.plugin.config, service, timeout, request)?;
        Ok(PendingCall {
            token,
            started: now,
            grpc: false,
        })
    }

    /// A remote step answered: conclude it, then run the rest of the chain with the request as
    /// the step left it. Resumes the request when the chain has allowed.
    pub(super) fn answered(&mut self, answer: Answer) {
        let Some(call) = self.call.take() else {
            return;
        };
        let elapsed = self.now().saturating_sub(call.started);
        self.plugin.stats.record_latency(&self.host, elapsed);
        let answer = self.fresh_answer(answer);
        let action = match self.conclude(answer, Some(elapsed)) {
            Flow::Done(action) => action,
            Flow::Next => self.run_rest(),
        };
        if action == Action::Continue {
            apply::resume(&self.host, self.context_id);
        }
    }

    /// Runs the steps after an answer, reading the request headers (and the body) anew, since
    /// the earlier steps may have changed them.
    pub(super) fn run_rest(&mut self) -> Action {
        let plugin = Rc::clone(&self.plugin);
        let service = plugin.config.check(self.selection).map(|s| s.service);
        if service.and_then(|s| self.chain.current(s)).is_none() {
            // The last step has answered (a single service always has): nothing needs the request.
            return self.run(Request {
                headers: &[],
                body: None,
            });
        }
        let settings = self.body_settings().filter(|_| self.buffered > 0);
        let bytes = match settings {
            Some(settings) => match self.read_body(settings) {
                Ok(bytes) => bytes,
                Err(error) => return self.end(Decision::Error(error)),
            },
            None => Vec::new(),
        };
        let buffered = self.buffered as u64;
        self.with_request_headers(&mut |this, headers| {
            let body = settings.map(|settings| RequestBody {
                bytes: &bytes,
                buffered,
                pack_as_bytes: settings.pack_as_bytes,
            });
            this.run(Request { headers, body })
        })
    }

    /// The one ending path of a step, local or remote, gRPC or HTTP: reviews the answer's
    /// changes, hands on its metadata, then either makes an allowing step's changes (so later
    /// steps and the upstream see them) or ends the request.
    fn conclude(&mut self, answer: Answer, elapsed: Option<Duration>) -> Flow {
        let decision = decision::review(answer.decision, &self.plugin.config.mutations);
        self.store_reviewed(&decision, &answer.dynamic_metadata);
        if !answer.dynamic_metadata.is_empty() {
            let elapsed = elapsed.unwrap_or_default();
            metadata::take(self, &decision, &answer.dynamic_metadata, elapsed);
        }
        // In shadow mode nothing is let through by the failure mode: nothing is enforced at all.
        let failure_mode = self.enforced_failure_mode();
        match decision {
            Decision::Allow(allow) => self.make_changes(allow),
            Decision::Error(error) if matches!(failure_mode, FailureMode::Allow { .. }) => {
                // A failed step let through: counted now, and the chain goes on.
                let decision = Decision::Error(error);
                self.count_and_log(&decision);
                self.chain.failed_open = true;
                if let Verdict::Continue(allow) = decision.into_verdict(failure_mode) {
                    self.make_changes(allow);
                }
            }
            other => return Flow::Done(self.end(other)),
        }
        self.chain.advance();
        Flow::Next
    }

    /// Ends the request with a decision: counts it, and applies it. `Continue` means the request
    /// may go on.
    pub(super) fn end(&mut self, decision: Decision) -> Action {
        // An allow is counted once its changes are known to fit the header limit: native counts
        // one that does not as invalid only. A chain that failed open was counted when it failed.
        let allowed = matches!(decision, Decision::Allow(_));
        let count_allow = allowed && !self.chain.failed_open;
        if !allowed {
            self.count_and_log(&decision);
        }
        self.finish();
        let decision = if self.plugin.config.shadow_mode {
            shadow::record(self, decision)
        } else {
            decision
        };
        let denied = matches!(decision, Decision::Deny(_));
        match decision.into_verdict(self.plugin.config.failure_mode) {
            Verdict::Continue(allow) => {
                self.make_changes(allow);
                if self.may_be_over_header_limit() {
                    if let Err(why) = self.within_header_limit() {
                        return self.refuse_oversized(why);
                    }
                }
                if count_allow {
                    self.count_and_log(&Decision::Allow(Allow::default()));
                }
                Action::Continue
            }
            Verdict::Reply(mut reply) => {
                if denied {
                    reply.truncate_body(self.plugin.config.max_denied_response_body_bytes);
                }
                apply::reply(&self.host, self.context_id, &reply);
                Action::Pause
            }
        }
    }

    /// The one place a decision is counted.
    pub(super) fn count_and_log(&self, decision: &Decision) {
        let plugin = &self.plugin;
        plugin
            .stats
            .record(&self.host, decision, self.enforced_failure_mode());
        let why = match decision {
            Decision::Error(error) => format!("check failed: {error}"),
            Decision::Invalid(invalid) => {
                format!("the auth server's answer is refused: {}", invalid.why)
            }
            Decision::Allow(_) | Decision::Deny(_) => return,
        };
        self.log(LogLevel::Warn, &why);
    }

    /// The failure mode that applies: fail closed in shadow mode, where a failure is recorded,
    /// not let through (native counts no `failure_mode_allowed` and adds no header there).
    fn enforced_failure_mode(&self) -> FailureMode {
        let config = &self.plugin.config;
        if config.shadow_mode {
            FailureMode::Deny {
                status_on_error: config.status_on_error,
            }
        } else {
            config.failure_mode
        }
    }

    fn make_changes(&mut self, allow: Allow) {
        self.grown += header_limit::growth(&allow);
        let response_headers = apply::allow(&self.host, self.context_id, allow);
        self.response_headers.extend(response_headers);
    }
}
