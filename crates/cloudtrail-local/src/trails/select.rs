//! Which events a trail delivers: its event selectors (basic or advanced) applied to a record, as
//! CloudTrail's user guide describes them, and the settings delivery reads.

use serde_json::Value;

use super::trail::{Selectors, Trail};

/// The record's category as selectors name it.
fn category(record: &Value) -> &str {
    match record.get("eventCategory").and_then(Value::as_str) {
        Some(c) => c,
        None if record.get("managementEvent") == Some(&Value::Bool(false)) => "Data",
        None => "Management",
    }
}

fn text<'a>(record: &'a Value, field: &str) -> &'a str {
    record
        .get(field)
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// The values of one advanced-selector field in a record (several for `resources.*`).
fn field_values(record: &Value, field: &str) -> Vec<String> {
    let resources = |k: &str| -> Vec<String> {
        record
            .get("resources")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|r| r.get(k).and_then(Value::as_str).map(str::to_owned))
            .collect()
    };
    match field {
        "eventCategory" => vec![category(record).to_owned()],
        "readOnly" => record
            .get("readOnly")
            .and_then(Value::as_bool)
            .map(|b| b.to_string())
            .into_iter()
            .collect(),
        "resources.type" => resources("type"),
        "resources.ARN" => resources("ARN"),
        "userIdentity.arn" => record
            .get("userIdentity")
            .and_then(|i| i.get("arn"))
            .and_then(Value::as_str)
            .map(str::to_owned)
            .into_iter()
            .collect(),
        other => record
            .get(other)
            .and_then(Value::as_str)
            .map(str::to_owned)
            .into_iter()
            .collect(),
    }
}

/// One advanced field selector: every operator it names holds (positive ones for some value,
/// negative ones for none).
fn field_matches(selector: &Value, record: &Value) -> bool {
    let values = field_values(record, text(selector, "Field"));
    let list = |op: &str| -> Vec<&str> {
        selector
            .get(op)
            .and_then(Value::as_array)
            .map(|l| l.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default()
    };
    let any = |op: &str, test: fn(&str, &str) -> bool| {
        let wanted = list(op);
        wanted.is_empty() || values.iter().any(|v| wanted.iter().any(|w| test(v, w)))
    };
    let none = |op: &str, test: fn(&str, &str) -> bool| {
        !values.iter().any(|v| list(op).iter().any(|w| test(v, w)))
    };
    any("Equals", |v, w| v == w)
        && any("StartsWith", |v, w| v.starts_with(w))
        && any("EndsWith", |v, w| v.ends_with(w))
        && none("NotEquals", |v, w| v == w)
        && none("NotStartsWith", |v, w| v.starts_with(w))
        && none("NotEndsWith", |v, w| v.ends_with(w))
}

/// A basic selector's ReadWriteType.
fn read_write_matches(selector: &Value, record: &Value) -> bool {
    let read_only = record.get("readOnly").and_then(Value::as_bool);
    match text(selector, "ReadWriteType") {
        "ReadOnly" => read_only == Some(true),
        "WriteOnly" => read_only != Some(true),
        _ => true,
    }
}

/// A basic selector's data resources: a value names every resource of the type (`arn:aws:s3`,
/// `arn:aws:lambda`), a bucket or key prefix (`arn:aws:s3:::bucket/`), or one ARN.
fn data_matches(selector: &Value, record: &Value) -> bool {
    let arns = field_values(record, "resources.ARN");
    let types = field_values(record, "resources.type");
    selector
        .get("DataResources")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|resource| {
            let ty = text(resource, "Type");
            types.iter().any(|t| t == ty)
                && resource
                    .get("Values")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .any(|v| {
                        matches!(v, "arn:aws:s3" | "arn:aws:lambda" | "arn:aws:dynamodb")
                            || arns.iter().any(|arn| arn.starts_with(v))
                    })
        })
}

impl Trail {
    /// Whether the trail logs the record: Insights events when Insights are on; otherwise what its
    /// selectors select.
    pub(crate) fn selects(&self, record: &Value) -> bool {
        let category = category(record);
        if category == "Insight" {
            return !self.insight_selectors.is_empty();
        }
        match &self.selectors {
            Selectors::Basic(list) => list.as_array().into_iter().flatten().any(|s| {
                let kind_ok = if category == "Management" {
                    s.get("IncludeManagementEvents").and_then(Value::as_bool) != Some(false)
                        && !s
                            .get("ExcludeManagementEventSources")
                            .and_then(Value::as_array)
                            .is_some_and(|l| {
                                l.iter()
                                    .any(|x| x.as_str() == Some(text(record, "eventSource")))
                            })
                } else {
                    data_matches(s, record)
                };
                kind_ok && read_write_matches(s, record)
            }),
            Selectors::Advanced(list) => list.as_array().into_iter().flatten().any(|s| {
                s.get("FieldSelectors")
                    .and_then(Value::as_array)
                    .is_some_and(|fields| fields.iter().all(|f| field_matches(f, record)))
            }),
        }
    }

