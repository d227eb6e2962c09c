//! What an RPC needs from its request besides the message: the caller's deadline (from the
//! `grpc-timeout` header, `<up to 8 digits><H|M|S|m|u|n>`), the authenticated principal, the request
//! id, the target it asked for in metadata, whether it wants propagation errors retried
//! (`x-cloudtrail-retry: propagation`), and where the access log wants the resolved target.

use std::{ops::Deref, sync::Mutex, time::Duration};

use tonic::{
    Code, Request,
    metadata::{Ascii, MetadataValue},
};

use crate::{
    accounts::{self, Requested, Target},
    audit::AuditRecord,
    error::Error,
    middleware::{observe::CallTarget, trace::REQUEST_ID},
    operation::Operation,
    principal::Principal,
};

pub struct CallContext {
    /// How long the gateway works on the call: the caller's deadline, or the default one.
    pub deadline: Option<Duration>,
    /// Whether the caller set the deadline (`grpc-timeout`); without one, a quota slot is waited
    /// for only briefly (a caller that set none may not be waiting that long at all).
    pub caller_deadline: bool,
    /// Who is calling (None when authentication is off).
    pub caller: Option<Principal>,
    /// The gateway's request id (`x-request-id`).
    pub request_id: Option<MetadataValue<Ascii>>,
    /// The target the metadata asked for (nothing when its keys are malformed)...
    pub asked: Requested,
    /// ...and what is wrong with its keys, until routing reports it.
    pub target_problem: Option<Error>,
    /// Where the call went, once resolved (the audit record's; the steps after routing take a
    /// `Routed`).
    routed_to: Option<Target>,
    /// Retry CloudTrail's propagation errors within the deadline (`x-cloudtrail-retry: propagation`;
    /// ApplyTrail always does).
    pub retry_propagation: bool,
    /// The request id AWS gave the last CloudTrail call made for this one (for the audit record).
    pub aws_request_id: Mutex<Option<String>>,
    /// Where the answer came from (`audit::answer_label`), for the audit record.
    answered: Mutex<Option<&'static str>>,
    /// Whom the call queues as for quota slots, when nobody calls (the gateway's own polls).
    queue: Option<&'static str>,
    noted: Option<CallTarget>,
}

/// Response metadata: where a LookupEvents answer came from, and the event store's watermark.
pub const ANSWERED_FROM_KEY: &str = "x-cloudtrail-answered-from";
pub const WATERMARK_KEY: &str = "x-cloudtrail-store-watermark";

/// The metadata key that asks for propagation errors to be retried, and its value.
pub const RETRY_KEY: &str = "x-cloudtrail-retry";
pub const RETRY_PROPAGATION: &str = "propagation";

impl CallContext {
    /// The request's context; calls without a deadline get `default_deadline`.
    pub fn of<T>(request: &Request<T>, default_deadline: Duration) -> CallContext {
        let caller = deadline(request);
        let (asked, target_problem) = match accounts::requested(request.metadata()) {
            Ok(asked) => (asked, None),
            Err(problem) => (Requested::default(), Some(problem)),
        };
        CallContext {
            deadline: Some(caller.unwrap_or(default_deadline)),
            caller_deadline: caller.is_some(),
            caller: request.extensions().get::<Principal>().cloned(),
            request_id: request.metadata().get(REQUEST_ID.as_str()).cloned(),
            asked,
            target_problem,
            routed_to: None,
            retry_propagation: request.metadata().get(RETRY_KEY).is_some_and(|v| {
                v.as_bytes()
                    .eq_ignore_ascii_case(RETRY_PROPAGATION.as_bytes())
            }),
            aws_request_id: Mutex::new(None),
            answered: Mutex::new(None),
            queue: None,
            noted: request.extensions().get::<CallTarget>().cloned(),
        }
    }

    /// The context of calls the gateway makes on its own (a shared poll), queueing for quota slots
    /// as `queue` (fairly among the callers).
    pub fn internal(queue: &'static str) -> CallContext {
        CallContext {
            deadline: None,
            caller_deadline: false,
            caller: None,
            request_id: None,
            asked: Requested::default(),
            target_problem: None,
            routed_to: None,
            retry_propagation: false,
            aws_request_id: Mutex::new(None),
            answered: Mutex::new(None),
            queue: Some(queue),
            noted: None,
        }
    }

