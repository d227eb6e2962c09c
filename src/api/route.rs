//! Where a call goes and whether its caller may call there: the target from the request's trail
//! ARNs, its metadata and the defaults (`accounts`), a trail name sent to its home Region (found
//! with ListTrails, kept per account), then the caller's roles and scope at that target.

use Operation::*;
use aws_sdk_cloudtrail::Client;
use tonic::Code;

use super::*;
use crate::{
    accounts::homes::{self, Listed},
    error::{Error, Refused},
    operation::Operation,
    principal::Principal,
    target::Target,
    telemetry::{self},
};

impl Gateway {
    /// Where the call goes (its trail ARNs, else its metadata, else the defaults; a trail name to
    /// the trail's home Region), checked against what the caller may do there; then the client for
    /// that target and caller.
    pub(super) async fn route(
        &self,
        operation: Operation,
        context: &mut CallContext,
        refs: &[String],
    ) -> Result<(Target, Client), Error> {
        if let Some(problem) = context.target_problem.take() {
            return Err(problem);
        }
        let accounts = self.upstream.accounts();
        let mut target = accounts.resolve(context.asked.clone(), refs)?;
        context.set_target(target.clone());
        self.authorize(operation, context.caller.as_ref(), &target)?;
        if let Some(name) = self.named_in_many_regions(operation, &target, refs) {
            // Rare, and its ListTrails pages are a large future: boxed, so that every other call's
            // future stays small (a future is copied whole when it is boxed for tonic).
            let home = Box::pin(self.home_of(Routed::new(context, &target), name)).await?;
            if let Some(home) = home {
                target = accounts.in_region(&target, home)?;
                context.set_target(target.clone());
                self.authorize(operation, context.caller.as_ref(), &target)?;
            }
        }
        let client = self.upstream.client(&target, context.caller.as_ref());
        Ok((target, client))
    }

    /// The trail name a call names by name, when it finds one trail and its account is served in
    /// more than one Region: its home Region may be another.
    fn named_in_many_regions<'r>(
        &self,
        operation: Operation,
        target: &Target,
        refs: &'r [String],
    ) -> Option<&'r str> {
        let [name] = refs else {
            return None;
        };
        let regions = self
            .upstream
            .accounts()
            .account(&target.account)
            .map_or(0, |a| a.regions.len());
        // A name that breaks the rules is refused by the conversion: no ListTrails for it.
        let invalid = crate::convert::rules::trail_name_problem(name).is_some();
        let by_name = operation.finds_one_trail() && !name.starts_with("arn:") && !invalid;
        (by_name && regions >= 2).then_some(name.as_str())
    }

    /// The home Region of trail `name`, when it is another than the call's own.
    async fn home_of(&self, routed: Routed<'_>, name: &str) -> Result<Option<String>, Error> {
        let target = routed.target;
        let client = self.upstream.client(target, routed.caller.as_ref());
        let homes = self
            .homes
            .of(&target.account, self.list_trails(routed, &client))
            .await?;
        Ok(homes::elsewhere(&homes, name, &target.region).map(str::to_owned))
    }

    /// Every trail of the call's account (ListTrails, every page).
    pub(super) async fn list_trails(
        &self,
        routed: Routed<'_>,
        client: &Client,
    ) -> Result<Vec<Listed>, Error> {
        let mut listed = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let call = client.list_trails().set_next_token(token.take());
            let page = self
                .upstream(ListTrails, routed, call, Retries::None)
                .await?;
            listed.extend(page.trails.unwrap_or_default().into_iter().filter_map(|t| {
                Some(Listed {
                    name: t.name?,
                    home_region: t.home_region?,
                })
            }));
            match page.next_token.filter(|t| !t.is_empty()) {
                Some(next) => token = Some(next),
                None => return Ok(listed),
            }
        }
    }

    /// Whether `principal` may call `operation` at `target`: one of its roles allows it there, and
    /// its own scope includes it.
    pub(super) fn allows(
        &self,
        operation: Operation,
        principal: &Principal,
        target: &Target,
    ) -> bool {
        principal.scope.includes(target)
            && self.policy.allows_at(&principal.roles, operation, target)
    }

    /// Whether `caller` may call `operation` at `target` (see `allows`); PERMISSION_DENIED if not.
    /// (The auth layer already checked that some role allows the RPC.)
    pub(super) fn authorize(
        &self,
        operation: Operation,
        caller: Option<&Principal>,
        target: &Target,
    ) -> Result<(), Error> {
        let Some(principal) = caller else {
            return Ok(());
        };
        if self.allows(operation, principal, target) {
            return Ok(());
        }
        Err(target_refused(
            "TargetNotPermitted",
            format!(
                "principal '{}' may not call {} in account {}, Region {}",
                principal.name,
                operation.name(),
                target.account,
                target.region
            ),
        ))
    }
}

/// PERMISSION_DENIED for where a call goes (counted as `target_denied`).
pub(super) fn target_refused(reason: &'static str, message: String) -> Error {
    metrics::counter!(telemetry::AUTH_FAILURES, "reason" => TARGET_DENIED_LABEL).increment(1);
    Refused::new(Code::PermissionDenied, reason, message).into()
}
