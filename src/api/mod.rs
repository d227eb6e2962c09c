//! The CloudTrailService implementation: one short method per RPC (here), each through the same
//! steps, one file each:
//!
//! - `call`: one RPC from request to answer: routed, a retried `request_id` answered from the
//!   idempotency store, pollers' reads served from the read cache (`reads`), else made; audited.
//! - `route`: where it goes (`accounts`; a trail name to its home Region) and whether the caller may
//!   call there.
//! - `send`: the caller's role session, a slot of the quota (`limits`), the SDK call within the
//!   deadline, again after a propagation error (`propagation`) if asked; what a change invalidates.
//! - `lookup`: LookupEvents through its coalescer; `stream`: StreamEvents; `apply`: ApplyTrail, made
//!   of the same steps; `context`: what a call carries (deadline, caller, target, request ids).
//!
//! CloudTrail's rules are `convert`'s and the mapping of its errors `error`'s; the error codes known
//! here are those that steer a call: which mean "not visible yet" (`propagation`), and which
//! ApplyTrail reads as "nothing there yet".

mod apply;
mod call;
mod context;
mod history;
mod lookup;
mod propagation;
mod reads;
mod route;
mod send;
mod sendable;
mod store_status;
mod stream_events;

use std::{sync::Arc, time::Duration};

use Operation::*;
use tokio::sync::watch;
use tonic::{Code, Request, Response, Status};

use crate::{
    accounts::{Target, homes::TrailHomes},
    audit::AuditLog,
    auth::policy::Policy,
    config::CacheConfig,
    convert::{events, fields::Fields, selectors, tags, trails},
    feeds::{Feeds, StreamConfig},
    idempotency::Idempotency,
    ingest::History,
    limits::{
        Limiter,
        coalesce::{Coalescer, Source},
    },
    operation::Operation,
    pb::{self, cloud_trail_service_server::CloudTrailService},
    telemetry::{self, UpstreamMetrics},
    upstream::Upstream,
};
use context::{CallContext, Routed};
use propagation::Backoff;
use reads::Reads;
use sendable::Sendable;

pub use context::{ANSWERED_FROM_KEY, RETRY_KEY, RETRY_PROPAGATION, WATERMARK_KEY};

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
    /// How long LookupEvents answers and pollers' reads are kept (0: not kept nor shared).
    pub caches: CacheConfig,
    /// How long an account's trail names → home Regions are kept.
    pub trail_home_ttl: Duration,
    /// How StreamEvents follows.
    pub streams: StreamConfig,
    /// The event store and its sources, if any: LookupEvents answers from it what it covers.
    pub history: Option<History>,
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
    history: Option<History>,
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
        let lookups = Arc::new(Coalescer::new(settings.caches.lookup_ttl));
        for source in [Source::Upstream, Source::Coalesced, Source::Cache] {
            metrics::counter!(telemetry::LOOKUPS, "source" => source.label()).increment(0);
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
            reads: Arc::new(Reads::new(settings.caches.read_ttl)),
            homes: Arc::new(TrailHomes::new(settings.trail_home_ttl)),
            idempotency,
            feeds: Arc::new(Feeds::default()),
            streams: settings.streams.clone(),
            history: settings.history.clone(),
            draining,
            request_timeout: settings.request_timeout,
            upstream_metrics: UpstreamMetrics::new(),
            audit: AuditLog::new(settings.audit_reads),
        }
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
        Ok(answer?.into_response())
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

    async fn get_event_store_status(
        &self,
        request: Request<pb::GetEventStoreStatusRequest>,
    ) -> Result<Response<pb::GetEventStoreStatusResponse>, Status> {
        self.store_status(request).await
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
