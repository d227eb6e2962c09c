//! The embedded CloudTrail: an in-process transport behind the SDK.
//!
//! `LocalCloudTrail` implements the SDK's `HttpClient`, so requests go through the SDK's serialisation,
//! signing, retries and error parsing exactly as against AWS, then land here instead of on the network.
//! It keeps one account's trails (`trails`), event history (`events`) and public keys (`keys`), and
//! speaks awsJson1_1 (`wire`). It knows nothing of the gRPC side.

pub mod events;
mod keys;
pub mod trails;
pub mod wire;

use std::{
    path::Path,
    sync::{Arc, Mutex, MutexGuard},
};

use aws_smithy_runtime_api::client::{
    http::{
        HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpConnector,
    },
    orchestrator::HttpRequest,
    runtime_components::RuntimeComponents,
};
use aws_smithy_types::DateTime;
use serde_json::Value;

use events::{EventStore, LoadError, Served};
use trails::{Ctx, Trails};
use wire::ApiError;

/// How the embedded CloudTrail is set up.
#[derive(Debug, Clone)]
pub struct LocalOptions {
    /// The 12-digit account id that owns the trails and appears in ARNs.
    pub account_id: String,
    /// The IAM user name recorded as the caller of every event.
    pub username: String,
    /// At most this many events are kept per Region (oldest dropped first).
    pub event_capacity: usize,
}

impl Default for LocalOptions {
    fn default() -> Self {
        LocalOptions {
            account_id: "123456789012".into(),
            username: "cloudtrail-gateway".into(),
            event_capacity: 100_000,
        }
    }
}

#[derive(Debug)]
struct State {
    trails: Trails,
    events: EventStore,
}

#[derive(Debug)]
struct Inner {
    options: LocalOptions,
    state: Mutex<State>,
}

/// A handle on the embedded CloudTrail; clones share one state.
#[derive(Debug, Clone)]
pub struct LocalCloudTrail {
    inner: Arc<Inner>,
    connector: SharedHttpConnector,
}

#[derive(Debug)]
struct Connector(Arc<Inner>);

impl HttpConnector for Connector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let request_id = uuid::Uuid::new_v4().to_string();
        let result = wire::parse(&request).and_then(|call| self.0.serve(&call, &request_id));
        HttpConnectorFuture::ready(Ok(wire::respond(&request_id, &result)))
    }
}

impl HttpClient for LocalCloudTrail {
    fn http_connector(
        &self,
        _settings: &HttpConnectorSettings,
        _components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        self.connector.clone()
    }
}

impl LocalCloudTrail {
    pub fn new(options: LocalOptions) -> Self {
        let inner = Arc::new(Inner {
            state: Mutex::new(State {
                trails: Trails::default(),
                events: EventStore::new(options.event_capacity),
            }),
            options,
        });
        LocalCloudTrail {
            connector: SharedHttpConnector::new(Connector(inner.clone())),
            inner,
        }
    }

    pub fn account_id(&self) -> &str {
        &self.inner.options.account_id
    }

    /// Loads CloudTrail log files (`{"Records":[...]}`, plain or gzipped; a directory is walked).
    pub fn load_logs(&self, path: &Path) -> Result<usize, LoadError> {
        self.inner.lock().events.load_path(path)
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the maps half-updated in a way that matters more
        // than refusing every later call would, so keep serving.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn serve(&self, call: &wire::Call, request_id: &str) -> Result<Value, ApiError> {
        let now = DateTime::from(std::time::SystemTime::now());
        let ctx = Ctx {
            account: &self.options.account_id,
            region: &call.region,
            now,
        };
        let mut state = self.lock();
        let State { trails, events } = &mut *state;
        let body = &call.body;
        // The trail the call names, looked up before a delete removes it.
        let resource_arn = trails.resource_of(&ctx, body);
        let result = match call.operation.as_str() {
            "CreateTrail" => trails.create(&ctx, body),
            "UpdateTrail" => trails.update(&ctx, body),
            "DeleteTrail" => trails.delete(&ctx, body),
            "DescribeTrails" => trails.describe(&ctx, body),
            "GetTrailStatus" => trails.status(&ctx, body),
            "StartLogging" => trails.set_logging(&ctx, body, true),
            "StopLogging" => trails.set_logging(&ctx, body, false),
            "GetEventSelectors" => trails.get_selectors(&ctx, body),
            "PutEventSelectors" => trails.put_selectors(&ctx, body),
            "AddTags" => trails.add_tags(&ctx, body),
            "RemoveTags" => trails.remove_tags(&ctx, body),
            "ListTags" => trails.list_tags(&ctx, body),
            "LookupEvents" => events.lookup(&call.region, body, now),
            "ListPublicKeys" => keys::list(&call.region, body, now),
            other => Err(ApiError::new(
                "UnknownOperationException",
                format!("the embedded CloudTrail does not implement {other}"),
            )),
        };
        let caller = crate::principal::current_caller();
        let resource_arn = resource_arn.or_else(|| {
            let created = result.as_ref().ok()?.get("TrailARN")?.as_str()?;
            Some(created.to_owned())
        });
        events.record(Served {
            account: &self.options.account_id,
            region: &call.region,
            operation: &call.operation,
            username: caller.as_deref().unwrap_or(&self.options.username),
            access_key_id: &call.access_key_id,
            user_agent: &call.user_agent,
            request_id,
            request: body,
            response: &result,
            resource_arn,
            time: now,
        });
        result
    }
}
