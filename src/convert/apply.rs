//! ApplyTrail: the desired state checked, and compared with what CloudTrail reports. Only what the
//! request manages is compared: a setting left empty or unset, a part left out, is not. Selectors and
//! tags compare as sets, so their order never makes a difference; the comparison fills in
//! CloudTrail's defaults first (a basic selector without a read/write type reads and writes), so a
//! trail that matches never looks changed.

use aws_sdk_cloudtrail::operation::{
    create_trail::builders::CreateTrailFluentBuilder,
    put_event_selectors::builders::PutEventSelectorsFluentBuilder,
    put_insight_selectors::builders::PutInsightSelectorsFluentBuilder,
    update_trail::builders::UpdateTrailFluentBuilder,
};
use serde_json::{Value, json};

use super::{rules, selectors, trails};
use crate::{
    error::{Error, Violations},
    pb,
};

/// Basic or advanced event selectors, as wanted.
#[derive(Debug, Clone)]
pub enum Selectors {
    Basic(Vec<pb::EventSelector>),
    Advanced(Vec<pb::AdvancedEventSelector>),
}

/// An ApplyTrail request, checked.
#[derive(Debug, Clone)]
pub struct Desired {
    pub trail: pb::CreateTrailRequest,
    pub logging: Option<bool>,
    pub selectors: Option<Selectors>,
    pub insights: Option<Vec<pb::InsightSelector>>,
    /// The tags without `aws:` ones (not managed).
    pub tags: Option<Vec<pb::Tag>>,
    pub validate_only: bool,
}

fn is_aws_tag(key: &str) -> bool {
    key.to_ascii_lowercase().starts_with("aws:")
}

/// Checks the request as its parts' own RPCs would, every problem at once.
pub fn check(req: pb::ApplyTrailRequest) -> Result<Desired, Error> {
    let mut v = Violations::default();
    let trail = req.trail.unwrap_or_default();
    rules::trail_name(&mut v, "trail.name", &trail.name);
    if trail.s3_bucket_name.is_empty() {
        v.add("trail.s3_bucket_name", "an S3 bucket name is required");
    }
    if !trail.tags_list.is_empty() {
        v.add("trail.tags_list", "give the trail's tags in tags");
    }
    if !trail.request_id.is_empty() {
        v.add("trail.request_id", "give the request id in request_id");
    }
    let selectors = match (req.event_selectors, req.advanced_event_selectors) {
        (Some(_), Some(_)) => {
            v.add(
                "advanced_event_selectors",
                "give either event_selectors or advanced_event_selectors, not both",
            );
            None
        }
        (Some(basic), None) => {
            selectors::check_basic(&mut v, "event_selectors.selectors", &basic.selectors);
            if basic.selectors.is_empty() {
                v.add(
                    "event_selectors.selectors",
                    "a trail has at least one event selector",
                );
            }
            Some(Selectors::Basic(basic.selectors))
        }
        (None, Some(advanced)) => {
            selectors::check_advanced(
                &mut v,
                "advanced_event_selectors.selectors",
                &advanced.selectors,
            );
            if advanced.selectors.is_empty() {
                v.add(
                    "advanced_event_selectors.selectors",
                    "a trail has at least one event selector",
                );
            }
            Some(Selectors::Advanced(advanced.selectors))
        }
        (None, None) => None,
    };
    if let Some(insights) = &req.insight_selectors {
        selectors::check_insights(&mut v, "insight_selectors.selectors", &insights.selectors);
    }
    let tags = req.tags.map(|t| {
        rules::tags(
            &mut v,
            "tags.tags",
            t.tags.iter().map(|t| (t.key.as_str(), t.value.as_deref())),
            true,
        );
        t.tags
            .into_iter()
            .filter(|t| !is_aws_tag(&t.key))
            .collect::<Vec<_>>()
    });
    v.into_result(Desired {
        trail,
        logging: req.logging,
        selectors,
        insights: req.insight_selectors.map(|i| i.selectors),
        tags,
        validate_only: req.validate_only,
    })
}

/// One difference, as ApplyTrail reports it.
pub fn change(field: &str, from: impl Into<String>, to: impl Into<String>) -> pb::TrailChange {
    pb::TrailChange {
        field: field.to_owned(),
        from: from.into(),
        to: to.into(),
    }
}

fn bool_text(b: Option<bool>) -> String {
    b.map(|b| b.to_string()).unwrap_or_default()
}

