//! The decision cache on a request's way (see [`crate::cache`]): before a remote step's call, a
//! fresh entry's answer is concluded instead of calling; after the call, the answer as received is
//! stored when it may be; and when the call fails, an allow within `stale_if_error` is concluded
//! instead of the failure. Only answers are served from here: every one still goes through
//! `conclude` and `end`, as a fresh answer does.

use std::rc::Rc;

use super::chain::StepRef;
use super::dispatch::{source_principal, Request};
use super::ExtAuthz;
use crate::cache::key::{self, KeyParts};
use crate::cache::{Cache, Class, Digest, Entry, Event, Found, RawAnswer, Stored, DEBUG_HEADER};
use crate::config::{Check, HttpService, Selection};
use crate::decision::{Answer, Decision, HeaderAction, HeaderMutation};
use crate::host::{Host, LogLevel};

/// A miss, while its call is out: where its answer goes, and what may stand in for a failure.
pub(super) struct CacheCall {
    digest: Digest,
    /// The slot's token at lookup, so that a worker that wrote it since wins.
    cas: u32,
    /// An allow past its freshness, within `stale_if_error`.
    stale: Option<Entry>,
    /// The answer as received.
    raw: Option<RawAnswer>,
}

impl<H: Host> ExtAuthz<H> {
    /// Before a remote step's call: the answer of a fresh entry for this request, to conclude
    /// instead of calling. On a miss, remembers the key for the answer.
    pub(super) fn cached(
        &mut self,
        settings: Check<'_>,
        step: StepRef<'_>,
        request: Request<'_>,
    ) -> Option<Answer> {
        self.cache_call = None;
        let plugin = Rc::clone(&self.plugin);
        let cache = plugin.cache.as_ref()?;
        let http = match step {
            StepRef::RequiredHeader(_) => return None,
            StepRef::Grpc { .. } => None,
            StepRef::Http(http) => Some(http),
        };
        if settings.with_request_body.is_some() {
            // The body goes to the server and is in no key.
            cache.stats.count(&self.host, Event::Skip);
            return None;
        }
        let digest = self.digest(cache, settings, step, request);
        let lookup = cache.table.lookup(&self.host, &digest, self.now());
        let stale = match lookup.found {
            Found::Fresh(entry) => {
                let answer = entry.answer.decode(http);
                // Only an allow or a denial is ever stored; anything else is not this filter's.
                if class(&answer.decision) == Some(entry.class) {
                    cache.stats.count(&self.host, Event::Hit);
                    return Some(self.marked(answer, "hit"));
                }
                None
            }
            Found::Stale(entry) => Some(entry),
            Found::Miss => None,
        };
        cache.stats.count(&self.host, Event::Miss);
        self.cache_call = Some(CacheCall {
            digest,
            cas: lookup.cas,
            stale,
            raw: None,
        });
        None
    }

    /// Whether the answer of the call out is wanted as received.
    pub(super) fn wants_raw(&self) -> bool {
        self.cache_call.is_some()
    }

    pub(super) fn keep_raw(&mut self, raw: RawAnswer) {
        if let Some(call) = &mut self.cache_call {
            call.raw = Some(raw);
        }
    }

    /// A missed step's answer, or its call's failure: a failure is replaced by a stale allow when
    /// there is one; an answer is marked, and stored once reviewed ([`Self::store_reviewed`]).
    /// Without a miss, the answer as it is.
    pub(super) fn fresh_answer(&mut self, answer: Answer) -> Answer {
        if self.cache_call.is_none() {
            return answer;
        }
        let Decision::Error(error) = &answer.decision else {
            return self.marked(answer, "miss");
        };
        let plugin = Rc::clone(&self.plugin);
        let (Some(call), Some(cache)) = (self.cache_call.take(), plugin.cache.as_ref()) else {
            return answer;
        };
        cache.stats.count(&self.host, Event::Skip);
        let Some(stale) = call.stale else {
            return answer;
        };
        let served = stale.answer.decode(self.current_http(&plugin));
        if !matches!(served.decision, Decision::Allow(_)) {
            return answer;
        }
        cache.stats.count(&self.host, Event::StaleServed);
        let age = self.now().saturating_sub(stale.fresh_until);
        self.log(
            LogLevel::Warn,
            &format!(
                "check failed ({error}): serving a cached allow, expired {} ms ago",
                crate::stats::millis(age)
            ),
        );
        self.marked(served, "stale")
    }

