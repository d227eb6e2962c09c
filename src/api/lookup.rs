//! LookupEvents through its coalescer: identical requests share one call and its answer (kept for
//! `lookup_cache_ttl`), and a shared answer spends no quota slot.

use std::sync::Arc;

use Operation::*;
use aws_sdk_cloudtrail::Client;
use prost::Message;
use tonic::Status;

use super::*;
use crate::{
    audit,
    error::Error,
    limits::coalesce::{Shared, Source},
    operation::Operation,
    pb,
    telemetry::{self},
};

impl Gateway {
    /// LookupEvents: routed like every call, then answered by the coalescer (identical lookups to
    /// one target share one slot and one upstream call, made as the first caller).
    pub(super) async fn lookup(
        &self,
        context: &mut CallContext,
        message: pb::LookupEventsRequest,
    ) -> Result<(Arc<pb::LookupEventsResponse>, Source), Status> {
        let (target, client) = self
            .route(LookupEvents, context, message.trail_refs())
            .await?;
        let routed = Routed::new(context, &target);
        let (answer, source) = self.coalesced_lookup(routed, &client, message).await?;
        context.note_answered(audit::answer_label(source));
        metrics::counter!(telemetry::LOOKUPS, "source" => source.label()).increment(1);
        Ok((answer, source))
    }

    /// One LookupEvents call of a routed context, through the coalescer.
    pub(super) async fn coalesced_lookup(
        &self,
        context: Routed<'_>,
        client: &Client,
        message: pb::LookupEventsRequest,
    ) -> Result<(Arc<pb::LookupEventsResponse>, Source), Status> {
        let target = context.target.clone();
        // Identical requests (same fields and page token) encode identically.
        let key = (target, message.encode_to_vec());
        let call = events::lookup_events(message, client.lookup_events())?;
        let (answer, source) = self
            .lookups
            .get(key, context.deadline, || async {
                match self
                    .upstream(LookupEvents, context, call, Retries::None)
                    .await
                {
                    Ok(output) => Shared::Done(Ok(Arc::new(output.into()))),
                    Err(e) => shared_failure(e),
                }
            })
            .await;
        Ok((answer?, source))
    }
}

/// A shared call's failure: the leader's own (its deadline too short for a slot or the call)
/// lets the others try for themselves.
pub(super) fn shared_failure<V>(e: Error) -> Shared<V> {
    match e {
        e @ (Error::RateLimited(_) | Error::DeadlineExceeded) => Shared::LeaderOnly(e.into()),
        e => Shared::Done(Err(e.into())),
    }
}
