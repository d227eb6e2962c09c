//! The CloudTrailService implementation: one short method per RPC.
//!
//! Each method hands `call` its operation, its request and how to check and convert the message
//! into the SDK call (`convert`). `call` routes the request to its account and Region (`accounts`; a
//! trail name goes to the trail's home Region) and checks that the caller may call there; answers a
//! retried `request_id` from the idempotency store; serves pollers' reads from the read cache; gets
//! the client for that target and caller (`upstream`); makes sure the caller's role session exists,
//! takes a slot of the quota (`limits`) and sends the call, again while CloudTrail answers a
//! propagation error if asked to; drops the account's cached reads after a change; writes the audit
//! record. `error` turns any failure into a status. LookupEvents goes through its own coalescer, and
//! ApplyTrail (`apply`) is made of the same steps. CloudTrail's rules are `convert`'s and the
//! mapping of its errors `error`'s; the error codes known here are those that steer a call: which
//! mean "not visible yet" (`propagation`), and which ApplyTrail reads as "nothing there yet".

mod apply;
mod context;
mod propagation;
mod reads;
mod sendable;
mod stream;

use std::{
    any::Any,
    sync::Arc,
    time::{Duration, Instant},
};

use Operation::*;
use aws_sdk_cloudtrail::{Client, error::ProvideErrorMetadata, operation::RequestId};
use prost::Message;
use tokio::sync::watch;
use tonic::{Code, Request, Response, Status, metadata::MetadataValue};

use crate::{
    accounts::{
        Target,
        homes::{self, Listed, TrailHomes},
    },
    audit::{self, AuditLog},
    auth::policy::Policy,
    convert::{events, fields::Fields, selectors, tags, trails},
    error::{Error, Refused},
    idempotency::{self, Claim, Idempotency},
    limits::{
        Limiter,
        coalesce::{Coalescer, Shared, Source},
    },
    operation::Operation,
    pb::{self, cloud_trail_service_server::CloudTrailService},
    principal::Principal,
    stream::{Feeds, StreamConfig},
    telemetry::{self, Outcome, UpstreamMetrics},
    upstream::Upstream,
};
use context::CallContext;
use propagation::Backoff;
use reads::Reads;
use sendable::Sendable;

pub use context::{RETRY_KEY, RETRY_PROPAGATION};

/// LookupEvents answers by target and encoded request.
type Lookups = Coalescer<(Target, Vec<u8>), Arc<pb::LookupEventsResponse>>;

/// The `reason` label of `..._auth_failures_total` for a target the caller may not use.
pub const TARGET_DENIED_LABEL: &str = "target_denied";

/// Response metadata set on an answer replayed for a retried `request_id`.
pub const REPLAYED_KEY: &str = "x-cloudtrail-replayed";

/// What the API is set up with besides its collaborators.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The deadline of calls that set none.
    pub request_timeout: Duration,
    /// Audit reads too.
    pub audit_reads: bool,
    /// How long pollers' reads are kept (0: not kept nor shared).
    pub read_cache_ttl: Duration,
    /// How long an account's trail names → home Regions are kept.
    pub trail_home_ttl: Duration,
    /// How StreamEvents follows.
    pub streams: StreamConfig,
}

/// Which CloudTrail errors a call is sent again after.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Retries {
    None,
    /// Propagation errors.
    Propagation,
    /// Those, and "not found" (the trail was just created).
    AfterCreate,
}

/// The gRPC service, holding the SDK clients, the quota limiter and the caches.
#[derive(Debug, Clone)]
pub struct Gateway {
    upstream: Upstream,
    limiter: Arc<Limiter>,
    /// The roles' grants, for the check of a call's target.
    policy: Arc<Policy>,
    lookups: Arc<Lookups>,
    reads: Arc<Reads>,
    homes: Arc<TrailHomes>,
    idempotency: Arc<Idempotency>,
    feeds: Arc<Feeds>,
    streams: StreamConfig,
    /// Turns true when the gateway starts shutting down (streams then end with their cursor).
    draining: watch::Receiver<bool>,
    request_timeout: Duration,
    upstream_metrics: UpstreamMetrics,
    audit: AuditLog,
}

