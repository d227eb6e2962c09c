//! Times as CloudTrail and STS write them. A leaf: trails, events, identities and STS all use it.

use aws_smithy_types::DateTime;

/// RFC 3339 in UTC, as CloudTrail's records and STS's expirations are written.
pub fn rfc3339(t: DateTime) -> String {
    t.fmt(aws_smithy_types::date_time::Format::DateTime)
        .unwrap_or_default()
}
