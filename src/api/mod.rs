//! The CloudTrailService implementation: one short method per RPC.
//!
//! Each method reads the caller's deadline and principal, lets `convert` validate the request and fill the SDK call,
//! sends it, and converts the answer back; `error` turns any failure into a status. Nothing here knows
//! CloudTrail's rules or error codes.

mod context;

use std::future::Future;

use aws_sdk_cloudtrail::{Client, error::ProvideErrorMetadata, error::SdkError};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use tonic::{Request, Response, Status};

use crate::{
    convert::{events, selectors, tags, trails},
    error::Error,
    pb::{self, cloud_trail_service_server::CloudTrailService},
    principal,
};
use context::CallContext;

/// The gRPC service, holding the one shared SDK client.
#[derive(Debug, Clone)]
pub struct Gateway {
    client: Client,
}

impl Gateway {
    pub fn new(client: Client) -> Self {
        Gateway { client }
    }
}

/// Sends an SDK call on the caller's behalf, bounded by its deadline, and converts the output.
async fn send<O, E, R>(
    context: CallContext,
    call: impl Future<Output = Result<O, SdkError<E, HttpResponse>>>,
) -> Result<Response<R>, Status>
where
    R: From<O>,
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let call = principal::on_behalf_of(context.caller.as_ref(), call);
    let output = match context.deadline {
        Some(limit) => tokio::time::timeout(limit, call)
            .await
            .map_err(|_| Error::DeadlineExceeded)?,
        None => call.await,
    };
    Ok(Response::new(R::from(output.map_err(Error::from)?)))
}

#[tonic::async_trait]
impl CloudTrailService for Gateway {
    async fn create_trail(
        &self,
        request: Request<pb::CreateTrailRequest>,
    ) -> Result<Response<pb::CreateTrailResponse>, Status> {
        let context = CallContext::of(&request);
        let call = trails::create_trail(request.into_inner(), self.client.create_trail())?;
        send(context, call.send()).await
    }

    async fn update_trail(
        &self,
        request: Request<pb::UpdateTrailRequest>,
    ) -> Result<Response<pb::UpdateTrailResponse>, Status> {
        let context = CallContext::of(&request);
        let call = trails::update_trail(request.into_inner(), self.client.update_trail())?;
        send(context, call.send()).await
    }

    async fn delete_trail(
        &self,
        request: Request<pb::DeleteTrailRequest>,
    ) -> Result<Response<pb::DeleteTrailResponse>, Status> {
        let context = CallContext::of(&request);
        let name = trails::trail_ref("name", request.into_inner().name)?;
        send(context, self.client.delete_trail().name(name).send()).await
    }

    async fn describe_trails(
        &self,
        request: Request<pb::DescribeTrailsRequest>,
    ) -> Result<Response<pb::DescribeTrailsResponse>, Status> {
        let context = CallContext::of(&request);
        let call = trails::describe_trails(request.into_inner(), self.client.describe_trails())?;
        send(context, call.send()).await
    }

    async fn get_trail_status(
        &self,
        request: Request<pb::GetTrailStatusRequest>,
    ) -> Result<Response<pb::GetTrailStatusResponse>, Status> {
        let context = CallContext::of(&request);
        let name = trails::trail_ref("name", request.into_inner().name)?;
        send(context, self.client.get_trail_status().name(name).send()).await
    }

    async fn start_logging(
        &self,
        request: Request<pb::StartLoggingRequest>,
    ) -> Result<Response<pb::StartLoggingResponse>, Status> {
        let context = CallContext::of(&request);
        let name = trails::trail_ref("name", request.into_inner().name)?;
        send(context, self.client.start_logging().name(name).send()).await
    }

    async fn stop_logging(
        &self,
        request: Request<pb::StopLoggingRequest>,
    ) -> Result<Response<pb::StopLoggingResponse>, Status> {
        let context = CallContext::of(&request);
        let name = trails::trail_ref("name", request.into_inner().name)?;
        send(context, self.client.stop_logging().name(name).send()).await
    }

    async fn get_event_selectors(
        &self,
        request: Request<pb::GetEventSelectorsRequest>,
    ) -> Result<Response<pb::GetEventSelectorsResponse>, Status> {
        let context = CallContext::of(&request);
        let name = trails::trail_ref("trail_name", request.into_inner().trail_name)?;
        send(
            context,
            self.client.get_event_selectors().trail_name(name).send(),
        )
        .await
    }

    async fn put_event_selectors(
        &self,
        request: Request<pb::PutEventSelectorsRequest>,
    ) -> Result<Response<pb::PutEventSelectorsResponse>, Status> {
        let context = CallContext::of(&request);
        let call = selectors::put_event_selectors(
            request.into_inner(),
            self.client.put_event_selectors(),
        )?;
        send(context, call.send()).await
    }

    async fn add_tags(
        &self,
        request: Request<pb::AddTagsRequest>,
    ) -> Result<Response<pb::AddTagsResponse>, Status> {
        let context = CallContext::of(&request);
        let call = tags::add_tags(request.into_inner(), self.client.add_tags())?;
        send(context, call.send()).await
    }

    async fn remove_tags(
        &self,
        request: Request<pb::RemoveTagsRequest>,
    ) -> Result<Response<pb::RemoveTagsResponse>, Status> {
        let context = CallContext::of(&request);
        let call = tags::remove_tags(request.into_inner(), self.client.remove_tags())?;
        send(context, call.send()).await
    }

    async fn list_tags(
        &self,
        request: Request<pb::ListTagsRequest>,
    ) -> Result<Response<pb::ListTagsResponse>, Status> {
        let context = CallContext::of(&request);
        let call = tags::list_tags(request.into_inner(), self.client.list_tags())?;
        send(context, call.send()).await
    }

    async fn lookup_events(
        &self,
        request: Request<pb::LookupEventsRequest>,
    ) -> Result<Response<pb::LookupEventsResponse>, Status> {
        let context = CallContext::of(&request);
        let call = events::lookup_events(request.into_inner(), self.client.lookup_events())?;
        send(context, call.send()).await
    }

    async fn list_public_keys(
        &self,
        request: Request<pb::ListPublicKeysRequest>,
    ) -> Result<Response<pb::ListPublicKeysResponse>, Status> {
        let context = CallContext::of(&request);
        let call = events::list_public_keys(request.into_inner(), self.client.list_public_keys())?;
        send(context, call.send()).await
    }
}