impl Gateway {
    pub fn new(
        upstream: Upstream,
        limiter: Arc<Limiter>,
        policy: Arc<Policy>,
        idempotency: Arc<Idempotency>,
        settings: &Settings,
        draining: watch::Receiver<bool>,
    ) -> Self {
        let lookups = Arc::new(Coalescer::new(limiter.config().lookup_cache_ttl));
        for source in [Source::Upstream, Source::Coalesced, Source::Cache] {
            metrics::counter!(telemetry::LOOKUPS, "source" => source_label(source)).increment(0);
        }
        metrics::counter!(telemetry::AUTH_FAILURES, "reason" => TARGET_DENIED_LABEL).increment(0);
        // At zero without accounts too, so its alert has a series.
        for outcome in ["ok", "error"] {
            metrics::counter!(telemetry::STS_REQUESTS, "outcome" => outcome).increment(0);
        }
        metrics::counter!(telemetry::PROPAGATION_RETRIES).increment(0);
        metrics::gauge!(telemetry::STREAMS).increment(0.0);
        metrics::gauge!(telemetry::STREAM_FEEDS).increment(0.0);
        for phase in ["history", "follow"] {
            metrics::counter!(telemetry::STREAMED_EVENTS, "phase" => phase).increment(0);
        }
        Gateway {
            upstream,
            limiter,
            policy,
            lookups,
            reads: Arc::new(Reads::new(settings.read_cache_ttl)),
            homes: Arc::new(TrailHomes::new(settings.trail_home_ttl)),
            idempotency,
            feeds: Arc::new(Feeds::default()),
            streams: settings.streams.clone(),
            draining,
            request_timeout: settings.request_timeout,
            upstream_metrics: UpstreamMetrics::new(),
            audit: AuditLog::new(settings.audit_reads),
        }
    }

    /// Where the call goes (its trail ARNs, else its metadata, else the defaults; a trail name to
    /// the trail's home Region), checked against what the caller may do there; then the client for
    /// that target and caller.
    async fn route(
        &self,
        operation: Operation,
        context: &mut CallContext,
        refs: &[String],
    ) -> Result<Client, Error> {
        if let Some(problem) = context.target_problem.take() {
            return Err(problem);
        }
        let accounts = self.upstream.accounts();
        let mut target = accounts.resolve(context.asked.clone(), refs)?;
        context.set_target(target.clone());
        self.authorize(operation, context.caller.as_ref(), &target)?;
        if let Some(home) = self.home_of(operation, context, refs).await? {
            target = accounts.in_region(&target, home)?;
            context.set_target(target.clone());
            self.authorize(operation, context.caller.as_ref(), &target)?;
        }
        Ok(self.upstream.client(&target, context.caller.as_ref()))
    }

    /// The home Region of the trail a call names by name, when it is another than the call's own
    /// and the account is served in more than one Region.
    async fn home_of(
        &self,
        operation: Operation,
        context: &CallContext,
        refs: &[String],
    ) -> Result<Option<String>, Error> {
        let (Some(target), [name]) = (&context.target, refs) else {
            return Ok(None);
        };
        let regions = self
            .upstream
            .accounts()
            .account(&target.account)
            .map_or(0, |a| a.regions.len());
        // A name that breaks the rules is refused by the conversion: no ListTrails for it.
        let invalid = crate::convert::rules::trail_name_problem(name).is_some();
        if !operation.finds_one_trail() || name.starts_with("arn:") || regions < 2 || invalid {
            return Ok(None);
        }
        let client = self.upstream.client(target, context.caller.as_ref());
        let homes = self
            .homes
            .of(&target.account, self.list_trails(context, &client))
            .await?;
        Ok(homes::elsewhere(&homes, name, &target.region).map(str::to_owned))
    }