    pub(crate) fn is_logging(&self) -> bool {
        self.is_logging
    }

    /// Whether the trail logs an event of time `t`: it is logging, or the event is the call that
    /// stopped it (CloudTrail delivers a trail's own StopLogging).
    pub(crate) fn logs_at(&self, t: aws_smithy_types::DateTime) -> bool {
        self.is_logging || self.stop_logging_time == Some(t)
    }

    pub(crate) fn start_logging_time(&self) -> Option<aws_smithy_types::DateTime> {
        self.start_logging_time
    }

    pub(crate) fn is_organization(&self) -> bool {
        self.organization
    }

    pub(crate) fn validates(&self) -> bool {
        self.log_file_validation
    }

    pub(crate) fn bucket(&self) -> &str {
        &self.s3_bucket_name
    }

    pub(crate) fn key_prefix(&self) -> Option<&str> {
        self.s3_key_prefix.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::super::Trails;
    use crate::ctx::Ctx;
    use aws_smithy_types::DateTime;
    use serde_json::{Value, json};

    fn trail_with(selectors: Value) -> Trails {
        let ctx = Ctx {
            account: "123456789012",
            region: "us-east-1",
            now: DateTime::from_secs(1),
        };
        let mut trails = Trails::default();
        trails
            .create(&ctx, &json!({"Name": "trail", "S3BucketName": "logs"}))
            .unwrap();
        if !selectors.is_null() {
            let mut body = selectors;
            body["TrailName"] = json!("trail");
            trails.put_selectors(&ctx, &body).unwrap();
        }
        trails
    }

    fn selects(trails: &Trails, record: Value) -> bool {
        trails.all().next().unwrap().selects(&record)
    }

    #[test]
    fn basic_selectors() {
        let read = json!({"eventSource": "cloudtrail.amazonaws.com", "readOnly": true, "eventCategory": "Management"});
        let write = json!({"eventSource": "cloudtrail.amazonaws.com", "readOnly": false, "eventCategory": "Management"});
        let data = json!({"eventCategory": "Data", "readOnly": true, "resources": [
            {"type": "AWS::S3::Object", "ARN": "arn:aws:s3:::logs/a/b"}]});
        let default = trail_with(Value::Null);
        assert!(selects(&default, read.clone()) && selects(&default, write.clone()));
        assert!(
            !selects(&default, data.clone()),
            "data events are off by default"
        );
        let writes = trail_with(json!({"EventSelectors": [{"ReadWriteType": "WriteOnly"}]}));
        assert!(!selects(&writes, read.clone()) && selects(&writes, write.clone()));
        let s3 = trail_with(json!({"EventSelectors": [{"IncludeManagementEvents": false,
            "DataResources": [{"Type": "AWS::S3::Object", "Values": ["arn:aws:s3:::logs/a/"]}]}]}));
        assert!(selects(&s3, data) && !selects(&s3, read.clone()));
        let excluded = trail_with(
            json!({"EventSelectors": [{"ExcludeManagementEventSources": ["cloudtrail.amazonaws.com"]}]}),
        );
        assert!(!selects(&excluded, read));
    }

    #[test]
    fn advanced_selectors() {
        let trails = trail_with(json!({"AdvancedEventSelectors": [
            {"FieldSelectors": [{"Field": "eventCategory", "Equals": ["Management"]},
                                {"Field": "readOnly", "Equals": ["false"]}]},
            {"FieldSelectors": [{"Field": "eventCategory", "Equals": ["Data"]},
                                {"Field": "resources.type", "Equals": ["AWS::S3::Object"]},
                                {"Field": "resources.ARN", "StartsWith": ["arn:aws:s3:::logs/"],
                                 "NotEndsWith": [".tmp"]}]}]}));
        let mgmt = |ro: bool| json!({"eventCategory": "Management", "readOnly": ro});
        let object = |arn: &str| json!({"eventCategory": "Data", "resources": [{"type": "AWS::S3::Object", "ARN": arn}]});
        assert!(selects(&trails, mgmt(false)) && !selects(&trails, mgmt(true)));
        assert!(selects(&trails, object("arn:aws:s3:::logs/x")));
        assert!(!selects(&trails, object("arn:aws:s3:::logs/x.tmp")));
        assert!(!selects(&trails, object("arn:aws:s3:::other/x")));
    }
}
