//! S3's REST-XML answers: documents in S3's namespace, its error document, its time formats.

use aws_smithy_types::{DateTime, date_time::Format};

use super::error::S3Error;
use crate::wire::escape;

pub const NAMESPACE: &str = "http://s3.amazonaws.com/doc/2006-03-01/";

pub fn element(name: &str, escaped: &str) -> String {
    format!("<{name}>{escaped}</{name}>")
}

/// ISO 8601 with milliseconds, as S3 lists objects.
pub fn last_modified(t: DateTime) -> String {
    let whole = DateTime::from_secs(t.secs());
    let text = whole.fmt(Format::DateTime).unwrap_or_default();
    format!(
        "{}.{:03}Z",
        text.trim_end_matches('Z'),
        t.subsec_nanos() / 1_000_000
    )
}

/// The `Last-Modified` header: an HTTP date.
pub fn http_date(t: DateTime) -> String {
    t.fmt(Format::HttpDate).unwrap_or_default()
}

pub fn document(body: &str) -> String {
    format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n{body}")
}

pub fn error(e: &S3Error, resource: &str, request_id: &str) -> String {
    document(&format!(
        "<Error><Code>{}</Code><Message>{}</Message><Resource>{}</Resource><RequestId>{request_id}</RequestId></Error>",
        e.code,
        escape(&e.message),
        escape(resource),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_as_s3_writes_them() {
        let t = DateTime::from_secs_f64(1_255_369_830.25);
        assert_eq!(last_modified(t), "2009-10-12T17:50:30.250Z");
        assert_eq!(http_date(t), "Mon, 12 Oct 2009 17:50:30 GMT");
    }
}
