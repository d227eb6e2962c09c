//! Event and insight selectors: GetEventSelectors, PutEventSelectors, GetInsightSelectors,
//! PutInsightSelectors.

use aws_sdk_cloudtrail::{
    operation::{
        get_event_selectors::GetEventSelectorsOutput,
        get_insight_selectors::GetInsightSelectorsOutput,
        put_event_selectors::{PutEventSelectorsOutput, builders::PutEventSelectorsFluentBuilder},
        put_insight_selectors::{
            PutInsightSelectorsOutput, builders::PutInsightSelectorsFluentBuilder,
        },
    },
    types,
};

use super::rules;
use crate::{error::Error, error::Violations, pb};

pub fn put_event_selectors(
    req: pb::PutEventSelectorsRequest,
    call: PutEventSelectorsFluentBuilder,
) -> Result<PutEventSelectorsFluentBuilder, Error> {
    let mut v = Violations::default();
    rules::trail_name_or_arn(&mut v, "trail_name", &req.trail_name);
    match (
        req.event_selectors.is_empty(),
        req.advanced_event_selectors.is_empty(),
    ) {
        (true, true) => v.add(
            "event_selectors",
            "give event_selectors or advanced_event_selectors",
        ),
        (false, false) => v.add(
            "advanced_event_selectors",
            "give either event_selectors or advanced_event_selectors, not both",
        ),
        _ => {}
    }
    check_basic(&mut v, "event_selectors", &req.event_selectors);
    check_advanced(
        &mut v,
        "advanced_event_selectors",
        &req.advanced_event_selectors,
    );
    v.into_result(())?;

    let basic = req
        .event_selectors
        .into_iter()
        .map(sdk_selector)
        .collect::<Vec<_>>();
    let advanced = req
        .advanced_event_selectors
        .into_iter()
        .filter_map(sdk_advanced_selector)
        .collect::<Vec<_>>();
    Ok(call
        .trail_name(req.trail_name)
        .set_event_selectors((!basic.is_empty()).then_some(basic))
        .set_advanced_event_selectors((!advanced.is_empty()).then_some(advanced)))
}

pub fn put_insight_selectors(
    req: pb::PutInsightSelectorsRequest,
    call: PutInsightSelectorsFluentBuilder,
) -> Result<PutInsightSelectorsFluentBuilder, Error> {
    let mut v = Violations::default();
    rules::trail_name_or_arn(&mut v, "trail_name", &req.trail_name);
    check_insights(&mut v, "insight_selectors", &req.insight_selectors);
    v.into_result(())?;
    let selectors = req
        .insight_selectors
        .iter()
        .filter_map(|s| sdk_insight_type(s.insight_type()))
        .map(|t| types::InsightSelector::builder().insight_type(t).build())
        .collect();
    // An empty list is meaningful (Insights off): always sent.
    Ok(call
        .trail_name(req.trail_name)
        .set_insight_selectors(Some(selectors)))
}

/// Each Insights type named, at most once.
pub fn check_insights(v: &mut Violations, field: &str, selectors: &[pb::InsightSelector]) {
    let mut seen = Vec::new();
    for (i, s) in selectors.iter().enumerate() {
        match pb::InsightType::try_from(s.insight_type) {
            Ok(pb::InsightType::Unspecified) | Err(_) => v.add(
                format!("{field}[{i}].insight_type"),
                "an Insights type is required (API_CALL_RATE_INSIGHT or API_ERROR_RATE_INSIGHT)",
            ),
            Ok(kind) if seen.contains(&kind) => v.add(
                format!("{field}[{i}].insight_type"),
                format!("{} is given twice", kind.as_str_name()),
            ),
            Ok(kind) => seen.push(kind),
        }
    }
}

fn sdk_insight_type(t: pb::InsightType) -> Option<types::InsightType> {
    match t {
        pb::InsightType::ApiCallRateInsight => Some(types::InsightType::ApiCallRateInsight),
        pb::InsightType::ApiErrorRateInsight => Some(types::InsightType::ApiErrorRateInsight),
        pb::InsightType::Unspecified => None,
    }
}

