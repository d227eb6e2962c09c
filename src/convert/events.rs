//! Event history and public keys: LookupEvents, ListPublicKeys.

use aws_sdk_cloudtrail::{
    operation::{
        list_public_keys::{ListPublicKeysOutput, builders::ListPublicKeysFluentBuilder},
        lookup_events::{LookupEventsOutput, builders::LookupEventsFluentBuilder},
    },
    types,
};

use super::{date_time, non_empty, opt_timestamp, rules};
use crate::{error::Error, error::Violations, pb, store};

/// Start and end of a time range; start must not be after end.
fn time_range(
    v: &mut Violations,
    start: Option<prost_types::Timestamp>,
    end: Option<prost_types::Timestamp>,
) -> (
    Option<aws_smithy_types::DateTime>,
    Option<aws_smithy_types::DateTime>,
) {
    let start = date_time(v, "start_time", start);
    let end = date_time(v, "end_time", end);
    if let (Some(s), Some(e)) = (start, end)
        && s > e
    {
        v.add("start_time", "start_time must not be after end_time");
    }
    (start, end)
}

fn lookup_key(key: pb::LookupAttributeKey) -> Option<types::LookupAttributeKey> {
    use pb::LookupAttributeKey as K;
    use types::LookupAttributeKey as S;
    Some(match key {
        K::Unspecified => return None,
        K::EventId => S::EventId,
        K::EventName => S::EventName,
        K::ReadOnly => S::ReadOnly,
        K::Username => S::Username,
        K::ResourceType => S::ResourceType,
        K::ResourceName => S::ResourceName,
        K::EventSource => S::EventSource,
        K::AccessKeyId => S::AccessKeyId,
    })
}

pub fn lookup_events(
    req: pb::LookupEventsRequest,
    call: LookupEventsFluentBuilder,
) -> Result<LookupEventsFluentBuilder, Error> {
    let mut v = Violations::default();
    if req.lookup_attributes.len() > 1 {
        v.add(
            "lookup_attributes",
            format!(
                "at most one lookup attribute is allowed, got {}",
                req.lookup_attributes.len()
            ),
        );
    }
    let mut attributes = Vec::new();
    for (i, a) in req.lookup_attributes.into_iter().enumerate() {
        let key = pb::LookupAttributeKey::try_from(a.attribute_key)
            .ok()
            .and_then(lookup_key);
        if key.is_none() {
            v.add(
                format!("lookup_attributes[{i}].attribute_key"),
                "a lookup attribute key is required (EVENT_ID, EVENT_NAME, READ_ONLY, USERNAME, RESOURCE_TYPE, RESOURCE_NAME, EVENT_SOURCE or ACCESS_KEY_ID)",
            );
        }
        let len = a.attribute_value.chars().count();
        if len == 0 || len > rules::MAX_LOOKUP_VALUE_CHARS {
            v.add(
                format!("lookup_attributes[{i}].attribute_value"),
                format!(
                    "must be 1 to {} characters, got {len}",
                    rules::MAX_LOOKUP_VALUE_CHARS
                ),
            );
        }
        if let Some(key) = key {
            attributes.extend(
                types::LookupAttribute::builder()
                    .attribute_key(key)
                    .attribute_value(a.attribute_value)
                    .build()
                    .ok(),
            );
        }
    }
    if let Some(n) = req.max_results
        && !(1..=rules::MAX_LOOKUP_RESULTS).contains(&n)
    {
        v.add(
            "max_results",
            format!("must be 1 to {}, got {n}", rules::MAX_LOOKUP_RESULTS),
        );
    }
    let category = match pb::EventCategory::try_from(req.event_category) {
        Ok(pb::EventCategory::Unspecified) => None,
        Ok(pb::EventCategory::Insight) => Some(types::EventCategory::Insight),
        Err(_) => {
            v.add(
                "event_category",
                format!("unknown EventCategory {}", req.event_category),
            );
            None
        }
    };
    let (start, end) = time_range(&mut v, req.start_time, req.end_time);
    v.into_result(())?;
    Ok(call
        .set_lookup_attributes((!attributes.is_empty()).then_some(attributes))
        .set_start_time(start)
        .set_end_time(end)
        .set_event_category(category)
        .set_max_results(req.max_results)
        .set_next_token(non_empty(req.next_token)))
}

