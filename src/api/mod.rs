//! The CloudTrailService implementation: one short method per RPC.
//!
//! Each method reads the caller's deadline and principal, lets `convert` validate the request and
//! fill the SDK call, takes a slot of the quota (`limits`), sends the call, and converts the answer
//! back; `error` turns any failure into a status. LookupEvents goes through the coalescer first, so
//! identical lookups share one slot and one upstream call. Nothing here knows CloudTrail's rules or
//! error codes.

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
use tonic::{Request, Response, Status};

use crate::{
    convert::{events, selectors, tags, trails},
    error::Error,
    limits::{
        Limiter,
        coalesce::{Coalescer, Shared, Source},
    },
    operation::Operation,
    pb::{self, cloud_trail_service_server::CloudTrailService},
    telemetry::{self, Outcome, UpstreamMetrics},
    upstream::Upstream,
};
use context::CallContext;

/// The gRPC service, holding the SDK clients and the quota limiter.
#[derive(Debug, Clone)]
pub struct Gateway {
    upstream: Upstream,
    limiter: Arc<Limiter>,
    lookups: Arc<Coalescer<Vec<u8>, Arc<pb::LookupEventsResponse>>>,
    /// The deadline of calls that set none.
    request_timeout: Duration,
    upstream_metrics: UpstreamMetrics,
}

impl Gateway {
    pub fn new(upstream: Upstream, limiter: Arc<Limiter>, request_timeout: Duration) -> Self {
        let lookups = Arc::new(Coalescer::new(limiter.config().lookup_cache_ttl));
        for source in [Source::Upstream, Source::Coalesced, Source::Cache] {
            metrics::counter!(telemetry::LOOKUPS, "source" => source_label(source)).increment(0);
        }
        Gateway {
            upstream,
            limiter,
            lookups,
            request_timeout,
            upstream_metrics: UpstreamMetrics::new(),
        }
    }

    /// The request's context, and the SDK client to make its call with (the caller's).
    fn context<T>(&self, request: &Request<T>) -> (CallContext, Client) {
        let context = CallContext::of(request, self.request_timeout);
        let client = self.upstream.client_for(context.caller.as_ref());
        (context, client)
    }

    /// Takes a slot of the operation's quota, then sends the SDK call within what is left of the
    /// caller's deadline.
    ///
    /// The SDK call comes boxed: its future is ~20 KB, and each wrapper around it (deadline, caller
    /// scope, these async fns, tonic's box) would otherwise copy it; the profile showed eleven such
    /// copies per call.
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
        let principal = context.caller.as_ref().map_or("anonymous", |p| &*p.name);
        let slot_wait = match context.caller_deadline {
            true => context.deadline,
            false => context
                .deadline
                .map(|d| d.min(self.limiter.config().max_wait_without_deadline)),
        };
        self.limiter
            .acquire(operation.quota(), principal, slot_wait)
            .await?;
        let sent = Instant::now();
        let output = match context.deadline {
            Some(limit) => {
                tokio::time::timeout(limit.saturating_sub(started.elapsed()), call).await
            }
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

    /// `upstream`, then the output converted to the RPC's response. Not an `async fn`, so the SDK
    /// future is boxed before anything holds it.
    fn send<O, E, R>(
        &self,
        operation: Operation,
        context: CallContext,
        call: impl Future<Output = Result<O, SdkError<E, HttpResponse>>>,
    ) -> impl Future<Output = Result<Response<R>, Status>>
    where
        O: RequestId,
        R: From<O>,
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let call = Box::pin(call);
        async move {
            let output = self.upstream(operation, &context, call).await?;
            Ok(Response::new(R::from(output)))
        }
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
        let (context, client) = self.context(&request);
        let call = trails::create_trail(request.into_inner(), client.create_trail())?;
        self.send(CreateTrail, context, call.send()).await
    }

    async fn update_trail(
        &self,
        request: Request<pb::UpdateTrailRequest>,
    ) -> Result<Response<pb::UpdateTrailResponse>, Status> {
        let (context, client) = self.context(&request);
        let call = trails::update_trail(request.into_inner(), client.update_trail())?;
        self.send(UpdateTrail, context, call.send()).await
    }

    async fn delete_trail(
        &self,
        request: Request<pb::DeleteTrailRequest>,
    ) -> Result<Response<pb::DeleteTrailResponse>, Status> {
        let (context, client) = self.context(&request);
        let name = trails::trail_ref("name", request.into_inner().name)?;
        self.send(
            DeleteTrail,
            context,
            client.delete_trail().name(name).send(),
        )
        .await
    }