pub fn pb_insight_selectors(
    selectors: Option<Vec<types::InsightSelector>>,
) -> Vec<pb::InsightSelector> {
    selectors
        .unwrap_or_default()
        .into_iter()
        .map(|s| {
            let kind = match s.insight_type {
                Some(types::InsightType::ApiCallRateInsight) => pb::InsightType::ApiCallRateInsight,
                Some(types::InsightType::ApiErrorRateInsight) => {
                    pb::InsightType::ApiErrorRateInsight
                }
                _ => pb::InsightType::Unspecified,
            };
            pb::InsightSelector {
                insight_type: kind.into(),
            }
        })
        .collect()
}

impl From<GetInsightSelectorsOutput> for pb::GetInsightSelectorsResponse {
    fn from(o: GetInsightSelectorsOutput) -> Self {
        pb::GetInsightSelectorsResponse {
            trail_arn: o.trail_arn.unwrap_or_default(),
            insight_selectors: pb_insight_selectors(o.insight_selectors),
        }
    }
}

impl From<PutInsightSelectorsOutput> for pb::PutInsightSelectorsResponse {
    fn from(o: PutInsightSelectorsOutput) -> Self {
        pb::PutInsightSelectorsResponse {
            trail_arn: o.trail_arn.unwrap_or_default(),
            insight_selectors: pb_insight_selectors(o.insight_selectors),
        }
    }
}

/// Basic selectors as CloudTrail takes them; violations named under `field`.
pub fn check_basic(v: &mut Violations, field: &str, selectors: &[pb::EventSelector]) {
    if selectors.len() > rules::MAX_EVENT_SELECTORS {
        v.add(
            field,
            format!(
                "at most {} event selectors per trail, got {}",
                rules::MAX_EVENT_SELECTORS,
                selectors.len()
            ),
        );
    }
    let mut values = 0;
    for (i, s) in selectors.iter().enumerate() {
        if pb::ReadWriteType::try_from(s.read_write_type).is_err() {
            v.add(
                format!("{field}[{i}].read_write_type"),
                format!("unknown ReadWriteType {}", s.read_write_type),
            );
        }
        for (j, r) in s.data_resources.iter().enumerate() {
            if !rules::DATA_RESOURCE_TYPES.contains(&r.r#type.as_str()) {
                v.add(
                    format!("{field}[{i}].data_resources[{j}].type"),
                    format!(
                        "'{}' is not a supported data resource type; use one of {}",
                        r.r#type,
                        rules::DATA_RESOURCE_TYPES.join(", ")
                    ),
                );
            }
            values += r.values.len();
        }
    }
    if values > rules::MAX_DATA_RESOURCE_VALUES {
        v.add(
            field,
            format!(
                "at most {} data resource values across all selectors, got {values}",
                rules::MAX_DATA_RESOURCE_VALUES
            ),
        );
    }
}

/// Advanced selectors as CloudTrail takes them; violations named under `field`.
pub fn check_advanced(v: &mut Violations, field: &str, selectors: &[pb::AdvancedEventSelector]) {
    let mut conditions = 0;
    for (i, s) in selectors.iter().enumerate() {
        if s.field_selectors.is_empty() {
            v.add(
                format!("{field}[{i}].field_selectors"),
                "an advanced event selector needs at least one field selector",
            );
        }
        if s.name.chars().count() > 1000 {
            v.add(format!("{field}[{i}].name"), "at most 1000 characters");
        }
        for (j, f) in s.field_selectors.iter().enumerate() {
            if f.field.is_empty() {
                v.add(
                    format!("{field}[{i}].field_selectors[{j}].field"),
                    "a field is required",
                );
            }
            conditions += f.equals.len()
                + f.starts_with.len()
                + f.ends_with.len()
                + f.not_equals.len()
                + f.not_starts_with.len()
                + f.not_ends_with.len();
        }
    }
    if conditions > rules::MAX_ADVANCED_CONDITIONS {
        v.add(
            field,
            format!(
                "at most {} conditions across all advanced event selectors, got {conditions}",
                rules::MAX_ADVANCED_CONDITIONS
            ),
        );
    }
}

