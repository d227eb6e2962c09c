//! Log files loaded from disk, laid out in a bucket as CloudTrail would have delivered them: each
//! record under its recipient account and Region, grouped by the five-minute interval of its event
//! time, one gzipped file per group named for the interval's end.

use std::collections::BTreeMap;

use aws_smithy_types::{DateTime, date_time::Format};
use serde_json::{Value, json};

use super::names::Owner;

/// CloudTrail's delivery interval, which the loaded files are grouped by.
const INTERVAL_SECS: i64 = 300;

/// (key, `{"Records":[...]}`) for each group of `records`; `account` for records that name
/// no recipient. Records without a time or Region are left out.
pub(crate) fn files(records: &[Value], account: &str) -> Vec<(String, Vec<u8>)> {
    let mut groups: BTreeMap<(String, String, i64), Vec<&Value>> = BTreeMap::new();
    for record in records {
        let text = |k: &str| record.get(k).and_then(Value::as_str);
        let (Some(region), Some(time)) = (
            text("awsRegion"),
            text("eventTime").and_then(|t| DateTime::from_str(t, Format::DateTime).ok()),
        ) else {
            continue;
        };
        let recipient = text("recipientAccountId").unwrap_or(account).to_owned();
        let end = (time.secs().div_euclid(INTERVAL_SECS) + 1) * INTERVAL_SECS;
        groups
            .entry((recipient, region.to_owned(), end))
            .or_default()
            .push(record);
    }
    groups
        .into_iter()
        .map(|((recipient, region, end), records)| {
            let key = Owner {
                prefix: None,
                organization: None,
                account: &recipient,
            }
            .log_file(&region, DateTime::from_secs(end));
            let document = json!({ "Records": records }).to_string();
            (key, document.into_bytes())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_go_under_their_account_region_and_interval() {
        let records = vec![
            json!({"eventTime": "2026-12-03T10:01:00Z", "awsRegion": "eu-west-1", "eventID": "a"}),
            json!({"eventTime": "2026-12-03T10:04:59Z", "awsRegion": "eu-west-1", "eventID": "b"}),
            json!({"eventTime": "2026-12-03T10:05:00Z", "awsRegion": "eu-west-1", "eventID": "c"}),
            json!({"eventTime": "2026-12-03T10:01:00Z", "awsRegion": "us-east-1", "eventID": "d",
                   "recipientAccountId": "210987654321"}),
            json!({"eventID": "no time"}),
        ];
        let files = files(&records, "123456789012");
        let keys: Vec<&str> = files.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys.len(), 3);
        assert!(keys[0].starts_with("AWSLogs/123456789012/CloudTrail/eu-west-1/2026/12/03/123456789012_CloudTrail_eu-west-1_20261203T1005Z_"));
        assert!(keys[1].contains("_20261203T1010Z_"));
        assert!(keys[2].starts_with("AWSLogs/210987654321/CloudTrail/us-east-1/"));
    }
}
