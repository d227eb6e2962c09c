//! ApplyTrail: read what is there, make only the writes that differ, answer with the trail as it now
//! stands and the changes made. Each CloudTrail call goes through `Gateway::upstream` like any RPC's
//! (the caller's session, the quota, the deadline), with propagation errors always retried; after a
//! create, "not found" too (the new trail may not be visible yet). What to compare and how to write it
//! is `convert::apply`'s.
//!
//! ApplyTrail is authorized as the calls it makes: each read as that read (so `validate_only` shows
//! nothing the caller could not Get), and every write it plans before the first is made (so a
//! caller without StopLogging cannot stop logging through it, and a refusal leaves nothing half
//! applied). A refusal names the grant that is missing.

use aws_sdk_cloudtrail::Client;

use super::{
    Gateway, Operation, Operation::*, Retries, Routed, route::target_refused, sendable::Sendable,
};
use crate::{
    convert::{apply as plan, tags},
    error::Error,
    pb,
};

/// A write ApplyTrail will make, once every one is known to be allowed.
enum Write<'a> {
    Create,
    Update(Vec<pb::TrailChange>),
    Logging(bool),
    Selectors(&'a plan::Selectors),
    Insights(&'a [pb::InsightSelector]),
    RemoveTags(Vec<pb::Tag>),
    AddTags(Vec<pb::Tag>),
}

impl Write<'_> {
    fn operation(&self) -> Operation {
        match self {
            Write::Create => CreateTrail,
            Write::Update(_) => UpdateTrail,
            Write::Logging(true) => StartLogging,
            Write::Logging(false) => StopLogging,
            Write::Selectors(_) => PutEventSelectors,
            Write::Insights(_) => PutInsightSelectors,
            Write::RemoveTags(_) => RemoveTags,
            Write::AddTags(_) => AddTags,
        }
    }
}

impl Gateway {
    /// One of ApplyTrail's calls, made only if the caller may make it itself.
    async fn as_caller<B: Sendable>(
        &self,
        operation: Operation,
        context: Routed<'_>,
        call: B,
        retries: Retries,
    ) -> Result<B::Output, Error> {
        self.may_apply(operation, context)?;
        self.upstream(operation, context, call, retries).await
    }

    /// PERMISSION_DENIED naming `operation` when the caller may not call it where ApplyTrail goes.
    fn may_apply(&self, operation: Operation, context: Routed<'_>) -> Result<(), Error> {
        let target = context.target;
        match &context.caller {
            Some(principal) if !self.allows(operation, principal, target) => Err(target_refused(
                "ApplyTrailNeedsGrant",
                format!(
                    "ApplyTrail would call {operation} in account {}, Region {}, which principal '{}' may not call",
                    target.account, target.region, principal.name
                ),
            )),
            _ => Ok(()),
        }
    }