    /// Every trail of the call's account (ListTrails, every page).
    async fn list_trails(
        &self,
        context: &CallContext,
        client: &Client,
    ) -> Result<Vec<Listed>, Error> {
        let mut listed = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let call = client.list_trails().set_next_token(token.take());
            let page = self
                .upstream(ListTrails, context, call, Retries::None)
                .await?;
            listed.extend(page.trails.unwrap_or_default().into_iter().filter_map(|t| {
                Some(Listed {
                    name: t.name?,
                    home_region: t.home_region?,
                })
            }));
            match page.next_token.filter(|t| !t.is_empty()) {
                Some(next) => token = Some(next),
                None => return Ok(listed),
            }
        }
    }

    /// Whether `principal` may call `operation` at `target`: one of its roles allows it there, and
    /// its own scope includes it.
    fn allows(&self, operation: Operation, principal: &Principal, target: &Target) -> bool {
        principal.scope.includes(target)
            && self.policy.allows_at(&principal.roles, operation, target)
    }

    /// Whether `caller` may call `operation` at `target` (see `allows`); PERMISSION_DENIED if not.
    /// (The auth layer already checked that some role allows the RPC.)
    fn authorize(
        &self,
        operation: Operation,
        caller: Option<&Principal>,
        target: &Target,
    ) -> Result<(), Error> {
        let Some(principal) = caller else {
            return Ok(());
        };
        if self.allows(operation, principal, target) {
            return Ok(());
        }
        Err(target_refused(
            "TargetNotPermitted",
            format!(
                "principal '{}' may not call {} in account {}, Region {}",
                principal.name,
                operation.name(),
                target.account,
                target.region
            ),
        ))
    }

    /// One RPC made of one CloudTrail call: `build` checks and converts the message into it.
    async fn call<T, B, R, F>(
        &self,
        operation: Operation,
        request: Request<T>,
        build: F,
    ) -> Result<Response<R>, Status>
    where
        T: Fields + Message + Clone + Default,
        B: Sendable,
        R: From<B::Output> + Message + Clone + Default + 'static,
        F: FnOnce(T, &Client) -> Result<B, Error>,
    {
        self.call_with(operation, request, async |message, context, client| {
            self.execute(operation, context, message, client, build)
                .await
        })
        .await
    }

    /// One RPC: routed, answered (`execute`, or the answer kept for its request id), audited
    /// whatever the outcome.
    async fn call_with<T, R>(
        &self,
        operation: Operation,
        request: Request<T>,
        execute: impl AsyncFnOnce(T, &CallContext, &Client) -> Result<R, Status>,
    ) -> Result<Response<R>, Status>
    where
        T: Fields + Message + Clone + Default,
        R: Message + Default,
    {
        let mut context = CallContext::of(&request, self.request_timeout);
        let message = request.into_inner();
        let trail = message.trail_refs().first().cloned();
        let (answer, replayed) = self.answer(operation, &mut context, message, execute).await;
        let code = answer.as_ref().map_or_else(Status::code, |_| Code::Ok);
        self.audit(operation, &context, trail.as_deref(), code);
        let mut response = Response::new(answer?);
        if replayed {
            response
                .metadata_mut()
                .insert(REPLAYED_KEY, MetadataValue::from_static("true"));
        }
        Ok(response)
    }

    /// The audit record of a finished call, when it is one to audit: a change, a read with
    /// `audit_reads`, and any call refused for where it went (a refusal is a security event).
    fn audit(&self, operation: Operation, context: &CallContext, trail: Option<&str>, code: Code) {
        if self.audit.wants(operation) || code == Code::PermissionDenied {
            let aws_request_id = context.aws_request_id();
            audit::write(&context.audit_record(operation, trail, code, aws_request_id.as_deref()));
        }
    }

    /// The call's answer, and whether it was replayed: for a request id answered before, that
    /// answer; else `execute`'s (kept for the request id when it is final).
    async fn answer<T, R>(
        &self,
        operation: Operation,
        context: &mut CallContext,
        message: T,
        execute: impl AsyncFnOnce(T, &CallContext, &Client) -> Result<R, Status>,
    ) -> (Result<R, Status>, bool)
    where
        T: Fields + Message + Clone + Default,
        R: Message + Default,
    {
        let client = match self.route(operation, context, message.trail_refs()).await {
            Ok(client) => client,
            Err(e) => return (Err(e.into()), false),
        };
        let context = &*context;
        if message.request_id().is_empty() {
            return (execute(message, context, &client).await, false);
        }
        let claim = async {
            let request_id = idempotency::check_request_id(message.request_id())?;
            let key = idempotency::key(context.principal_name(), &request_id);
            let target = context.target.as_ref().map(ToString::to_string);
            let fingerprint = idempotency::fingerprint(
                operation.name(),
                target.as_deref().unwrap_or_default(),
                &message.without_request_id().encode_to_vec(),
            );
            self.idempotency.claim(key, fingerprint).await
        };
        match claim.await {
            Err(e) => (Err(e.into()), false),
            Ok(Claim::Replay(kept)) => {
                let answer = kept.into_result().and_then(|body| {
                    R::decode(body.as_slice()).map_err(|e| {
                        Status::internal(format!("a kept answer does not decode: {e}"))
                    })
                });
                context.note_answered("replay");
                (answer, true)
            }
            Ok(Claim::Run(ticket)) => {
                let answer = execute(message, context, &client).await;
                let kept = match &answer {
                    Ok(response) => Some(idempotency::Answer::ok(&response.encode_to_vec())),
                    Err(status) if idempotency::is_final(status.code()) => {
                        Some(idempotency::Answer::failed(status))
                    }
                    Err(_) => None,
                };
                self.idempotency.finish(ticket, kept).await;
                (answer, false)
            }
        }
    }

    /// Makes the call `build` gives: through the read cache for pollers' reads; after a change, the
    /// account's cached reads (and, for a trail created or deleted, its trails' home Regions) are
    /// dropped.
    async fn execute<T, B, R, F>(
        &self,
        operation: Operation,
        context: &CallContext,
        message: T,
        client: &Client,
        build: F,
    ) -> Result<R, Status>
    where
        T: Message,
        B: Sendable,
        R: From<B::Output> + Clone + Send + Sync + 'static,
        F: FnOnce(T, &Client) -> Result<B, Error>,
    {
        let retries = if context.retry_propagation {
            Retries::Propagation
        } else {
            Retries::None
        };
        let target = context.target.as_ref().ok_or_else(unrouted)?;
        if self.reads.caches(operation) {
            let key = self.reads.key(target, operation, message.encode_to_vec());
            let call = build(message, client)?;
            let (answer, source) = self
                .reads
                .get(key, context.deadline, || async {
                    match self.upstream(operation, context, call, retries).await {
                        Ok(output) => {
                            let response: Arc<dyn Any + Send + Sync> = Arc::new(R::from(output));
                            Shared::Done(Ok(response))
                        }
                        Err(e) => shared_failure(e),
                    }
                })
                .await;
            context.note_answered(audit::answer_label(source));
            return answer?
                .downcast_ref::<R>()
                .cloned()
                .ok_or_else(|| Status::internal("the read cache holds another RPC's answer"));
        }
        let call = build(message, client)?;
        let output = self.upstream(operation, context, call, retries).await?;
        context.note_answered("cloudtrail");
        if !operation.is_read_only() {
            self.changed(operation, target).await;
        }
        Ok(R::from(output))
    }

    /// A change was made at `target`: what was read there before is stale.
    async fn changed(&self, operation: Operation, target: &Target) {
        self.reads.changed(&target.account);
        if operation.reshapes_trails() {
            self.homes.forget(&target.account).await;
        }
    }

    /// Gets the caller's role session (if calls are made through one), takes a slot of the
    /// operation's quota at the call's target, then sends the SDK call within what is left of the
    /// caller's deadline; again after a propagation error when `retries` says so, while the deadline
    /// leaves time (then the caller gets the last error, with RetryInfo).
    async fn upstream<B: Sendable>(
        &self,
        operation: Operation,
        context: &CallContext,
        call: B,
        retries: Retries,
    ) -> Result<B::Output, Error> {
        let started = Instant::now();
        let target = context.target.as_ref().ok_or_else(unrouted)?;
        let left = |limit: Duration| limit.saturating_sub(started.elapsed());
        // The session first: an STS failure spends no quota slot.
        if self.upstream.uses_sessions() {
            let prepare = self.upstream.prepare(target, context.caller.as_ref());
            match context.deadline {
                Some(limit) => tokio::time::timeout(limit, prepare)
                    .await
                    .map_err(|_| Error::DeadlineExceeded)??,
                None => prepare.await?,
            }
        }
        let mut backoff = Backoff::default();
        let mut call = Some(call);
        loop {
            let slot_wait = match context.caller_deadline {
                true => context.deadline.map(left),
                false => context
                    .deadline
                    .map(|d| left(d).min(self.limiter.config().max_wait_without_deadline)),
            };
            self.limiter
                .acquire(
                    target,
                    operation.quota(),
                    context.principal_name(),
                    slot_wait,
                )
                .await
                .map_err(|refusal| match context.caller_deadline {
                    true => refusal,
                    false => refusal.without_deadline(),
                })?;
            // Kept for another attempt only when there may be one.
            let this = match retries {
                Retries::None => call.take(),
                _ => call.clone(),
            }
            .ok_or_else(unrouted)?;
            let sent = Instant::now();
            let output = match context.deadline {
                Some(limit) => tokio::time::timeout(left(limit), this.dispatch()).await,
                None => Ok(this.dispatch().await),
            };
            let elapsed = sent.elapsed();
            let outcome = match &output {
                Ok(Ok(_)) => Outcome::Ok,
                Ok(Err(e)) => Outcome::Error(e.code().unwrap_or("error")),
                Err(_) => Outcome::Deadline,
            };
            self.upstream_metrics.record(operation, outcome, elapsed);
            let span = tracing::Span::current();
            span.record("upstream_ms", elapsed.as_secs_f64() * 1000.0);
            let result = match output {
                Ok(Ok(output)) => {
                    if let Some(id) = output.request_id() {
                        span.record("aws_request_id", tracing::field::display(id));
                        context.note_aws_request_id(Some(id));
                    }
                    return Ok(output);
                }
                Ok(Err(e)) => Error::from(e).naming(operation.name(), self.upstream.endpoint()),
                Err(_) => Error::DeadlineExceeded,
            };
            context.note_aws_request_id(result.aws_request_id());
            let after_create = retries == Retries::AfterCreate;
            if retries == Retries::None || !propagation::is_propagating(&result, after_create) {
                return Err(result);
            }
            let wait = backoff.next();
            if context.deadline.is_some_and(|limit| left(limit) <= wait) {
                return Err(result.retry_after(wait));
            }
            if let Error::Upstream(up) = &result {
                metrics::counter!(telemetry::PROPAGATION_RETRIES, "operation" => operation.name(), "reason" => up.reason.clone())
                    .increment(1);
            }
            tokio::time::sleep(wait).await;
        }
    }

    /// LookupEvents: routed like every call, then answered by the coalescer (identical lookups to
    /// one target share one slot and one upstream call, made as the first caller).
    async fn lookup(
        &self,
        context: &mut CallContext,
        message: pb::LookupEventsRequest,
    ) -> Result<(Arc<pb::LookupEventsResponse>, Source), Status> {
        let client = self
            .route(LookupEvents, context, message.trail_refs())
            .await?;
        let (answer, source) = self.coalesced_lookup(context, &client, message).await?;
        context.note_answered(audit::answer_label(source));
        metrics::counter!(telemetry::LOOKUPS, "source" => source_label(source)).increment(1);
        Ok((answer, source))
    }

    /// One LookupEvents call of a routed context, through the coalescer.
    async fn coalesced_lookup(
        &self,
        context: &CallContext,
        client: &Client,
        message: pb::LookupEventsRequest,
    ) -> Result<(Arc<pb::LookupEventsResponse>, Source), Status> {
        let target = context.target.clone().ok_or_else(unrouted)?;
        // Identical requests (same fields and page token) encode identically.
        let key = (target, message.encode_to_vec());
        let call = events::lookup_events(message, client.lookup_events())?;
        let (answer, source) = self
            .lookups
            .get(key, context.deadline, || async {
                match self
                    .upstream(LookupEvents, context, call, Retries::None)
                    .await
                {
                    Ok(output) => Shared::Done(Ok(Arc::new(output.into()))),
                    Err(e) => shared_failure(e),
                }
            })
            .await;
        Ok((answer?, source))
    }
}

