//! GetEventStoreStatus: the sources' state and the store's counts, for the places the caller may
//! see. Answered by the gateway itself (no CloudTrail call).

use std::collections::BTreeMap;

use tonic::{Request, Response, Status};

use super::{CallContext, Gateway, Operation::GetEventStoreStatus};
use crate::{
    convert::events::from_millis as timestamp, ingest::now_ms, pb, store::Count, target::Target,
};

impl Gateway {
    pub(super) async fn store_status(
        &self,
        request: Request<pb::GetEventStoreStatusRequest>,
    ) -> Result<Response<pb::GetEventStoreStatusResponse>, Status> {
        let context = CallContext::of(&request, self.request_timeout);
        let Some(history) = &self.history else {
            return Err(Status::failed_precondition(
                "the gateway runs without an event store (no [[log_sources]], or --store false)",
            ));
        };
        let counts: BTreeMap<(String, String, String), Count> = history
            .store
            .counts()
            .await
            .map_err(|e| Status::unavailable(e.to_string()))?
            .into_iter()
            .map(|c| ((c.source.clone(), c.account.clone(), c.region.clone()), c))
            .collect();
        let visible = |account: &str, region: &str| {
            let target = Target {
                account: account.into(),
                region: region.into(),
            };
            context
                .caller
                .as_ref()
                .is_none_or(|p| self.allows(GetEventStoreStatus, p, &target))
        };
        let now = now_ms();
        let sources = history
            .sources
            .all()
            .iter()
            .map(|source| {
                let s = source.status.snapshot();
                let places = s
                    .places
                    .iter()
                    .filter(|((account, region), _)| visible(account, region))
                    .map(|((account, region), p)| {
                        let count = counts.get(&(s.name.clone(), account.clone(), region.clone()));
                        pb::EventStorePlace {
                            account: account.clone(),
                            region: region.clone(),
                            watermark: p.watermark_ms.map(timestamp),
                            lag_seconds: p.watermark_ms.map_or(0.0, |w| (now - w) as f64 / 1000.0),
                            last_poll: p.polled_ms.map(timestamp),
                            files_stored: count.map_or(0, |c| c.files),
                            events_stored: count.map_or(0, |c| c.events),
                            newest_event: count.and_then(|c| c.newest_ms).map(timestamp),
                            duplicates: p.duplicates,
                            files_skipped: p.skipped,
                            records_unusable: p.unusable,
                            errors: p.errors,
                            last_error: p.last_error.clone().unwrap_or_default(),
                            backlog: p.backlog,
                        }
                    })
                    .collect();
                pb::EventStoreSource {
                    name: s.name,
                    bucket: s.bucket,
                    lookups: s.mode.label().to_owned(),
                    errors: s.errors,
                    last_error: s.last_error.unwrap_or_default(),
                    backfill_percent: s.backfill.percent,
                    backfill_done: s.backfill.done,
                    places,
                }
            })
            .collect();
        Ok(Response::new(pb::GetEventStoreStatusResponse {
            bytes_on_disk: history.store.bytes_on_disk(),
            sources,
        }))
    }
}
