//! Tags of trails (by ARN, homed in the calling Region): fifty at most, keys unique, CloudTrail's
//! limits and messages.

use serde_json::{Value, json};

use super::trail::*;
use crate::{
    ctx::Ctx,
    rules::{self, Arn},
    wire::ApiError,
};

impl Trails {
    /// The trail a tag operation names: a trail ARN homed in this Region.
    pub(super) fn tagged_mut(
        &mut self,
        ctx: &Ctx,
        resource_id: &str,
    ) -> Result<&mut Trail, ApiError> {
        let parsed = Arn::parse(resource_id).ok_or_else(|| {
            ApiError::new(
                "CloudTrailARNInvalidException",
                format!("Invalid ARN: {resource_id}"),
            )
        })?;
        let resource_missing = || {
            ApiError::new(
                "ResourceNotFoundException",
                format!("Resource not found: {resource_id}"),
            )
        };
        if !parsed.is_trail() || parsed.region != ctx.region {
            return Err(resource_missing());
        }
        self.by_arn
            .get_mut(resource_id)
            .ok_or_else(resource_missing)
    }

    pub fn add_tags(&mut self, ctx: &Ctx, body: &Value) -> Result<Value, ApiError> {
        let tags: Vec<Tag> =
            parse(body.get("TagsList").unwrap_or(&Value::Null)).unwrap_or_default();
        check_tags(&tags)?;
        let trail = self.tagged_mut(ctx, str_field(body, "ResourceId"))?;
        let mut merged = trail.tags.clone();
        for tag in tags {
            match merged.iter_mut().find(|t| t.key == tag.key) {
                Some(existing) => existing.value = tag.value,
                None => merged.push(tag),
            }
        }
        if merged.len() > rules::MAX_TAGS {
            return Err(ApiError::new(
                "TagsLimitExceededException",
                format!(
                    "The number of tags exceeds the limit of {}.",
                    rules::MAX_TAGS
                ),
            ));
        }
        trail.tags = merged;
        Ok(json!({}))
    }

    pub fn remove_tags(&mut self, ctx: &Ctx, body: &Value) -> Result<Value, ApiError> {
        let tags: Vec<Tag> =
            parse(body.get("TagsList").unwrap_or(&Value::Null)).unwrap_or_default();
        let trail = self.tagged_mut(ctx, str_field(body, "ResourceId"))?;
        trail.tags.retain(|t| !tags.iter().any(|r| r.key == t.key));
        Ok(json!({}))
    }

    pub fn list_tags(&mut self, ctx: &Ctx, body: &Value) -> Result<Value, ApiError> {
        let ids: Vec<String> =
            parse(body.get("ResourceIdList").unwrap_or(&Value::Null)).unwrap_or_default();
        if ids.is_empty() || ids.len() > rules::MAX_LIST_TAGS_RESOURCES {
            return Err(ApiError::new(
                "InvalidParameterException",
                format!(
                    "ResourceIdList must have 1 to {} elements.",
                    rules::MAX_LIST_TAGS_RESOURCES
                ),
            ));
        }
        let mut list = Vec::with_capacity(ids.len());
        for id in ids {
            let trail = self.tagged_mut(ctx, &id)?;
            let tags: Vec<Value> = trail
                .tags
                .iter()
                .map(|t| match &t.value {
                    Some(v) => json!({"Key": t.key, "Value": v}),
                    None => json!({"Key": t.key}),
                })
                .collect();
            list.push(json!({"ResourceId": id, "TagsList": tags}));
        }
        Ok(json!({ "ResourceTagList": list }))
    }
}

pub(super) fn check_tags(tags: &[Tag]) -> Result<(), ApiError> {
    let invalid = |m: String| ApiError::new("InvalidTagParameterException", m);
    if tags.len() > rules::MAX_TAGS {
        return Err(ApiError::new(
            "TagsLimitExceededException",
            format!(
                "The number of tags exceeds the limit of {}.",
                rules::MAX_TAGS
            ),
        ));
    }
    for (i, tag) in tags.iter().enumerate() {
        let key_len = tag.key.chars().count();
        if key_len == 0 || key_len > rules::MAX_TAG_KEY {
            return Err(invalid(format!(
                "Tag key length must be 1 to 128 characters: '{}'",
                tag.key
            )));
        }
        if tag
            .value
            .as_deref()
            .is_some_and(|v| v.chars().count() > rules::MAX_TAG_VALUE)
        {
            return Err(invalid(format!(
                "Tag value for key '{}' is longer than 256 characters",
                tag.key
            )));
        }
        if tags[..i].iter().any(|t| t.key == tag.key) {
            return Err(invalid(format!("Duplicate tag key: '{}'", tag.key)));
        }
    }
    Ok(())
}
