//! One trail and the account's set of them: their settings, tags and selectors as CloudTrail keeps
//! them, their JSON as CloudTrail shows them, and finding one by name or ARN from a Region.

use std::collections::BTreeMap;

use aws_smithy_types::DateTime;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::{
    ctx::Ctx,
    rules::{check_bucket_name, check_trail_reference},
    wire::ApiError,
};

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub(super) struct Tag {
    pub(super) key: String,
    #[serde(default)]
    pub(super) value: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) enum Selectors {
    Basic(Value),
    Advanced(Value),
}

/// A trail as CloudTrail keeps it; also what the state file holds (`crate::state`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Trail {
    pub name: String,
    pub home_region: String,
    pub arn: String,
    pub(super) s3_bucket_name: String,
    pub(super) s3_key_prefix: Option<String>,
    pub(super) sns_topic_name: Option<String>,
    pub(super) include_global_service_events: bool,
    pub is_multi_region: bool,
    pub(super) log_file_validation: bool,
    pub(super) cloud_watch_logs_log_group_arn: Option<String>,
    pub(super) cloud_watch_logs_role_arn: Option<String>,
    pub(super) kms_key_id: Option<String>,
    pub(super) recursive_logging: Option<bool>,
    pub(super) is_logging: bool,
    #[serde(with = "crate::state::epoch_seconds")]
    pub(super) start_logging_time: Option<DateTime>,
    #[serde(with = "crate::state::epoch_seconds")]
    pub(super) stop_logging_time: Option<DateTime>,
    pub(super) selectors: Selectors,
    pub(super) has_custom_event_selectors: bool,
    /// `[{"InsightType": ...}]`; empty: Insights off.
    pub(super) insight_selectors: Vec<Value>,
    pub(super) tags: Vec<Tag>,
    /// An organization trail: it logs every account of the organization.
    #[serde(default)]
    pub(super) organization: bool,
}

/// The settings CreateTrail and UpdateTrail share, as they arrive on the wire.
#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
pub(super) struct TrailSettings {
    pub(super) name: Option<String>,
    pub(super) s3_bucket_name: Option<String>,
    pub(super) s3_key_prefix: Option<String>,
    pub(super) sns_topic_name: Option<String>,
    pub(super) include_global_service_events: Option<bool>,
    pub(super) is_multi_region_trail: Option<bool>,
    pub(super) enable_log_file_validation: Option<bool>,
    pub(super) cloud_watch_logs_log_group_arn: Option<String>,
    pub(super) cloud_watch_logs_role_arn: Option<String>,
    pub(super) kms_key_id: Option<String>,
    pub(super) is_organization_trail: Option<bool>,
    pub(super) recursive_logging: Option<bool>,
    pub(super) tags_list: Option<Vec<Tag>>,
}

/// All trails of the account, keyed by ARN.
#[derive(Debug, Default)]
pub struct Trails {
    pub(super) by_arn: BTreeMap<String, Trail>,
}

pub(super) fn parse<T: for<'de> Deserialize<'de>>(body: &Value) -> Result<T, ApiError> {
    T::deserialize(body).map_err(|e| ApiError::new("SerializationException", e.to_string()))
}

pub(super) fn str_field<'a>(body: &'a Value, key: &str) -> &'a str {
    body.get(key).and_then(Value::as_str).unwrap_or_default()
}

pub(super) fn not_found(account: &str, name: &str, region: &str) -> ApiError {
    let arn = if name.starts_with("arn:") {
        name.to_owned()
    } else {
        trail_arn(region, account, name)
    };
    ApiError::new(
        "TrailNotFoundException",
        format!("Unknown trail: {arn} for the user: {account}"),
    )
}

pub(super) fn trail_arn(region: &str, account: &str, name: &str) -> String {
    format!("arn:aws:cloudtrail:{region}:{account}:trail/{name}")
}

pub(super) fn epoch(t: DateTime) -> Value {
    json!(t.as_secs_f64())
}

impl Trail {
    /// Its home Region, or any for a multi-Region trail: where it shows, and whose events it logs.
    pub(crate) fn visible_in(&self, region: &str) -> bool {
        self.home_region == region || self.is_multi_region
    }

    pub(super) fn describe(&self) -> Value {
        let mut v = self.settings_json();
        v["HomeRegion"] = json!(self.home_region);
        v["HasCustomEventSelectors"] = json!(self.has_custom_event_selectors);
        v["HasInsightSelectors"] = json!(!self.insight_selectors.is_empty());
        v
    }

    /// The fields CreateTrail, UpdateTrail and DescribeTrails all return.
    pub(super) fn settings_json(&self) -> Value {
        let mut v = json!({
            "Name": self.name,
            "S3BucketName": self.s3_bucket_name,
            "IncludeGlobalServiceEvents": self.include_global_service_events,
            "IsMultiRegionTrail": self.is_multi_region,
            "TrailARN": self.arn,
            "LogFileValidationEnabled": self.log_file_validation,
            "IsOrganizationTrail": self.organization,
        });
        let optional = [
            ("S3KeyPrefix", &self.s3_key_prefix),
            ("SnsTopicName", &self.sns_topic_name),
            (
                "CloudWatchLogsLogGroupArn",
                &self.cloud_watch_logs_log_group_arn,
            ),
            ("CloudWatchLogsRoleArn", &self.cloud_watch_logs_role_arn),
            ("KmsKeyId", &self.kms_key_id),
        ];
        for (key, value) in optional {
            if let Some(value) = value {
                v[key] = json!(value);
            }
        }
        if let Some(topic) = &self.sns_topic_name {
            let account = self.arn.split(':').nth(4).unwrap_or_default();
            v["SnsTopicARN"] = json!(format!(
                "arn:aws:sns:{}:{account}:{topic}",
                self.home_region
            ));
        }
        if let Some(recursive) = self.recursive_logging {
            v["RecursiveLogging"] = json!(recursive);
        }
        v
    }

