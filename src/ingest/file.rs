//! One log file's bytes to its records: gunzipped within a bound, `{"Records":[...]}` parsed, each
//! record indexed. A file that cannot be read this way is skipped with its reason; a record that
//! cannot is left out and counted, the rest of its file stored.

use std::io::Read;

use flate2::read::MultiGzDecoder;
use serde::Deserialize;
use serde_json::Value;

use crate::store::record::Indexed;

/// Why a file holds nothing to store (it is recorded as skipped, and not read again).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Skip {
    #[error("not gzip: {0}")]
    Gzip(String),
    #[error("larger than {0} bytes uncompressed")]
    TooLarge(u64),
    #[error("not a CloudTrail log file ({{\"Records\": [...]}}): {0}")]
    NotCloudTrail(String),
    #[error("not a log file of CloudTrail's key layout")]
    OutsideLayout,
    #[error("deleted after it was listed")]
    Gone,
}

impl Skip {
    /// The `kind` label of the skip counter.
    pub fn label(&self) -> &'static str {
        match self {
            Skip::Gzip(_) => "gzip",
            Skip::TooLarge(_) => "too_large",
            Skip::NotCloudTrail(_) => "not_cloudtrail",
            Skip::OutsideLayout => "outside_layout",
            Skip::Gone => "gone",
        }
    }
}

/// A file's usable records, and how many were not.
#[derive(Debug, Default)]
pub struct Records {
    pub records: Vec<Indexed>,
    pub unusable: u64,
    /// The first unusable record's reason, for the log.
    pub first_problem: Option<String>,
}

#[derive(Deserialize)]
struct Document {
    #[serde(rename = "Records")]
    records: Vec<Value>,
}

/// The records of a gzipped (or, as some tools write them, plain) log file of at most
/// `max_bytes` uncompressed.
pub fn records(body: &[u8], max_bytes: u64) -> Result<Records, Skip> {
    let mut text = Vec::new();
    if body.starts_with(&[0x1f, 0x8b]) {
        MultiGzDecoder::new(body)
            .take(max_bytes + 1)
            .read_to_end(&mut text)
            .map_err(|e| Skip::Gzip(e.to_string()))?;
    } else if body.first().is_some_and(|b| *b == b'{') {
        text.extend_from_slice(body);
    } else {
        return Err(Skip::Gzip("no gzip header".into()));
    }
    if text.len() as u64 > max_bytes {
        return Err(Skip::TooLarge(max_bytes));
    }
    let document: Document =
        serde_json::from_slice(&text).map_err(|e| Skip::NotCloudTrail(e.to_string()))?;
    let mut out = Records {
        records: Vec::with_capacity(document.records.len()),
        ..Records::default()
    };
    for record in &document.records {
        match Indexed::of(record) {
            Ok(indexed) => out.records.push(indexed),
            Err(e) => {
                out.unusable += 1;
                out.first_problem.get_or_insert_with(|| e.to_string());
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use flate2::{Compression, write::GzEncoder};

    use super::*;

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), Compression::fast());
        e.write_all(bytes).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn records_are_read_and_bad_ones_counted() {
        let body = gzip(
            br#"{"Records":[{"eventID":"a","eventName":"N","eventTime":"2026-01-01T00:00:00Z"},{"eventName":"no id"}]}"#,
        );
        let r = records(&body, 1 << 20).unwrap();
        assert_eq!(r.records.len(), 1);
        assert_eq!(r.unusable, 1);
        assert_eq!(
            r.first_problem.as_deref(),
            Some("the record has no eventID")
        );
    }

    #[test]
    fn bad_files_are_skipped_with_their_reason() {
        let mut corrupt = gzip(br#"{"Records":[]}"#);
        corrupt.truncate(corrupt.len() - 6);
        assert!(matches!(records(&corrupt, 1 << 20), Err(Skip::Gzip(_))));
        assert!(matches!(
            records(b"PK\x03\x04", 1 << 20),
            Err(Skip::Gzip(_))
        ));
        assert!(matches!(
            records(&gzip(br#"{"Items":[]}"#), 1 << 20),
            Err(Skip::NotCloudTrail(_))
        ));
        assert!(matches!(
            records(&gzip(br#"{"Records":[1,2"#), 1 << 20),
            Err(Skip::NotCloudTrail(_))
        ));
        let big = gzip(format!(r#"{{"Records":["{}"]}}"#, "x".repeat(5000)).as_bytes());
        assert_eq!(records(&big, 1000).unwrap_err(), Skip::TooLarge(1000));
    }
}
