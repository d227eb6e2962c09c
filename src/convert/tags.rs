//! Tags: AddTags, RemoveTags, ListTags.

use aws_sdk_cloudtrail::{
    operation::{
        add_tags::builders::AddTagsFluentBuilder, list_tags::ListTagsOutput,
        list_tags::builders::ListTagsFluentBuilder, remove_tags::builders::RemoveTagsFluentBuilder,
    },
    types,
};

use super::{non_empty, rules};
use crate::{error::Error, error::Violations, pb};

pub fn sdk_tags(tags: Vec<pb::Tag>) -> Vec<types::Tag> {
    tags.into_iter()
        .map(|t| types::Tag::builder().key(t.key).set_value(t.value).build())
        .filter_map(Result::ok) // cannot fail: the key is always set
        .collect()
}

fn pb_tags(tags: Option<Vec<types::Tag>>) -> Vec<pb::Tag> {
    tags.unwrap_or_default()
        .into_iter()
        .map(|t| pb::Tag {
            key: t.key,
            value: t.value,
        })
        .collect()
}

/// AddTags and RemoveTags take the same shape; RemoveTags only looks at the keys.
fn check_tag_request(resource_id: &str, tags: &[pb::Tag], check_values: bool) -> Result<(), Error> {
    let mut v = Violations::default();
    rules::resource_arn(&mut v, "resource_id", resource_id);
    if tags.is_empty() {
        v.add("tags_list", "at least one tag is required");
    }
    rules::tags(
        &mut v,
        "tags_list",
        tags.iter().map(|t| (t.key.as_str(), t.value.as_deref())),
        check_values,
    );
    v.into_result(())
}

pub fn add_tags(
    req: pb::AddTagsRequest,
    call: AddTagsFluentBuilder,
) -> Result<AddTagsFluentBuilder, Error> {
    check_tag_request(&req.resource_id, &req.tags_list, true)?;
    Ok(call
        .resource_id(req.resource_id)
        .set_tags_list(Some(sdk_tags(req.tags_list))))
}

pub fn remove_tags(
    req: pb::RemoveTagsRequest,
    call: RemoveTagsFluentBuilder,
) -> Result<RemoveTagsFluentBuilder, Error> {
    check_tag_request(&req.resource_id, &req.tags_list, false)?;
    Ok(call
        .resource_id(req.resource_id)
        .set_tags_list(Some(sdk_tags(req.tags_list))))
}

pub fn list_tags(
    req: pb::ListTagsRequest,
    call: ListTagsFluentBuilder,
) -> Result<ListTagsFluentBuilder, Error> {
    let mut v = Violations::default();
    let count = req.resource_id_list.len();
    if count == 0 || count > rules::MAX_LIST_TAGS_ARNS {
        v.add(
            "resource_id_list",
            format!(
                "give 1 to {} resource ARNs, got {count}",
                rules::MAX_LIST_TAGS_ARNS
            ),
        );
    }
    for (i, arn) in req.resource_id_list.iter().enumerate() {
        rules::resource_arn(&mut v, &format!("resource_id_list[{i}]"), arn);
    }
    v.into_result(())?;
    Ok(call
        .set_resource_id_list(Some(req.resource_id_list))
        .set_next_token(non_empty(req.next_token)))
}

impl From<ListTagsOutput> for pb::ListTagsResponse {
    fn from(o: ListTagsOutput) -> Self {
        pb::ListTagsResponse {
            resource_tag_list: o
                .resource_tag_list
                .unwrap_or_default()
                .into_iter()
                .map(|r| pb::ResourceTag {
                    resource_id: r.resource_id.unwrap_or_default(),
                    tags_list: pb_tags(r.tags_list),
                })
                .collect(),
            next_token: o.next_token.unwrap_or_default(),
        }
    }
}
