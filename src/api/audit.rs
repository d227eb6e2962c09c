//! The audit log: one structured record per mutating call (and per read with `audit_reads`), on
//! the `cloudtrail_gateway::audit` log target at INFO, whatever its outcome, refusals included. Its
//! fields (documented in the README, "Audit log"): `principal`, `auth`, `account`, `region`, `rpc`,
//! `trail`, `outcome` (`ok`, `error`), `code`, `request_id`, `aws_request_id`; the time is the log
//! line's. Never a credential: the principal's name, not its token.

use tonic::Code;

use crate::{api::context::CallContext, operation::Operation, telemetry};

pub const AUDIT_TARGET: &str = "cloudtrail_gateway::audit";

#[derive(Debug, Clone, Copy)]
pub struct AuditLog {
    reads: bool,
}

impl AuditLog {
    pub fn new(reads: bool) -> AuditLog {
        AuditLog { reads }
    }

    /// Whether calls of `operation` are audited.
    pub fn wants(&self, operation: Operation) -> bool {
        self.reads || !operation.is_read_only()
    }

    /// Writes the record of a finished call: its status code, and AWS's request id if it got one.
    pub fn record(
        &self,
        operation: Operation,
        context: &CallContext,
        trail: Option<&str>,
        code: Code,
        aws_request_id: Option<&str>,
    ) {
        // Before resolution (a refused target), the account and Region asked for.
        let asked = &context.asked;
        let account = context
            .target
            .as_ref()
            .map(|t| &*t.account)
            .or(asked.account.as_deref());
        let region = context
            .target
            .as_ref()
            .map(|t| &*t.region)
            .or(asked.region.as_deref());
        tracing::info!(
            target: AUDIT_TARGET,
            principal = %context.principal_name(),
            auth = %context.caller.as_ref().map_or("-", |p| p.method.label()),
            account = %account.unwrap_or("-"),
            region = %region.unwrap_or("-"),
            rpc = %operation.name(),
            trail = %trail.unwrap_or("-"),
            outcome = %if code == Code::Ok { "ok" } else { "error" },
            code = %telemetry::code_name(code),
            request_id = %context.request_id.as_ref().and_then(|v| v.to_str().ok()).unwrap_or("-"),
            aws_request_id = %aws_request_id.unwrap_or("-"),
            "audit"
        );
    }
}
