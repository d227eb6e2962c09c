//! Trails and logging: CreateTrail, UpdateTrail, DeleteTrail, DescribeTrails, GetTrail, ListTrails,
//! GetTrailStatus, StartLogging, StopLogging.

use aws_sdk_cloudtrail::{
    operation::{
        create_trail::{CreateTrailOutput, builders::CreateTrailFluentBuilder},
        describe_trails::{DescribeTrailsOutput, builders::DescribeTrailsFluentBuilder},
        get_trail::GetTrailOutput,
        get_trail_status::GetTrailStatusOutput,
        list_trails::{ListTrailsOutput, builders::ListTrailsFluentBuilder},
        update_trail::{UpdateTrailOutput, builders::UpdateTrailFluentBuilder},
    },
    types,
};

use super::{non_empty, opt_timestamp, rules, tags::sdk_tags};
use crate::{error::Error, error::Violations, pb};

/// Checks a trail name or ARN given alone (DeleteTrail, GetTrailStatus, StartLogging, ...).
pub fn trail_ref(field: &str, name: String) -> Result<String, Error> {
    let mut v = Violations::default();
    rules::trail_name_or_arn(&mut v, field, &name);
    v.into_result(name)
}

pub fn create_trail(
    req: pb::CreateTrailRequest,
    call: CreateTrailFluentBuilder,
) -> Result<CreateTrailFluentBuilder, Error> {
    let mut v = Violations::default();
    rules::trail_name(&mut v, "name", &req.name);
    if req.s3_bucket_name.is_empty() {
        v.add("s3_bucket_name", "an S3 bucket name is required");
    }
    rules::tags(
        &mut v,
        "tags_list",
        req.tags_list
            .iter()
            .map(|t| (t.key.as_str(), t.value.as_deref())),
        true,
    );
    v.into_result(())?;
    Ok(call
        .name(req.name)
        .s3_bucket_name(req.s3_bucket_name)
        .set_s3_key_prefix(non_empty(req.s3_key_prefix))
        .set_sns_topic_name(non_empty(req.sns_topic_name))
        .set_include_global_service_events(req.include_global_service_events)
        .set_is_multi_region_trail(req.is_multi_region_trail)
        .set_enable_log_file_validation(req.enable_log_file_validation)
        .set_cloud_watch_logs_log_group_arn(non_empty(req.cloud_watch_logs_log_group_arn))
        .set_cloud_watch_logs_role_arn(non_empty(req.cloud_watch_logs_role_arn))
        .set_kms_key_id(non_empty(req.kms_key_id))
        .set_is_organization_trail(req.is_organization_trail)
        .set_recursive_logging(req.recursive_logging)
        .set_tags_list((!req.tags_list.is_empty()).then(|| sdk_tags(req.tags_list))))
}

pub fn update_trail(
    req: pb::UpdateTrailRequest,
    call: UpdateTrailFluentBuilder,
) -> Result<UpdateTrailFluentBuilder, Error> {
    let mut v = Violations::default();
    rules::trail_name_or_arn(&mut v, "name", &req.name);
    if req.s3_bucket_name.as_deref() == Some("") {
        v.add(
            "s3_bucket_name",
            "a trail cannot be without an S3 bucket; leave unset to keep it",
        );
    }
    v.into_result(())?;
    // Optional strings pass through as given: Some("") clears a setting, None keeps it.
    Ok(call
        .name(req.name)
        .set_s3_bucket_name(req.s3_bucket_name)
        .set_s3_key_prefix(req.s3_key_prefix)
        .set_sns_topic_name(req.sns_topic_name)
        .set_include_global_service_events(req.include_global_service_events)
        .set_is_multi_region_trail(req.is_multi_region_trail)
        .set_enable_log_file_validation(req.enable_log_file_validation)
        .set_cloud_watch_logs_log_group_arn(req.cloud_watch_logs_log_group_arn)
        .set_cloud_watch_logs_role_arn(req.cloud_watch_logs_role_arn)
        .set_kms_key_id(req.kms_key_id)
        .set_is_organization_trail(req.is_organization_trail)
        .set_recursive_logging(req.recursive_logging))
}

pub fn describe_trails(
    req: pb::DescribeTrailsRequest,
    call: DescribeTrailsFluentBuilder,
) -> Result<DescribeTrailsFluentBuilder, Error> {
    let mut v = Violations::default();
    if req.trail_name_list.len() > rules::MAX_DESCRIBE_TRAILS_NAMES {
        // One violation, not one per name: the answer stays small too.
        v.add(
            "trail_name_list",
            format!(
                "at most {} names, got {}",
                rules::MAX_DESCRIBE_TRAILS_NAMES,
                req.trail_name_list.len()
            ),
        );
        return v.into_result(call);
    }
    for (i, name) in req.trail_name_list.iter().enumerate() {
        rules::trail_name_or_arn(&mut v, &format!("trail_name_list[{i}]"), name);
    }
    v.into_result(())?;
    Ok(call
        .set_trail_name_list((!req.trail_name_list.is_empty()).then_some(req.trail_name_list))
        .set_include_shadow_trails(req.include_shadow_trails))
}

/// Nothing to check: the token is CloudTrail's (InvalidNextTokenException if it is not one).
pub fn list_trails(
    req: pb::ListTrailsRequest,
    call: ListTrailsFluentBuilder,
) -> ListTrailsFluentBuilder {
    call.set_next_token(non_empty(req.next_token))
}

impl From<GetTrailOutput> for pb::GetTrailResponse {
    fn from(o: GetTrailOutput) -> Self {
        pb::GetTrailResponse {
            trail: o.trail.map(Into::into),
        }
    }
}

