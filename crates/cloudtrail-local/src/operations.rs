//! The operations this CloudTrail serves: one table gives each its name (as in `X-Amz-Target`), its
//! quota group, whether CloudTrail records it as read-only, and the handler that serves it.

use serde_json::Value;

use crate::{
    account::Account,
    ctx::Ctx,
    quotas::QuotaGroup::{self, Lookup, Read, Write},
    wire::ApiError,
};

type Handler = fn(&mut Account, &Ctx, &Value) -> Result<Value, ApiError>;

#[derive(Debug)]
pub struct Operation {
    pub name: &'static str,
    pub quota: QuotaGroup,
    pub read_only: bool,
    pub serve: Handler,
}

const fn op(name: &'static str, quota: QuotaGroup, serve: Handler) -> Operation {
    Operation {
        name,
        quota,
        // What CloudTrail's own records say: reads are the Lookup/Describe/Get/List calls.
        read_only: !matches!(quota, Write),
        serve,
    }
}

pub const OPERATIONS: &[Operation] = &[
    op("AddTags", Write, |a, c, b| a.trails.add_tags(c, b)),
    op("CreateTrail", Write, |a, c, b| a.trails.create(c, b)),
    op("DeleteTrail", Write, |a, c, b| a.trails.delete(c, b)),
    op("DescribeTrails", Read, |a, c, b| a.trails.describe(c, b)),
    op("GetEventSelectors", Read, |a, c, b| {
        a.trails.get_selectors(c, b)
    }),
    op("GetInsightSelectors", Read, |a, c, b| {
        a.trails.get_insight_selectors(c, b)
    }),
    op("GetTrail", Read, |a, c, b| a.trails.get(c, b)),
    op("GetTrailStatus", Read, |a, c, b| a.trails.status(c, b)),
    op("ListPublicKeys", Read, |_, c, b| crate::keys::list(c, b)),
    op("ListTags", Read, |a, c, b| a.trails.list_tags(c, b)),
    op("ListTrails", Read, |a, c, b| a.trails.list(c, b)),
    op("LookupEvents", Lookup, |a, c, b| a.events.lookup(c, b)),
    op("PutEventSelectors", Write, |a, c, b| {
        a.trails.put_selectors(c, b)
    }),
    op("PutInsightSelectors", Write, |a, c, b| {
        a.trails.put_insight_selectors(c, b)
    }),
    op("RemoveTags", Write, |a, c, b| a.trails.remove_tags(c, b)),
    op("StartLogging", Write, |a, c, b| {
        a.trails.set_logging(c, b, true)
    }),
    op("StopLogging", Write, |a, c, b| {
        a.trails.set_logging(c, b, false)
    }),
    op("UpdateTrail", Write, |a, c, b| a.trails.update(c, b)),
];

pub fn find(name: &str) -> Option<&'static Operation> {
    OPERATIONS.iter().find(|o| o.name == name)
}
