//! Event selectors (basic or advanced, five at most) and Insights selectors of a trail, checked as
//! CloudTrail checks them.

use serde_json::{Value, json};

use super::trail::*;
use crate::{ctx::Ctx, rules, wire::ApiError};

impl Trails {
    pub fn get_insight_selectors(&self, ctx: &Ctx, body: &Value) -> Result<Value, ApiError> {
        let arn = self.find_arn(ctx, str_field(body, "TrailName"))?;
        let trail = &self.by_arn[&arn];
        if trail.insight_selectors.is_empty() {
            return Err(ApiError::new(
                "InsightNotEnabledException",
                format!("Trail {arn} does not have Insights enabled."),
            ));
        }
        Ok(json!({"TrailARN": arn, "InsightSelectors": trail.insight_selectors}))
    }

    pub fn put_insight_selectors(&mut self, ctx: &Ctx, body: &Value) -> Result<Value, ApiError> {
        let selectors = check_insight_selectors(body)?;
        let trail = self.find_home_mut(ctx, str_field(body, "TrailName"))?;
        trail.insight_selectors = selectors;
        Ok(json!({"TrailARN": trail.arn, "InsightSelectors": trail.insight_selectors}))
    }

    pub fn get_selectors(&self, ctx: &Ctx, body: &Value) -> Result<Value, ApiError> {
        let arn = self.find_arn(ctx, str_field(body, "TrailName"))?;
        Ok(self.by_arn[&arn].selectors_json())
    }

    pub fn put_selectors(&mut self, ctx: &Ctx, body: &Value) -> Result<Value, ApiError> {
        let selectors = check_selectors(body)?;
        let trail = self.find_home_mut(ctx, str_field(body, "TrailName"))?;
        trail.selectors = selectors;
        trail.has_custom_event_selectors = true;
        Ok(trail.selectors_json())
    }
}

/// PutInsightSelectors' list: each `ApiCallRateInsight` or `ApiErrorRateInsight`, at most once;
/// empty turns Insights off.
pub(super) fn check_insight_selectors(body: &Value) -> Result<Vec<Value>, ApiError> {
    let invalid = |m: String| ApiError::new("InvalidInsightSelectorsException", m);
    let Some(list) = body.get("InsightSelectors").and_then(Value::as_array) else {
        return Err(invalid("InsightSelectors must be specified.".into()));
    };
    let mut seen = Vec::new();
    for selector in list {
        let kind = str_field(selector, "InsightType");
        if !matches!(kind, "ApiCallRateInsight" | "ApiErrorRateInsight") {
            return Err(invalid(format!(
                "'{kind}' is not a valid InsightType (ApiCallRateInsight, ApiErrorRateInsight)."
            )));
        }
        if seen.contains(&kind) {
            return Err(invalid(format!("InsightType {kind} is given twice.")));
        }
        seen.push(kind);
    }
    Ok(seen.iter().map(|k| json!({"InsightType": k})).collect())
}

pub(super) fn default_selectors() -> Value {
    json!([{
        "ReadWriteType": "All",
        "IncludeManagementEvents": true,
        "DataResources": [],
        "ExcludeManagementEventSources": []
    }])
}

pub(super) fn check_selectors(body: &Value) -> Result<Selectors, ApiError> {
    let invalid = |m: &str| ApiError::new("InvalidEventSelectorsException", m);
    let basic = body.get("EventSelectors").and_then(Value::as_array);
    let advanced = body.get("AdvancedEventSelectors").and_then(Value::as_array);
    match (basic, advanced) {
        (Some(_), Some(_)) => Err(invalid(
            "You can use either AdvancedEventSelectors or EventSelectors, but not both.",
        )),
        (None, None) => Err(invalid("Specify EventSelectors or AdvancedEventSelectors.")),
        (None, Some(advanced)) => {
            if advanced.iter().any(|s| {
                s.get("FieldSelectors")
                    .and_then(Value::as_array)
                    .is_none_or(Vec::is_empty)
            }) {
                return Err(invalid(
                    "Each advanced event selector needs at least one field selector.",
                ));
            }
            Ok(Selectors::Advanced(Value::Array(advanced.clone())))
        }
        (Some(basic), None) => {
            if basic.is_empty() || basic.len() > rules::MAX_EVENT_SELECTORS {
                return Err(invalid("A trail can have 1 to 5 event selectors."));
            }
            let mut normalized = Vec::with_capacity(basic.len());
            for s in basic {
                let rw = s
                    .get("ReadWriteType")
                    .and_then(Value::as_str)
                    .unwrap_or("All");
                if !matches!(rw, "ReadOnly" | "WriteOnly" | "All") {
                    return Err(invalid("ReadWriteType must be ReadOnly, WriteOnly or All."));
                }
                let resources = s.get("DataResources").cloned().unwrap_or_else(|| json!([]));
                for r in resources.as_array().into_iter().flatten() {
                    let ty = str_field(r, "Type");
                    if !rules::DATA_RESOURCE_TYPES.contains(&ty) {
                        return Err(invalid(&format!(
                            "Value {ty} for DataResources.Type is invalid."
                        )));
                    }
                }
                normalized.push(json!({
                    "ReadWriteType": rw,
                    "IncludeManagementEvents": s.get("IncludeManagementEvents").and_then(Value::as_bool).unwrap_or(true),
                    "DataResources": resources,
                    "ExcludeManagementEventSources": s.get("ExcludeManagementEventSources").cloned().unwrap_or_else(|| json!([])),
                }));
            }
            Ok(Selectors::Basic(Value::Array(normalized)))
        }
    }
}
