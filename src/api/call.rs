//! One RPC from request to answer: routed, a retried `request_id` answered from the idempotency
//! store, pollers' reads served from the read cache, else made (`send`); audited whatever the
//! outcome.

use std::{any::Any, sync::Arc};

use aws_sdk_cloudtrail::Client;
use prost::Message;
use tonic::{Code, Request, Response, Status, metadata::MetadataValue};

use super::{lookup::shared_failure, *};
use crate::{
    audit,
    error::Error,
    idempotency::{self, Claim},
    limits::coalesce::Shared,
    operation::Operation,
};

impl Gateway {
    /// One RPC made of one CloudTrail call: `build` checks and converts the message into it.
    pub(super) async fn call<T, B, R, F>(
        &self,
        operation: Operation,
        request: Request<T>,
        build: F,
    ) -> Result<Response<R>, Status>
    where
        T: Fields + Message + Clone + Default,
        B: Sendable,
        R: From<B::Output> + Message + Clone + Default + 'static,
        F: FnOnce(T, &Client) -> Result<B, Error>,
    {
        self.call_with(operation, request, async |message, context, client| {
            self.execute(operation, context, message, client, build)
                .await
        })
        .await
    }

    /// One RPC: routed, answered (`execute`, or the answer kept for its request id), audited
    /// whatever the outcome.
    pub(super) async fn call_with<T, R>(
        &self,
        operation: Operation,
        request: Request<T>,
        execute: impl AsyncFnOnce(T, Routed<'_>, &Client) -> Result<R, Status>,
    ) -> Result<Response<R>, Status>
    where
        T: Fields + Message + Clone + Default,
        R: Message + Default,
    {
        let mut context = CallContext::of(&request, self.request_timeout);
        let message = request.into_inner();
        let trail = message.trail_refs().first().cloned();
        let (answer, replayed) = self.answer(operation, &mut context, message, execute).await;
        let code = answer.as_ref().map_or_else(Status::code, |_| Code::Ok);
        self.audit(operation, &context, trail.as_deref(), code);
        let mut response = Response::new(answer?);
        if replayed {
            response
                .metadata_mut()
                .insert(REPLAYED_KEY, MetadataValue::from_static("true"));
        }
        Ok(response)
    }

    /// The audit record of a finished call, when it is one to audit: a change, a read with
    /// `audit_reads`, and any call refused for where it went (a refusal is a security event).
    pub(super) fn audit(
        &self,
        operation: Operation,
        context: &CallContext,
        trail: Option<&str>,
        code: Code,
    ) {
        if self.audit.wants(operation) || code == Code::PermissionDenied {
            let aws_request_id = context.aws_request_id();
            audit::write(&context.audit_record(operation, trail, code, aws_request_id.as_deref()));
        }
    }

    /// The call's answer, and whether it was replayed: for a request id answered before, that
    /// answer; else `execute`'s (kept for the request id when it is final).
    pub(super) async fn answer<T, R>(
        &self,
        operation: Operation,
        context: &mut CallContext,
        message: T,
        execute: impl AsyncFnOnce(T, Routed<'_>, &Client) -> Result<R, Status>,
    ) -> (Result<R, Status>, bool)
    where
        T: Fields + Message + Clone + Default,
        R: Message + Default,
    {
        let (target, client) = match self.route(operation, context, message.trail_refs()).await {
            Ok(route) => route,
            Err(e) => return (Err(e.into()), false),
        };
        let context = Routed::new(context, &target);
        if message.request_id().is_empty() {
            return (execute(message, context, &client).await, false);
        }
        let claim = async {
            let request_id = idempotency::check_request_id(message.request_id())?;
            let key = idempotency::key(context.principal_name(), &request_id);
            let fingerprint = idempotency::fingerprint(
                operation.name(),
                &context.target.to_string(),
                &message.without_request_id().encode_to_vec(),
            );
            self.idempotency.claim(key, fingerprint).await
        };
        match claim.await {
            Err(e) => (Err(e.into()), false),
            Ok(Claim::Replay(kept)) => {
                let answer = kept.into_result().and_then(|body| {
                    R::decode(body.as_slice()).map_err(|e| {
                        Status::internal(format!("a kept answer does not decode: {e}"))
                    })
                });
                context.note_answered("replay");
                (answer, true)
            }
            Ok(Claim::Run(ticket)) => {
                let answer = execute(message, context, &client).await;
                let kept = match &answer {
                    Ok(response) => Some(idempotency::Answer::ok(&response.encode_to_vec())),
                    Err(status) if idempotency::is_final(status.code()) => {
                        Some(idempotency::Answer::failed(status))
                    }
                    Err(_) => None,
                };
                self.idempotency.finish(ticket, kept).await;
                (answer, false)
            }
        }
    }

    /// Makes the call `build` gives: through the read cache for pollers' reads; after a change, the
    /// account's cached reads (and, for a trail created or deleted, its trails' home Regions) are
    /// dropped.
    pub(super) async fn execute<T, B, R, F>(
        &self,
        operation: Operation,
        context: Routed<'_>,
        message: T,
        client: &Client,
        build: F,
    ) -> Result<R, Status>
    where
        T: Message,
        B: Sendable,
        R: From<B::Output> + Clone + Send + Sync + 'static,
        F: FnOnce(T, &Client) -> Result<B, Error>,
    {
        let retries = if context.retry_propagation {
            Retries::Propagation
        } else {
            Retries::None
        };
        let target = context.target;
        if self.reads.caches(operation) {
            let key = self.reads.key(target, operation, message.encode_to_vec());
            let call = build(message, client)?;
            let (answer, source) = self
                .reads
                .get(key, context.deadline, || async {
                    match self.upstream(operation, context, call, retries).await {
                        Ok(output) => {
                            let response: Arc<dyn Any + Send + Sync> = Arc::new(R::from(output));
                            Shared::Done(Ok(response))
                        }
                        Err(e) => shared_failure(e),
                    }
                })
                .await;
            context.note_answered(audit::answer_label(source));
            return answer?
                .downcast_ref::<R>()
                .cloned()
                .ok_or_else(|| Status::internal("the read cache holds another RPC's answer"));
        }
        let call = build(message, client)?;
        let output = self.upstream(operation, context, call, retries).await?;
        context.note_answered("cloudtrail");
        if !operation.is_read_only() {
            self.changed(operation, target).await;
        }
        Ok(R::from(output))
    }
}
