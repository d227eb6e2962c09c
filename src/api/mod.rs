//! The CloudTrailService implementation: one short method per RPC.
//!
//! Each method hands `call` its operation, its request and how to check and convert the message
//! into the SDK call (`convert`). `call` routes the request to its account and Region (`accounts`)
//! and checks that the caller may call there, gets the client for that target and caller
//! (`upstream`), makes sure the caller's role session exists, takes a slot of the quota (`limits`),
//! sends the call, converts the answer back and writes the audit record; `error` turns any failure
//! into a status. LookupEvents goes through the coalescer first, so identical lookups share one slot
//! and one upstream call. Nothing here knows CloudTrail's rules or error codes.

mod context;

use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    time::{Duration, Instant},
};

use Operation::*;
use aws_sdk_cloudtrail::{
    Client,
    error::{ProvideErrorMetadata, SdkError},
    operation::RequestId,
};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use tonic::{Code, Request, Response, Status};

use crate::{
    accounts::Target,
    audit::{self, AuditLog},
    auth::policy::Policy,
    convert::{events, routes::Routed, selectors, tags, trails},
    error::{Error, Refused},
    limits::{
        Limiter,
        coalesce::{Coalescer, Shared, Source},
    },
    operation::Operation,
    pb::{self, cloud_trail_service_server::CloudTrailService},
    principal::Principal,
    telemetry::{self, Outcome, UpstreamMetrics},
    upstream::Upstream,
};
use context::CallContext;

/// LookupEvents answers by target and encoded request.
type Lookups = Coalescer<(Target, Vec<u8>), Arc<pb::LookupEventsResponse>>;

/// The `reason` label of `..._auth_failures_total` for a target the caller may not use.
pub const TARGET_DENIED_LABEL: &str = "target_denied";

/// The gRPC service, holding the SDK clients and the quota limiter.
#[derive(Debug, Clone)]
pub struct Gateway {
    upstream: Upstream,
    limiter: Arc<Limiter>,
    /// The roles' grants, for the check of a call's target.
    policy: Arc<Policy>,
    lookups: Arc<Lookups>,
    /// The deadline of calls that set none.
    request_timeout: Duration,
    upstream_metrics: UpstreamMetrics,
    audit: AuditLog,
}

impl Gateway {
    pub fn new(
        upstream: Upstream,
        limiter: Arc<Limiter>,
        policy: Arc<Policy>,
        request_timeout: Duration,
        audit_reads: bool,
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
        Gateway {
            upstream,
            limiter,
            policy,
            lookups,
            request_timeout,
            upstream_metrics: UpstreamMetrics::new(),
            audit: AuditLog::new(audit_reads),
        }
    }

    /// Where the call goes (its trail ARNs, else its metadata, else the defaults), checked against
    /// what the caller may do there; then the client for that target and caller.
    fn route(
        &self,
        operation: Operation,
        context: &mut CallContext,
        refs: &[String],
    ) -> Result<Client, Error> {
        if let Some(problem) = context.target_problem.take() {
            return Err(problem);
        }
        let target = self
            .upstream
            .accounts()
            .resolve(context.asked.clone(), refs)?;
        // Known from here, so the access log and the audit record name it even when refused.
        context.set_target(target.clone());
        self.authorize(operation, context.caller.as_ref(), &target)?;
        Ok(self.upstream.client(&target, context.caller.as_ref()))
    }

    /// Whether `caller` may call `operation` at `target`: one of its roles allows it there, and its
    /// own scope includes it. (The auth layer already checked that some role allows the RPC.)
    fn authorize(
        &self,
        operation: Operation,
        caller: Option<&Principal>,
        target: &Target,
    ) -> Result<(), Error> {
        let Some(principal) = caller else {
            return Ok(());
        };
        if principal.scope.includes(target)
            && self.policy.allows_at(&principal.roles, operation, target)
        {
            return Ok(());
        }
        metrics::counter!(telemetry::AUTH_FAILURES, "reason" => TARGET_DENIED_LABEL).increment(1);
        Err(Refused::new(
            Code::PermissionDenied,
            "TargetNotPermitted",
            format!(
                "principal '{}' may not call {} in account {}, Region {}",
                principal.name,
                operation.name(),
                target.account,
                target.region
            ),
        )
        .into())
    }

