//! The CloudTrailService implementation: one short method per RPC.
//!
//! Each method reads the caller's deadline, lets `convert` validate the request and fill the SDK call,
//! sends it, and converts the answer back; `error` turns any failure into a status. Nothing here knows
//! CloudTrail's rules or error codes.

mod deadline;

use std::{future::Future, time::Duration};

use aws_sdk_cloudtrail::{Client, error::ProvideErrorMetadata, error::SdkError};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use tonic::{Request, Response, Status};

use crate::{
    convert::{events, selectors, tags, trails},
    error::Error,
    pb::{self, cloud_trail_service_server::CloudTrailService},
};

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

/// Sends an SDK call, bounded by the caller's deadline, and converts its output to the response.
async fn send<O, E, R>(
    deadline: Option<Duration>,
    call: impl Future<Output = Result<O, SdkError<E, HttpResponse>>>,
) -> Result<Response<R>, Status>
where
    R: From<O>,
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let output = match deadline {
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
        let deadline = deadline::of(&request);
        let call = trails::create_trail(request.into_inner(), self.client.create_trail())?;
        send(deadline, call.send()).await
    }

    async fn update_trail(
        &self,
        request: Request<pb::UpdateTrailRequest>,
    ) -> Result<Response<pb::UpdateTrailResponse>, Status> {
        let deadline = deadline::of(&request);
        let call = trails::update_trail(request.into_inner(), self.client.update_trail())?;
        send(deadline, call.send()).await
    }

    async fn delete_trail(
        &self,
        request: Request<pb::DeleteTrailRequest>,
    ) -> Result<Response<pb::DeleteTrailResponse>, Status> {
        let deadline = deadline::of(&request);
        let name = trails::trail_ref("name", request.into_inner().name)?;
        send(deadline, self.client.delete_trail().name(name).send()).await
    }

    async fn describe_trails(
        &self,
        request: Request<pb::DescribeTrailsRequest>,
    ) -> Result<Response<pb::DescribeTrailsResponse>, Status> {
        let deadline = deadline::of(&request);
        let call = trails::describe_trails(request.into_inner(), self.client.describe_trails())?;
        send(deadline, call.send()).await
    }

    async fn get_trail_status(
        &self,
        request: Request<pb::GetTrailStatusRequest>,
    ) -> Result<Response<pb::GetTrailStatusResponse>, Status> {
        let deadline = deadline::of(&request);
        let name = trails::trail_ref("name", request.into_inner().name)?;
        send(deadline, self.client.get_trail_status().name(name).send()).await
    }

    async fn start_logging(
        &self,
        request: Request<pb::StartLoggingRequest>,
    ) -> Result<Response<pb::StartLoggingResponse>, Status> {
        let deadline = deadline::of(&request);
        let name = trails::trail_ref("name", request.into_inner().name)?;
        send(deadline, self.client.start_logging().name(name).send()).await
    }

    async fn stop_logging(
        &self,
        request: Request<pb::StopLoggingRequest>,
    ) -> Result<Response<pb::StopLoggingResponse>, Status> {
        let deadline = deadline::of(&request);
        let name = trails::trail_ref("name", request.into_inner().name)?;
        send(deadline, self.client.stop_logging().name(name).send()).await
    }

    async fn get_event_selectors(
        &self,
        request: Request<pb::GetEventSelectorsRequest>,
    ) -> Result<Response<pb::GetEventSelectorsResponse>, Status> {
        let deadline = deadline::of(&request);
        let name = trails::trail_ref("trail_name", request.into_inner().trail_name)?;
        send(
            deadline,
            self.client.get_event_selectors().trail_name(name).send(),
        )
        .await
    }

    async fn put_event_selectors(
        &self,
        request: Request<pb::PutEventSelectorsRequest>,
    ) -> Result<Response<pb::PutEventSelectorsResponse>, Status> {
        let deadline = deadline::of(&request);
        let call = selectors::put_event_selectors(
            request.into_inner(),
            self.client.put_event_selectors(),
        )?;
        send(deadline, call.send()).await
    }

    async fn add_tags(
        &self,
        request: Request<pb::AddTagsRequest>,
    ) -> Result<Response<pb::AddTagsResponse>, Status> {
        let deadline = deadline::of(&request);
        let call = tags::add_tags(request.into_inner(), self.client.add_tags())?;
        send(deadline, call.send()).await
    }

    async fn remove_tags(
        &self,
        request: Request<pb::RemoveTagsRequest>,
    ) -> Result<Response<pb::RemoveTagsResponse>, Status> {
        let deadline = deadline::of(&request);
        let call = tags::remove_tags(request.into_inner(), self.client.remove_tags())?;
        send(deadline, call.send()).await
    }

    async fn list_tags(
        &self,
        request: Request<pb::ListTagsRequest>,
    ) -> Result<Response<pb::ListTagsResponse>, Status> {
        let deadline = deadline::of(&request);
        let call = tags::list_tags(request.into_inner(), self.client.list_tags())?;
        send(deadline, call.send()).await
    }

    async fn lookup_events(
        &self,
        request: Request<pb::LookupEventsRequest>,
    ) -> Result<Response<pb::LookupEventsResponse>, Status> {
        let deadline = deadline::of(&request);
        let call = events::lookup_events(request.into_inner(), self.client.lookup_events())?;
        send(deadline, call.send()).await
    }

    async fn list_public_keys(
        &self,
        request: Request<pb::ListPublicKeysRequest>,
    ) -> Result<Response<pb::ListPublicKeysResponse>, Status> {
        let deadline = deadline::of(&request);
        let call = events::list_public_keys(request.into_inner(), self.client.list_public_keys())?;
        send(deadline, call.send()).await
    }
}
