//! The embedded CloudTrail's state (`Inner`: accounts, keys, quotas, the call log, faults, roles)
//! and serving one request: the SDK's HTTP request parsed (`wire`), a planned fault applied, then
//! the call answered in its service's protocol: CloudTrail's operations (`operations`) within its
//! quotas, STS's, each recorded as the caller's management event.

use std::{
    collections::{HashMap, VecDeque},
    path::PathBuf,
    sync::{Arc, Mutex, MutexGuard},
    time::SystemTime,
};

use aws_smithy_runtime_api::client::{
    http::{HttpConnector, HttpConnectorFuture},
    orchestrator::{HttpRequest, HttpResponse},
    result::ConnectorError,
};

use aws_smithy_types::DateTime;

use crate::{
    account::Account,
    ctx::Ctx,
    delivery::{Deliveries, Limits},
    events::{EventStore, Served},
    faults::{self, Fault},
    identity::{self, Identity},
    ids,
    keys::KeyRing,
    operations::{self, Scope},
    options::Options,
    quotas, s3, state, sts,
    trails::Trails,
    wire::{self, ApiError},
};

/// The call log keeps this many entries.
const CALL_LOG_CAPACITY: usize = 100_000;

/// What the embedded CloudTrail was asked, for tests and benchmarks.
#[derive(Debug, Default)]
pub(crate) struct CallLog {
    pub(crate) served: VecDeque<(&'static str, SystemTime)>,
    /// The calls answered ThrottlingException: which operation, when.
    pub(crate) throttled: VecDeque<(&'static str, SystemTime)>,
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) options: Options,
    pub(crate) accounts: Mutex<HashMap<String, Account>>,
    pub(crate) keys: Mutex<identity::Keys>,
    pub(crate) default_identity: Arc<Identity>,
    pub(crate) quotas: Mutex<quotas::Limiter>,
    pub(crate) log: Mutex<CallLog>,
    pub(crate) faults: Mutex<faults::Faults>,
    pub(crate) roles: Mutex<sts::Roles>,
    /// Where the trails are kept across restarts, if anywhere.
    pub(crate) state_file: Mutex<Option<PathBuf>>,
    /// The embedded S3: the trails' buckets.
    pub(crate) s3: Mutex<s3::Buckets>,
    /// The Regions' digest-signing keys.
    pub(crate) signing: Mutex<KeyRing>,
}

impl Inner {
    /// The account `id`, made on first use.
    pub(crate) fn account<'a>(
        &self,
        accounts: &'a mut HashMap<String, Account>,
        id: &str,
    ) -> &'a mut Account {
        accounts.entry(id.to_owned()).or_insert_with(|| Account {
            trails: Trails::default(),
            events: EventStore::new(self.options.event_capacity),
            delivery: Deliveries::default(),
        })
    }

    pub(crate) fn limits(&self) -> Limits {
        Limits {
            pending: self.options.event_capacity,
        }
    }

    /// A member account's record, for the organization trails of the management account (the
    /// default account, when the emulator has an organization).
    pub(crate) fn log_for_organization(
        &self,
        accounts: &mut HashMap<String, Account>,
        member: &str,
        record: &serde_json::Value,
        at: DateTime,
    ) {
        if self.options.organization_id.is_none() || member == self.options.account_id {
            return;
        }
        let limits = self.limits();
        self.account(accounts, &self.options.account_id)
            .log_member(member, record, at, limits);
    }

    /// Delivers every trail's waiting events as log files; returns how many were written.
    pub(crate) fn deliver_logs(&self, now: DateTime) -> usize {
        let mut accounts = lock(&self.accounts);
        let mut s3 = lock(&self.s3);
        let organization = self.options.organization_id.as_deref();
        let written = accounts
            .iter_mut()
            .map(|(id, account)| {
                account
                    .delivery
                    .deliver_logs(id, &account.trails, &mut s3, now, organization)
            })
            .sum();
        drop(s3);
        self.save_state(&accounts);
        written
    }

    /// Delivers every validating trail's digests; returns how many were written.
    pub(crate) fn deliver_digests(&self, now: DateTime) -> usize {
        let mut accounts = lock(&self.accounts);
        let mut s3 = lock(&self.s3);
        let mut keys = lock(&self.signing);
        let organization = self.options.organization_id.as_deref();
        let written = accounts
            .iter_mut()
            .map(|(_, account)| {
                account.delivery.deliver_digests(
                    &account.trails,
                    &mut s3,
                    &mut keys,
                    now,
                    organization,
                )
            })
            .sum();
        drop((s3, keys));
        self.save_state(&accounts);
        written
    }
}

