//! The trails of one account: home Regions and shadow trails, logging status, event and insight
//! selectors, tags and the five-trails limit, with CloudTrail's exceptions and messages.
//!
//! A trail lives in its home Region; a multi-Region trail also shows as a *shadow trail* in every
//! other Region. By name, operations find only trails homed in the calling Region; by ARN, any trail
//! visible there. Changes must come from the home Region (InvalidHomeRegionException).

use std::collections::BTreeMap;

use aws_smithy_types::DateTime;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

mod selectors;
mod tags;

use selectors::default_selectors;
use tags::check_tags;

use crate::{
    Ctx,
    rules::{self, Arn, MAX_TRAILS_PER_REGION, check_bucket_name, check_trail_reference},
    wire::ApiError,
};

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct Tag {
    key: String,
    #[serde(default)]
    value: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
enum Selectors {
    Basic(Value),
    Advanced(Value),
}

/// A trail as CloudTrail keeps it; also what the state file holds (`crate::state`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Trail {
    pub name: String,
    pub home_region: String,
    pub arn: String,
    s3_bucket_name: String,
    s3_key_prefix: Option<String>,
    sns_topic_name: Option<String>,
    include_global_service_events: bool,
    pub is_multi_region: bool,
    log_file_validation: bool,
    cloud_watch_logs_log_group_arn: Option<String>,
    cloud_watch_logs_role_arn: Option<String>,
    kms_key_id: Option<String>,
    recursive_logging: Option<bool>,
    is_logging: bool,
    #[serde(with = "crate::state::epoch_seconds")]
    start_logging_time: Option<DateTime>,
    #[serde(with = "crate::state::epoch_seconds")]
    stop_logging_time: Option<DateTime>,
    selectors: Selectors,
    has_custom_event_selectors: bool,
    /// `[{"InsightType": ...}]`; empty: Insights off.
    insight_selectors: Vec<Value>,
    tags: Vec<Tag>,
}

/// The settings CreateTrail and UpdateTrail share, as they arrive on the wire.
#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct TrailSettings {
    name: Option<String>,
    s3_bucket_name: Option<String>,
    s3_key_prefix: Option<String>,
    sns_topic_name: Option<String>,
    include_global_service_events: Option<bool>,
    is_multi_region_trail: Option<bool>,
    enable_log_file_validation: Option<bool>,
    cloud_watch_logs_log_group_arn: Option<String>,
    cloud_watch_logs_role_arn: Option<String>,
    kms_key_id: Option<String>,
    is_organization_trail: Option<bool>,
    recursive_logging: Option<bool>,
    tags_list: Option<Vec<Tag>>,
}

/// All trails of the account, keyed by ARN.
#[derive(Debug, Default)]
pub struct Trails {
    by_arn: BTreeMap<String, Trail>,
}

fn parse<T: for<'de> Deserialize<'de>>(body: &Value) -> Result<T, ApiError> {
    T::deserialize(body).map_err(|e| ApiError::new("SerializationException", e.to_string()))
}

fn str_field<'a>(body: &'a Value, key: &str) -> &'a str {
    body.get(key).and_then(Value::as_str).unwrap_or_default()
}

