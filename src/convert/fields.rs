//! What the API needs to know of a request's fields besides converting it: the trails it names (a
//! trail ARN routes the call; a name may be resolved to its home Region) and its `request_id`
//! (idempotency).

use crate::pb;

pub trait Fields {
    /// The trail names and ARNs the request carries.
    fn trail_refs(&self) -> &[String] {
        &[]
    }

    /// The caller's idempotency key (`request_id`), empty when none (or none possible).
    fn request_id(&self) -> &str {
        ""
    }

    /// The request without its `request_id`: what a retry must repeat exactly.
    fn without_request_id(&self) -> Self
    where
        Self: Clone,
    {
        self.clone()
    }
}

/// Requests naming one trail in `$field`, with a `request_id` when they change something.
macro_rules! fields {
    (reads: $($read:ident . $rfield:ident),* ; writes: $($write:ident . $wfield:ident),* $(,)?) => {
        $(impl Fields for pb::$read {
            fn trail_refs(&self) -> &[String] {
                std::slice::from_ref(&self.$rfield)
            }
        })*
        $(impl Fields for pb::$write {
            fn trail_refs(&self) -> &[String] {
                std::slice::from_ref(&self.$wfield)
            }
            fn request_id(&self) -> &str {
                &self.request_id
            }
            fn without_request_id(&self) -> Self {
                pb::$write {
                    request_id: String::new(),
                    ..self.clone()
                }
            }
        })*
    };
}

fields!(
    reads:
        GetTrailRequest.name,
        GetTrailStatusRequest.name,
        GetEventSelectorsRequest.trail_name,
        GetInsightSelectorsRequest.trail_name;
    writes:
        CreateTrailRequest.name,
        UpdateTrailRequest.name,
        DeleteTrailRequest.name,
        StartLoggingRequest.name,
        StopLoggingRequest.name,
        PutEventSelectorsRequest.trail_name,
        PutInsightSelectorsRequest.trail_name,
        AddTagsRequest.resource_id,
        RemoveTagsRequest.resource_id,
);

impl Fields for pb::DescribeTrailsRequest {
    fn trail_refs(&self) -> &[String] {
        &self.trail_name_list
    }
}

impl Fields for pb::ListTagsRequest {
    fn trail_refs(&self) -> &[String] {
        &self.resource_id_list
    }
}

impl Fields for pb::LookupEventsRequest {}
impl Fields for pb::ListPublicKeysRequest {}
impl Fields for pb::ListTrailsRequest {}

/// ApplyTrail names its trail by name only, in the call's Region: it routes by metadata.
impl Fields for pb::ApplyTrailRequest {
    fn request_id(&self) -> &str {
        &self.request_id
    }
    fn without_request_id(&self) -> Self {
        pb::ApplyTrailRequest {
            request_id: String::new(),
            ..self.clone()
        }
    }
}