/// A panic while a lock is held cannot leave these maps half-updated in a way that matters more than
/// refusing every later call would, so keep serving.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[derive(Debug)]
pub(crate) struct Connector(pub(crate) Arc<Inner>);

impl HttpConnector for Connector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let request_id = ids::uuid();
        if let Some(region) = wire::s3_region(&request) {
            let fault = lock(&self.0.faults).take_named(s3::operation_of(&request));
            let inner = self.0.clone();
            let serve = move || {
                let mut buckets = lock(&inner.s3);
                Ok(s3::serve(&mut buckets, &request, region, &request_id))
            };
            return match fault {
                None => HttpConnectorFuture::ready(serve()),
                Some(Fault::Error { code, message }) => {
                    HttpConnectorFuture::ready(Ok(s3::error_answer(&code, &message, &ids::uuid())))
                }
                Some(Fault::Status(status)) => {
                    HttpConnectorFuture::ready(Ok(wire::respond_status(&ids::uuid(), status)))
                }
                Some(Fault::Reset) => HttpConnectorFuture::ready(Err(ConnectorError::io(
                    "connection reset by peer (injected)".into(),
                ))),
                Some(Fault::Hang) => HttpConnectorFuture::new(std::future::pending()),
                Some(Fault::Delay(delay)) => HttpConnectorFuture::new(async move {
                    tokio::time::sleep(delay).await;
                    serve()
                }),
            };
        }
        let call = match wire::parse(&request) {
            Ok(call) => call,
            Err(e) => return HttpConnectorFuture::ready(Ok(wire::respond(&request_id, &Err(e)))),
        };
        let fault = lock(&self.0.faults).take(&call.operation);
        let answer = |inner: &Inner, call: &wire::Call, id: &str, forced: Option<ApiError>| {
            Ok(inner.answer(call, id, forced))
        };
        match fault {
            None => HttpConnectorFuture::ready(answer(&self.0, &call, &request_id, None)),
            Some(Fault::Error { code, message }) => HttpConnectorFuture::ready(answer(
                &self.0,
                &call,
                &request_id,
                Some(ApiError::new(code, message)),
            )),
            Some(Fault::Status(status)) => {
                HttpConnectorFuture::ready(Ok(wire::respond_status(&request_id, status)))
            }
            Some(Fault::Reset) => HttpConnectorFuture::ready(Err(ConnectorError::io(
                "connection reset by peer (injected)".into(),
            ))),
            Some(Fault::Hang) => HttpConnectorFuture::new(std::future::pending()),
            Some(Fault::Delay(delay)) => {
                let inner = self.0.clone();
                HttpConnectorFuture::new(async move {
                    tokio::time::sleep(delay).await;
                    answer(&inner, &call, &request_id, None)
                })
            }
        }
    }
}

impl Inner {
    /// Notes a call served (throttled ones excluded).
    fn log_served(&self, operation: &'static str) {
        let mut log = lock(&self.log);
        if log.served.len() == CALL_LOG_CAPACITY {
            log.served.pop_front();
        }
        log.served.push_back((operation, SystemTime::now()));
    }

    /// Who signed the call: the identity its access key was issued to (a session's key with its
    /// token, unexpired), or the default user for a long-term key issued elsewhere.
    fn caller(&self, call: &wire::Call) -> Result<Arc<Identity>, ApiError> {
        Ok(lock(&self.keys)
            .check(&call.access_key_id, call.security_token.as_deref())?
            .unwrap_or_else(|| self.default_identity.clone()))
    }

