//! The trails of one account: home Regions and shadow trails, logging status, event and insight
//! selectors, tags and the five-trails limit, with CloudTrail's exceptions and messages.
//!
//! A trail lives in its home Region; a multi-Region trail also shows as a *shadow trail* in every
//! other Region. By name, operations find only trails homed in the calling Region; by ARN, any trail
//! visible there. Changes must come from the home Region (InvalidHomeRegionException).

use serde_json::{Value, json};

mod select;
mod selectors;
mod tags;
mod trail;

use selectors::default_selectors;
use tags::check_tags;
use trail::*;
pub use trail::{Trail, Trails};

use crate::{
    ctx::Ctx,
    rules::{MAX_TRAILS_PER_REGION, check_trail_reference},
    wire::ApiError,
};

impl Trails {
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
            organization: false,
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

    /// GetTrailStatus' logging fields, and the ARN of the trail (for its deliveries').
    pub fn status(&self, ctx: &Ctx, body: &Value) -> Result<(String, Value), ApiError> {
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
        Ok((arn, v))
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
    use aws_smithy_types::DateTime;

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
