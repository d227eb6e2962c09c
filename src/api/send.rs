//! Sending one CloudTrail call: the caller's role session first, then a slot of the quota, then the
//! SDK call within the caller's deadline, again after a propagation error when asked; and what a
//! change invalidates (cached reads, trail homes).

use std::time::{Duration, Instant};

use aws_sdk_cloudtrail::{error::ProvideErrorMetadata, operation::RequestId};

use super::*;
use crate::{
    error::Error,
    operation::Operation,
    target::Target,
    telemetry::{self, Outcome},
};

impl Gateway {
    /// A change was made at `target`: what was read there before is stale.
    pub(super) async fn changed(&self, operation: Operation, target: &Target) {
        self.reads.changed(&target.account);
        if operation.reshapes_trails() {
            self.homes.forget(&target.account).await;
        }
    }

    /// Gets the caller's role session (if calls are made through one), takes a slot of the
    /// operation's quota at the call's target, then sends the SDK call within what is left of the
    /// caller's deadline; again after a propagation error when `retries` says so, while the deadline
    /// leaves time (then the caller gets the last error, with RetryInfo).
    pub(super) async fn upstream<B: Sendable>(
        &self,
        operation: Operation,
        context: Routed<'_>,
        call: B,
        retries: Retries,
    ) -> Result<B::Output, Error> {
        let started = Instant::now();
        let target = context.target;
        let left = |limit: Duration| limit.saturating_sub(started.elapsed());
        // The session first: an STS failure spends no quota slot.
        if self.upstream.uses_sessions() {
            // Boxed: the STS call inside is a large future, and most gateways make none.
            let prepare = Box::pin(self.upstream.prepare(target, context.caller.as_ref()));
            match context.deadline {
                Some(limit) => tokio::time::timeout(limit, prepare)
                    .await
                    .map_err(|_| Error::DeadlineExceeded)??,
                None => prepare.await?,
            }
        }
        let mut backoff = Backoff::default();
        let mut call = Some(call);
        loop {
            let slot_wait = match context.caller_deadline {
                true => context.deadline.map(left),
                false => context
                    .deadline
                    .map(|d| left(d).min(self.limiter.config().max_wait_without_deadline)),
            };
            self.limiter
                .acquire(
                    target,
                    operation.quota(),
                    context.principal_name(),
                    slot_wait,
                )
                .await
                .map_err(|refusal| match context.caller_deadline {
                    true => refusal,
                    false => refusal.without_deadline(),
                })?;
            // Kept for another attempt only when there may be one.
            let this = match retries {
                Retries::None => call.take(),
                _ => call.clone(),
            }
            .ok_or_else(sent_already)?;
            let sent = Instant::now();
            let output = match context.deadline {
                Some(limit) => tokio::time::timeout(left(limit), this.dispatch()).await,
                None => Ok(this.dispatch().await),
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
            let result = match output {
                Ok(Ok(output)) => {
                    if let Some(id) = output.request_id() {
                        span.record("aws_request_id", tracing::field::display(id));
                        context.note_aws_request_id(Some(id));
                    }
                    return Ok(output);
                }
                Ok(Err(e)) => Error::from(e).naming(operation.name(), self.upstream.endpoint()),
                Err(_) => Error::DeadlineExceeded,
            };
            context.note_aws_request_id(result.aws_request_id());
            let after_create = retries == Retries::AfterCreate;
            if retries == Retries::None || !propagation::is_propagating(&result, after_create) {
                return Err(result);
            }
            let wait = backoff.next();
            if context.deadline.is_some_and(|limit| left(limit) <= wait) {
                return Err(result.retry_after(wait));
            }
            if let Error::Upstream(up) = &result {
                metrics::counter!(telemetry::PROPAGATION_RETRIES, "operation" => operation.name(), "reason" => up.reason.clone())
                    .increment(1);
            }
            tokio::time::sleep(wait).await;
        }
    }
}

/// A call without retries sent again (cannot happen: it returns after its one attempt).
fn sent_already() -> Error {
    crate::error::Refused::new(
        tonic::Code::Internal,
        "SentAlready",
        "the call was sent already",
    )
    .into()
}