/// PERMISSION_DENIED for where a call goes (counted as `target_denied`).
fn target_refused(reason: &'static str, message: String) -> Error {
    metrics::counter!(telemetry::AUTH_FAILURES, "reason" => TARGET_DENIED_LABEL).increment(1);
    Refused::new(Code::PermissionDenied, reason, message).into()
}

/// A call that was not routed (cannot happen: routing comes first).
fn unrouted() -> Error {
    Refused::new(Code::Internal, "NotRouted", "the call was not routed").into()
}

/// A shared call's failure: the leader's own (its deadline too short for a slot or the call)
/// lets the others try for themselves.
fn shared_failure<V>(e: Error) -> Shared<V> {
    match e {
        e @ (Error::RateLimited(_) | Error::DeadlineExceeded) => Shared::LeaderOnly(e.into()),
        e => Shared::Done(Err(e.into())),
    }
}

fn source_label(source: Source) -> &'static str {
    match source {
        Source::Upstream => "upstream",
        Source::Coalesced => "coalesced",
        Source::Cache => "cache",
    }
}

#[tonic::async_trait]
impl CloudTrailService for Gateway {
    async fn stream_events(
        &self,
        request: Request<pb::StreamEventsRequest>,
    ) -> Result<Response<tonic::codegen::BoxStream<pb::StreamEventsResponse>>, Status> {
        let stream = Gateway::stream_events(self, request).await?;
        Ok(stream.map(|s| Box::pin(s) as tonic::codegen::BoxStream<_>))
    }