    pub(super) fn selectors_json(&self) -> Value {
        match &self.selectors {
            Selectors::Basic(s) => json!({"TrailARN": self.arn, "EventSelectors": s}),
            Selectors::Advanced(s) => json!({"TrailARN": self.arn, "AdvancedEventSelectors": s}),
        }
    }

    /// Applies CreateTrail/UpdateTrail settings, checking what CloudTrail checks.
    pub(super) fn apply(&mut self, s: TrailSettings) -> Result<(), ApiError> {
        let clear = |v: Option<String>| v.filter(|s| !s.is_empty());
        if let Some(bucket) = s.s3_bucket_name {
            check_bucket_name(&bucket)?;
            self.s3_bucket_name = bucket;
        }
        if let Some(prefix) = s.s3_key_prefix {
            if prefix.len() > 200 {
                return Err(ApiError::new(
                    "InvalidS3PrefixException",
                    "S3 prefix is longer than 200 characters.",
                ));
            }
            self.s3_key_prefix = clear(Some(prefix));
        }
        if let Some(topic) = s.sns_topic_name {
            if topic.len() > 256 {
                return Err(ApiError::new(
                    "InvalidSnsTopicNameException",
                    "SNS topic name is too long.",
                ));
            }
            self.sns_topic_name = clear(Some(topic));
        }
        if let Some(v) = s.include_global_service_events {
            self.include_global_service_events = v;
        }
        if let Some(v) = s.is_multi_region_trail {
            self.is_multi_region = v;
        }
        if let Some(v) = s.enable_log_file_validation {
            self.log_file_validation = v;
        }
        if let Some(v) = s.cloud_watch_logs_log_group_arn {
            self.cloud_watch_logs_log_group_arn = clear(Some(v));
        }
        if let Some(v) = s.cloud_watch_logs_role_arn {
            self.cloud_watch_logs_role_arn = clear(Some(v));
        }
        if let Some(v) = s.kms_key_id {
            self.kms_key_id = clear(Some(v));
        }
        if s.recursive_logging.is_some() {
            self.recursive_logging = s.recursive_logging;
        }
        // Whether this account may have one was checked before (it takes an organization).
        if let Some(v) = s.is_organization_trail {
            self.organization = v;
        }
        if self.is_multi_region && !self.include_global_service_events {
            return Err(ApiError::new(
                "InvalidParameterCombinationException",
                "Multi-Region trail must include global service events.",
            ));
        }
        if self.cloud_watch_logs_log_group_arn.is_some() != self.cloud_watch_logs_role_arn.is_some()
        {
            return Err(ApiError::new(
                "InvalidParameterCombinationException",
                "You must specify both CloudWatch Logs log group ARN and role ARN, or neither.",
            ));
        }
        Ok(())
    }
}

impl Trails {
    /// Every trail, for the state file.
    pub fn all(&self) -> impl Iterator<Item = &Trail> {
        self.by_arn.values()
    }

    /// Puts back trails read from the state file.
    pub fn restore(&mut self, trails: impl IntoIterator<Item = Trail>) {
        self.by_arn
            .extend(trails.into_iter().map(|t| (t.arn.clone(), t)));
    }

    /// Trails the Region sees: its own and other Regions' multi-Region trails.
    pub(super) fn visible<'a>(&'a self, region: &'a str) -> impl Iterator<Item = &'a Trail> + 'a {
        self.by_arn.values().filter(move |t| t.visible_in(region))
    }

    /// Finds a trail by name (home Region only) or by ARN (any trail visible in the Region).
    pub(super) fn find_arn(&self, ctx: &Ctx, name_or_arn: &str) -> Result<String, ApiError> {
        check_trail_reference(name_or_arn)?;
        let found = if name_or_arn.starts_with("arn:") {
            self.by_arn
                .get(name_or_arn)
                .filter(|t| t.visible_in(ctx.region))
        } else {
            self.by_arn
                .values()
                .find(|t| t.name == name_or_arn && t.home_region == ctx.region)
        };
        found
            .map(|t| t.arn.clone())
            .ok_or_else(|| not_found(ctx.account, name_or_arn, ctx.region))
    }

    /// Finds a trail that may be changed from this Region (its home Region).
    pub(super) fn find_home_mut(
        &mut self,
        ctx: &Ctx,
        name_or_arn: &str,
    ) -> Result<&mut Trail, ApiError> {
        let arn = self.find_arn(ctx, name_or_arn)?;
        let trail = self
            .by_arn
            .get_mut(&arn)
            .ok_or_else(|| not_found(ctx.account, name_or_arn, ctx.region))?;
        if trail.home_region != ctx.region {
            return Err(ApiError::new(
                "InvalidHomeRegionException",
                format!(
                    "This operation must be called from the Region in which the trail was created ({}).",
                    trail.home_region
                ),
            ));
        }
        Ok(trail)
    }
}