impl From<LookupEventsOutput> for pb::LookupEventsResponse {
    fn from(o: LookupEventsOutput) -> Self {
        pb::LookupEventsResponse {
            events: o
                .events
                .unwrap_or_default()
                .into_iter()
                .map(|e| pb::Event {
                    event_id: e.event_id.unwrap_or_default(),
                    event_name: e.event_name.unwrap_or_default(),
                    read_only: e.read_only.unwrap_or_default(),
                    access_key_id: e.access_key_id.unwrap_or_default(),
                    event_time: opt_timestamp(e.event_time),
                    event_source: e.event_source.unwrap_or_default(),
                    username: e.username.unwrap_or_default(),
                    resources: e
                        .resources
                        .unwrap_or_default()
                        .into_iter()
                        .map(|r| pb::Resource {
                            resource_type: r.resource_type.unwrap_or_default(),
                            resource_name: r.resource_name.unwrap_or_default(),
                        })
                        .collect(),
                    cloud_trail_event: e.cloud_trail_event.unwrap_or_default(),
                })
                .collect(),
            next_token: o.next_token.unwrap_or_default(),
        }
    }
}

pub fn list_public_keys(
    req: pb::ListPublicKeysRequest,
    call: ListPublicKeysFluentBuilder,
) -> Result<ListPublicKeysFluentBuilder, Error> {
    let mut v = Violations::default();
    let (start, end) = time_range(&mut v, req.start_time, req.end_time);
    v.into_result(())?;
    Ok(call
        .set_start_time(start)
        .set_end_time(end)
        .set_next_token(non_empty(req.next_token)))
}

impl From<ListPublicKeysOutput> for pb::ListPublicKeysResponse {
    fn from(o: ListPublicKeysOutput) -> Self {
        pb::ListPublicKeysResponse {
            public_key_list: o
                .public_key_list
                .unwrap_or_default()
                .into_iter()
                .map(|k| pb::PublicKey {
                    value: k.value.map(|b| b.into_inner()).unwrap_or_default(),
                    validity_start_time: opt_timestamp(k.validity_start_time),
                    validity_end_time: opt_timestamp(k.validity_end_time),
                    fingerprint: k.fingerprint.unwrap_or_default(),
                })
                .collect(),
            next_token: o.next_token.unwrap_or_default(),
        }
    }
}

/// A LookupEvents request (checked by [`lookup_events`]) as the event store's query of one
/// (account, Region): the bounds in milliseconds, inclusive.
pub fn store_lookup(
    req: &pb::LookupEventsRequest,
    account: &str,
    region: &str,
    max_bytes: usize,
) -> store::lookup::Lookup {
    use store::lookup::Attribute as A;
    let attribute = req.lookup_attributes.first().and_then(|a| {
        let value = a.attribute_value.clone();
        Some(
            match pb::LookupAttributeKey::try_from(a.attribute_key).ok()? {
                pb::LookupAttributeKey::Unspecified => return None,
                pb::LookupAttributeKey::EventId => A::EventId(value),
                pb::LookupAttributeKey::EventName => A::EventName(value),
                pb::LookupAttributeKey::ReadOnly => A::ReadOnly(value),
                pb::LookupAttributeKey::Username => A::Username(value),
                pb::LookupAttributeKey::ResourceType => A::ResourceType(value),
                pb::LookupAttributeKey::ResourceName => A::ResourceName(value),
                pb::LookupAttributeKey::EventSource => A::EventSource(value),
                pb::LookupAttributeKey::AccessKeyId => A::AccessKeyId(value),
            },
        )
    });
    let ms = millis;
    store::lookup::Lookup {
        account: account.to_owned(),
        region: region.to_owned(),
        attribute,
        insight: req.event_category == pb::EventCategory::Insight as i32,
        start_ms: req.start_time.as_ref().map_or(i64::MIN, ms),
        end_ms: req.end_time.as_ref().map_or(i64::MAX, ms),
        limit: req
            .max_results
            .map_or(rules::MAX_LOOKUP_RESULTS, |n| n.clamp(1, 50)) as usize,
        max_bytes,
        after: None,
    }
}

/// A stored event as LookupEvents returns it.
impl From<store::lookup::Event> for pb::Event {
    fn from(e: store::lookup::Event) -> Self {
        pb::Event {
            event_id: e.event_id,
            event_name: e.name,
            read_only: e.read_only.map(|r| r.to_string()).unwrap_or_default(),
            access_key_id: e.access_key.unwrap_or_default(),
            event_time: Some(from_millis(e.time_ms)),
            event_source: e.source,
            username: e.username.unwrap_or_default(),
            resources: e
                .resources
                .into_iter()
                .map(|(resource_type, resource_name)| pb::Resource {
                    resource_type,
                    resource_name,
                })
                .collect(),
            cloud_trail_event: e.record,
        }
    }
}

/// A timestamp in milliseconds since the epoch (the store's unit), and back.
pub fn millis(t: &prost_types::Timestamp) -> i64 {
    t.seconds * 1000 + i64::from(t.nanos / 1_000_000)
}

pub fn from_millis(ms: i64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: ms.div_euclid(1000),
        nanos: (ms.rem_euclid(1000) * 1_000_000) as i32,
    }
}
