//! Discovery by S3 event notifications through SQS (the way at organization scale: no LIST per
//! place per poll). Each message names new objects — an S3 notification (`Records[].s3`), the
//! same wrapped by SNS, or a CloudTrail SNS notification (`s3Bucket`, `s3ObjectKey`) — and is
//! deleted only once every file it names is stored (or skipped for good): a message whose file
//! failed comes back after its visibility timeout, and a message delivered twice stores nothing
//! twice. The watermark moves when the queue is found empty with no file left failing.

use std::collections::BTreeSet;

use aws_sdk_sqs::error::ProvideErrorMetadata;
use serde_json::Value;

use super::{
    read::{Found, ReadError, Reader},
    source::now_ms,
};
use crate::telemetry;

/// The objects a message names, (bucket, key) with keys URL-decoded, as S3 encodes them.
pub fn objects(body: &str) -> Vec<(String, String)> {
    let Ok(message) = serde_json::from_str::<Value>(body) else {
        return Vec::new();
    };
    // SNS wraps the notification in `Message`, as a string.
    if let Some(inner) = message.get("Message").and_then(Value::as_str) {
        return objects(inner);
    }
    let text = |v: &Value, pointer: &str| {
        v.pointer(pointer)
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    if let Some(records) = message.get("Records").and_then(Value::as_array) {
        return records
            .iter()
            .filter(|r| text(r, "/eventName").is_some_and(|n| n.starts_with("ObjectCreated:")))
            .filter_map(|r| {
                Some((
                    text(r, "/s3/bucket/name")?,
                    url_decode(&text(r, "/s3/object/key")?),
                ))
            })
            .collect();
    }
    // CloudTrail's own notification (the trail's SNS topic): keys as they are.
    if let (Some(bucket), Some(keys)) = (
        message.get("s3Bucket").and_then(Value::as_str),
        message.get("s3ObjectKey").and_then(Value::as_array),
    ) {
        return keys
            .iter()
            .filter_map(Value::as_str)
            .map(|k| (bucket.to_owned(), k.to_owned()))
            .collect();
    }
    Vec::new()
}

/// S3's notification key encoding: form-style (`+` is a space, `%XX` a byte).
fn url_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%')
            .then(|| s.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match (bytes[i], escaped) {
            (_, Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b'+', None) => {
                out.push(b' ');
                i += 1;
            }
            (b, None) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn sqs_error<E: ProvideErrorMetadata + std::error::Error + 'static>(
    operation: &'static str,
    e: &aws_sdk_sqs::error::SdkError<E>,
) -> ReadError {
    let message = match e.code() {
        Some(code) => format!("{code}: {}", e.message().unwrap_or_default()),
        None => aws_sdk_sqs::error::DisplayErrorContext(e).to_string(),
    };
    ReadError::Sqs { operation, message }
}

/// Consumes a source's queue for good.
pub async fn consume(reader: Reader, sqs: aws_sdk_sqs::Client, queue_url: String) {
    // Files whose reading failed: the watermark waits for them.
    let mut failing: BTreeSet<String> = BTreeSet::new();
    loop {
        if let Err(e) = receive(&reader, &sqs, &queue_url, &mut failing).await {
            let name = reader.source.config.name.clone();
            tracing::warn!(source = %name, error = %e, "event store: the queue failed; trying again");
            metrics::counter!(telemetry::STORE_ERRORS, "source" => name, "kind" => e.kind())
                .increment(1);
            reader.source.status.failed(&e.to_string());
            tokio::time::sleep(reader.config.poll_interval).await;
        }
    }
}

/// One receive: each message's files read, the message deleted when all are stored; an empty
/// queue moves every place's watermark.
async fn receive(
    reader: &Reader,
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    failing: &mut BTreeSet<String>,
) -> Result<(), ReadError> {
    let started = now_ms();
    let wait = reader.config.poll_interval.as_secs().clamp(1, 20) as i32;
    let answer = sqs
        .receive_message()
        .queue_url(queue_url)
        .max_number_of_messages(10)
        .wait_time_seconds(wait)
        .send()
        .await
        .map_err(|e| sqs_error("ReceiveMessage", &e))?;
    let messages = answer.messages.unwrap_or_default();
    if messages.is_empty() {
        if failing.is_empty() {
            let watermark = started - reader.config.delivery_delay.as_millis() as i64;
            for (account, region) in reader.source.status.snapshot().places.into_keys() {
                reader.source.status.place(&account, &region, |p| {
                    p.watermark_ms = p.watermark_ms.max(Some(watermark));
                    p.polled_ms = Some(started);
                });
            }
        }
        return Ok(());
    }
    for message in messages {
        let mut all_stored = true;
        for (bucket, key) in objects(message.body().unwrap_or_default()) {
            let found = Found {
                bucket: &bucket,
                key: &key,
                size: None,
                cursor: None,
                listed_place: None,
            };
            let name = format!("{bucket}/{key}");
            match reader.read(found).await {
                Ok(Some((account, region))) => {
                    failing.remove(&name);
                    reader.source.status.place(&account, &region, |_| {});
                }
                Ok(None) => {
                    failing.remove(&name);
                }
                Err(e) => {
                    tracing::warn!(source = %reader.source.config.name, key, error = %e, "event store: a notified file failed; its message comes back");
                    metrics::counter!(telemetry::STORE_ERRORS, "source" => reader.source.config.name.clone(), "kind" => e.kind())
                        .increment(1);
                    failing.insert(name);
                    all_stored = false;
                }
            }
        }
        // A message naming no log file (S3's TestEvent, anything else) is done with too.
        if all_stored && let Some(handle) = message.receipt_handle() {
            sqs.delete_message()
                .queue_url(queue_url)
                .receipt_handle(handle)
                .send()
                .await
                .map_err(|e| sqs_error("DeleteMessage", &e))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_three_message_shapes() {
        let s3 = r#"{"Records":[{"eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"b"},"object":{"key":"AWSLogs%2F1%2Fa+b.json.gz"}}},
                    {"eventName":"ObjectRemoved:Delete","s3":{"bucket":{"name":"b"},"object":{"key":"gone"}}}]}"#;
        assert_eq!(objects(s3), [("b".into(), "AWSLogs/1/a b.json.gz".into())]);
        let sns = serde_json::json!({"Type": "Notification", "Message": s3}).to_string();
        assert_eq!(objects(&sns), objects(s3));
        let cloudtrail =
            r#"{"s3Bucket":"logs","s3ObjectKey":["AWSLogs/1/x.json.gz","AWSLogs/1/y.json.gz"]}"#;
        assert_eq!(objects(cloudtrail).len(), 2);
        assert!(objects(r#"{"Event":"s3:TestEvent","Bucket":"b"}"#).is_empty());
        assert!(objects("not json").is_empty());
        assert_eq!(url_decode("100%"), "100%");
        assert_eq!(url_decode("%zz%41"), "%zzA");
    }
}
