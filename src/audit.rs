//! The audit log: one structured record per mutating call (and per read with `audit_reads`), on
//! the `cloudtrail_gateway::audit` log target at INFO, whatever its outcome; calls the
//! authorization layer refuses are recorded whatever their RPC. Fields (the README's "Audit log"
//! documents them): `principal`, `auth`, `principal_id` (the name qualified by its source:
//! `token:NAME`, `jwt:ISSUER#SUB`, `certificate:NAME`), `account`, `region`, `rpc`, `trail`, `outcome` (`ok`,
//! `error`), `code`, `request_id`, `aws_request_id`, `answer`; the time is the log line's. Never a credential:
//! the principal's name, never its token.

use tonic::Code;

use crate::{limits::coalesce::Source, operation::Operation, principal::Principal, telemetry};

/// How the audit record names where a shared or cached answer came from.
pub fn answer_label(source: Source) -> &'static str {
    match source {
        Source::Upstream => "cloudtrail",
        Source::Coalesced => "shared",
        Source::Cache => "cache",
    }
}

pub const AUDIT_TARGET: &str = "cloudtrail_gateway::audit";

/// Which calls are audited.
#[derive(Debug, Clone, Copy)]
pub struct AuditLog {
    reads: bool,
}

impl AuditLog {
    pub fn new(reads: bool) -> AuditLog {
        AuditLog { reads }
    }

    pub fn wants(&self, operation: Operation) -> bool {
        self.reads || !operation.is_read_only()
    }
}

/// One audited call, finished.
#[derive(Debug)]
pub struct AuditRecord<'a> {
    pub principal: Option<&'a Principal>,
    /// Where the call went (or, refused before that was known, where it asked to go).
    pub account: Option<&'a str>,
    pub region: Option<&'a str>,
    pub operation: Operation,
    /// The trail name or ARN the request named first.
    pub trail: Option<&'a str>,
    pub code: Code,
    /// The gateway's request id.
    pub request_id: Option<&'a str>,
    pub aws_request_id: Option<&'a str>,
    /// Where the answer came from: `cloudtrail` (its own call), `shared` (an identical call of
    /// another caller's, in flight), `cache` (another caller's answer within the read cache's TTL:
    /// CloudTrail's log names that caller, not this one), `replay` (its own earlier answer for
    /// the request id); `None` when none came.
    pub answered: Option<&'a str>,
}

pub fn write(r: &AuditRecord) {
    tracing::info!(
        target: AUDIT_TARGET,
        principal = %r.principal.map_or("anonymous", |p| &*p.name),
        auth = %r.principal.map_or("-", |p| p.method.label()),
        principal_id = %r.principal.map_or("-", |p| &*p.key),
        account = %r.account.unwrap_or("-"),
        region = %r.region.unwrap_or("-"),
        rpc = %r.operation.name(),
        trail = %r.trail.unwrap_or("-"),
        outcome = %if r.code == Code::Ok { "ok" } else { "error" },
        code = %telemetry::code_name(r.code),
        request_id = %r.request_id.unwrap_or("-"),
        aws_request_id = %r.aws_request_id.unwrap_or("-"),
        answer = %r.answered.unwrap_or("-"),
        "audit"
    );
}