fn sdk_selector(s: pb::EventSelector) -> types::EventSelector {
    let read_write = match pb::ReadWriteType::try_from(s.read_write_type) {
        Ok(pb::ReadWriteType::ReadOnly) => Some(types::ReadWriteType::ReadOnly),
        Ok(pb::ReadWriteType::WriteOnly) => Some(types::ReadWriteType::WriteOnly),
        Ok(pb::ReadWriteType::All) => Some(types::ReadWriteType::All),
        _ => None,
    };
    let resources = s
        .data_resources
        .into_iter()
        .map(|r| {
            types::DataResource::builder()
                .r#type(r.r#type)
                .set_values(Some(r.values))
                .build()
        })
        .collect::<Vec<_>>();
    types::EventSelector::builder()
        .set_read_write_type(read_write)
        .set_include_management_events(s.include_management_events)
        .set_data_resources((!resources.is_empty()).then_some(resources))
        .set_exclude_management_event_sources(
            (!s.exclude_management_event_sources.is_empty())
                .then_some(s.exclude_management_event_sources),
        )
        .build()
}

/// `None` only if the SDK's builder refuses the selector, which validation has already ruled out.
fn sdk_advanced_selector(s: pb::AdvancedEventSelector) -> Option<types::AdvancedEventSelector> {
    let non_empty = |v: Vec<String>| (!v.is_empty()).then_some(v);
    let fields = s
        .field_selectors
        .into_iter()
        .map(|f| {
            types::AdvancedFieldSelector::builder()
                .field(f.field)
                .set_equals(non_empty(f.equals))
                .set_starts_with(non_empty(f.starts_with))
                .set_ends_with(non_empty(f.ends_with))
                .set_not_equals(non_empty(f.not_equals))
                .set_not_starts_with(non_empty(f.not_starts_with))
                .set_not_ends_with(non_empty(f.not_ends_with))
                .build()
                .ok()
        })
        .collect::<Option<Vec<_>>>()?;
    types::AdvancedEventSelector::builder()
        .set_name((!s.name.is_empty()).then_some(s.name))
        .set_field_selectors(Some(fields))
        .build()
        .ok()
}

fn pb_selector(s: types::EventSelector) -> pb::EventSelector {
    let read_write_type = match s.read_write_type {
        Some(types::ReadWriteType::ReadOnly) => pb::ReadWriteType::ReadOnly,
        Some(types::ReadWriteType::WriteOnly) => pb::ReadWriteType::WriteOnly,
        Some(types::ReadWriteType::All) => pb::ReadWriteType::All,
        _ => pb::ReadWriteType::Unspecified,
    };
    pb::EventSelector {
        read_write_type: read_write_type as i32,
        include_management_events: s.include_management_events,
        data_resources: s
            .data_resources
            .unwrap_or_default()
            .into_iter()
            .map(|r| pb::DataResource {
                r#type: r.r#type.unwrap_or_default(),
                values: r.values.unwrap_or_default(),
            })
            .collect(),
        exclude_management_event_sources: s.exclude_management_event_sources.unwrap_or_default(),
    }
}

fn pb_advanced_selector(s: types::AdvancedEventSelector) -> pb::AdvancedEventSelector {
    pb::AdvancedEventSelector {
        name: s.name.unwrap_or_default(),
        field_selectors: s
            .field_selectors
            .into_iter()
            .map(|f| pb::AdvancedFieldSelector {
                field: f.field,
                equals: f.equals.unwrap_or_default(),
                starts_with: f.starts_with.unwrap_or_default(),
                ends_with: f.ends_with.unwrap_or_default(),
                not_equals: f.not_equals.unwrap_or_default(),
                not_starts_with: f.not_starts_with.unwrap_or_default(),
                not_ends_with: f.not_ends_with.unwrap_or_default(),
            })
            .collect(),
    }
}

/// Get and Put answer with the same three fields: one conversion serves both.
macro_rules! selectors_output {
    ($output:ty, $response:ident) => {
        impl From<$output> for pb::$response {
            fn from(o: $output) -> Self {
                pb::$response {
                    trail_arn: o.trail_arn.unwrap_or_default(),
                    event_selectors: o
                        .event_selectors
                        .unwrap_or_default()
                        .into_iter()
                        .map(pb_selector)
                        .collect(),
                    advanced_event_selectors: o
                        .advanced_event_selectors
                        .unwrap_or_default()
                        .into_iter()
                        .map(pb_advanced_selector)
                        .collect(),
                }
            }
        }
    };
}
selectors_output!(GetEventSelectorsOutput, GetEventSelectorsResponse);
selectors_output!(PutEventSelectorsOutput, PutEventSelectorsResponse);