    /// The HTTP answer to a call, in its service's protocol.
    fn answer(
        &self,
        call: &wire::Call,
        request_id: &str,
        forced: Option<ApiError>,
    ) -> HttpResponse {
        match call.service {
            wire::Service::CloudTrail => {
                wire::respond(request_id, &self.serve(call, request_id, forced))
            }
            wire::Service::Sts => {
                let result = match forced {
                    Some(error) => Err(error),
                    None => self.serve_sts(call, request_id),
                };
                wire::respond_xml(request_id, &result)
            }
        }
    }

    /// STS: AssumeRole, GetCallerIdentity. An AssumeRole is recorded in the role's account, as
    /// CloudTrail records it.
    fn serve_sts(&self, call: &wire::Call, request_id: &str) -> Result<String, ApiError> {
        let caller = self.caller(call)?;
        match call.operation.as_str() {
            "GetCallerIdentity" => {
                self.log_served("GetCallerIdentity");
                Ok(sts::caller_identity_xml(&caller, request_id))
            }
            "AssumeRole" => {
                self.log_served("AssumeRole");
                let assumed = sts::assume_role(&lock(&self.roles), &caller, &call.body)?;
                let account_id = assumed.identity.account().to_owned();
                let xml_identity = assumed.identity.clone();
                let credentials = {
                    let mut keys = lock(&self.keys);
                    keys.prune();
                    keys.issue_session(assumed.identity, assumed.duration)
                };
                let now = DateTime::from(SystemTime::now());
                let ctx = Ctx {
                    account: &account_id,
                    region: &call.region,
                    now,
                };
                let parameters = serde_json::json!({
                    "RoleArn": call.body.get("RoleArn"),
                    "RoleSessionName": call.body.get("RoleSessionName"),
                    "SourceIdentity": xml_identity.source_identity(),
                    "DurationSeconds": assumed.duration.as_secs(),
                });
                let mut accounts = lock(&self.accounts);
                let limits = self.limits();
                let record = self.account(&mut accounts, &account_id).record(
                    Served {
                        ctx: &ctx,
                        source: "sts.amazonaws.com",
                        name: "AssumeRole",
                        read_only: true,
                        caller: &caller,
                        access_key_id: &call.access_key_id,
                        user_agent: &call.user_agent,
                        request_id,
                        request: &parameters,
                        response: &Ok(serde_json::Value::Null),
                        resource_arn: None,
                    },
                    limits,
                );
                self.log_for_organization(&mut accounts, &account_id, &record, now);
                Ok(sts::assume_role_xml(
                    &xml_identity,
                    &credentials,
                    request_id,
                ))
            }
            other => Err(ApiError::new(
                "InvalidAction",
                format!("the embedded STS does not implement {other}"),
            )),
        }
    }

