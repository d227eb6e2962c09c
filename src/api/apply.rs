//! ApplyTrail: read what is there, make only the writes that differ, answer with the trail as it now
//! stands and the changes made. Each CloudTrail call goes through `Gateway::upstream` like any RPC's
//! (the caller's session, the quota, the deadline), with propagation errors always retried; after a
//! create, "not found" too (the new trail may not be visible yet). What to compare and how to write it
//! is `convert::apply`'s.

use aws_sdk_cloudtrail::Client;

use super::{CallContext, Gateway, Operation::*, Retries, unrouted};
use crate::{
    convert::{apply as plan, tags},
    error::Error,
    pb,
};

impl Gateway {
    pub(super) async fn apply(
        &self,
        context: &CallContext,
        client: &Client,
        request: pb::ApplyTrailRequest,
    ) -> Result<pb::ApplyTrailResponse, Error> {
        let desired = plan::check(request)?;
        let target = context.target.as_ref().ok_or_else(unrouted)?;
        let write = !desired.validate_only;
        let name = desired.trail.name.clone();
        let mut changes = Vec::new();

        let get = client.get_trail().name(&name);
        let existing = match self
            .upstream(GetTrail, context, get, Retries::Propagation)
            .await
        {
            Ok(found) => found.trail.map(pb::Trail::from),
            Err(e) if e.is_aws("TrailNotFoundException") => None,
            Err(e) => return Err(e),
        };
        let created = existing.is_none();
        let arn = match &existing {
            Some(trail) => {
                let settings = plan::setting_changes(&desired.trail, trail);
                if write && !settings.is_empty() {
                    let call = plan::update_call(
                        &desired.trail,
                        &trail.trail_arn,
                        &settings,
                        client.update_trail(),
                    );
                    self.upstream(UpdateTrail, context, call, Retries::Propagation)
                        .await?;
                }
                changes.extend(settings);
                trail.trail_arn.clone()
            }
            None => {
                let planned = plan::planned_arn(&target.region, &target.account, &name);
                changes.push(plan::change("trail", "", planned.as_str()));
                let (_, _, tag_changes) =
                    plan::tag_changes(desired.tags.as_deref().unwrap_or_default(), &[]);
                changes.extend(tag_changes);
                if !write {
                    planned
                } else {
                    let call = plan::create_call(&desired, client.create_trail())?;
                    let out = self
                        .upstream(CreateTrail, context, call, Retries::Propagation)
                        .await?;
                    out.trail_arn.unwrap_or(planned)
                }
            }
        };
        // What follows a create may not see the new trail at once.
        let retries = if created {
            Retries::AfterCreate
        } else {
            Retries::Propagation
        };

        let mut is_logging = None;
        if let Some(wanted) = desired.logging {
            let now = if created {
                false
            } else {
                let call = client.get_trail_status().name(&arn);
                let status = self
                    .upstream(GetTrailStatus, context, call, retries)
                    .await?;
                status.is_logging.unwrap_or(false)
            };
            if now != wanted {
                changes.push(plan::change("logging", now.to_string(), wanted.to_string()));
                if write && wanted {
                    let call = client.start_logging().name(&arn);
                    self.upstream(StartLogging, context, call, retries).await?;
                } else if write {
                    let call = client.stop_logging().name(&arn);
                    self.upstream(StopLogging, context, call, retries).await?;
                }
            }
            is_logging = Some(if write { wanted } else { now });
        }

        if let Some(wanted) = &desired.selectors {
            let now = if created {
                plan::default_selectors()
            } else {
                let call = client.get_event_selectors().trail_name(&arn);
                pb::GetEventSelectorsResponse::from(
                    self.upstream(GetEventSelectors, context, call, retries)
                        .await?,
                )
            };
            if let Some(change) = plan::selectors_change(wanted, &now) {
                if write {
                    let call =
                        plan::put_selectors_call(wanted, &arn, client.put_event_selectors())?;
                    self.upstream(PutEventSelectors, context, call, retries)
                        .await?;
                }
                changes.push(change);
            }
        }

        if let Some(wanted) = &desired.insights {
            let now = if created {
                Vec::new()
            } else {
                let call = client.get_insight_selectors().trail_name(&arn);
                match self
                    .upstream(GetInsightSelectors, context, call, retries)
                    .await
                {
                    Ok(found) => pb::GetInsightSelectorsResponse::from(found).insight_selectors,
                    Err(e) if e.is_aws("InsightNotEnabledException") => Vec::new(),
                    Err(e) => return Err(e),
                }
            };
            if let Some(change) = plan::insights_change(wanted, &now) {
                if write {
                    let call =
                        plan::put_insights_call(wanted, &arn, client.put_insight_selectors())?;
                    self.upstream(PutInsightSelectors, context, call, retries)
                        .await?;
                }
                changes.push(change);
            }
        }

        // A new trail got its tags in CreateTrail.
        if let (Some(wanted), false) = (&desired.tags, created) {
            let call = client.list_tags().resource_id_list(&arn);
            let listed =
                pb::ListTagsResponse::from(self.upstream(ListTags, context, call, retries).await?);
            let now: Vec<pb::Tag> = listed
                .resource_tag_list
                .into_iter()
                .filter(|r| r.resource_id == arn)
                .flat_map(|r| r.tags_list)
                .collect();
            let (add, remove, tag_changes) = plan::tag_changes(wanted, &now);
            if write && !remove.is_empty() {
                let request = pb::RemoveTagsRequest {
                    resource_id: arn.clone(),
                    tags_list: remove,
                    request_id: String::new(),
                };
                let call = tags::remove_tags(request, client.remove_tags())?;
                self.upstream(RemoveTags, context, call, retries).await?;
            }
            if write && !add.is_empty() {
                let request = pb::AddTagsRequest {
                    resource_id: arn.clone(),
                    tags_list: add,
                    request_id: String::new(),
                };
                let call = tags::add_tags(request, client.add_tags())?;
                self.upstream(AddTags, context, call, retries).await?;
            }
            changes.extend(tag_changes);
        }

        let wrote = write && !changes.is_empty();
        if wrote {
            self.changed(ApplyTrail, target).await;
        }
        // The trail as it now stands: read again only when something was written.
        let trail = match (wrote, existing) {
            (false, existing) => existing,
            (true, _) => {
                let call = client.get_trail().name(&arn);
                let found = self.upstream(GetTrail, context, call, retries).await?;
                found.trail.map(pb::Trail::from)
            }
        };
        Ok(pb::ApplyTrailResponse {
            trail,
            is_logging,
            changes,
        })
    }
}
