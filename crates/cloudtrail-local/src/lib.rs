//! AWS CloudTrail in process, for tests and local development.
//!
//! [`LocalCloudTrail`] is an [`HttpClient`] for the AWS SDK: hand it to any `aws-sdk-cloudtrail`
//! client (`.http_client(local.clone())`) and every request goes through the SDK's serialisation,
//! signing, retries and error parsing exactly as against AWS, then is served here from memory instead
//! of the network. It speaks CloudTrail's awsJson1_1 protocol (`wire`), keeps each account's trails
//! (`trails`), event history (`events`) and digest keys (`keys`), enforces CloudTrail's rules
//! (`rules`) and quotas (`quotas`), and records every call it serves as a management event, naming
//! the caller its access key belongs to (`identity`). It serves S3 too (`s3`, for `aws-sdk-s3`),
//! where logging trails deliver their log files and signed digests (`delivery`), as CloudTrail does.
//!
//! ```no_run
//! use aws_sdk_cloudtrail::config::{BehaviorVersion, Credentials, Region};
//! use cloudtrail_local::{LocalCloudTrail, Options};
//!
//! # async fn example() -> Result<(), aws_sdk_cloudtrail::Error> {
//! let cloudtrail = LocalCloudTrail::new(Options::default());
//! let key = cloudtrail.user_key("alice");
//! let config = aws_sdk_cloudtrail::Config::builder()
//!     .behavior_version(BehaviorVersion::latest())
//!     .region(Region::new("us-east-1"))
//!     .credentials_provider(Credentials::new(
//!         key.access_key_id, key.secret_access_key, None, None, "local"))
//!     .http_client(cloudtrail.clone())
//!     .build();
//! let client = aws_sdk_cloudtrail::Client::from_conf(config);
//! client.create_trail().name("audit").s3_bucket_name("audit-logs").send().await?;
//! # Ok(()) }
//! ```
//!
//! It depends on nothing of the gateway it was written for: its rules are its own reading of
//! CloudTrail's documentation, so a client's validation and this emulator check each other.

mod account;
mod clock;
mod ctx;
mod delivery;
mod events;
mod faults;
mod files;
mod identity;
mod ids;
mod keys;
mod operations;
mod options;
mod quotas;
mod rules;
mod s3;
mod serve;
mod state;
mod sts;
mod trails;
mod wire;

use std::{
    collections::HashMap,
    path::Path,
    sync::{Arc, Mutex},
    time::SystemTime,
};

use aws_smithy_runtime_api::client::{
    http::{HttpClient, HttpConnector, HttpConnectorSettings, SharedHttpConnector},
    orchestrator::HttpRequest,
    runtime_components::RuntimeComponents,
};
use aws_smithy_types::DateTime;
use serve::{CallLog, Connector, Inner, lock};

pub use events::LoadError;
pub use faults::Fault;
pub use identity::{AccessKey, Identity};
pub use options::Options;
pub use quotas::Quotas;
pub use rules::is_bucket_name;
pub use state::{StateError, check_state_file};
pub use sts::Role;

/// A handle on the embedded CloudTrail; clones share one state.
#[derive(Debug, Clone)]
pub struct LocalCloudTrail {
    inner: Arc<Inner>,
    connector: SharedHttpConnector,
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
    pub fn new(options: Options) -> Self {
        let mut keys = identity::Keys::default();
        // The default user exists like any other, so its events look like any other user's.
        let default_key = keys.user_key(&options.account_id, &options.username);
        let default_identity = keys
            .check(&default_key.access_key_id, None)
            .ok()
            .flatten()
            .unwrap_or_else(|| {
                Arc::new(Identity::User {
                    account: options.account_id.clone(),
                    name: options.username.clone(),
                    user_id: String::new(),
                })
            });
        let inner = Arc::new(Inner {
            accounts: Mutex::new(HashMap::new()),
            keys: Mutex::new(keys),
            default_identity,
            quotas: Mutex::new(quotas::Limiter::new(options.quotas)),
            log: Mutex::new(CallLog::default()),
            faults: Mutex::new(faults::Faults::default()),
            roles: Mutex::new(sts::Roles::default()),
            state_file: Mutex::new(None),
            s3: Mutex::new(s3::Buckets::new(options.s3_capacity)),
            signing: Mutex::new(keys::KeyRing::new(DateTime::from(SystemTime::now()))),
            options,
        });
        LocalCloudTrail {
            connector: SharedHttpConnector::new(Connector(inner.clone())),
            inner,
        }
    }

