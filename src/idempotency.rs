//! Idempotent mutations (AIP-155): a call with a `request_id` (a UUID) is answered once; a retry with
//! the same id within `RETAIN` gets the first answer again without calling CloudTrail, on any replica
//! (the records live in Redis when it is configured, else in this process). The same id with a
//! different request is refused. A retry while the first call is still running is told to come back
//! (ABORTED with RetryInfo). Only final answers are kept: a success, or a failure a retry would only
//! repeat; after a transient failure (UNAVAILABLE, a throttle, a deadline) the id is free again, so
//! the retry really retries.
//!
//! Records are keyed by principal and request id (one caller cannot read another's answers), and
//! hold a fingerprint of the request (RPC, target, message without its request id).

use std::{sync::Arc, time::Duration};

use base64::Engine;
use redis::aio::ConnectionManager;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tonic::{Code, Status};

use crate::error::{Error, Refused};

/// How long an answer is kept for retries.
pub const RETAIN: Duration = Duration::from_secs(600);
/// How long a call in flight holds its id (a replica that died mid-call frees it then).
const PENDING: Duration = Duration::from_secs(120);
/// Records kept at most in this process.
const MAX_LOCAL: u64 = 100_000;
const REDIS_TIMEOUT: Duration = Duration::from_millis(250);

/// A finished call's answer, as kept: the status code, its message and details, and the encoded
/// response message (OK only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Answer {
    pub code: i32,
    pub message: String,
    /// `google.rpc.Status` details, base64.
    pub details: String,
    /// The encoded response, base64.
    pub body: String,
}

impl Answer {
    pub fn ok(body: &[u8]) -> Answer {
        Answer {
            code: Code::Ok as i32,
            message: String::new(),
            details: String::new(),
            body: base64::engine::general_purpose::STANDARD.encode(body),
        }
    }

    pub fn failed(status: &Status) -> Answer {
        Answer {
            code: status.code() as i32,
            message: status.message().to_owned(),
            details: base64::engine::general_purpose::STANDARD.encode(status.details()),
            body: String::new(),
        }
    }

    /// The response body, or the failure as its status.
    pub fn into_result(self) -> Result<Vec<u8>, Status> {
        let decode = |text: &str| {
            base64::engine::general_purpose::STANDARD
                .decode(text)
                .unwrap_or_default()
        };
        if self.code == Code::Ok as i32 {
            Ok(decode(&self.body))
        } else {
            Err(Status::with_details(
                Code::from_i32(self.code),
                self.message,
                decode(&self.details).into(),
            ))
        }
    }
}

/// Whether a failure is final: a retry of the same request would fail the same way.
pub fn is_final(code: Code) -> bool {
    matches!(
        code,
        Code::InvalidArgument
            | Code::NotFound
            | Code::AlreadyExists
            | Code::PermissionDenied
            | Code::FailedPrecondition
            | Code::OutOfRange
            | Code::Unimplemented
    )
}

#[derive(Debug, Clone, Serialize, Deserialize)]
enum Record {
    Pending { fingerprint: String },
    Done { fingerprint: String, answer: Answer },
}

/// What to do with a call that carries a request id.
#[derive(Debug)]
pub enum Claim {
    /// Run it, then `finish` the ticket.
    Run(Ticket),
    /// Answered before: this is the answer.
    Replay(Answer),
}

/// The right (and duty) to record a call's answer. Dropped unfinished (the caller went away mid-call),
/// it frees the id.
#[derive(Debug)]
pub struct Ticket {
    key: String,
    fingerprint: String,
    store: Option<Arc<Idempotency>>,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let Some(store) = self.store.take() else {
            return;
        };
        let key = std::mem::take(&mut self.key);
        store.local.invalidate(&key);
        if store.redis.is_some()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(async move { store.write(&key, None).await });
        }
    }
}

