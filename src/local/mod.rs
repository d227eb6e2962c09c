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
    collections::{HashMap, VecDeque},
    path::Path,
    sync::{Arc, Mutex, MutexGuard},
    time::{Duration, SystemTime},
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

use crate::limits::{Class, Quotas, gcra::Gcra};
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
    /// The quotas it enforces per Region, answering ThrottlingException beyond them (as AWS does).
    pub quotas: Quotas,
}

impl Default for LocalOptions {
    fn default() -> Self {
        LocalOptions {
            account_id: "123456789012".into(),
            username: "cloudtrail-gateway".into(),
            event_capacity: 100_000,
            quotas: Quotas::AWS,
        }
    }
}

#[derive(Debug)]
struct State {
    trails: Trails,
    events: EventStore,
}

/// Calls arriving this much early still pass a quota: AWS's throttling is not that exact either, and
/// the gateway's slots reach the transport with scheduling jitter.
const QUOTA_TOLERANCE: Duration = Duration::from_millis(50);
/// The call log keeps this many entries.
const CALL_LOG_CAPACITY: usize = 100_000;

/// What the embedded CloudTrail was asked, for tests and benchmarks: when each operation arrived, and
/// how many calls it throttled.
#[derive(Debug, Default)]
struct CallLog {
    served: VecDeque<(&'static str, SystemTime)>,
    throttled: u64,
}

#[derive(Debug)]
struct Inner {
    options: LocalOptions,
    state: Mutex<State>,
    /// Per Region, then per class.
    quotas: Mutex<HashMap<String, HashMap<Class, Gcra>>>,
    log: Mutex<CallLog>,
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
        let request_id = crate::ids::uuid().to_string();
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
            quotas: Mutex::new(HashMap::new()),
            log: Mutex::new(CallLog::default()),
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

    /// When each call of `operation` arrived (the most recent ones), throttled calls excluded.
    pub fn served(&self, operation: &str) -> Vec<SystemTime> {
        lock(&self.inner.log)
            .served
            .iter()
            .filter(|(op, _)| *op == operation)
            .map(|(_, at)| *at)
            .collect()
    }

    /// How many calls were answered ThrottlingException.
    pub fn throttled(&self) -> u64 {
        lock(&self.inner.log).throttled
    }

    /// Loads CloudTrail log files (`{"Records":[...]}`, plain or gzipped; a directory is walked).
    pub fn load_logs(&self, path: &Path) -> Result<usize, LoadError> {
        self.inner.lock().events.load_path(path)
    }
}

/// A panic while holding a lock cannot leave these maps half-updated in a way that matters more than
/// refusing every later call would, so keep serving.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// Takes a slot of the call's quota, or answers as AWS does when there is none.
    fn take_quota(&self, call: &wire::Call) -> Result<(), ApiError> {
        let class = Class::of(&call.operation);
        let quota = || Gcra::with_tolerance(self.options.quotas.rate(class), QUOTA_TOLERANCE);
        let now = tokio::time::Instant::now();
        let mut quotas = lock(&self.quotas);
        // Looked up by &str: the Region is copied once per Region, not once per call.
        let taken = match quotas.get_mut(call.region.as_str()) {
            Some(region) => region.entry(class).or_insert_with(quota).try_take(now),
            None => {
                let mut first = quota();
                let taken = first.try_take(now);
                quotas.insert(call.region.clone(), HashMap::from([(class, first)]));
                taken
            }
        };
        drop(quotas);
        let mut log = lock(&self.log);
        if taken.is_err() {
            log.throttled += 1;
            return Err(ApiError::new("ThrottlingException", "Rate exceeded"));
        }
        if log.served.len() == CALL_LOG_CAPACITY {
            log.served.pop_front();
        }
        // The names are kept without a copy: every operation it serves is one of these.
        let operation = crate::OPERATIONS
            .iter()
            .find(|o| **o == call.operation)
            .copied()
            .unwrap_or("unknown");
        log.served.push_back((operation, SystemTime::now()));
        Ok(())
    }

    fn serve(&self, call: &wire::Call, request_id: &str) -> Result<Value, ApiError> {
        self.take_quota(call)?;
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
