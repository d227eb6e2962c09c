//! The operations this CloudTrail serves: one table gives each its name (as in `X-Amz-Target`), its
//! quota group, whether CloudTrail records it as read-only, and the handler that serves it.

use serde_json::Value;

use crate::{
    account::Account,
    ctx::Ctx,
    keys::KeyRing,
    quotas::QuotaGroup::{self, Lookup, Read, Write},
    wire::ApiError,
};

/// What an operation may touch: the caller's account, and the Regions' signing keys (shared by every
/// account, as CloudTrail's are).
pub struct Scope<'a> {
    pub account: &'a mut Account,
    pub keys: &'a mut KeyRing,
}

type Handler = fn(Scope<'_>, &Ctx, &Value) -> Result<Value, ApiError>;

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
    op("AddTags", Write, |s, c, b| s.account.trails.add_tags(c, b)),
    op("CreateTrail", Write, |s, c, b| {
        s.account.trails.create(c, b)
    }),
    op("DeleteTrail", Write, |s, c, b| {
        s.account.trails.delete(c, b)
    }),
    op("DescribeTrails", Read, |s, c, b| {
        s.account.trails.describe(c, b)
    }),
    op("GetEventSelectors", Read, |s, c, b| {
        s.account.trails.get_selectors(c, b)
    }),
    op("GetInsightSelectors", Read, |s, c, b| {
        s.account.trails.get_insight_selectors(c, b)
    }),
    op("GetTrail", Read, |s, c, b| s.account.trails.get(c, b)),
    op("GetTrailStatus", Read, |s, c, b| {
        s.account.trail_status(c, b)
    }),
    op("ListPublicKeys", Read, |s, c, b| s.keys.list(c, b)),
    op("ListTags", Read, |s, c, b| s.account.trails.list_tags(c, b)),
    op("ListTrails", Read, |s, c, b| s.account.trails.list(c, b)),
    op("LookupEvents", Lookup, |s, c, b| {
        s.account.events.lookup(c, b)
    }),
    op("PutEventSelectors", Write, |s, c, b| {
        s.account.trails.put_selectors(c, b)
    }),
    op("PutInsightSelectors", Write, |s, c, b| {
        s.account.trails.put_insight_selectors(c, b)
    }),
    op("RemoveTags", Write, |s, c, b| {
        s.account.trails.remove_tags(c, b)
    }),
    op("StartLogging", Write, |s, c, b| {
        s.account.trails.set_logging(c, b, true)
    }),
    op("StopLogging", Write, |s, c, b| {
        s.account.trails.set_logging(c, b, false)
    }),
    op("UpdateTrail", Write, |s, c, b| {
        s.account.trails.update(c, b)
    }),
];

pub fn find(name: &str) -> Option<&'static Operation> {
    OPERATIONS.iter().find(|o| o.name == name)
}