fn not_found(account: &str, name: &str, region: &str) -> ApiError {
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

fn trail_arn(region: &str, account: &str, name: &str) -> String {
    format!("arn:aws:cloudtrail:{region}:{account}:trail/{name}")
}

fn epoch(t: DateTime) -> Value {
    json!(t.as_secs_f64())
}

impl Trail {
    fn visible_in(&self, region: &str) -> bool {
        self.home_region == region || self.is_multi_region
    }

    fn describe(&self) -> Value {
        let mut v = self.settings_json();
        v["HomeRegion"] = json!(self.home_region);
        v["HasCustomEventSelectors"] = json!(self.has_custom_event_selectors);
        v["HasInsightSelectors"] = json!(!self.insight_selectors.is_empty());
        v
    }

    /// The fields CreateTrail, UpdateTrail and DescribeTrails all return.
    fn settings_json(&self) -> Value {
        let mut v = json!({
            "Name": self.name,
            "S3BucketName": self.s3_bucket_name,
            "IncludeGlobalServiceEvents": self.include_global_service_events,
            "IsMultiRegionTrail": self.is_multi_region,
            "TrailARN": self.arn,
            "LogFileValidationEnabled": self.log_file_validation,
            "IsOrganizationTrail": false,
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

    fn selectors_json(&self) -> Value {
        match &self.selectors {
            Selectors::Basic(s) => json!({"TrailARN": self.arn, "EventSelectors": s}),
            Selectors::Advanced(s) => json!({"TrailARN": self.arn, "AdvancedEventSelectors": s}),
        }
    }

    /// Applies CreateTrail/UpdateTrail settings, checking what CloudTrail checks.
    fn apply(&mut self, s: TrailSettings) -> Result<(), ApiError> {
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
        if s.is_organization_trail == Some(true) {
            return Err(ApiError::new(
                "OrganizationsNotInUseException",
                "This account is not a member of an organization.",
            ));
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
    fn visible<'a>(&'a self, region: &'a str) -> impl Iterator<Item = &'a Trail> + 'a {
        self.by_arn.values().filter(move |t| t.visible_in(region))
    }

    /// Finds a trail by name (home Region only) or by ARN (any trail visible in the Region).
    fn find_arn(&self, ctx: &Ctx, name_or_arn: &str) -> Result<String, ApiError> {
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
    fn find_home_mut(&mut self, ctx: &Ctx, name_or_arn: &str) -> Result<&mut Trail, ApiError> {
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

    /// The ARN a request names, for recording the event's resources (None if it names nothing known).
    pub fn resource_of(&self, ctx: &Ctx, body: &Value) -> Option<String> {
        ["Name", "TrailName", "ResourceId"]
            .iter()
            .map(|k| str_field(body, k))
            .find(|v| !v.is_empty())
            .and_then(|v| self.find_arn(ctx, v).ok())
    }

    pub fn create(&mut self, ctx: &Ctx, body: &Value) -> Result<Value, ApiError> {
        let mut settings: TrailSettings = parse(body)?;
        let name = settings.name.take().unwrap_or_default();
        if name.is_empty() {
            return Err(ApiError::new(
                "TrailNotProvidedException",
                "Trail name must be specified.",
            ));
        }
        if name.starts_with("arn:") {
            return Err(ApiError::new(
                "InvalidTrailNameException",
                "Trail name cannot be an ARN.",
            ));
        }
        check_trail_reference(&name)?;
        if settings
            .s3_bucket_name
            .as_deref()
            .unwrap_or_default()
            .is_empty()
        {
            return Err(ApiError::new(
                "InvalidS3BucketNameException",
                "S3 bucket name must be specified.",
            ));
        }
        let tags = settings.tags_list.take().unwrap_or_default();
        check_tags(&tags)?;
        let multi_region = settings.is_multi_region_trail == Some(true);
        let clash = self
            .by_arn
            .values()
            .any(|t| t.name == name && (t.visible_in(ctx.region) || multi_region));
        if clash {
            return Err(ApiError::new(
                "TrailAlreadyExistsException",
                format!("Trail {name} already exists for customer: {}", ctx.account),
            ));
        }
        // A multi-Region trail counts in every Region that already has trails.
        let mut regions = vec![ctx.region.to_owned()];
        if multi_region {
            regions.extend(self.by_arn.values().map(|t| t.home_region.clone()));
        }
        for region in regions {
            if self.visible(&region).count() >= MAX_TRAILS_PER_REGION {
                return Err(ApiError::new(
                    "MaximumNumberOfTrailsExceededException",
                    format!(
                        "User: {} already has {MAX_TRAILS_PER_REGION} trails in {region}.",
                        ctx.account
                    ),
                ));
            }
        }
        let arn = trail_arn(ctx.region, ctx.account, &name);
        let mut trail = Trail {
            name,
            home_region: ctx.region.to_owned(),
            arn: arn.clone(),
            s3_bucket_name: String::new(),
            s3_key_prefix: None,
            sns_topic_name: None,
            include_global_service_events: true,
            is_multi_region: false,
            log_file_validation: false,
            cloud_watch_logs_log_group_arn: None,
            cloud_watch_logs_role_arn: None,
            kms_key_id: None,
            recursive_logging: None,
            is_logging: false,
            start_logging_time: None,
            stop_logging_time: None,
            selectors: Selectors::Basic(default_selectors()),
            has_custom_event_selectors: false,
            insight_selectors: Vec::new(),
            tags,
        };
        trail.apply(settings)?;
        let answer = trail.settings_json();
        self.by_arn.insert(arn, trail);
        Ok(answer)
    }

    pub fn update(&mut self, ctx: &Ctx, body: &Value) -> Result<Value, ApiError> {
        let mut settings: TrailSettings = parse(body)?;
        let name = settings.name.take().unwrap_or_default();
        let trail = self.find_home_mut(ctx, &name)?;
        // Apply to a copy so a refused update changes nothing.
        let mut updated = trail.clone();
        updated.apply(settings)?;
        let answer = updated.settings_json();
        *trail = updated;
        Ok(answer)
    }

    pub fn delete(&mut self, ctx: &Ctx, body: &Value) -> Result<Value, ApiError> {
        let arn = self
            .find_home_mut(ctx, str_field(body, "Name"))?
            .arn
            .clone();
        self.by_arn.remove(&arn);
        Ok(json!({}))
    }

    pub fn describe(&self, ctx: &Ctx, body: &Value) -> Result<Value, ApiError> {
        let include_shadows = body
            .get("includeShadowTrails")
            .and_then(Value::as_bool)
            .unwrap_or(true);
        let names: Vec<&str> = body
            .get("trailNameList")
            .and_then(Value::as_array)
            .map(|l| l.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        for name in &names {
            check_trail_reference(name)?;
        }
        let list: Vec<Value> = self
            .visible(ctx.region)
            .filter(|t| include_shadows || t.home_region == ctx.region)
            .filter(|t| {
                // By name only home-Region trails match; by ARN any visible one.
                names.is_empty()
                    || names
                        .iter()
                        .any(|n| *n == t.arn || (*n == t.name && t.home_region == ctx.region))
            })
            .map(Trail::describe)
            .collect();
        Ok(json!({ "trailList": list }))
    }

    /// GetTrail: by name (home Region) or ARN (any trail visible here).
    pub fn get(&self, ctx: &Ctx, body: &Value) -> Result<Value, ApiError> {
        let arn = self.find_arn(ctx, str_field(body, "Name"))?;
        Ok(json!({ "Trail": self.by_arn[&arn].describe() }))
    }

    /// ListTrails: every trail of the account, in every Region, a page at a time (ARN order; the
    /// token is the last ARN listed).
    pub fn list(&self, _ctx: &Ctx, body: &Value) -> Result<Value, ApiError> {
        let after = match body.get("NextToken").and_then(Value::as_str) {
            None | Some("") => None,
            Some(token) => Some(decode_token(token).ok_or_else(|| {
                ApiError::new("InvalidNextTokenException", "The token is not valid.")
            })?),
        };
        let mut page: Vec<&Trail> = self
            .by_arn
            .values()
            .filter(|t| after.as_deref().is_none_or(|a| t.arn.as_str() > a))
            .take(LIST_TRAILS_PAGE + 1)
            .collect();
        let more = page.len() > LIST_TRAILS_PAGE;
        page.truncate(LIST_TRAILS_PAGE);
        let trails: Vec<Value> = page
            .iter()
            .map(|t| json!({"TrailARN": t.arn, "Name": t.name, "HomeRegion": t.home_region}))
            .collect();
        let mut answer = json!({ "Trails": trails });
        if more && let Some(last) = page.last() {
            answer["NextToken"] = json!(encode_token(&last.arn));
        }
        Ok(answer)
    }

    pub fn status(&self, ctx: &Ctx, body: &Value) -> Result<Value, ApiError> {
        let arn = self.find_arn(ctx, str_field(body, "Name"))?;
        let trail = &self.by_arn[&arn];
        let mut v = json!({ "IsLogging": trail.is_logging });
        if let Some(t) = trail.start_logging_time {
            v["StartLoggingTime"] = epoch(t);
            v["TimeLoggingStarted"] = json!(crate::clock::rfc3339(t));
        }
        if let Some(t) = trail.stop_logging_time {
            v["StopLoggingTime"] = epoch(t);
            v["TimeLoggingStopped"] = json!(crate::clock::rfc3339(t));
        }
        Ok(v)
    }

    pub fn set_logging(&mut self, ctx: &Ctx, body: &Value, on: bool) -> Result<Value, ApiError> {
        let trail = self.find_home_mut(ctx, str_field(body, "Name"))?;
        trail.is_logging = on;
        if on {
            trail.start_logging_time = Some(ctx.now);
        } else {
            trail.stop_logging_time = Some(ctx.now);
        }
        Ok(json!({}))
    }
}

/// Trails per ListTrails page (AWS documents none; small enough that paging is exercised).
const LIST_TRAILS_PAGE: usize = 10;

fn encode_token(arn: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(arn)
}

fn decode_token(token: &str) -> Option<String> {
    use base64::Engine;
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .ok()?;
    String::from_utf8(raw)
        .ok()
        .filter(|arn| arn.starts_with("arn:"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(region: &str) -> Ctx<'_> {
        Ctx {
            account: "123456789012",
            region,
            now: DateTime::from_secs(1_700_000_000),
        }
    }

    fn create(
        trails: &mut Trails,
        region: &str,
        name: &str,
        multi: bool,
    ) -> Result<Value, ApiError> {
        trails.create(
            &ctx(region),
            &json!({"Name": name, "S3BucketName": "bucket", "IsMultiRegionTrail": multi}),
        )
    }

    #[test]
    fn shadow_trails_are_visible_by_arn_and_immutable_outside_home() {
        let mut trails = Trails::default();
        create(&mut trails, "us-east-1", "org", true).unwrap();
        let arn = "arn:aws:cloudtrail:us-east-1:123456789012:trail/org";
        let west = ctx("eu-west-1");
        // Shadow shows in DescribeTrails, status by ARN works, by name it does not.
        let described = trails.describe(&west, &json!({})).unwrap();
        assert_eq!(described["trailList"][0]["HomeRegion"], "us-east-1");
        assert!(trails.status(&west, &json!({"Name": arn})).is_ok());
        assert_eq!(
            trails
                .status(&west, &json!({"Name": "org"}))
                .unwrap_err()
                .code,
            "TrailNotFoundException"
        );
        let err = trails
            .set_logging(&west, &json!({"Name": arn}), true)
            .unwrap_err();
        assert_eq!(err.code, "InvalidHomeRegionException");
        let hidden = trails
            .describe(&west, &json!({"includeShadowTrails": false}))
            .unwrap();
        assert_eq!(hidden["trailList"].as_array().map(Vec::len), Some(0));
    }

    #[test]
    fn five_trails_per_region_counting_shadows() {
        let mut trails = Trails::default();
        create(&mut trails, "eu-west-1", "global", true).unwrap();
        for i in 0..4 {
            create(&mut trails, "us-east-1", &format!("trail{i}"), false).unwrap();
        }
        let err = create(&mut trails, "us-east-1", "trail5", false).unwrap_err();
        assert_eq!(err.code, "MaximumNumberOfTrailsExceededException");
        assert!(create(&mut trails, "us-west-2", "trail5", false).is_ok());
    }

    #[test]
    fn duplicate_names_and_refused_updates_change_nothing() {
        let mut trails = Trails::default();
        create(&mut trails, "us-east-1", "trail1", false).unwrap();
        assert_eq!(
            create(&mut trails, "us-east-1", "trail1", false)
                .unwrap_err()
                .code,
            "TrailAlreadyExistsException"
        );
        let err = trails
            .update(&ctx("us-east-1"), &json!({"Name": "trail1", "IsMultiRegionTrail": true, "IncludeGlobalServiceEvents": false}))
            .unwrap_err();
        assert_eq!(err.code, "InvalidParameterCombinationException");
        let t = trails.describe(&ctx("us-east-1"), &json!({})).unwrap();
        assert_eq!(t["trailList"][0]["IsMultiRegionTrail"], false);
    }

    #[test]
    fn get_list_and_insights() {
        let mut trails = Trails::default();
        create(&mut trails, "us-east-1", "org", true).unwrap();
        for i in 0..12 {
            let region = if i < 4 {
                "us-east-1"
            } else if i < 8 {
                "eu-west-1"
            } else {
                "ap-south-1"
            };
            create(&mut trails, region, &format!("t{i:02}"), false).unwrap();
        }
        let west = ctx("eu-west-1");
        let arn = "arn:aws:cloudtrail:us-east-1:123456789012:trail/org";
        assert_eq!(
            trails.get(&west, &json!({"Name": arn})).unwrap()["Trail"]["HomeRegion"],
            "us-east-1"
        );
        assert_eq!(
            trails.get(&west, &json!({"Name": "org"})).unwrap_err().code,
            "TrailNotFoundException"
        );
        // ListTrails lists every Region's trails, a page at a time.
        let mut listed = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let body = match &token {
                Some(t) => json!({"NextToken": t}),
                None => json!({}),
            };
            let page = trails.list(&west, &body).unwrap();
            listed.extend(
                page["Trails"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|t| t["Name"].as_str().unwrap().to_owned()),
            );
            match page["NextToken"].as_str() {
                Some(t) => token = Some(t.to_owned()),
                None => break,
            }
        }
        assert_eq!(listed.len(), 13);
        assert_eq!(
            trails
                .list(&west, &json!({"NextToken": "garbage"}))
                .unwrap_err()
                .code,
            "InvalidNextTokenException"
        );
        // Insights: none yet, then on, then off again.
        let east = ctx("us-east-1");
        assert_eq!(
            trails
                .get_insight_selectors(&east, &json!({"TrailName": "org"}))
                .unwrap_err()
                .code,
            "InsightNotEnabledException"
        );
        trails.put_insight_selectors(&east, &json!({"TrailName": "org", "InsightSelectors": [{"InsightType": "ApiErrorRateInsight"}]})).unwrap();
        assert_eq!(
            trails
                .get_insight_selectors(&west, &json!({"TrailName": arn}))
                .unwrap()["InsightSelectors"][0]["InsightType"],
            "ApiErrorRateInsight"
        );
        assert_eq!(
            trails.get(&east, &json!({"Name": "org"})).unwrap()["Trail"]["HasInsightSelectors"],
            true
        );
        assert_eq!(
            trails
                .put_insight_selectors(
                    &east,
                    &json!({"TrailName": "org", "InsightSelectors": [{"InsightType": "Nope"}]})
                )
                .unwrap_err()
                .code,
            "InvalidInsightSelectorsException"
        );
        assert_eq!(
            trails
                .put_insight_selectors(&west, &json!({"TrailName": arn, "InsightSelectors": []}))
                .unwrap_err()
                .code,
            "InvalidHomeRegionException"
        );
        trails
            .put_insight_selectors(&east, &json!({"TrailName": "org", "InsightSelectors": []}))
            .unwrap();
        assert!(
            trails
                .get_insight_selectors(&east, &json!({"TrailName": "org"}))
                .is_err()
        );
    }

    #[test]
    fn tags_merge_and_respect_the_limit() {
        let mut trails = Trails::default();
        create(&mut trails, "us-east-1", "trail1", false).unwrap();
        let c = ctx("us-east-1");
        let arn = "arn:aws:cloudtrail:us-east-1:123456789012:trail/trail1";
        let tags: Vec<Value> = (0..50)
            .map(|i| json!({"Key": format!("k{i}"), "Value": "v"}))
            .collect();
        trails
            .add_tags(&c, &json!({"ResourceId": arn, "TagsList": tags}))
            .unwrap();
        trails
            .add_tags(
                &c,
                &json!({"ResourceId": arn, "TagsList": [{"Key": "k0", "Value": "new"}]}),
            )
            .unwrap();
        let err = trails
            .add_tags(
                &c,
                &json!({"ResourceId": arn, "TagsList": [{"Key": "extra"}]}),
            )
            .unwrap_err();
        assert_eq!(err.code, "TagsLimitExceededException");
        let listed = trails
            .list_tags(&c, &json!({"ResourceIdList": [arn]}))
            .unwrap();
        assert_eq!(
            listed["ResourceTagList"][0]["TagsList"][0],
            json!({"Key": "k0", "Value": "new"})
        );
    }
}
