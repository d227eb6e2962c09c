//! Which trails a request names, so a trail ARN can route the call to its account and Region.

use crate::pb;

/// A request that may name trails by ARN.
pub trait Routed {
    /// The trail names and ARNs the request carries (only ARNs route).
    fn trail_refs(&self) -> &[String];
}

macro_rules! routed_by {
    ($($request:ident . $field:ident),* $(,)?) => {$(
        impl Routed for pb::$request {
            fn trail_refs(&self) -> &[String] {
                std::slice::from_ref(&self.$field)
            }
        }
    )*};
}

routed_by!(
    CreateTrailRequest.name,
    UpdateTrailRequest.name,
    DeleteTrailRequest.name,
    GetTrailStatusRequest.name,
    StartLoggingRequest.name,
    StopLoggingRequest.name,
    GetEventSelectorsRequest.trail_name,
    PutEventSelectorsRequest.trail_name,
    AddTagsRequest.resource_id,
    RemoveTagsRequest.resource_id,
);

impl Routed for pb::DescribeTrailsRequest {
    fn trail_refs(&self) -> &[String] {
        &self.trail_name_list
    }
}

impl Routed for pb::ListTagsRequest {
    fn trail_refs(&self) -> &[String] {
        &self.resource_id_list
    }
}

impl Routed for pb::LookupEventsRequest {
    fn trail_refs(&self) -> &[String] {
        &[]
    }
}

impl Routed for pb::ListPublicKeysRequest {
    fn trail_refs(&self) -> &[String] {
        &[]
    }
}