    async fn create_trail(
        &self,
        request: Request<pb::CreateTrailRequest>,
    ) -> Result<Response<pb::CreateTrailResponse>, Status> {
        self.call(CreateTrail, request, |m, c| {
            trails::create_trail(m, c.create_trail())
        })
        .await
    }

    async fn update_trail(
        &self,
        request: Request<pb::UpdateTrailRequest>,
    ) -> Result<Response<pb::UpdateTrailResponse>, Status> {
        self.call(UpdateTrail, request, |m, c| {
            trails::update_trail(m, c.update_trail())
        })
        .await
    }

    async fn delete_trail(
        &self,
        request: Request<pb::DeleteTrailRequest>,
    ) -> Result<Response<pb::DeleteTrailResponse>, Status> {
        self.call(DeleteTrail, request, |m, c| {
            Ok(c.delete_trail().name(trails::trail_ref("name", m.name)?))
        })
        .await
    }

    async fn describe_trails(
        &self,
        request: Request<pb::DescribeTrailsRequest>,
    ) -> Result<Response<pb::DescribeTrailsResponse>, Status> {
        self.call(DescribeTrails, request, |m, c| {
            trails::describe_trails(m, c.describe_trails())
        })
        .await
    }

    async fn get_trail(
        &self,
        request: Request<pb::GetTrailRequest>,
    ) -> Result<Response<pb::GetTrailResponse>, Status> {
        self.call(GetTrail, request, |m, c| {
            Ok(c.get_trail().name(trails::trail_ref("name", m.name)?))
        })
        .await
    }

