//! LookupEvents through its coalescer: identical requests share one call and its answer (kept for
//! `lookup_cache_ttl`), and a shared answer spends no quota slot.

use std::sync::Arc;

use Operation::*;
use aws_sdk_cloudtrail::Client;
use prost::Message;
use tonic::Status;

use super::{
    context::{ANSWERED_FROM_KEY, WATERMARK_KEY},
    history::From,
    *,
};
use crate::{
    audit,
    error::Error,
    limits::coalesce::{Shared, Source},
    operation::Operation,
    pb,
    telemetry::{self},
};

impl Gateway {
    /// LookupEvents: routed like every call, then answered by the event store for what a source
    /// of it covers (`history`), else by the coalescer (identical lookups to one target share one
    /// slot and one upstream call, made as the first caller).
    pub(super) async fn lookup(
        &self,
        context: &mut CallContext,
        message: pb::LookupEventsRequest,
    ) -> Result<Looked, Status> {
        let (target, client) = self
            .route(LookupEvents, context, message.trail_refs())
            .await?;
        let routed = Routed::new(context, &target);
        let looked = match self.history_for(&target) {
            Some(plan) => {
                // CloudTrail's rules first: a request it would refuse is refused here too.
                events::lookup_events(message.clone(), client.lookup_events())?;
                let answer = self.history_lookup(routed, &client, plan, message).await?;
                Looked {
                    response: Arc::new(answer.response),
                    label: match answer.from {
                        From::Store => "store",
                        From::Both => "store_upstream",
                        From::CloudTrail => Source::Upstream.label(),
                    },
                    from: answer.from.label(),
                    watermark_ms: answer.watermark_ms,
                }
            }
            None => {
                let (response, source) = self.coalesced_lookup(routed, &client, message).await?;
                Looked {
                    response,
                    label: source.label(),
                    from: audit::answer_label(source),
                    watermark_ms: None,
                }
            }
        };
        context.note_answered(looked.from);
        metrics::counter!(telemetry::LOOKUPS, "source" => looked.label).increment(1);
        Ok(looked)
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

/// A LookupEvents answer and where it came from.
pub(super) struct Looked {
    pub response: Arc<pb::LookupEventsResponse>,
    /// The metric's `source` label.
    pub label: &'static str,
    /// The audit record's and the response metadata's.
    pub from: &'static str,
    pub watermark_ms: Option<i64>,
}

impl Looked {
    /// The answer, saying where it came from and, for the store, how fresh it is.
    pub(super) fn into_response(self) -> tonic::Response<pb::LookupEventsResponse> {
        let mut response = tonic::Response::new(self.response.as_ref().clone());
        answer_metadata(&mut response, self.from, self.watermark_ms);
        response
    }
}

/// Says on a LookupEvents response where it came from and, for the store, how fresh it is.
fn answer_metadata<T>(response: &mut tonic::Response<T>, from: &str, watermark_ms: Option<i64>) {
    let metadata = response.metadata_mut();
    if let Ok(value) = from.parse() {
        metadata.insert(ANSWERED_FROM_KEY, value);
    }
    if let Some(w) = watermark_ms {
        let time = aws_smithy_types::DateTime::from_millis(w)
            .fmt(aws_smithy_types::date_time::Format::DateTime);
        if let Some(value) = time.ok().and_then(|t| t.parse().ok()) {
            metadata.insert(WATERMARK_KEY, value);
        }
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