    /// Where the call goes (the access log learns it too).
    pub fn set_target(&mut self, target: Target) {
        if let Some(noted) = &self.noted {
            noted.set(&target);
        }
        self.routed_to = Some(target);
    }

    /// The request id AWS gave the last CloudTrail call made for this one.
    pub fn aws_request_id(&self) -> Option<String> {
        self.aws_request_id
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Notes the request id AWS gave a call made for this one.
    pub fn note_aws_request_id(&self, id: Option<&str>) {
        if let Some(id) = id {
            *self
                .aws_request_id
                .lock()
                .unwrap_or_else(|p| p.into_inner()) = Some(id.to_owned());
        }
    }

    /// Notes where the answer came from: CloudTrail, a call shared with another caller, the read
    /// cache, or a replay of the caller's own request id.
    pub fn note_answered(&self, how: &'static str) {
        *self.answered.lock().unwrap_or_else(|p| p.into_inner()) = Some(how);
    }

    /// The audit record of this call, finished with `code`.
    pub fn audit_record<'a>(
        &'a self,
        operation: Operation,
        trail: Option<&'a str>,
        code: Code,
        aws_request_id: Option<&'a str>,
    ) -> AuditRecord<'a> {
        // Refused before routing: where it asked to go.
        let (account, region) = match &self.routed_to {
            Some(t) => (Some(&*t.account), Some(&*t.region)),
            None => (self.asked.account.as_deref(), self.asked.region.as_deref()),
        };
        AuditRecord {
            principal: self.caller.as_ref(),
            account,
            region,
            operation,
            trail,
            code,
            request_id: self.request_id.as_ref().and_then(|v| v.to_str().ok()),
            aws_request_id,
            answered: *self.answered.lock().unwrap_or_else(|p| p.into_inner()),
        }
    }

    pub fn principal_name(&self) -> &str {
        match (&self.caller, self.queue) {
            (Some(p), _) => &p.key,
            (None, Some(queue)) => queue,
            (None, None) => crate::principal::ANONYMOUS,
        }
    }
}

/// A call past routing: its context and where it goes. The steps after `route` (sending, the
/// caches, ApplyTrail, StreamEvents) take one, so none of them can run without a target.
#[derive(Clone, Copy)]
pub struct Routed<'a> {
    pub context: &'a CallContext,
    pub target: &'a Target,
}

impl<'a> Routed<'a> {
    pub fn new(context: &'a CallContext, target: &'a Target) -> Self {
        Routed { context, target }
    }
}

impl Deref for Routed<'_> {
    type Target = CallContext;

    fn deref(&self) -> &CallContext {
        self.context
    }
}

/// A little less than the caller's deadline (5%, at most 50 ms): tonic's own timeout layer answers
/// CANCELLED at the deadline itself, and the caller should rather get DEADLINE_EXCEEDED with details.
fn deadline<T>(request: &Request<T>) -> Option<Duration> {
    let deadline = parse(request.metadata().get("grpc-timeout")?.to_str().ok()?)?;
    Some(deadline - (deadline / 20).min(Duration::from_millis(50)))
}

fn parse(value: &str) -> Option<Duration> {
    if value.len() < 2 || value.len() > 9 {
        return None;
    }
    let (digits, unit) = value.split_at(value.len() - 1);
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n.checked_mul(3600)?),
        "M" => Duration::from_secs(n.checked_mul(60)?),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::parse;
    use std::time::Duration;

    #[test]
    fn grpc_timeout_units() {
        assert_eq!(parse("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(parse("250m"), Some(Duration::from_millis(250)));
        assert_eq!(parse("99999999u"), Some(Duration::from_micros(99_999_999)));
        assert_eq!(parse("5n"), Some(Duration::from_nanos(5)));
        for bad in ["", "S", "10", "123456789S", "10x", "-1S"] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }
}
