//! An SDK call that can be sent more than once: the fluent builders are `Clone`, so a call CloudTrail
//! refused while a policy propagates is sent again as it was.

use std::{future::Future, pin::Pin};

use aws_sdk_cloudtrail::{
    error::{ProvideErrorMetadata, SdkError},
    operation::{self as op, RequestId},
};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;

/// The SDK call's future, boxed: it is ~20 KB, and each wrapper around it (deadline, the async fns
/// above it, tonic's box) would otherwise copy it.
pub type Sent<O, E> = Pin<Box<dyn Future<Output = Result<O, SdkError<E, HttpResponse>>> + Send>>;

pub trait Sendable: Clone + Send + Sync + 'static {
    type Output: RequestId + Send + 'static;
    type Error: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static;

    fn dispatch(self) -> Sent<Self::Output, Self::Error>;
}

macro_rules! sendable {
    ($($module:ident: $builder:ident, $output:ident, $error:ident;)*) => {$(
        impl Sendable for op::$module::builders::$builder {
            type Output = op::$module::$output;
            type Error = op::$module::$error;

            fn dispatch(self) -> Sent<Self::Output, Self::Error> {
                Box::pin(self.send())
            }
        }
    )*};
}

sendable! {
    add_tags: AddTagsFluentBuilder, AddTagsOutput, AddTagsError;
    create_trail: CreateTrailFluentBuilder, CreateTrailOutput, CreateTrailError;
    delete_trail: DeleteTrailFluentBuilder, DeleteTrailOutput, DeleteTrailError;
    describe_trails: DescribeTrailsFluentBuilder, DescribeTrailsOutput, DescribeTrailsError;
    get_event_selectors: GetEventSelectorsFluentBuilder, GetEventSelectorsOutput, GetEventSelectorsError;
    get_insight_selectors: GetInsightSelectorsFluentBuilder, GetInsightSelectorsOutput, GetInsightSelectorsError;
    get_trail: GetTrailFluentBuilder, GetTrailOutput, GetTrailError;
    get_trail_status: GetTrailStatusFluentBuilder, GetTrailStatusOutput, GetTrailStatusError;
    list_public_keys: ListPublicKeysFluentBuilder, ListPublicKeysOutput, ListPublicKeysError;
    list_tags: ListTagsFluentBuilder, ListTagsOutput, ListTagsError;
    list_trails: ListTrailsFluentBuilder, ListTrailsOutput, ListTrailsError;
    lookup_events: LookupEventsFluentBuilder, LookupEventsOutput, LookupEventsError;
    put_event_selectors: PutEventSelectorsFluentBuilder, PutEventSelectorsOutput, PutEventSelectorsError;
    put_insight_selectors: PutInsightSelectorsFluentBuilder, PutInsightSelectorsOutput, PutInsightSelectorsError;
    remove_tags: RemoveTagsFluentBuilder, RemoveTagsOutput, RemoveTagsError;
    start_logging: StartLoggingFluentBuilder, StartLoggingOutput, StartLoggingError;
    stop_logging: StopLoggingFluentBuilder, StopLoggingOutput, StopLoggingError;
    update_trail: UpdateTrailFluentBuilder, UpdateTrailOutput, UpdateTrailError;
}