/// Whether a key named as CloudTrail reports keys (an ARN) is the one wanted (an ARN or a key id;
/// an alias cannot be compared and always differs).
fn same_text(wanted: &str, current: &str) -> bool {
    wanted == current
}

fn same_key(wanted: &str, current: &str) -> bool {
    wanted == current || current.ends_with(&format!("/{wanted}"))
}

/// The settings of `current` that differ from the managed ones of `desired`, by CreateTrailRequest
/// field name.
pub fn setting_changes(
    desired: &pb::CreateTrailRequest,
    current: &pb::Trail,
) -> Vec<pb::TrailChange> {
    let mut changes = Vec::new();
    // `same`: how a wanted value matches what CloudTrail reports (a KMS key by id or ARN).
    let mut text = |field: &str, wanted: &str, now: &str, same: fn(&str, &str) -> bool| {
        if !wanted.is_empty() && !same(wanted, now) {
            changes.push(change(field, now, wanted));
        }
    };
    text(
        "s3_bucket_name",
        &desired.s3_bucket_name,
        &current.s3_bucket_name,
        same_text,
    );
    text(
        "s3_key_prefix",
        &desired.s3_key_prefix,
        &current.s3_key_prefix,
        same_text,
    );
    // A topic is wanted by name or ARN; CloudTrail reports both.
    let topic_now = if desired.sns_topic_name.starts_with("arn:") {
        &current.sns_topic_arn
    } else {
        &current.sns_topic_name
    };
    text(
        "sns_topic_name",
        &desired.sns_topic_name,
        topic_now,
        same_text,
    );
    text(
        "cloud_watch_logs_log_group_arn",
        &desired.cloud_watch_logs_log_group_arn,
        &current.cloud_watch_logs_log_group_arn,
        same_text,
    );
    text(
        "cloud_watch_logs_role_arn",
        &desired.cloud_watch_logs_role_arn,
        &current.cloud_watch_logs_role_arn,
        same_text,
    );
    text(
        "kms_key_id",
        &desired.kms_key_id,
        &current.kms_key_id,
        same_key,
    );
    let mut flag = |field: &str, wanted: Option<bool>, now: Option<bool>| {
        if let Some(wanted) = wanted
            && wanted != now.unwrap_or(false)
        {
            changes.push(change(field, bool_text(now), wanted.to_string()));
        }
    };
    flag(
        "include_global_service_events",
        desired.include_global_service_events,
        current.include_global_service_events,
    );
    flag(
        "is_multi_region_trail",
        desired.is_multi_region_trail,
        current.is_multi_region_trail,
    );
    flag(
        "enable_log_file_validation",
        desired.enable_log_file_validation,
        current.log_file_validation_enabled,
    );
    flag(
        "is_organization_trail",
        desired.is_organization_trail,
        current.is_organization_trail,
    );
    flag(
        "recursive_logging",
        desired.recursive_logging,
        current.recursive_logging,
    );
    changes
}

/// The UpdateTrail that makes `changes` (from `setting_changes`) to the trail `arn`.
pub fn update_call(
    desired: &pb::CreateTrailRequest,
    arn: &str,
    changes: &[pb::TrailChange],
    call: UpdateTrailFluentBuilder,
) -> UpdateTrailFluentBuilder {
    let changed = |field: &str| changes.iter().any(|c| c.field == field);
    let text = |field: &str, value: &str| changed(field).then(|| value.to_owned());
    let flag = |field: &str, value: Option<bool>| value.filter(|_| changed(field));
    call.name(arn)
        .set_s3_bucket_name(text("s3_bucket_name", &desired.s3_bucket_name))
        .set_s3_key_prefix(text("s3_key_prefix", &desired.s3_key_prefix))
        .set_sns_topic_name(text("sns_topic_name", &desired.sns_topic_name))
        .set_cloud_watch_logs_log_group_arn(text(
            "cloud_watch_logs_log_group_arn",
            &desired.cloud_watch_logs_log_group_arn,
        ))
        .set_cloud_watch_logs_role_arn(text(
            "cloud_watch_logs_role_arn",
            &desired.cloud_watch_logs_role_arn,
        ))
        .set_kms_key_id(text("kms_key_id", &desired.kms_key_id))
        .set_include_global_service_events(flag(
            "include_global_service_events",
            desired.include_global_service_events,
        ))
        .set_is_multi_region_trail(flag("is_multi_region_trail", desired.is_multi_region_trail))
        .set_enable_log_file_validation(flag(
            "enable_log_file_validation",
            desired.enable_log_file_validation,
        ))
        .set_is_organization_trail(flag("is_organization_trail", desired.is_organization_trail))
        .set_recursive_logging(flag("recursive_logging", desired.recursive_logging))
}