    async fn describe_trails(
        &self,
        request: Request<pb::DescribeTrailsRequest>,
    ) -> Result<Response<pb::DescribeTrailsResponse>, Status> {
        let (context, client) = self.context(&request);
        let call = trails::describe_trails(request.into_inner(), client.describe_trails())?;
        self.send(DescribeTrails, context, call.send()).await
    }

    async fn get_trail_status(
        &self,
        request: Request<pb::GetTrailStatusRequest>,
    ) -> Result<Response<pb::GetTrailStatusResponse>, Status> {
        let (context, client) = self.context(&request);
        let name = trails::trail_ref("name", request.into_inner().name)?;
        self.send(
            GetTrailStatus,
            context,
            client.get_trail_status().name(name).send(),
        )
        .await
    }

    async fn start_logging(
        &self,
        request: Request<pb::StartLoggingRequest>,
    ) -> Result<Response<pb::StartLoggingResponse>, Status> {
        let (context, client) = self.context(&request);
        let name = trails::trail_ref("name", request.into_inner().name)?;
        self.send(
            StartLogging,
            context,
            client.start_logging().name(name).send(),
        )
        .await
    }

    async fn stop_logging(
        &self,
        request: Request<pb::StopLoggingRequest>,
    ) -> Result<Response<pb::StopLoggingResponse>, Status> {
        let (context, client) = self.context(&request);
        let name = trails::trail_ref("name", request.into_inner().name)?;
        self.send(
            StopLogging,
            context,
            client.stop_logging().name(name).send(),
        )
        .await
    }

    async fn get_event_selectors(
        &self,
        request: Request<pb::GetEventSelectorsRequest>,
    ) -> Result<Response<pb::GetEventSelectorsResponse>, Status> {
        let (context, client) = self.context(&request);
        let name = trails::trail_ref("trail_name", request.into_inner().trail_name)?;
        self.send(
            GetEventSelectors,
            context,
            client.get_event_selectors().trail_name(name).send(),
        )
        .await
    }

    async fn put_event_selectors(
        &self,
        request: Request<pb::PutEventSelectorsRequest>,
    ) -> Result<Response<pb::PutEventSelectorsResponse>, Status> {
        let (context, client) = self.context(&request);
        let call =
            selectors::put_event_selectors(request.into_inner(), client.put_event_selectors())?;
        self.send(PutEventSelectors, context, call.send()).await
    }

    async fn add_tags(
        &self,
        request: Request<pb::AddTagsRequest>,
    ) -> Result<Response<pb::AddTagsResponse>, Status> {
        let (context, client) = self.context(&request);
        let call = tags::add_tags(request.into_inner(), client.add_tags())?;
        self.send(AddTags, context, call.send()).await
    }

    async fn remove_tags(
        &self,
        request: Request<pb::RemoveTagsRequest>,
    ) -> Result<Response<pb::RemoveTagsResponse>, Status> {
        let (context, client) = self.context(&request);
        let call = tags::remove_tags(request.into_inner(), client.remove_tags())?;
        self.send(RemoveTags, context, call.send()).await
    }

    async fn list_tags(
        &self,
        request: Request<pb::ListTagsRequest>,
    ) -> Result<Response<pb::ListTagsResponse>, Status> {
        let (context, client) = self.context(&request);
        let call = tags::list_tags(request.into_inner(), client.list_tags())?;
        self.send(ListTags, context, call.send()).await
    }

    async fn lookup_events(
        &self,
        request: Request<pb::LookupEventsRequest>,
    ) -> Result<Response<pb::LookupEventsResponse>, Status> {
        let (context, client) = self.context(&request);
        let message = request.into_inner();
        // Identical requests (same fields and page token) encode identically.
        let key = prost::Message::encode_to_vec(&message);
        let call = events::lookup_events(message, client.lookup_events())?;
        let (answer, source) = self
            .lookups
            .get(key, context.deadline, || async {
                match self
                    .upstream(LookupEvents, &context, Box::pin(call.send()))
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
        Ok(Response::new(answer?.as_ref().clone()))
    }

    async fn list_public_keys(
        &self,
        request: Request<pb::ListPublicKeysRequest>,
    ) -> Result<Response<pb::ListPublicKeysResponse>, Status> {
        let (context, client) = self.context(&request);
        let call = events::list_public_keys(request.into_inner(), client.list_public_keys())?;
        self.send(ListPublicKeys, context, call.send()).await
    }
}