impl From<ListTrailsOutput> for pb::ListTrailsResponse {
    fn from(o: ListTrailsOutput) -> Self {
        pb::ListTrailsResponse {
            trails: o
                .trails
                .unwrap_or_default()
                .into_iter()
                .map(|t| pb::TrailInfo {
                    trail_arn: t.trail_arn.unwrap_or_default(),
                    name: t.name.unwrap_or_default(),
                    home_region: t.home_region.unwrap_or_default(),
                })
                .collect(),
            next_token: o.next_token.unwrap_or_default(),
        }
    }
}

// sns_topic_name is deprecated by AWS but still returned; callers may rely on it.
#[allow(deprecated)]
impl From<types::Trail> for pb::Trail {
    fn from(t: types::Trail) -> Self {
        pb::Trail {
            name: t.name.unwrap_or_default(),
            s3_bucket_name: t.s3_bucket_name.unwrap_or_default(),
            s3_key_prefix: t.s3_key_prefix.unwrap_or_default(),
            sns_topic_name: t.sns_topic_name.unwrap_or_default(),
            sns_topic_arn: t.sns_topic_arn.unwrap_or_default(),
            include_global_service_events: t.include_global_service_events,
            is_multi_region_trail: t.is_multi_region_trail,
            home_region: t.home_region.unwrap_or_default(),
            trail_arn: t.trail_arn.unwrap_or_default(),
            log_file_validation_enabled: t.log_file_validation_enabled,
            cloud_watch_logs_log_group_arn: t.cloud_watch_logs_log_group_arn.unwrap_or_default(),
            cloud_watch_logs_role_arn: t.cloud_watch_logs_role_arn.unwrap_or_default(),
            kms_key_id: t.kms_key_id.unwrap_or_default(),
            has_custom_event_selectors: t.has_custom_event_selectors,
            has_insight_selectors: t.has_insight_selectors,
            is_organization_trail: t.is_organization_trail,
            recursive_logging: t.recursive_logging,
        }
    }
}

/// CreateTrail and UpdateTrail answer with the same fields: one conversion serves both.
macro_rules! trail_output {
    ($output:ty, $response:ident) => {
        #[allow(deprecated)] // sns_topic_name, as for DescribeTrails
        impl From<$output> for pb::$response {
            fn from(o: $output) -> Self {
                pb::$response {
                    trail: Some(pb::Trail {
                        name: o.name.unwrap_or_default(),
                        s3_bucket_name: o.s3_bucket_name.unwrap_or_default(),
                        s3_key_prefix: o.s3_key_prefix.unwrap_or_default(),
                        sns_topic_name: o.sns_topic_name.unwrap_or_default(),
                        sns_topic_arn: o.sns_topic_arn.unwrap_or_default(),
                        include_global_service_events: o.include_global_service_events,
                        is_multi_region_trail: o.is_multi_region_trail,
                        trail_arn: o.trail_arn.unwrap_or_default(),
                        log_file_validation_enabled: o.log_file_validation_enabled,
                        cloud_watch_logs_log_group_arn: o
                            .cloud_watch_logs_log_group_arn
                            .unwrap_or_default(),
                        cloud_watch_logs_role_arn: o.cloud_watch_logs_role_arn.unwrap_or_default(),
                        kms_key_id: o.kms_key_id.unwrap_or_default(),
                        is_organization_trail: o.is_organization_trail,
                        recursive_logging: o.recursive_logging,
                        ..Default::default()
                    }),
                }
            }
        }
    };
}
trail_output!(CreateTrailOutput, CreateTrailResponse);
trail_output!(UpdateTrailOutput, UpdateTrailResponse);

impl From<DescribeTrailsOutput> for pb::DescribeTrailsResponse {
    fn from(o: DescribeTrailsOutput) -> Self {
        pb::DescribeTrailsResponse {
            trail_list: o
                .trail_list
                .unwrap_or_default()
                .into_iter()
                .map(Into::into)
                .collect(),
        }
    }
}

impl From<GetTrailStatusOutput> for pb::GetTrailStatusResponse {
    fn from(o: GetTrailStatusOutput) -> Self {
        pb::GetTrailStatusResponse {
            is_logging: o.is_logging,
            latest_delivery_error: o.latest_delivery_error.unwrap_or_default(),
            latest_notification_error: o.latest_notification_error.unwrap_or_default(),
            latest_delivery_time: opt_timestamp(o.latest_delivery_time),
            latest_notification_time: opt_timestamp(o.latest_notification_time),
            start_logging_time: opt_timestamp(o.start_logging_time),
            stop_logging_time: opt_timestamp(o.stop_logging_time),
            latest_cloud_watch_logs_delivery_error: o
                .latest_cloud_watch_logs_delivery_error
                .unwrap_or_default(),
            latest_cloud_watch_logs_delivery_time: opt_timestamp(
                o.latest_cloud_watch_logs_delivery_time,
            ),
            latest_digest_delivery_time: opt_timestamp(o.latest_digest_delivery_time),
            latest_digest_delivery_error: o.latest_digest_delivery_error.unwrap_or_default(),
            latest_delivery_attempt_time: o.latest_delivery_attempt_time.unwrap_or_default(),
            latest_notification_attempt_time: o
                .latest_notification_attempt_time
                .unwrap_or_default(),
            latest_notification_attempt_succeeded: o
                .latest_notification_attempt_succeeded
                .unwrap_or_default(),
            latest_delivery_attempt_succeeded: o
                .latest_delivery_attempt_succeeded
                .unwrap_or_default(),
            time_logging_started: o.time_logging_started.unwrap_or_default(),
            time_logging_stopped: o.time_logging_stopped.unwrap_or_default(),
        }
    }
}
