//! Proto ⇄ SDK conversions and request validation, one module per RPC group.
//!
//! Each request conversion checks the request against CloudTrail's rules (`rules`), collects every
//! violation, and only then fills the SDK's fluent builder; outputs convert with `From` impls.

pub mod apply;
pub mod events;
pub mod fields;
#[cfg(test)]
mod fuzz;
pub mod rules;
pub mod selectors;
pub mod tags;
pub mod trails;

use aws_smithy_types::DateTime;

use crate::error::Violations;

/// Empty proto strings mean "not set" to CloudTrail.
fn non_empty(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

pub fn timestamp(t: DateTime) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.secs(),
        nanos: t.subsec_nanos() as i32,
    }
}

pub fn opt_timestamp(t: Option<DateTime>) -> Option<prost_types::Timestamp> {
    t.map(timestamp)
}

/// A proto timestamp as an SDK time, recording a violation when it is out of range.
fn date_time(
    v: &mut Violations,
    field: &str,
    t: Option<prost_types::Timestamp>,
) -> Option<DateTime> {
    let t = t?;
    if !(0..1_000_000_000).contains(&t.nanos) {
        v.add(field, "nanos must be within 0..1e9");
        return None;
    }
    Some(DateTime::from_secs_and_nanos(t.seconds, t.nanos as u32))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip_with_nanos() {
        let t = DateTime::from_secs_and_nanos(1_700_000_000, 123_456_789);
        let mut v = Violations::default();
        assert_eq!(date_time(&mut v, "t", Some(timestamp(t))), Some(t));
        assert!(v.is_empty());
    }

    #[test]
    fn out_of_range_nanos_are_a_violation() {
        let mut v = Violations::default();
        let bad = prost_types::Timestamp {
            seconds: 1,
            nanos: -1,
        };
        assert_eq!(date_time(&mut v, "start_time", Some(bad)), None);
        assert!(!v.is_empty());
    }
}

/// Operations that answer with nothing on success.
macro_rules! empty_output {
    ($($output:ty => $response:ident),* $(,)?) => {
        $(impl From<$output> for crate::pb::$response {
            fn from(_: $output) -> Self {
                crate::pb::$response {}
            }
        })*
    };
}
use aws_sdk_cloudtrail::operation as op;
empty_output!(
    op::delete_trail::DeleteTrailOutput => DeleteTrailResponse,
    op::start_logging::StartLoggingOutput => StartLoggingResponse,
    op::stop_logging::StopLoggingOutput => StopLoggingResponse,
    op::add_tags::AddTagsOutput => AddTagsResponse,
    op::remove_tags::RemoveTagsOutput => RemoveTagsResponse,
);