/// The CreateTrail of the desired trail, with its tags.
pub fn create_call(
    desired: &Desired,
    call: CreateTrailFluentBuilder,
) -> Result<CreateTrailFluentBuilder, Error> {
    let request = pb::CreateTrailRequest {
        tags_list: desired.tags.clone().unwrap_or_default(),
        ..desired.trail.clone()
    };
    trails::create_trail(request, call)
}

/// A selector as the proto's JSON writes it (lowerCamelCase, enum value names), so a change reads
/// like the request a caller sent.
fn basic_json(s: &pb::EventSelector) -> Value {
    let rw = match s.read_write_type() {
        pb::ReadWriteType::Unspecified => pb::ReadWriteType::All,
        other => other,
    };
    let mut resources: Vec<Value> = s
        .data_resources
        .iter()
        .map(|r| {
            let mut values = r.values.clone();
            values.sort();
            json!({"type": r.r#type, "values": values})
        })
        .collect();
    resources.sort_by_key(Value::to_string);
    let mut excluded = s.exclude_management_event_sources.clone();
    excluded.sort();
    json!({
        "readWriteType": rw.as_str_name(),
        "includeManagementEvents": s.include_management_events.unwrap_or(true),
        "dataResources": resources,
        "excludeManagementEventSources": excluded,
    })
}

fn advanced_json(s: &pb::AdvancedEventSelector) -> Value {
    let sorted = |list: &[String]| {
        let mut list = list.to_vec();
        list.sort();
        list
    };
    let mut fields: Vec<Value> = s
        .field_selectors
        .iter()
        .map(|f| {
            json!({
                "field": f.field,
                "equals": sorted(&f.equals),
                "startsWith": sorted(&f.starts_with),
                "endsWith": sorted(&f.ends_with),
                "notEquals": sorted(&f.not_equals),
                "notStartsWith": sorted(&f.not_starts_with),
                "notEndsWith": sorted(&f.not_ends_with),
            })
        })
        .collect();
    fields.sort_by_key(Value::to_string);
    json!({"name": s.name, "fieldSelectors": fields})
}

/// A list as a set: each element's canonical JSON, sorted.
fn set_of(items: impl Iterator<Item = Value>) -> Vec<String> {
    let mut set: Vec<String> = items.map(|v| v.to_string()).collect();
    set.sort();
    set
}

fn text_of(set: &[String]) -> String {
    format!("[{}]", set.join(","))
}

/// CloudTrail's selectors for a trail nobody set any on.
pub fn default_selectors() -> pb::GetEventSelectorsResponse {
    pb::GetEventSelectorsResponse {
        event_selectors: vec![pb::EventSelector {
            read_write_type: pb::ReadWriteType::All.into(),
            include_management_events: Some(true),
            ..Default::default()
        }],
        ..Default::default()
    }
}

/// How `current` differs from the wanted selectors, if it does.
pub fn selectors_change(
    wanted: &Selectors,
    current: &pb::GetEventSelectorsResponse,
) -> Option<pb::TrailChange> {
    let now_basic = set_of(current.event_selectors.iter().map(basic_json));
    let now_advanced = set_of(current.advanced_event_selectors.iter().map(advanced_json));
    let (field, want, now) = match wanted {
        Selectors::Basic(list) => (
            "event_selectors",
            set_of(list.iter().map(basic_json)),
            now_basic.clone(),
        ),
        Selectors::Advanced(list) => (
            "advanced_event_selectors",
            set_of(list.iter().map(advanced_json)),
            now_advanced.clone(),
        ),
    };
    // The other kind in force is a difference too.
    let other_in_force = match wanted {
        Selectors::Basic(_) => !now_advanced.is_empty(),
        Selectors::Advanced(_) => !now_basic.is_empty(),
    };
    (want != now || other_in_force).then(|| {
        let from = if now_basic.is_empty() {
            text_of(&now_advanced)
        } else {
            text_of(&now_basic)
        };
        change(field, from, text_of(&want))
    })
}

/// The PutEventSelectors of the wanted selectors.
pub fn put_selectors_call(
    wanted: &Selectors,
    arn: &str,
    call: PutEventSelectorsFluentBuilder,
) -> Result<PutEventSelectorsFluentBuilder, Error> {
    let (event_selectors, advanced_event_selectors) = match wanted {
        Selectors::Basic(list) => (list.clone(), Vec::new()),
        Selectors::Advanced(list) => (Vec::new(), list.clone()),
    };
    selectors::put_event_selectors(
        pb::PutEventSelectorsRequest {
            trail_name: arn.to_owned(),
            event_selectors,
            advanced_event_selectors,
            request_id: String::new(),
        },
        call,
    )
}

fn insight_names(list: &[pb::InsightSelector]) -> Vec<String> {
    let mut names: Vec<String> = list
        .iter()
        .map(|s| s.insight_type().as_str_name().to_owned())
        .collect();
    names.sort();
    names.dedup();
    names
}

/// How the Insights types `current` differ from the wanted ones, if they do.
pub fn insights_change(
    wanted: &[pb::InsightSelector],
    current: &[pb::InsightSelector],
) -> Option<pb::TrailChange> {
    let (want, now) = (insight_names(wanted), insight_names(current));
    (want != now).then(|| {
        change(
            "insight_selectors",
            json!(now).to_string(),
            json!(want).to_string(),
        )
    })
}

/// The PutInsightSelectors of the wanted types.
pub fn put_insights_call(
    wanted: &[pb::InsightSelector],
    arn: &str,
    call: PutInsightSelectorsFluentBuilder,
) -> Result<PutInsightSelectorsFluentBuilder, Error> {
    selectors::put_insight_selectors(
        pb::PutInsightSelectorsRequest {
            trail_name: arn.to_owned(),
            insight_selectors: wanted.to_vec(),
            request_id: String::new(),
        },
        call,
    )
}

/// What to add (new keys, changed values) and remove (keys not wanted) to go from `current` to
/// `wanted` (`aws:` keys left alone), with the changes as ApplyTrail reports them.
pub fn tag_changes(
    wanted: &[pb::Tag],
    current: &[pb::Tag],
) -> (Vec<pb::Tag>, Vec<pb::Tag>, Vec<pb::TrailChange>) {
    let value = |t: &pb::Tag| t.value.clone().unwrap_or_default();
    let mut add = Vec::new();
    let mut changes = Vec::new();
    for want in wanted {
        let now = current.iter().find(|t| t.key == want.key);
        if now.map(value) != Some(value(want)) {
            changes.push(change(
                &format!("tags.{}", want.key),
                now.map(value).unwrap_or_default(),
                value(want),
            ));
            add.push(want.clone());
        }
    }
    let remove: Vec<pb::Tag> = current
        .iter()
        .filter(|t| !is_aws_tag(&t.key) && !wanted.iter().any(|w| w.key == t.key))
        .map(|t| pb::Tag {
            key: t.key.clone(),
            value: None,
        })
        .collect();
    for t in &remove {
        let was = current
            .iter()
            .find(|c| c.key == t.key)
            .map(value)
            .unwrap_or_default();
        changes.push(change(&format!("tags.{}", t.key), was, ""));
    }
    (add, remove, changes)
}

/// The ARN CloudTrail gives a trail `name` created in `account` and `region` (for a validate-only
/// plan).
pub fn planned_arn(region: &str, account: &str, name: &str) -> String {
    format!("arn:aws:cloudtrail:{region}:{account}:trail/{name}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn selector(rw: pb::ReadWriteType, values: &[&str]) -> pb::EventSelector {
        pb::EventSelector {
            read_write_type: rw.into(),
            include_management_events: None,
            data_resources: vec![pb::DataResource {
                r#type: "AWS::S3::Object".into(),
                values: values.iter().map(|v| (*v).to_owned()).collect(),
            }],
            exclude_management_event_sources: vec![],
        }
    }

    #[test]
    fn selectors_compare_as_sets_with_defaults_filled_in() {
        let a = selector(
            pb::ReadWriteType::All,
            &["arn:aws:s3:::b/", "arn:aws:s3:::a/"],
        );
        let b = selector(pb::ReadWriteType::ReadOnly, &["arn:aws:s3:::c/"]);
        let wanted = Selectors::Basic(vec![a.clone(), b.clone()]);
        // CloudTrail reports them in another order, values reordered, defaults spelled out.
        let mut a_reported = selector(
            pb::ReadWriteType::All,
            &["arn:aws:s3:::a/", "arn:aws:s3:::b/"],
        );
        a_reported.include_management_events = Some(true);
        let current = pb::GetEventSelectorsResponse {
            event_selectors: vec![b.clone(), a_reported],
            ..Default::default()
        };
        assert_eq!(selectors_change(&wanted, &current), None);
        let unspecified = selector(pb::ReadWriteType::Unspecified, &["arn:aws:s3:::c/"]);
        let current = pb::GetEventSelectorsResponse {
            event_selectors: vec![unspecified],
            ..Default::default()
        };
        let changed = selectors_change(&wanted, &current).expect("differs");
        assert_eq!(changed.field, "event_selectors");
        // Basic wanted, advanced in force: differs.
        let advanced = pb::GetEventSelectorsResponse {
            advanced_event_selectors: vec![pb::AdvancedEventSelector {
                name: "x".into(),
                field_selectors: vec![],
            }],
            ..Default::default()
        };
        assert!(selectors_change(&Selectors::Basic(vec![b]), &advanced).is_some());
        // A new trail's defaults equal a lone default selector.
        let default = pb::EventSelector {
            read_write_type: pb::ReadWriteType::Unspecified.into(),
            ..Default::default()
        };
        assert_eq!(
            selectors_change(&Selectors::Basic(vec![default]), &default_selectors()),
            None
        );
    }

    #[test]
    fn settings_differ_only_where_managed() {
        let current = pb::Trail {
            name: "t".into(),
            s3_bucket_name: "logs".into(),
            s3_key_prefix: "p".into(),
            sns_topic_name: "topic".into(),
            sns_topic_arn: "arn:aws:sns:us-east-1:111111111111:topic".into(),
            kms_key_id: "arn:aws:kms:us-east-1:111111111111:key/1234".into(),
            is_multi_region_trail: Some(false),
            log_file_validation_enabled: Some(true),
            ..Default::default()
        };
        let same = pb::CreateTrailRequest {
            name: "t".into(),
            s3_bucket_name: "logs".into(),
            sns_topic_name: "arn:aws:sns:us-east-1:111111111111:topic".into(),
            kms_key_id: "1234".into(),
            enable_log_file_validation: Some(true),
            ..Default::default()
        };
        assert!(setting_changes(&same, &current).is_empty());
        let other = pb::CreateTrailRequest {
            s3_key_prefix: "q".into(),
            is_multi_region_trail: Some(true),
            ..same.clone()
        };
        let changes = setting_changes(&other, &current);
        let fields: Vec<&str> = changes.iter().map(|c| c.field.as_str()).collect();
        assert_eq!(fields, ["s3_key_prefix", "is_multi_region_trail"]);
        assert_eq!(
            (changes[0].from.as_str(), changes[0].to.as_str()),
            ("p", "q")
        );
    }

    #[test]
    fn tags_are_made_exact_leaving_aws_keys_alone() {
        let tag = |k: &str, v: &str| pb::Tag {
            key: k.into(),
            value: Some(v.into()),
        };
        let current = [
            tag("team", "a"),
            tag("old", "x"),
            tag("aws:cloudformation:stack", "s"),
        ];
        let wanted = [tag("team", "b"), tag("new", "y")];
        let (add, remove, changes) = tag_changes(&wanted, &current);
        assert_eq!(add.len(), 2);
        assert_eq!(
            remove.iter().map(|t| t.key.as_str()).collect::<Vec<_>>(),
            ["old"]
        );
        assert_eq!(changes.len(), 3);
        let (add, remove, changes) = tag_changes(&current[..1], &current[..1]);
        assert!(add.is_empty() && remove.is_empty() && changes.is_empty());
    }

    #[test]
    fn the_request_is_checked_as_a_whole() {
        let request = pb::ApplyTrailRequest {
            trail: Some(pb::CreateTrailRequest {
                name: "a--b".into(),
                tags_list: vec![pb::Tag::default()],
                ..Default::default()
            }),
            event_selectors: Some(pb::EventSelectorList::default()),
            advanced_event_selectors: Some(pb::AdvancedEventSelectorList::default()),
            ..Default::default()
        };
        let Err(Error::InvalidArgument(v)) = check(request) else {
            panic!("accepted");
        };
        let fields: Vec<&str> = v.iter().map(|f| f.field.as_str()).collect();
        for field in [
            "trail.name",
            "trail.s3_bucket_name",
            "trail.tags_list",
            "advanced_event_selectors",
        ] {
            assert!(fields.contains(&field), "{field} not in {fields:?}");
        }
    }
}