    async fn list_trails(
        &self,
        request: Request<pb::ListTrailsRequest>,
    ) -> Result<Response<pb::ListTrailsResponse>, Status> {
        self.call(ListTrails, request, |m, c| {
            Ok(trails::list_trails(m, c.list_trails()))
        })
        .await
    }

    async fn get_trail_status(
        &self,
        request: Request<pb::GetTrailStatusRequest>,
    ) -> Result<Response<pb::GetTrailStatusResponse>, Status> {
        self.call(GetTrailStatus, request, |m, c| {
            Ok(c.get_trail_status()
                .name(trails::trail_ref("name", m.name)?))
        })
        .await
    }

    async fn start_logging(
        &self,
        request: Request<pb::StartLoggingRequest>,
    ) -> Result<Response<pb::StartLoggingResponse>, Status> {
        self.call(StartLogging, request, |m, c| {
            Ok(c.start_logging().name(trails::trail_ref("name", m.name)?))
        })
        .await
    }

    async fn stop_logging(
        &self,
        request: Request<pb::StopLoggingRequest>,
    ) -> Result<Response<pb::StopLoggingResponse>, Status> {
        self.call(StopLogging, request, |m, c| {
            Ok(c.stop_logging().name(trails::trail_ref("name", m.name)?))
        })
        .await
    }

