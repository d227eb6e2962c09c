//! What the store keeps of one CloudTrail record: the fields lookups filter on, read from the record
//! as CloudTrail's event history reads it, and the record itself.
//!
//! The embedded CloudTrail has its own reading of the same rules (`cloudtrail-local`'s events):
//! the tests compare the two answer by answer, so each checks the other.

use aws_smithy_types::{DateTime, date_time::Format};
use serde_json::Value;

/// Event history's three kinds: LookupEvents returns management events, or Insights events when
/// asked; data events are only in the log files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Category {
    Management = 0,
    Data = 1,
    Insight = 2,
}

impl Category {
    pub fn code(self) -> i64 {
        self as i64
    }
}

/// One record, indexed.
#[derive(Debug, Clone, PartialEq)]
pub struct Indexed {
    pub event_id: String,
    /// Milliseconds since the epoch.
    pub time_ms: i64,
    pub category: Category,
    pub name: String,
    pub source: String,
    pub username: Option<String>,
    pub access_key: Option<String>,
    pub read_only: Option<bool>,
    pub error_code: Option<String>,
    /// (type, name or ARN) of each entry of the record's `resources`.
    pub resources: Vec<(String, String)>,
    /// The record as compact JSON (taken when it is packed into a block).
    pub json: String,
}

/// Why a record cannot be stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unusable {
    #[error("the record has no {0}")]
    Missing(&'static str),
    #[error("the record's eventTime {0:?} is not an ISO 8601 time")]
    Time(String),
}

impl Indexed {
    pub fn of(record: &Value) -> Result<Indexed, Unusable> {
        // An Insights record names the API it is about under insightDetails.
        let text = |key: &str| {
            record
                .get(key)
                .and_then(Value::as_str)
                .or_else(|| record.pointer(&format!("/insightDetails/{key}"))?.as_str())
        };
        let event_id = text("eventID").ok_or(Unusable::Missing("eventID"))?;
        let name = text("eventName").ok_or(Unusable::Missing("eventName"))?;
        let time = text("eventTime").ok_or(Unusable::Missing("eventTime"))?;
        let time = DateTime::from_str(time, Format::DateTime)
            .map_err(|_| Unusable::Time(time.to_owned()))?;
        let identity = record.get("userIdentity");
        Ok(Indexed {
            event_id: event_id.to_owned(),
            time_ms: time.secs() * 1000 + i64::from(time.subsec_nanos() / 1_000_000),
            category: category(record),
            name: name.to_owned(),
            source: text("eventSource").unwrap_or_default().to_owned(),
            username: identity.and_then(username),
            access_key: identity
                .and_then(|i| i.get("accessKeyId")?.as_str())
                .filter(|k| !k.is_empty())
                .map(str::to_owned),
            read_only: record.get("readOnly").and_then(Value::as_bool),
            error_code: record
                .get("errorCode")
                .and_then(Value::as_str)
                .map(str::to_owned),
            resources: resources(record),
            json: record.to_string(),
        })
    }
}

fn category(record: &Value) -> Category {
    let field = |key: &str| record.get(key).and_then(Value::as_str);
    if field("eventCategory") == Some("Insight")
        || field("eventType") == Some("AwsCloudTrailInsight")
    {
        Category::Insight
    } else if field("eventCategory") == Some("Data")
        || record.get("managementEvent").and_then(Value::as_bool) == Some(false)
    {
        Category::Data
    } else {
        Category::Management
    }
}

fn resources(record: &Value) -> Vec<(String, String)> {
    let Some(list) = record.get("resources").and_then(Value::as_array) else {
        return Vec::new();
    };
    let text = |r: &Value, key: &str| {
        r.get(key)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    list.iter()
        .map(|r| (text(r, "type"), text(r, "ARN")))
        .collect()
}

/// Event history's user name: an IAM or Identity Center user's name, an assumed role's session
/// name, a federated user's name, `root` for the root user; nothing for an AWS service.
fn username(identity: &Value) -> Option<String> {
    let text = |key: &str| identity.get(key).and_then(Value::as_str);
    let arn_tail = |n: usize| {
        let arn = text("arn")?;
        let parts: Vec<&str> = arn.split('/').collect();
        parts.get(n).map(|s| (*s).to_owned())
    };
    match text("type") {
        Some("AssumedRole") => arn_tail(2).or_else(|| {
            identity
                .pointer("/sessionContext/sessionIssuer/userName")?
                .as_str()
                .map(str::to_owned)
        }),
        Some("Root") => Some(text("userName").unwrap_or("root").to_owned()),
        Some("FederatedUser") => text("arn")?.rsplit('/').next().map(str::to_owned),
        Some("AWSService") | None => text("userName").map(str::to_owned),
        Some(_) => text("userName")
            .map(str::to_owned)
            .or_else(|| text("arn")?.rsplit('/').next().map(str::to_owned)),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_management_record_is_indexed() {
        let record = json!({
            "eventID": "e1", "eventName": "CreateTrail", "eventTime": "2026-12-03T10:00:01Z",
            "eventSource": "cloudtrail.amazonaws.com", "readOnly": false,
            "userIdentity": {"type": "IAMUser", "userName": "alice", "accessKeyId": "AKID"},
            "resources": [{"type": "AWS::CloudTrail::Trail", "ARN": "arn:t"}],
            "errorCode": "TrailAlreadyExistsException",
        });
        let i = Indexed::of(&record).expect("usable");
        assert_eq!(i.time_ms, 1_796_292_001_000);
        assert_eq!(i.category, Category::Management);
        assert_eq!(i.username.as_deref(), Some("alice"));
        assert_eq!(i.access_key.as_deref(), Some("AKID"));
        assert_eq!(i.read_only, Some(false));
        assert_eq!(
            i.resources,
            [("AWS::CloudTrail::Trail".into(), "arn:t".into())]
        );
        assert_eq!(i.error_code.as_deref(), Some("TrailAlreadyExistsException"));
    }

    #[test]
    fn categories_and_insights() {
        let base = |extra: Value| {
            let mut r =
                json!({"eventID": "e", "eventName": "N", "eventTime": "2026-01-01T00:00:00Z"});
            r.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            Indexed::of(&r).unwrap().category
        };
        assert_eq!(base(json!({"eventCategory": "Data"})), Category::Data);
        assert_eq!(base(json!({"managementEvent": false})), Category::Data);
        assert_eq!(
            base(json!({"eventType": "AwsCloudTrailInsight"})),
            Category::Insight
        );
        let insight = json!({"eventID": "i", "eventTime": "2026-01-01T00:00:00Z", "eventCategory": "Insight",
            "insightDetails": {"eventName": "SendCommand", "eventSource": "ssm.amazonaws.com"}});
        let i = Indexed::of(&insight).unwrap();
        assert_eq!(
            (i.name.as_str(), i.source.as_str()),
            ("SendCommand", "ssm.amazonaws.com")
        );
    }

    #[test]
    fn unusable_records_say_why() {
        assert_eq!(
            Indexed::of(&json!({"eventName": "N", "eventTime": "2026-01-01T00:00:00Z"})),
            Err(Unusable::Missing("eventID"))
        );
        assert_eq!(
            Indexed::of(&json!({"eventID": "e", "eventName": "N", "eventTime": "yesterday"})),
            Err(Unusable::Time("yesterday".into()))
        );
        assert!(Indexed::of(&json!("not an object")).is_err());
    }

    #[test]
    fn usernames_by_identity_type() {
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
}