    /// Serves a call (or answers it with `forced`, an injected exception), as CloudTrail would:
    /// quota first, then the operation, then the event.
    pub(crate) fn serve(
        &self,
        call: &wire::Call,
        request_id: &str,
        forced: Option<ApiError>,
    ) -> Result<serde_json::Value, ApiError> {
        let operation = operations::find(&call.operation).ok_or_else(|| {
            ApiError::new(
                "UnknownOperationException",
                format!(
                    "the embedded CloudTrail does not implement {}",
                    call.operation
                ),
            )
        })?;
        let caller = self.caller(call)?;
        let account_id = caller.account();
        let admitted = lock(&self.quotas).admit(account_id, &call.region, operation.quota);
        if !admitted {
            let mut log = lock(&self.log);
            if log.throttled.len() == CALL_LOG_CAPACITY {
                log.throttled.pop_front();
            }
            log.throttled.push_back((operation.name, SystemTime::now()));
            return Err(ApiError::new("ThrottlingException", "Rate exceeded"));
        }
        self.log_served(operation.name);
        let now = DateTime::from(SystemTime::now());
        let ctx = Ctx {
            account: account_id,
            region: &call.region,
            now,
        };
        let mut accounts = lock(&self.accounts);
        let account = self.account(&mut accounts, account_id);
        // The trail the call names, looked up before a delete removes it.
        let named = account.trails.resource_of(&ctx, &call.body);
        let result = match forced {
            Some(error) => Err(error),
            None => self
                .check_bucket(operation.name, &call.body)
                .and_then(|()| self.check_organization(account_id, &call.body))
                .and_then(|()| {
                    let scope = Scope {
                        account: &mut *account,
                        keys: &mut lock(&self.signing),
                    };
                    (operation.serve)(scope, &ctx, &call.body)
                }),
        };
        if result.is_ok() {
            self.make_bucket(operation.name, &call.body, ctx.region);
        }
        let resource_arn = named.or_else(|| {
            let created = result.as_ref().ok()?.get("TrailARN")?.as_str()?;
            Some(created.to_owned())
        });
        let limits = self.limits();
        let record = account.record(
            Served {
                ctx: &ctx,
                source: "cloudtrail.amazonaws.com",
                name: operation.name,
                read_only: operation.read_only,
                caller: &caller,
                access_key_id: &call.access_key_id,
                user_agent: &call.user_agent,
                request_id,
                request: &call.body,
                response: &result,
                resource_arn,
            },
            limits,
        );
        self.log_for_organization(&mut accounts, account_id, &record, now);
        if !operation.read_only && result.is_ok() {
            self.save_state(&accounts);
        }
        result
    }

    /// The bucket a CreateTrail or UpdateTrail names: in strict mode it must exist in the
    /// embedded S3 (S3BucketDoesNotExistException otherwise, as CloudTrail checks).
    fn check_bucket(&self, operation: &str, body: &serde_json::Value) -> Result<(), ApiError> {
        let Some(bucket) = named_bucket(operation, body) else {
            return Ok(());
        };
        if self.options.strict_buckets && !lock(&self.s3).exists(bucket) {
            return Err(ApiError::new(
                "S3BucketDoesNotExistException",
                format!("S3 bucket {bucket} does not exist."),
            ));
        }
        Ok(())
    }

    /// An organization trail takes an organization, and its management account.
    fn check_organization(&self, account: &str, body: &serde_json::Value) -> Result<(), ApiError> {
        if body.get("IsOrganizationTrail") != Some(&serde_json::Value::Bool(true)) {
            return Ok(());
        }
        if self.options.organization_id.is_none() {
            return Err(ApiError::new(
                "OrganizationsNotInUseException",
                "This account is not a member of an organization.",
            ));
        }
        if account != self.options.account_id {
            return Err(ApiError::new(
                "NotOrganizationMasterAccountException",
                "The request was not made by the management account of the organization.",
            ));
        }
        Ok(())
    }

    /// Outside strict mode, the bucket a trail names is made in the embedded S3 when missing, so
    /// a trail delivers with no step before it.
    fn make_bucket(&self, operation: &str, body: &serde_json::Value, region: &str) {
        if let Some(bucket) = named_bucket(operation, body)
            && !self.options.strict_buckets
        {
            let mut s3 = lock(&self.s3);
            if !s3.exists(bucket) {
                let _ = s3.create(bucket, region, DateTime::from(SystemTime::now()));
            }
        }
    }

    /// Writes the trails to the state file, if one is kept. A failure does not undo the change:
    /// it is reported and the next change tries again.
    pub(crate) fn save_state(&self, accounts: &HashMap<String, Account>) {
        if let Some(path) = lock(&self.state_file).as_deref()
            && let Err(e) = state::write(path, accounts, &lock(&self.signing))
        {
            eprintln!("cloudtrail-local: the trails were changed but not saved: {e}");
        }
    }
}

/// The bucket CreateTrail or UpdateTrail sets, if any.
fn named_bucket<'a>(operation: &str, body: &'a serde_json::Value) -> Option<&'a str> {
    if !matches!(operation, "CreateTrail" | "UpdateTrail") {
        return None;
    }
    body.get("S3BucketName")
        .and_then(serde_json::Value::as_str)
        .filter(|b| !b.is_empty())
}
