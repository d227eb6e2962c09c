//! A client for cloudtrail-gateway that gets right what every caller otherwise has to:
//!
//! - a **deadline** on every call (`ClientBuilder::deadline`, 30 s unless set);
//! - **credentials**: a bearer token, TLS, a client certificate (mTLS);
//! - the **target**: account and Region for every call of a client, or of one call
//!   (`Client::at`), sent as `x-cloudtrail-account` / `x-cloudtrail-region`;
//! - **retries** on UNAVAILABLE and RESOURCE_EXHAUSTED that wait what the gateway's `RetryInfo`
//!   says (bounded, jittered, within the deadline); a mutation is retried only with a
//!   `request_id`, which the client adds when the request has none, so the gateway answers a retry
//!   with the first call's result instead of doing it twice;
//! - **event streams** as a [`Stream`](tokio_stream::Stream) that resumes from its last cursor
//!   after a broken connection, a drained replica or a reader that fell behind.
//!
//! ```no_run
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! use cloudtrail_gateway_client::{Client, pb};
//! let client = Client::builder("http://127.0.0.1:50051").token("my-token").connect().await?;
//! let trails = client.describe_trails(pb::DescribeTrailsRequest::default()).await?;
//! let in_other = client.at("210987654321", "eu-west-1");
//! in_other.start_logging(pb::StartLoggingRequest { name: "org-trail".into(), ..Default::default() }).await?;
//! # Ok(()) }
//! ```

mod connect;
mod events;
mod retry;

pub use connect::{ClientBuilder, Error};
pub use events::EventStream;
pub use retry::RetryPolicy;
/// `next()` on an [`EventStream`], without a dependency of your own.
pub use tokio_stream::StreamExt;
/// The status type of every call (with `tonic_types::StatusExt` for its details).
pub use tonic::{Code, Status};
/// Reading a status's details: `BadRequest` field violations, `ErrorInfo` (the AWS error code and
/// request id), `RetryInfo`.
pub use tonic_types::StatusExt;

/// The generated messages and the plain generated client (`cloud_trail_service_client`).
pub mod pb {
    tonic::include_proto!("cloudtrail.gateway.v1");
}

use std::{future::Future, time::Duration};

use pb::cloud_trail_service_client::CloudTrailServiceClient;
use tokio::time::Instant;
use tonic::{
    Request, Response,
    metadata::{AsciiMetadataValue, MetadataMap},
    transport::Channel,
};

/// Metadata naming the account a call is for (12 digits).
pub const ACCOUNT_KEY: &str = "x-cloudtrail-account";
/// Metadata naming the Region a call is for.
pub const REGION_KEY: &str = "x-cloudtrail-region";

type Grpc = CloudTrailServiceClient<Channel>;

/// A connection to the gateway. Cheap to clone; clones share the connection.
#[derive(Clone, Debug)]
pub struct Client {
    grpc: Grpc,
    token: Option<AsciiMetadataValue>,
    deadline: Duration,
    account: Option<String>,
    region: Option<String>,
    retry: RetryPolicy,
}

impl Client {
    /// A client of the gateway at `endpoint` (`http://host:port`, or `https://` for TLS).
    pub fn builder(endpoint: impl Into<String>) -> ClientBuilder {
        ClientBuilder::new(endpoint)
    }

    /// This client, calling `account` in `region` (for one call or as a client of its own).
    pub fn at(&self, account: impl Into<String>, region: impl Into<String>) -> Client {
        Client {
            account: Some(account.into()),
            region: Some(region.into()),
            ..self.clone()
        }
    }

    /// This client with another deadline per call (retries included).
    pub fn with_deadline(&self, deadline: Duration) -> Client {
        Client {
            deadline,
            ..self.clone()
        }
    }

    /// Every event matching `request`, newest first; with `follow`, then new events as they
    /// appear. Resumes from the last message's cursor when the connection breaks or the gateway
    /// drains; ends with the status that could not be resumed from. Dropping it cancels the call.
    /// No deadline: a follower follows until dropped.
    pub fn stream_events(&self, request: pb::StreamEventsRequest) -> EventStream {
        EventStream::start(self.clone(), request)
    }

    /// A request carrying the client's credentials and target, with `timeout` if any.
    fn request<T>(&self, message: T, timeout: Option<Duration>) -> Result<Request<T>, Status> {
        let mut request = Request::new(message);
        if let Some(timeout) = timeout {
            request.set_timeout(timeout);
        }
        self.add_metadata(request.metadata_mut())?;
        Ok(request)
    }

