//! One account's state: its trails, its event history and its trails' deliveries.

use aws_smithy_types::DateTime;
use serde_json::Value;

use crate::{
    ctx::Ctx,
    delivery::{Deliveries, Limits},
    events::{EventStore, Served},
    trails::Trails,
    wire::ApiError,
};

/// One account's trails, event history and deliveries.
#[derive(Debug)]
pub(crate) struct Account {
    pub(crate) trails: Trails,
    pub(crate) events: EventStore,
    pub(crate) delivery: Deliveries,
}

impl Account {
    /// Records a call served in the history, and for every trail that logs it; returns the
    /// record (for the organization's trails, when another account's).
    pub(crate) fn record(&mut self, served: Served, limits: Limits) -> serde_json::Value {
        let (account, region, at) = (served.ctx.account, served.ctx.region, served.ctx.now);
        let record = self.events.record(served);
        self.delivery
            .enqueue(&self.trails, (account, region), &record, at, false, limits);
        record
    }

    /// A member account's record, for this (the management) account's organization trails.
    pub(crate) fn log_member(
        &mut self,
        member: &str,
        record: &Value,
        at: DateTime,
        limits: Limits,
    ) {
        let region = record
            .get("awsRegion")
            .and_then(Value::as_str)
            .unwrap_or_default();
        self.delivery
            .enqueue(&self.trails, (member, region), record, at, true, limits);
    }

    /// An event that happened elsewhere (a data event, an Insights event): in the history, and
    /// for every trail that selects it. False when it is unusable or already recorded.
    pub(crate) fn add_event(&mut self, account: &str, record: &Value, limits: Limits) -> bool {
        let region = record
            .get("awsRegion")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        if !self.events.add_record(record) {
            return false;
        }
        let now = DateTime::from(std::time::SystemTime::now());
        self.delivery
            .enqueue(&self.trails, (account, &region), record, now, false, limits);
        true
    }

    /// GetTrailStatus: the trail's logging status and its deliveries.
    pub(crate) fn trail_status(&self, ctx: &Ctx, body: &Value) -> Result<Value, ApiError> {
        let (arn, mut answer) = self.trails.status(ctx, body)?;
        self.delivery.status_json(&arn, &mut answer);
        Ok(answer)
    }
}