    pub(super) async fn apply(
        &self,
        context: Routed<'_>,
        client: &Client,
        request: pb::ApplyTrailRequest,
    ) -> Result<pb::ApplyTrailResponse, Error> {
        let desired = plan::check(request)?;
        let target = context.target;
        let name = desired.trail.name.clone();
        let mut changes = Vec::new();
        let mut writes = Vec::new();

        // Read what is there (a new trail: nothing to read) and plan the writes.
        let get = client.get_trail().name(&name);
        let existing = match self
            .as_caller(GetTrail, context, get, Retries::Propagation)
            .await
        {
            Ok(found) => found.trail.map(pb::Trail::from),
            Err(e) if e.is_aws("TrailNotFoundException") => None,
            Err(e) => return Err(e),
        };
        let created = existing.is_none();
        let planned_arn = plan::planned_arn(&target.region, &target.account, &name);
        let arn = match &existing {
            Some(trail) => {
                let settings = plan::setting_changes(&desired.trail, trail);
                if !settings.is_empty() {
                    changes.extend(settings.iter().cloned());
                    writes.push(Write::Update(settings));
                }
                trail.trail_arn.clone()
            }
            None => {
                changes.push(plan::change("trail", "", planned_arn.as_str()));
                let (_, _, tag_changes) =
                    plan::tag_changes(desired.tags.as_deref().unwrap_or_default(), &[]);
                changes.extend(tag_changes);
                writes.push(Write::Create);
                planned_arn.clone()
            }
        };
        let retries = Retries::Propagation;

        let mut is_logging = None;
        if let Some(wanted) = desired.logging {
            let now = if created {
                false
            } else {
                let call = client.get_trail_status().name(&arn);
                let status = self
                    .as_caller(GetTrailStatus, context, call, retries)
                    .await?;
                status.is_logging.unwrap_or(false)
            };
            if now != wanted {
                changes.push(plan::change("logging", now.to_string(), wanted.to_string()));
                writes.push(Write::Logging(wanted));
            }
            is_logging = Some(if desired.validate_only { now } else { wanted });
        }

        if let Some(wanted) = &desired.selectors {
            let now = if created {
                plan::default_selectors()
            } else {
                let call = client.get_event_selectors().trail_name(&arn);
                pb::GetEventSelectorsResponse::from(
                    self.as_caller(GetEventSelectors, context, call, retries)
                        .await?,
                )
            };
            if let Some(change) = plan::selectors_change(wanted, &now) {
                changes.push(change);
                writes.push(Write::Selectors(wanted));
            }
        }

        if let Some(wanted) = &desired.insights {
            let now = if created {
                Vec::new()
            } else {
                let call = client.get_insight_selectors().trail_name(&arn);
                match self
                    .as_caller(GetInsightSelectors, context, call, retries)
                    .await
                {
                    Ok(found) => pb::GetInsightSelectorsResponse::from(found).insight_selectors,
                    Err(e) if e.is_aws("InsightNotEnabledException") => Vec::new(),
                    Err(e) => return Err(e),
                }
            };
            if let Some(change) = plan::insights_change(wanted, &now) {
                changes.push(change);
                writes.push(Write::Insights(wanted));
            }
        }

        // A new trail gets its tags in CreateTrail.
        if let (Some(wanted), false) = (&desired.tags, created) {
            let call = client.list_tags().resource_id_list(&arn);
            let listed =
                pb::ListTagsResponse::from(self.as_caller(ListTags, context, call, retries).await?);
            let now: Vec<pb::Tag> = listed
                .resource_tag_list
                .into_iter()
                .filter(|r| r.resource_id == arn)
                .flat_map(|r| r.tags_list)
                .collect();
            let (add, remove, tag_changes) = plan::tag_changes(wanted, &now);
            if !remove.is_empty() {
                writes.push(Write::RemoveTags(remove));
            }
            if !add.is_empty() {
                writes.push(Write::AddTags(add));
            }
            changes.extend(tag_changes);
        }

        // Every write allowed, or none made.
        for write in &writes {
            self.may_apply(write.operation(), context)?;
        }
        if desired.validate_only {
            return Ok(pb::ApplyTrailResponse {
                trail: existing,
                is_logging,
                changes,
            });
        }
        let mut arn = arn;
        // What follows a create may not see the new trail at once.
        let retries = if created {
            Retries::AfterCreate
        } else {
            Retries::Propagation
        };
        for write in writes {
            let operation = write.operation();
            match write {
                Write::Create => {
                    let call = plan::create_call(&desired, client.create_trail())?;
                    let out = self
                        .upstream(operation, context, call, Retries::Propagation)
                        .await?;
                    arn = out.trail_arn.unwrap_or(planned_arn.clone());
                }
                Write::Update(settings) => {
                    let call =
                        plan::update_call(&desired.trail, &arn, &settings, client.update_trail());
                    self.upstream(operation, context, call, Retries::Propagation)
                        .await?;
                }
                Write::Logging(true) => {
                    let call = client.start_logging().name(&arn);
                    self.upstream(operation, context, call, retries).await?;
                }
                Write::Logging(false) => {
                    let call = client.stop_logging().name(&arn);
                    self.upstream(operation, context, call, retries).await?;
                }
                Write::Selectors(wanted) => {
                    let call =
                        plan::put_selectors_call(wanted, &arn, client.put_event_selectors())?;
                    self.upstream(operation, context, call, retries).await?;
                }
                Write::Insights(wanted) => {
                    let call =
                        plan::put_insights_call(wanted, &arn, client.put_insight_selectors())?;
                    self.upstream(operation, context, call, retries).await?;
                }
                Write::RemoveTags(remove) => {
                    let request = pb::RemoveTagsRequest {
                        resource_id: arn.clone(),
                        tags_list: remove,
                        request_id: String::new(),
                    };
                    let call = tags::remove_tags(request, client.remove_tags())?;
                    self.upstream(operation, context, call, retries).await?;
                }
                Write::AddTags(add) => {
                    let request = pb::AddTagsRequest {
                        resource_id: arn.clone(),
                        tags_list: add,
                        request_id: String::new(),
                    };
                    let call = tags::add_tags(request, client.add_tags())?;
                    self.upstream(operation, context, call, retries).await?;
                }
            }
        }

        let wrote = !changes.is_empty();
        if wrote {
            self.changed(ApplyTrail, target).await;
        }
        // The trail as it now stands: read again only when something was written.
        let trail = match (wrote, existing) {
            (false, existing) => existing,
            (true, _) => {
                let call = client.get_trail().name(&arn);
                let found = self.as_caller(GetTrail, context, call, retries).await?;
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