    /// One RPC: routes it, checks and converts its message into the SDK call (`build`), sends it,
    /// converts the answer, and writes the audit record whatever the outcome.
    async fn call<T, F, Fut, O, E, R>(
        &self,
        operation: Operation,
        request: Request<T>,
        build: F,
    ) -> Result<Response<R>, Status>
    where
        T: Routed,
        F: FnOnce(T, &Client) -> Result<Fut, Error>,
        Fut: Future<Output = Result<O, SdkError<E, HttpResponse>>>,
        O: RequestId,
        R: From<O>,
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let mut context = CallContext::of(&request, self.request_timeout);
        let message = request.into_inner();
        let audited = self.audit.wants(operation);
        let trail = audited
            .then(|| message.trail_refs().first().cloned())
            .flatten();
        let output = async {
            let client = self.route(operation, &mut context, message.trail_refs())?;
            // Boxed at once: the SDK call's future is ~20 KB, and each wrapper around it (deadline,
            // these async fns, tonic's box) would otherwise copy it.
            let call = Box::pin(build(message, &client)?);
            self.upstream(operation, &context, call).await
        }
        .await;
        if audited {
            let (code, aws_request_id) = match &output {
                Ok(o) => (Code::Ok, o.request_id()),
                Err(e) => (e.code(), e.aws_request_id()),
            };
            audit::write(&context.audit_record(operation, trail.as_deref(), code, aws_request_id));
        }
        Ok(Response::new(R::from(output?)))
    }

    /// Gets the caller's role session (if calls are made through one), takes a slot of the
    /// operation's quota at the call's target, then sends the SDK call within what is left of the
    /// caller's deadline.
    async fn upstream<O, E, F>(
        &self,
        operation: Operation,
        context: &CallContext,
        call: Pin<Box<F>>,
    ) -> Result<O, Error>
    where
        F: Future<Output = Result<O, SdkError<E, HttpResponse>>>,
        O: RequestId,
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let started = Instant::now();
        let Some(target) = &context.target else {
            return Err(Refused::new(Code::Internal, "NoTarget", "the call was not routed").into());
        };
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
            .await?;
        let sent = Instant::now();
        let output = match context.deadline {
            Some(limit) => tokio::time::timeout(left(limit), call).await,
            None => Ok(call.await),
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
        if let Ok(result) = &output
            && let Some(id) = result.request_id()
        {
            span.record("aws_request_id", tracing::field::display(id));
        }
        Ok(output.map_err(|_| Error::DeadlineExceeded)??)
    }

    /// LookupEvents: routed like every call, then answered by the coalescer (identical lookups to
    /// one target share one slot and one upstream call, made as the first caller).
    async fn lookup(
        &self,
        context: &mut CallContext,
        message: pb::LookupEventsRequest,
    ) -> Result<(Arc<pb::LookupEventsResponse>, Source), Status> {
        let client = self.route(LookupEvents, context, message.trail_refs())?;
        let target = context
            .target
            .clone()
            .unwrap_or_else(|| self.upstream.accounts().default_target().clone());
        // Identical requests (same fields and page token) encode identically.
        let key = (target, prost::Message::encode_to_vec(&message));
        let call = events::lookup_events(message, client.lookup_events())?;
        let context = &*context;
        let (answer, source) = self
            .lookups
            .get(key, context.deadline, || async {
                match self
                    .upstream(LookupEvents, context, Box::pin(call.send()))
                    .await
                {
                    Ok(output) => Shared::Done(Ok(Arc::new(output.into()))),
                    // The leader's own deadline was too short: others may still fetch for themselves.
                    Err(e @ (Error::RateLimited(_) | Error::DeadlineExceeded)) => {
                        Shared::LeaderOnly(e.into())
                    }
                    Err(e) => Shared::Done(Err(e.into())),
                }
            })
            .await;
        metrics::counter!(telemetry::LOOKUPS, "source" => source_label(source)).increment(1);
        Ok((answer?, source))
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
    async fn create_trail(
        &self,
        request: Request<pb::CreateTrailRequest>,
    ) -> Result<Response<pb::CreateTrailResponse>, Status> {
        self.call(CreateTrail, request, |m, client| {
            Ok(trails::create_trail(m, client.create_trail())?.send())
        })
        .await
    }

    async fn update_trail(
        &self,
        request: Request<pb::UpdateTrailRequest>,
    ) -> Result<Response<pb::UpdateTrailResponse>, Status> {
        self.call(UpdateTrail, request, |m, client| {
            Ok(trails::update_trail(m, client.update_trail())?.send())
        })
        .await
    }

    async fn delete_trail(
        &self,
        request: Request<pb::DeleteTrailRequest>,
    ) -> Result<Response<pb::DeleteTrailResponse>, Status> {
        self.call(DeleteTrail, request, |m, client| {
            let name = trails::trail_ref("name", m.name)?;
            Ok(client.delete_trail().name(name).send())
        })
        .await
    }

    async fn describe_trails(
        &self,
        request: Request<pb::DescribeTrailsRequest>,
    ) -> Result<Response<pb::DescribeTrailsResponse>, Status> {
        self.call(DescribeTrails, request, |m, client| {
            Ok(trails::describe_trails(m, client.describe_trails())?.send())
        })
        .await
    }

    async fn get_trail_status(
        &self,
        request: Request<pb::GetTrailStatusRequest>,
    ) -> Result<Response<pb::GetTrailStatusResponse>, Status> {
        self.call(GetTrailStatus, request, |m, client| {
            let name = trails::trail_ref("name", m.name)?;
            Ok(client.get_trail_status().name(name).send())
        })
        .await
    }

    async fn start_logging(
        &self,
        request: Request<pb::StartLoggingRequest>,
    ) -> Result<Response<pb::StartLoggingResponse>, Status> {
        self.call(StartLogging, request, |m, client| {
            let name = trails::trail_ref("name", m.name)?;
            Ok(client.start_logging().name(name).send())
        })
        .await
    }

    async fn stop_logging(
        &self,
        request: Request<pb::StopLoggingRequest>,
    ) -> Result<Response<pb::StopLoggingResponse>, Status> {
        self.call(StopLogging, request, |m, client| {
            let name = trails::trail_ref("name", m.name)?;
            Ok(client.stop_logging().name(name).send())
        })
        .await
    }

    async fn get_event_selectors(
        &self,
        request: Request<pb::GetEventSelectorsRequest>,
    ) -> Result<Response<pb::GetEventSelectorsResponse>, Status> {
        self.call(GetEventSelectors, request, |m, client| {
            let name = trails::trail_ref("trail_name", m.trail_name)?;
            Ok(client.get_event_selectors().trail_name(name).send())
        })
        .await
    }

    async fn put_event_selectors(
        &self,
        request: Request<pb::PutEventSelectorsRequest>,
    ) -> Result<Response<pb::PutEventSelectorsResponse>, Status> {
        self.call(PutEventSelectors, request, |m, client| {
            Ok(selectors::put_event_selectors(m, client.put_event_selectors())?.send())
        })
        .await
    }

    async fn add_tags(
        &self,
        request: Request<pb::AddTagsRequest>,
    ) -> Result<Response<pb::AddTagsResponse>, Status> {
        self.call(AddTags, request, |m, client| {
            Ok(tags::add_tags(m, client.add_tags())?.send())
        })
        .await
    }

    async fn remove_tags(
        &self,
        request: Request<pb::RemoveTagsRequest>,
    ) -> Result<Response<pb::RemoveTagsResponse>, Status> {
        self.call(RemoveTags, request, |m, client| {
            Ok(tags::remove_tags(m, client.remove_tags())?.send())
        })
        .await
    }

    async fn list_tags(
        &self,
        request: Request<pb::ListTagsRequest>,
    ) -> Result<Response<pb::ListTagsResponse>, Status> {
        self.call(ListTags, request, |m, client| {
            Ok(tags::list_tags(m, client.list_tags())?.send())
        })
        .await
    }

    async fn lookup_events(
        &self,
        request: Request<pb::LookupEventsRequest>,
    ) -> Result<Response<pb::LookupEventsResponse>, Status> {
        let mut context = CallContext::of(&request, self.request_timeout);
        let answer = self.lookup(&mut context, request.into_inner()).await;
        if self.audit.wants(LookupEvents) {
            let code = answer.as_ref().map_or_else(Status::code, |_| Code::Ok);
            audit::write(&context.audit_record(LookupEvents, None, code, None));
        }
        Ok(Response::new(answer?.0.as_ref().clone()))
    }

    async fn list_public_keys(
        &self,
        request: Request<pb::ListPublicKeysRequest>,
    ) -> Result<Response<pb::ListPublicKeysResponse>, Status> {
        self.call(ListPublicKeys, request, |m, client| {
            Ok(events::list_public_keys(m, client.list_public_keys())?.send())
        })
        .await
    }
}
