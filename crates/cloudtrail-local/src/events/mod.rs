//! One account's event history: the management events recorded for every call served, plus records
//! loaded from real CloudTrail log files; LookupEvents over them.

mod lookup;

use std::{
    collections::{BTreeMap, HashSet},
    io::Read,
    path::{Path, PathBuf},
};

use aws_smithy_types::{DateTime, date_time::Format};
use base64::Engine;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::{
    ctx::Ctx,
    identity::Identity,
    ids,
    wire::{self, ApiError},
};

/// What LookupEvents can ask for: management events by default, Insights events on request. Data
/// events are stored (log files contain them) but, as in AWS, never returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Category {
    Management,
    Data,
    Insight,
}

#[derive(Debug, Clone)]
struct StoredEvent {
    id: String,
    name: String,
    source: String,
    read_only: Option<bool>,
    access_key_id: Option<String>,
    username: Option<String>,
    resources: Vec<(String, String)>,
    category: Category,
    json: String,
}

/// Sort key: newest first is descending (time, sequence).
type Key = (i64, u32, u64);

fn key_of(t: DateTime, seq: u64) -> Key {
    (t.secs(), t.subsec_nanos(), seq)
}

/// The events of every Region of one account, in time order.
#[derive(Debug)]
pub struct EventStore {
    regions: BTreeMap<String, BTreeMap<Key, StoredEvent>>,
    ids: HashSet<String>,
    next_seq: u64,
    /// At most this many events per Region; the oldest go first (AWS keeps 90 days, we bound memory).
    capacity: usize,
}

/// One call served, to be recorded as a management event.
pub struct Served<'a> {
    pub ctx: &'a Ctx<'a>,
    /// `cloudtrail.amazonaws.com`, `sts.amazonaws.com`.
    pub source: &'a str,
    pub name: &'a str,
    pub read_only: bool,
    pub caller: &'a Identity,
    pub access_key_id: &'a str,
    pub user_agent: &'a str,
    pub request_id: &'a str,
    pub request: &'a Value,
    pub response: &'a Result<Value, ApiError>,
    pub resource_arn: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a CloudTrail log file ({{\"Records\": [...]}}): {reason}")]
    Format { path: PathBuf, reason: String },
    #[error("the embedded S3 refused the loaded files: {0}")]
    Bucket(String),
}

impl EventStore {
    pub fn new(capacity: usize) -> Self {
        EventStore {
            regions: BTreeMap::new(),
            ids: HashSet::new(),
            next_seq: 0,
            capacity: capacity.max(1),
        }
    }