/// Checks a request id, a UUID, and returns it as one spelling: upper case, braces, `urn:uuid:` or
/// no hyphens are the same id (a retry that respells it is still a retry).
pub fn check_request_id(id: &str) -> Result<String, Error> {
    match uuid::Uuid::try_parse(id) {
        Ok(uuid) => Ok(uuid.hyphenated().to_string()),
        Err(_) => Err(Error::invalid(
            "request_id",
            format!("'{id}' is not a UUID (e.g. 9f1c0d5e-2b7a-4c1e-8f3d-6a2b1c0d9e8f)"),
        )),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The record's key for `principal`'s `request_id`.
pub fn key(principal: &str, request_id: &str) -> String {
    let digest = Sha256::new()
        .chain_update(principal.as_bytes())
        .chain_update([0])
        .chain_update(request_id.as_bytes())
        .finalize();
    format!("cloudtrail-gateway:idem:{}", hex(&digest))
}

/// What a retry must repeat: the RPC, where it goes, the message without its request id.
pub fn fingerprint(rpc: &str, target: &str, message: &[u8]) -> String {
    let digest = Sha256::new()
        .chain_update(rpc.as_bytes())
        .chain_update([0])
        .chain_update(target.as_bytes())
        .chain_update([0])
        .chain_update(message)
        .finalize();
    hex(&digest)
}

pub struct Idempotency {
    local: moka::sync::Cache<String, Record>,
    redis: Option<ConnectionManager>,
}

impl std::fmt::Debug for Idempotency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Idempotency")
            .field("redis", &self.redis.is_some())
            .finish_non_exhaustive()
    }
}

fn mismatch() -> Error {
    Error::invalid(
        "request_id",
        "was used in the last 10 minutes for a different request (another RPC, target or message)",
    )
}

fn in_progress() -> Error {
    Refused::new(
        Code::Aborted,
        "RequestInProgress",
        "a call with this request_id is still running; retry shortly for its answer",
    )
    .retry_after(Duration::from_secs(1))
    .into()
}

impl Idempotency {
    /// Records in Redis (`connection`) when given, else in this process.
    pub fn new(redis: Option<ConnectionManager>) -> Idempotency {
        Idempotency {
            local: moka::sync::Cache::builder()
                .max_capacity(MAX_LOCAL)
                .time_to_live(RETAIN)
                .build(),
            redis,
        }
    }

    /// Claims `key` for a call with `fingerprint`, or says what was answered before.
    pub async fn claim(self: &Arc<Self>, key: String, fingerprint: String) -> Result<Claim, Error> {
        let pending = Record::Pending {
            fingerprint: fingerprint.clone(),
        };
        let existing = match &self.redis {
            Some(redis) => match self.redis_claim(redis, &key, &pending).await {
                Ok(existing) => existing,
                Err(e) => {
                    tracing::warn!(error = %e, "Redis unreachable: request ids are remembered by this replica only");
                    self.local_claim(&key, pending)
                }
            },
            None => self.local_claim(&key, pending),
        };
        match existing {
            None => Ok(Claim::Run(Ticket {
                key,
                fingerprint,
                store: Some(self.clone()),
            })),
            Some(Record::Pending { fingerprint: held }) if held == fingerprint => {
                Err(in_progress())
            }
            Some(Record::Done {
                fingerprint: held,
                answer,
            }) if held == fingerprint => Ok(Claim::Replay(answer)),
            Some(_) => Err(mismatch()),
        }
    }

    /// Records the call's answer (a final one), or frees the id (`None`: the call may be retried).
    pub async fn finish(&self, mut ticket: Ticket, answer: Option<Answer>) {
        ticket.store = None;
        let key = std::mem::take(&mut ticket.key);
        let record = answer.map(|answer| Record::Done {
            fingerprint: std::mem::take(&mut ticket.fingerprint),
            answer,
        });
        self.write(&key, record).await;
    }

    /// Stores `record` under `key`, or removes the key (`None`): in Redis, else (or when Redis does
    /// not answer) here.
    async fn write(&self, key: &str, record: Option<Record>) {
        if let Some(redis) = &self.redis {
            let mut connection = redis.clone();
            let write = async {
                match &record {
                    Some(record) => {
                        let text = serde_json::to_string(record).unwrap_or_default();
                        redis::cmd("SET")
                            .arg(key)
                            .arg(text)
                            .arg("PX")
                            .arg(RETAIN.as_millis() as u64)
                            .query_async::<()>(&mut connection)
                            .await
                    }
                    None => {
                        redis::cmd("DEL")
                            .arg(key)
                            .query_async::<()>(&mut connection)
                            .await
                    }
                }
            };
            match tokio::time::timeout(REDIS_TIMEOUT, write).await {
                Ok(Ok(())) => return,
                Ok(Err(e)) => tracing::warn!(error = %e, "Redis: request id not recorded there"),
                Err(_) => tracing::warn!("Redis: request id not recorded there (timed out)"),
            }
        }
        match record {
            Some(record) => self.local.insert(key.to_owned(), record),
            None => self.local.invalidate(key),
        }
    }