    async fn get_event_selectors(
        &self,
        request: Request<pb::GetEventSelectorsRequest>,
    ) -> Result<Response<pb::GetEventSelectorsResponse>, Status> {
        self.call(GetEventSelectors, request, |m, c| {
            let name = trails::trail_ref("trail_name", m.trail_name)?;
            Ok(c.get_event_selectors().trail_name(name))
        })
        .await
    }

    async fn put_event_selectors(
        &self,
        request: Request<pb::PutEventSelectorsRequest>,
    ) -> Result<Response<pb::PutEventSelectorsResponse>, Status> {
        self.call(PutEventSelectors, request, |m, c| {
            selectors::put_event_selectors(m, c.put_event_selectors())
        })
        .await
    }

    async fn get_insight_selectors(
        &self,
        request: Request<pb::GetInsightSelectorsRequest>,
    ) -> Result<Response<pb::GetInsightSelectorsResponse>, Status> {
        self.call(GetInsightSelectors, request, |m, c| {
            let name = trails::trail_ref("trail_name", m.trail_name)?;
            Ok(c.get_insight_selectors().trail_name(name))
        })
        .await
    }

    async fn put_insight_selectors(
        &self,
        request: Request<pb::PutInsightSelectorsRequest>,
    ) -> Result<Response<pb::PutInsightSelectorsResponse>, Status> {
        self.call(PutInsightSelectors, request, |m, c| {
            selectors::put_insight_selectors(m, c.put_insight_selectors())
        })
        .await
    }

    async fn add_tags(
        &self,
        request: Request<pb::AddTagsRequest>,
    ) -> Result<Response<pb::AddTagsResponse>, Status> {
        self.call(AddTags, request, |m, c| tags::add_tags(m, c.add_tags()))
            .await
    }

    async fn remove_tags(
        &self,
        request: Request<pb::RemoveTagsRequest>,
    ) -> Result<Response<pb::RemoveTagsResponse>, Status> {
        self.call(RemoveTags, request, |m, c| {
            tags::remove_tags(m, c.remove_tags())
        })
        .await
    }

    async fn list_tags(
        &self,
        request: Request<pb::ListTagsRequest>,
    ) -> Result<Response<pb::ListTagsResponse>, Status> {
        self.call(ListTags, request, |m, c| tags::list_tags(m, c.list_tags()))
            .await
    }

    async fn lookup_events(
        &self,
        request: Request<pb::LookupEventsRequest>,
    ) -> Result<Response<pb::LookupEventsResponse>, Status> {
        let mut context = CallContext::of(&request, self.request_timeout);
        let answer = self.lookup(&mut context, request.into_inner()).await;
        let code = answer.as_ref().map_or_else(Status::code, |_| Code::Ok);
        self.audit(LookupEvents, &context, None, code);
        Ok(Response::new(answer?.0.as_ref().clone()))
    }

    async fn list_public_keys(
        &self,
        request: Request<pb::ListPublicKeysRequest>,
    ) -> Result<Response<pb::ListPublicKeysResponse>, Status> {
        self.call(ListPublicKeys, request, |m, c| {
            events::list_public_keys(m, c.list_public_keys())
        })
        .await
    }

    async fn apply_trail(
        &self,
        request: Request<pb::ApplyTrailRequest>,
    ) -> Result<Response<pb::ApplyTrailResponse>, Status> {
        self.call_with(ApplyTrail, request, async |m, context, client| {
            Ok(self.apply(context, client, m).await?)
        })
        .await
    }
}