    /// A missed step's answer, as review left it (`conclude` calls this once it has reviewed):
    /// stored when it may be, and counted `store` or `skip`.
    pub(super) fn store_reviewed(&mut self, decision: &Decision, dynamic_metadata: &[u8]) {
        let Some(call) = self.cache_call.take() else {
            return;
        };
        let plugin = Rc::clone(&self.plugin);
        let Some(cache) = plugin.cache.as_ref() else {
            return;
        };
        let stored = match call.raw {
            Some(raw) => self.store(
                cache,
                call.digest,
                call.cas,
                raw,
                decision,
                dynamic_metadata,
            ),
            None => false,
        };
        let event = if stored { Event::Store } else { Event::Skip };
        cache.stats.count(&self.host, event);
    }

    /// Stores an answer that may be: an allow, or a denial under `denied_ttl`, that review did
    /// not refuse, with a lifetime above zero, under the size cap.
    fn store(
        &self,
        cache: &Cache,
        digest: Digest,
        cas: u32,
        raw: RawAnswer,
        decision: &Decision,
        dynamic_metadata: &[u8],
    ) -> bool {
        // An answer whose changes review refused is a failed check: no class, not kept.
        let Some(class) = class(decision) else {
            return false;
        };
        let settings = &cache.settings;
        let configured = match class {
            Class::Allow => settings.ttl,
            Class::Deny => settings.denied_ttl,
        };
        let ttl = raw.server_ttl(dynamic_metadata).bound(configured);
        if ttl.is_zero() {
            return false;
        }
        let now = self.now();
        let fresh_until = now.saturating_add(ttl);
        let stale_until = match class {
            Class::Allow => fresh_until.saturating_add(settings.stale_if_error),
            Class::Deny => fresh_until,
        };
        let entry = Entry {
            digest,
            stored_at: now,
            fresh_until,
            stale_until,
            class,
            answer: raw,
        };
        cache.table.store(&self.host, &entry, cas) == Stored::Yes
    }

    /// The digest of this request's key for this step.
    fn digest(
        &self,
        cache: &Cache,
        settings: Check<'_>,
        step: StepRef<'_>,
        request: Request<'_>,
    ) -> Digest {
        let service = match step {
            StepRef::Grpc { service, .. } => service.target.clone(),
            StepRef::Http(http) => {
                [http.cluster.as_bytes(), b"\0", http.path_prefix.as_bytes()].concat()
            }
            StepRef::RequiredHeader(_) => Vec::new(),
        };
        let wanted = &self.plugin.config.metadata;
        let read = |path: &[&str], any: bool| {
            any.then(|| self.host.property(path).ok().flatten())
                .flatten()
                .unwrap_or_default()
        };
        let metadata = read(
            &["metadata"],
            !wanted.dynamic_namespaces.is_empty() || !wanted.typed_dynamic_namespaces.is_empty(),
        );
        let route_metadata = read(
            &["xds", "route_metadata"],
            !wanted.route_namespaces.is_empty() || !wanted.typed_route_namespaces.is_empty(),
        );
        let principal = cache
            .settings
            .key
            .source_principal
            .then(|| source_principal(&self.host))
            .flatten();
        let parts = KeyParts {
            config_hash: &cache.config_hash,
            route: match self.selection {
                Selection::Route(i) => Some(i),
                Selection::TopLevel | Selection::Disabled => None,
            },
            step: self.chain.position(),
            service: &service,
            context_extensions: &settings.context_extensions.encoded,
            passthrough: &self.chain.passthrough,
            metadata: &metadata,
            route_metadata: &route_metadata,
            headers: request.headers,
            principal: principal.as_deref(),
        };
        key::digest(&cache.settings.key, &parts)
    }

    /// The `http_service` of the step that runs now, if it is one.
    fn current_http<'p>(&self, plugin: &'p crate::plugin::Plugin) -> Option<&'p HttpService> {
        let service = plugin.config.check(self.selection)?.service;
        match self.chain.current(service)? {
            StepRef::Http(http) => Some(http),
            StepRef::Grpc { .. } | StepRef::RequiredHeader(_) => None,
        }
    }

    /// With `debug_header`, says on the client's response how the answer was had.
    fn marked(&self, mut answer: Answer, how: &str) -> Answer {
        let on = self
            .plugin
            .cache
            .as_ref()
            .is_some_and(|c| c.settings.debug_header);
        if !on {
            return answer;
        }
        let header = HeaderMutation {
            name: DEBUG_HEADER.into(),
            value: how.as_bytes().to_vec(),
            action: HeaderAction::Set,
        };
        match &mut answer.decision {
            Decision::Allow(allow) => allow.response_headers.push(header),
            Decision::Deny(reply) => reply.headers.push(header),
            Decision::Error(_) | Decision::Invalid(_) => {}
        }
        answer
    }
}

fn class(decision: &Decision) -> Option<Class> {
    match decision {
        Decision::Allow(_) => Some(Class::Allow),
        Decision::Deny(_) => Some(Class::Deny),
        Decision::Error(_) | Decision::Invalid(_) => None,
    }
}