    fn local_claim(&self, key: &str, pending: Record) -> Option<Record> {
        let entry = self.local.entry_by_ref(key).or_insert(pending);
        (!entry.is_fresh()).then(|| entry.into_value())
    }

    /// SET NX of the pending record; on a clash, the record there.
    async fn redis_claim(
        &self,
        redis: &ConnectionManager,
        key: &str,
        pending: &Record,
    ) -> Result<Option<Record>, String> {
        let mut connection = redis.clone();
        let text = serde_json::to_string(pending).map_err(|e| e.to_string())?;
        let attempt = async {
            let set: Option<String> = redis::cmd("SET")
                .arg(key)
                .arg(&text)
                .arg("NX")
                .arg("PX")
                .arg(PENDING.as_millis() as u64)
                .query_async(&mut connection)
                .await?;
            if set.is_some() {
                return Ok(None);
            }
            let held: Option<String> = redis::cmd("GET")
                .arg(key)
                .query_async(&mut connection)
                .await?;
            Ok::<_, redis::RedisError>(held)
        };
        match tokio::time::timeout(REDIS_TIMEOUT, attempt).await {
            Ok(Ok(None)) => Ok(None),
            // Expired between SET and GET: a clash with nobody; run.
            Ok(Ok(Some(held))) => Ok(serde_json::from_str(&held).ok()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("timed out".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "9f1c0d5e-2b7a-4c1e-8f3d-6a2b1c0d9e8f";

    #[tokio::test]
    async fn an_answer_is_replayed_to_the_same_request_only() {
        let store = Arc::new(Idempotency::new(None));
        let key = key("alice", ID);
        let Claim::Run(ticket) = store.claim(key.clone(), "fp-1".into()).await.unwrap() else {
            panic!("first call runs");
        };
        // While it runs, a retry is told to come back.
        let busy = store.claim(key.clone(), "fp-1".into()).await.unwrap_err();
        assert_eq!(busy.code(), Code::Aborted);
        store.finish(ticket, Some(Answer::ok(b"answer"))).await;
        match store.claim(key.clone(), "fp-1".into()).await.unwrap() {
            Claim::Replay(answer) => assert_eq!(answer.into_result().unwrap(), b"answer"),
            Claim::Run(_) => panic!("ran twice"),
        }
        let other = store.claim(key.clone(), "fp-2".into()).await.unwrap_err();
        assert_eq!(other.code(), Code::InvalidArgument);
        // Another principal's same id is another record.
        assert!(matches!(
            store.claim(super::key("bob", ID), "fp-1".into()).await,
            Ok(Claim::Run(_))
        ));
    }

    #[tokio::test]
    async fn a_transient_failure_frees_the_id() {
        let store = Arc::new(Idempotency::new(None));
        let key = key("alice", ID);
        let Ok(Claim::Run(ticket)) = store.claim(key.clone(), "fp".into()).await else {
            panic!("runs");
        };
        store.finish(ticket, None).await;
        let again = store.claim(key.clone(), "fp".into()).await;
        assert!(matches!(again, Ok(Claim::Run(_))));
        // A call dropped mid-way (its caller went away) frees the id too.
        drop(again);
        assert!(matches!(
            store.claim(key, "fp".into()).await,
            Ok(Claim::Run(_))
        ));
        assert!(is_final(Code::AlreadyExists) && !is_final(Code::Unavailable));
        let failed = Answer::failed(&Status::not_found("gone"));
        let status = failed.into_result().unwrap_err();
        assert_eq!((status.code(), status.message()), (Code::NotFound, "gone"));
    }

    #[test]
    fn request_ids_are_uuids() {
        assert_eq!(check_request_id(ID).unwrap(), ID);
        assert!(check_request_id("retry-1").is_err());
        // One id, however it is spelled.
        let upper = ID.to_uppercase();
        let simple = ID.replace('-', "");
        for spelling in [
            upper.as_str(),
            &format!("{{{ID}}}"),
            &format!("urn:uuid:{ID}"),
            &simple,
        ] {
            assert_eq!(check_request_id(spelling).unwrap(), ID, "{spelling}");
        }
        assert_ne!(key("a", ID), key("b", ID));
        assert_ne!(
            fingerprint("CreateTrail", "t", b"m"),
            fingerprint("UpdateTrail", "t", b"m")
        );
    }
}