    fn add_metadata(&self, metadata: &mut MetadataMap) -> Result<(), Status> {
        if let Some(token) = &self.token {
            metadata.insert("authorization", token.clone());
        }
        for (key, value) in [(ACCOUNT_KEY, &self.account), (REGION_KEY, &self.region)] {
            if let Some(value) = value {
                let value = value.parse().map_err(|_| {
                    Status::invalid_argument(format!("{key}: not a valid metadata value"))
                })?;
                metadata.insert(key, value);
            }
        }
        Ok(())
    }

    /// One unary RPC within the deadline, retried as the policy allows.
    async fn unary<Q, R, F, Fut>(&self, mut message: Q, send: F) -> Result<R, Status>
    where
        Q: Call,
        F: Fn(Grpc, Request<Q>) -> Fut,
        Fut: Future<Output = Result<Response<R>, Status>>,
    {
        let may_retry = message.prepare();
        let deadline = Instant::now() + self.deadline;
        let mut attempt = 1;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let request = self.request(message.clone(), Some(left))?;
            let status = match send(self.grpc.clone(), request).await {
                Ok(response) => return Ok(response.into_inner()),
                Err(status) => status,
            };
            let left = deadline.saturating_duration_since(Instant::now());
            match self.retry.unary_wait(&status, attempt, left, may_retry) {
                Some(wait) => tokio::time::sleep(wait).await,
                None => return Err(status),
            }
            attempt += 1;
        }
    }
}

/// A request message, and whether sending it again is safe.
trait Call: Clone {
    /// Readies the request for sending (a mutation gets a request id); whether it may be retried.
    fn prepare(&mut self) -> bool;
}

/// Reads change nothing: always safe to send again.
macro_rules! reads {
    ($($request:ident),* $(,)?) => {$(
        impl Call for pb::$request {
            fn prepare(&mut self) -> bool {
                true
            }
        }
    )*};
}

/// Mutations are safe to send again only with a request id (the gateway answers the repeat with
/// the first call's result); one is made when the caller gave none.
macro_rules! writes {
    ($($request:ident),* $(,)?) => {$(
        impl Call for pb::$request {
            fn prepare(&mut self) -> bool {
                if self.request_id.is_empty() {
                    self.request_id = uuid::Uuid::new_v4().to_string();
                }
                !self.request_id.is_empty()
            }
        }
    )*};
}

/// The unary RPCs, each one line: the retry loop is `Client::unary`'s.
macro_rules! unary_rpcs {
    ($($method:ident($request:ident) -> $response:ident;)*) => {
        impl Client {$(
            #[doc = concat!("The gateway's `", stringify!($request), "` RPC (see the proto's comments), within the deadline, retried as the policy allows.")]
            pub async fn $method(&self, request: pb::$request) -> Result<pb::$response, Status> {
                self.unary(request, |mut grpc, request| async move { grpc.$method(request).await })
                    .await
            }
        )*}
    };
}

// The unary RPCs, split by whether their request has a `request_id` (a mutation), as `build.rs`
// reads them from the proto: `reads!(...)`, `writes!(...)` and `unary_rpcs! {...}`.
include!(concat!(env!("OUT_DIR"), "/rpcs.rs"));

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mutations_get_a_request_id_and_keep_their_own() {
        let mut create = pb::CreateTrailRequest::default();
        assert!(create.prepare());
        assert_eq!(create.request_id.len(), 36, "a UUID");
        let mut given = pb::DeleteTrailRequest {
            request_id: "7d3f3e1c-0000-4000-8000-000000000001".into(),
            ..Default::default()
        };
        assert!(given.prepare());
        assert_eq!(given.request_id, "7d3f3e1c-0000-4000-8000-000000000001");
        assert!(pb::LookupEventsRequest::default().prepare());
    }

    #[tokio::test]
    async fn metadata_carries_token_and_target() {
        let client = Client::builder("http://127.0.0.1:9")
            .token("secret")
            .connect_lazy()
            .expect("client");
        let request = client
            .at("123456789012", "eu-west-1")
            .request((), Some(Duration::from_secs(3)))
            .expect("request");
        let metadata = request.metadata();
        assert_eq!(metadata.get("authorization").unwrap(), "Bearer secret");
        assert_eq!(metadata.get(ACCOUNT_KEY).unwrap(), "123456789012");
        assert_eq!(metadata.get(REGION_KEY).unwrap(), "eu-west-1");
        assert!(metadata.get("grpc-timeout").is_some());
        let bad = client.at("12345678901\n2", "eu-west-1").request((), None);
        assert_eq!(bad.unwrap_err().code(), Code::InvalidArgument);
    }
}