    /// Serves one HTTP request as CloudTrail's endpoint would, for putting the emulator behind a
    /// real HTTP server (then any AWS client reaches it with an endpoint override). `Err`: the
    /// connection should be dropped without an answer (an injected reset).
    pub async fn serve_http(
        &self,
        request: http::Request<Vec<u8>>,
    ) -> Result<http::Response<Vec<u8>>, String> {
        let request = HttpRequest::try_from(request.map(aws_smithy_types::body::SdkBody::from))
            .map_err(|e| e.to_string())?;
        let response = Connector(self.inner.clone())
            .call(request)
            .await
            .map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        let body = response.body().bytes().unwrap_or_default().to_vec();
        let mut answer = http::Response::builder().status(status);
        for (name, value) in response.headers() {
            answer = answer.header(name, value);
        }
        answer.body(body).map_err(|e| e.to_string())
    }

    /// The default account.
    pub fn account_id(&self) -> &str {
        &self.inner.options.account_id
    }

    /// The access key of IAM user `name` in the default account (issued on first request): calls
    /// signed with it are recorded as that user's.
    pub fn user_key(&self, name: &str) -> AccessKey {
        lock(&self.inner.keys).user_key(&self.inner.options.account_id, name)
    }

    /// When each served call of `operation` arrived (the most recent ones), throttled calls excluded;
    /// STS's `AssumeRole` and `GetCallerIdentity` too.
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
        lock(&self.inner.log).throttled.len() as u64
    }

    /// The calls answered ThrottlingException (the most recent ones): operation and arrival.
    pub fn throttled_calls(&self) -> Vec<(&'static str, SystemTime)> {
        lock(&self.inner.log).throttled.iter().copied().collect()
    }

    /// The next `count` calls of `operation` (of any operation with `None`) fail with `fault`.
    /// Faults planned earlier happen first.
    pub fn inject(&self, operation: Option<&str>, count: u64, fault: Fault) {
        lock(&self.inner.faults).plan(operation, count, fault);
    }

    /// Adds a role STS can issue sessions of (AssumeRole of an unknown role is AccessDenied).
    pub fn add_role(&self, role: Role) {
        lock(&self.inner.roles).add(role);
    }

    /// Every role session expires now: calls signed with its credentials are answered
    /// ExpiredTokenException from now on (as when credentials time out or are revoked).
    pub fn expire_sessions(&self) {
        lock(&self.inner.keys).expire_sessions();
    }

    /// Forgets the faults still planned.
    pub fn clear_faults(&self) {
        lock(&self.inner.faults).clear();
    }

    /// How many calls met an injected fault.
    pub fn faults_happened(&self) -> u64 {
        lock(&self.inner.faults).happened()
    }

    /// Loads CloudTrail log files (`{"Records":[...]}`, plain or gzipped; a directory is walked) into
    /// the default account's event history, each record in its `awsRegion`. Returns how many new
    /// events were stored.
    pub fn load_logs(&self, path: &Path) -> Result<usize, LoadError> {
        self.load_logs_into(&self.inner.options.account_id, path)
    }

    /// Keeps the trails in `path` from now on: the trails it holds are restored (it is created
    /// when missing), and it is rewritten after every change. Returns how many were restored.
    pub fn keep_state_in(&self, path: &Path) -> Result<usize, StateError> {
        let saved = state::read(path)?;
        let mut accounts = lock(&self.inner.accounts);
        let mut restored = 0;
        for (id, trails) in saved.accounts {
            restored += trails.len();
            self.inner
                .account(&mut accounts, &id)
                .trails
                .restore(trails);
        }
        for (id, deliveries) in saved.deliveries {
            self.inner
                .account(&mut accounts, &id)
                .delivery
                .restore(deliveries);
        }
        lock(&self.inner.signing).restore(saved.keys);
        // Written at once: a path that cannot be written is refused now, not at the first change.
        state::write(path, &accounts, &lock(&self.inner.signing))?;
        *lock(&self.inner.state_file) = Some(path.to_owned());
        Ok(restored)
    }

    /// Delivers now what the trails would deliver at the end of this interval: their waiting events
    /// as log files, then (`digests`) a digest per validating trail and Region. Returns how many
    /// log files and digests were written.
    pub fn deliver_now(&self, digests: bool) -> (usize, usize) {
        let now = DateTime::from(SystemTime::now());
        let logs = self.inner.deliver_logs(now);
        let digests = if digests {
            self.inner.deliver_digests(now)
        } else {
            0
        };
        (logs, digests)
    }

    /// Delivers on CloudTrail's schedule ([`Options::delivery_interval`] for log files,
    /// [`Options::digest_interval`] for digests) until the task is aborted or every handle on this
    /// CloudTrail is dropped.
    pub fn spawn_delivery(&self) -> tokio::task::JoinHandle<()> {
        let inner = Arc::downgrade(&self.inner);
        let (every, digest_every) = (
            self.inner.options.delivery_interval,
            self.inner.options.digest_interval,
        );
        tokio::spawn(async move {
            let started = tokio::time::Instant::now();
            let mut ticks = tokio::time::interval_at(started + every, every);
            let mut next_digest = started + digest_every;
            loop {
                let at = ticks.tick().await;
                let Some(inner) = inner.upgrade() else {
                    return;
                };
                let now = DateTime::from(SystemTime::now());
                inner.deliver_logs(now);
                if at >= next_digest {
                    inner.deliver_digests(now);
                    next_digest += digest_every;
                }
            }
        })
    }

    /// Events that happened elsewhere (data events, Insights events: CloudTrail records, each with
    /// its `awsRegion`) in `account`: kept in its history and delivered by the trails that select
    /// them. Returns how many were new.
    pub fn add_events(&self, account: &str, records: &[serde_json::Value]) -> usize {
        let mut accounts = lock(&self.inner.accounts);
        let limits = self.inner.limits();
        let now = DateTime::from(SystemTime::now());
        let mut added = 0;
        for record in records {
            if self
                .inner
                .account(&mut accounts, account)
                .add_event(account, record, limits)
            {
                added += 1;
                self.inner
                    .log_for_organization(&mut accounts, account, record, now);
            }
        }
        added
    }

    /// Keeps the embedded S3's buckets in `dir` from now on: what it holds is read back, and every
    /// change is written there. Returns how many objects were read.
    pub fn keep_s3_in(&self, dir: &Path) -> std::io::Result<usize> {
        lock(&self.inner.s3).keep_in(dir)
    }

    /// The embedded S3's bytes held, and how many objects it evicted to stay within
    /// [`Options::s3_capacity`].
    pub fn s3_usage(&self) -> (u64, u64) {
        let s3 = lock(&self.inner.s3);
        (s3.held(), s3.evicted())
    }

    /// Writes the log files at `path` (as [`load_logs`](Self::load_logs) reads them) into `bucket`
    /// of the embedded S3 (made when missing) in CloudTrail's layout, as if a trail of `account`
    /// had delivered them: a bucket for a log reader to be tested on. Returns how many objects
    /// were written.
    pub fn write_logs_to_bucket(
        &self,
        account: &str,
        path: &Path,
        bucket: &str,
    ) -> Result<usize, LoadError> {
        let mut written = 0;
        let mut refused = None;
        let now = DateTime::from(SystemTime::now());
        let mut s3 = lock(&self.inner.s3);
        if !s3.exists(bucket)
            && let Err(e) = s3.create(bucket, "us-east-1", now)
        {
            return Err(LoadError::Bucket(e.to_string()));
        }
        events::for_each_log_file(path, &mut |records| {
            for (key, body) in delivery::loaded_files(records, account) {
                let mut object = s3::Object::new(
                    body,
                    Default::default(),
                    Some("application/json".into()),
                    now,
                );
                object.content_encoding = Some("gzip".into());
                match s3.put(bucket, &key, object) {
                    Ok(()) => written += 1,
                    Err(e) => refused = Some(e.to_string()),
                }
            }
        })?;
        match refused {
            Some(e) => Err(LoadError::Bucket(e)),
            None => Ok(written),
        }
    }

    /// [`load_logs`](Self::load_logs) into `account`'s event history.
    pub fn load_logs_into(&self, account: &str, path: &Path) -> Result<usize, LoadError> {
        let mut accounts = lock(&self.inner.accounts);
        self.inner
            .account(&mut accounts, account)
            .events
            .load_path(path)
    }
}

#[cfg(test)]
mod fuzz;