    fn insert(&mut self, region: &str, time: DateTime, event: StoredEvent) {
        if !self.ids.insert(event.id.clone()) {
            return; // CloudTrail may deliver an event twice; keep one.
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        let events = self.regions.entry(region.to_owned()).or_default();
        events.insert(key_of(time, seq), event);
        if events.len() > self.capacity
            && let Some((_, dropped)) = events.pop_first()
        {
            self.ids.remove(&dropped.id);
        }
    }

    /// Records a call as CloudTrail would: a management event with the request and, for writes, the
    /// response, or the error it ended with. Returns the record, for the trails that deliver it.
    pub fn record(&mut self, s: Served) -> Value {
        let id = ids::uuid();
        let Ctx {
            account,
            region,
            now,
        } = *s.ctx;
        let read_only = s.read_only;
        let mut record = json!({
            "eventVersion": "1.11",
            "userIdentity": s.caller.record(s.access_key_id),
            "eventTime": crate::clock::rfc3339(now),
            "eventSource": s.source,
            "eventName": s.name,
            "awsRegion": region,
            "sourceIPAddress": "127.0.0.1",
            "userAgent": s.user_agent,
            "requestParameters": Value::Null,
            "responseElements": Value::Null,
            "requestID": s.request_id,
            "eventID": id,
            "readOnly": read_only,
            "eventType": "AwsApiCall",
            "managementEvent": true,
            "recipientAccountId": account,
            "eventCategory": "Management",
        });
        record["requestParameters"] = within_field_size(camel_keys(s.request), &mut record);
        match s.response {
            Ok(answer) if !read_only => {
                record["responseElements"] = within_field_size(camel_keys(answer), &mut record)
            }
            Ok(_) => {}
            Err(e) => {
                record["errorCode"] = json!(e.code);
                record["errorMessage"] = json!(e.message);
            }
        }
        let resources = s
            .resource_arn
            .map(|arn| vec![("AWS::CloudTrail::Trail".to_owned(), arn)])
            .unwrap_or_default();
        if !resources.is_empty() {
            record["resources"] = resources
                .iter()
                .map(|(ty, arn)| json!({"accountId": account, "type": ty, "ARN": arn}))
                .collect();
        }
        let event = StoredEvent {
            id,
            name: s.name.to_owned(),
            source: s.source.to_owned(),
            read_only: Some(read_only),
            access_key_id: (!s.access_key_id.is_empty()).then(|| s.access_key_id.to_owned()),
            username: Some(s.caller.username().to_owned()),
            resources,
            category: Category::Management,
            json: record.to_string(),
        };
        self.insert(region, now, event);
        record
    }

    /// Adds one delivered CloudTrail record; returns false when it is unusable or already present.
    pub fn add_record(&mut self, record: &Value) -> bool {
        // Insights records keep the name and source of the API they are about under insightDetails.
        let field = |k: &str| {
            record
                .get(k)
                .or_else(|| record.get("insightDetails")?.get(k))
                .and_then(Value::as_str)
        };
        let (Some(id), Some(name), Some(time), Some(region)) = (
            field("eventID"),
            field("eventName"),
            field("eventTime").and_then(|t| DateTime::from_str(t, Format::DateTime).ok()),
            field("awsRegion"),
        ) else {
            return false;
        };
        if self.ids.contains(id) {
            return false;
        }
        let identity = record.get("userIdentity").unwrap_or(&Value::Null);
        let category = match (field("eventCategory"), field("eventType")) {
            (Some("Insight"), _) | (_, Some("AwsCloudTrailInsight")) => Category::Insight,
            (Some("Data"), _) => Category::Data,
            _ if record.get("managementEvent") == Some(&Value::Bool(false)) => Category::Data,
            _ => Category::Management,
        };
        let resources = record
            .get("resources")
            .and_then(Value::as_array)
            .map(|list| {
                list.iter()
                    .map(|r| {
                        let get = |k| {
                            r.get(k)
                                .and_then(Value::as_str)
                                .unwrap_or_default()
                                .to_owned()
                        };
                        (get("type"), get("ARN"))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let event = StoredEvent {
            id: id.to_owned(),
            name: name.to_owned(),
            source: field("eventSource").unwrap_or_default().to_owned(),
            read_only: record.get("readOnly").and_then(Value::as_bool),
            access_key_id: identity
                .get("accessKeyId")
                .and_then(Value::as_str)
                .filter(|k| !k.is_empty())
                .map(str::to_owned),
            username: username(identity),
            resources,
            category,
            json: record.to_string(),
        };
        self.insert(region, time, event);
        true
    }

    /// Loads `{"Records":[...]}` files (plain or gzipped), or every such file below a directory.
    /// Returns how many new events were stored.
    pub fn load_path(&mut self, path: &Path) -> Result<usize, LoadError> {
        let mut added = 0;
        for_each_log_file(path, &mut |records| {
            added += records.iter().filter(|r| self.add_record(r)).count();
        })?;
        Ok(added)
    }
}

/// Calls `f` with the records of each `{"Records":[...]}` file (plain or gzipped) at `path`, or
/// below it for a directory (in name order).
pub fn for_each_log_file(path: &Path, f: &mut impl FnMut(&[Value])) -> Result<(), LoadError> {
    let io = |source| LoadError::Io {
        path: path.to_owned(),
        source,
    };
    if path.is_dir() {
        let mut entries: Vec<_> = std::fs::read_dir(path)
            .map_err(io)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        entries.sort();
        for entry in entries {
            let name = entry.to_string_lossy();
            if entry.is_dir() || name.ends_with(".json") || name.ends_with(".json.gz") {
                for_each_log_file(&entry, f)?;
            }
        }
        return Ok(());
    }
    let raw = std::fs::read(path).map_err(io)?;
    let text = if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .map_err(io)?;
        out
    } else {
        raw
    };
    let format = |reason: String| LoadError::Format {
        path: path.to_owned(),
        reason,
    };
    let doc: Value = serde_json::from_slice(&text).map_err(|e| format(e.to_string()))?;
    let records = doc
        .get("Records")
        .and_then(Value::as_array)
        .ok_or_else(|| format("no Records array".into()))?;
    f(records);
    Ok(())
}

/// The largest `requestParameters` or `responseElements` CloudTrail keeps (100 KB): beyond, the
/// field is left out and the record says `"omitted": true`, as CloudTrail documents for a field over
/// its size. A 4 MB request recorded whole made every LookupEvents page holding it unsendable.
pub const MAX_FIELD_BYTES: usize = 100 * 1024;

fn within_field_size(field: Value, record: &mut Value) -> Value {
    if field.to_string().len() <= MAX_FIELD_BYTES {
        return field;
    }
    record["omitted"] = json!(true);
    Value::Null
}

/// CloudTrail records API parameters with the first letter lowered (`S3BucketName` → `s3BucketName`).
fn camel_keys(v: &Value) -> Value {
    match v {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let mut chars = k.chars();
                    let key = match chars.next() {
                        Some(first) => first.to_lowercase().chain(chars).collect(),
                        None => String::new(),
                    };
                    (key, camel_keys(v))
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(camel_keys).collect()),
        other => other.clone(),
    }
}

/// LookupEvents' Username, derived from the caller's identity as AWS does: the user name of IAM and
/// Identity Center users, the session name of assumed roles, the federated user's name, `root`; none
/// for AWS services.
fn username(identity: &Value) -> Option<String> {
    let get = |k: &str| identity.get(k).and_then(Value::as_str);
    let last_arn_segment = || {
        get("arn")
            .and_then(|a| a.rsplit('/').next())
            .map(str::to_owned)
    };
    match get("type") {
        Some("AWSService") | None if get("userName").is_none() => None,
        Some("AssumedRole") => {
            let arn = get("arn").unwrap_or_default();
            // arn:aws:sts::<account>:assumed-role/<role>/<session>
            match arn.split('/').collect::<Vec<_>>().as_slice() {
                [_, _, session, ..] => Some((*session).to_owned()),
                _ => identity
                    .pointer("/sessionContext/sessionIssuer/userName")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
            }
        }
        Some("Root") => Some(get("userName").unwrap_or("root").to_owned()),
        Some("FederatedUser") => last_arn_segment(),
        _ => get("userName").map(str::to_owned).or_else(last_arn_segment),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store_with(n: i64) -> EventStore {
        let mut store = EventStore::new(1000);
        for i in 0..n {
            let record = json!({
                "eventID": format!("id-{i}"), "eventName": if i % 2 == 0 { "Even" } else { "Odd" },
                "eventTime": rfc(1_700_000_000 + i), "awsRegion": "us-east-1",
                "eventSource": "test.amazonaws.com",
                "userIdentity": {"type": "IAMUser", "userName": "alice", "accessKeyId": "AKID"},
            });
            assert!(store.add_record(&record));
        }
        store
    }

    fn ctx(region: &str) -> Ctx<'_> {
        Ctx {
            account: "123456789012",
            region,
            now: DateTime::from_secs(1_800_000_000),
        }
    }

    fn rfc(secs: i64) -> String {
        DateTime::from_secs(secs).fmt(Format::DateTime).unwrap()
    }

    fn ids(answer: &Value) -> Vec<String> {
        answer["Events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["EventId"].as_str().unwrap().to_owned())
            .collect()
    }

    #[test]
    fn pages_are_newest_first_and_complete() {
        let store = store_with(7);
        let mut body = json!({"MaxResults": 3});
        let mut seen = Vec::new();
        loop {
            let page = store.lookup(&ctx("us-east-1"), &body).unwrap();
            seen.extend(ids(&page));
            match page.get("NextToken") {
                Some(t) => body["NextToken"] = t.clone(),
                None => break,
            }
        }
        let expected: Vec<String> = (0..7).rev().map(|i| format!("id-{i}")).collect();
        assert_eq!(seen, expected);
    }

    #[test]
    fn pages_stay_within_their_byte_bound() {
        let mut store = EventStore::new(1000);
        let big = "p".repeat(300_000);
        for i in 0..10 {
            let record = json!({
                "eventID": format!("big-{i}"), "eventName": "Big", "eventTime": rfc(1_700_000_000 + i),
                "awsRegion": "us-east-1", "eventSource": "test.amazonaws.com",
                "userIdentity": {"type": "IAMUser", "userName": "alice"},
                "requestParameters": {"x": big},
            });
            assert!(store.add_record(&record));
        }
        let mut body = json!({"MaxResults": 50});
        let mut seen = Vec::new();
        loop {
            let page = store.lookup(&ctx("us-east-1"), &body).unwrap();
            assert!(
                page.to_string().len() < lookup::MAX_PAGE_BYTES + 400_000,
                "one event past the bound at most"
            );
            assert!(!ids(&page).is_empty());
            seen.extend(ids(&page));
            match page.get("NextToken") {
                Some(t) => body["NextToken"] = t.clone(),
                None => break,
            }
        }
        assert_eq!(seen.len(), 10, "every event, over several pages");
    }

    #[test]
    fn a_token_is_bound_to_its_parameters() {
        let store = store_with(5);
        let page = store
            .lookup(&ctx("us-east-1"), &json!({"MaxResults": 2}))
            .unwrap();
        let token = page["NextToken"].clone();
        let err = store
            .lookup(
                &ctx("us-east-1"),
                &json!({"MaxResults": 3, "NextToken": token}),
            )
            .unwrap_err();
        assert_eq!(err.code, "InvalidNextTokenException");
    }

    #[test]
    fn filters_and_time_range() {
        let store = store_with(6);
        let odd =
            json!({"LookupAttributes": [{"AttributeKey": "EventName", "AttributeValue": "Odd"}]});
        assert_eq!(
            ids(&store.lookup(&ctx("us-east-1"), &odd).unwrap()),
            ["id-5", "id-3", "id-1"]
        );
        let range = json!({"StartTime": 1_700_000_002.0, "EndTime": 1_700_000_003.0});
        assert_eq!(
            ids(&store.lookup(&ctx("us-east-1"), &range).unwrap()),
            ["id-3", "id-2"]
        );
        assert_eq!(
            ids(&store.lookup(&ctx("eu-west-1"), &json!({})).unwrap()).len(),
            0
        );
    }

    #[test]
    fn usernames_follow_the_identity_type() {
        let cases = [
            (json!({"type": "IAMUser", "userName": "bob"}), Some("bob")),
            (
                json!({"type": "AssumedRole", "arn": "arn:aws:sts::1:assumed-role/Role/sess"}),
                Some("sess"),
            ),
            (
                json!({"type": "AWSService", "invokedBy": "ec2.amazonaws.com"}),
                None,
            ),
            (
                json!({"type": "Root", "arn": "arn:aws:iam::1:root"}),
                Some("root"),
            ),
            (
                json!({"type": "FederatedUser", "arn": "arn:aws:sts::1:federated-user/fed"}),
                Some("fed"),
            ),
        ];
        for (identity, expected) in cases {
            assert_eq!(username(&identity).as_deref(), expected, "{identity}");
        }
    }

    #[test]
    fn capacity_drops_the_oldest() {
        let mut store = EventStore::new(2);
        for i in 0..3 {
            store.add_record(&json!({"eventID": format!("e{i}"), "eventName": "X", "eventTime": rfc(1_700_000_000 + i), "awsRegion": "r"}));
        }
        let page = store.lookup(&ctx("r"), &json!({})).unwrap();
        assert_eq!(ids(&page), ["e2", "e1"]);
    }
}
