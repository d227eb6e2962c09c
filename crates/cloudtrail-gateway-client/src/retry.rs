//! When to send a call again, and after how long.

use std::time::Duration;

use tonic::{Code, Status};
use tonic_types::StatusExt;

/// How calls are retried. Unary calls: on UNAVAILABLE (the gateway or the way to it is down or
/// draining) and RESOURCE_EXHAUSTED (a quota: nothing was sent upstream), mutations only with a
/// request id, within the call's deadline. Event streams resume after any break of the
/// connection, a drain or a reader that fell behind.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts of a unary call, the first included (1: no retry).
    pub max_attempts: u32,
    /// The first wait when the gateway gives no `RetryInfo`; doubled per attempt.
    pub initial_backoff: Duration,
    /// The longest wait. A `RetryInfo` asking for longer ends the call with its status (the
    /// quota is spent for a while: the caller should know).
    pub max_backoff: Duration,
    /// Attempts in a row an event stream makes to resume without receiving a message.
    pub max_stream_resumes: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(10),
            max_stream_resumes: 10,
        }
    }
}

impl RetryPolicy {
    /// No retries, no resumes.
    pub fn none() -> Self {
        RetryPolicy {
            max_attempts: 1,
            max_stream_resumes: 0,
            ..Default::default()
        }
    }

    /// The wait before the next attempt of a unary call that failed with `status` on attempt
    /// `attempt`, or None: answer with `status`.
    pub(crate) fn unary_wait(
        &self,
        status: &Status,
        attempt: u32,
        left: Duration,
        may_retry: bool,
    ) -> Option<Duration> {
        let retryable = matches!(status.code(), Code::Unavailable | Code::ResourceExhausted);
        if !may_retry || !retryable || attempt >= self.max_attempts {
            return None;
        }
        let wait = self.wait(told(status), attempt, rand::random())?;
        // A retry that could not finish in time only turns the real error into DEADLINE_EXCEEDED.
        (wait < left).then_some(wait)
    }

    /// The wait before an event stream's `failures`-th resume in a row after `status`, or None:
    /// end the stream with `status`.
    pub(crate) fn resume_wait(&self, status: &Status, failures: u32) -> Option<Duration> {
        // A broken connection arrives as UNKNOWN or INTERNAL (an h2 error), not only UNAVAILABLE;
        // ABORTED is a reader that fell behind its feed.
        let resumable = matches!(
            status.code(),
            Code::Unavailable
                | Code::ResourceExhausted
                | Code::Aborted
                | Code::Internal
                | Code::Unknown
        );
        if !resumable || failures > self.max_stream_resumes {
            return None;
        }
        // The first resume (a drain, a slow reader) at once; then backing off.
        if failures == 1 && told(status).is_none() {
            return Some(Duration::ZERO);
        }
        self.wait(told(status), failures, rand::random())
    }

    /// `told`: the gateway's RetryInfo; `r` in [0, 1) spreads callers apart.
    fn wait(&self, told: Option<Duration>, attempt: u32, r: f64) -> Option<Duration> {
        match told {
            // Never earlier than told (it would only be refused again), up to a fifth later.
            Some(told) if told > self.max_backoff => None,
            Some(told) => Some((told + told.mul_f64(0.2 * r)).min(self.max_backoff)),
            // Exponential, "equal jitter": between half and all of the step.
            None => {
                let step = self
                    .initial_backoff
                    .saturating_mul(1 << attempt.saturating_sub(1).min(16))
                    .min(self.max_backoff);
                Some(step.mul_f64(0.5 + 0.5 * r))
            }
        }
    }
}

/// The wait the gateway asked for in RetryInfo.
fn told(status: &Status) -> Option<Duration> {
    status.get_details_retry_info()?.retry_delay
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic_types::{ErrorDetails, StatusExt};

    fn exhausted(after: Duration) -> Status {
        Status::with_error_details(
            Code::ResourceExhausted,
            "quota",
            ErrorDetails::with_retry_info(Some(after)),
        )
    }

    #[test]
    fn waits_what_retry_info_says_never_less_and_jittered() {
        let policy = RetryPolicy::default();
        let left = Duration::from_secs(30);
        let status = exhausted(Duration::from_millis(800));
        let waits: Vec<Duration> = (0..50)
            .map(|_| policy.unary_wait(&status, 1, left, true).expect("retried"))
            .collect();
        assert!(waits.iter().all(|w| *w >= Duration::from_millis(800)));
        assert!(waits.iter().all(|w| *w <= Duration::from_millis(960)));
        assert!(waits.iter().any(|w| *w != waits[0]), "jittered");
    }

    #[test]
    fn gives_up_when_told_to_wait_too_long_past_the_deadline_or_the_attempts() {
        let policy = RetryPolicy::default();
        let long = exhausted(Duration::from_secs(60));
        assert_eq!(policy.unary_wait(&long, 1, Duration::MAX, true), None);
        let short = exhausted(Duration::from_secs(2));
        assert_eq!(
            policy.unary_wait(&short, 1, Duration::from_secs(1), true),
            None
        );
        assert_eq!(policy.unary_wait(&short, 5, Duration::MAX, true), None);
    }

    #[test]
    fn retries_only_what_is_safe_and_retryable() {
        let policy = RetryPolicy::default();
        let unavailable = Status::unavailable("down");
        assert!(
            policy
                .unary_wait(&unavailable, 1, Duration::MAX, true)
                .is_some()
        );
        // A mutation without a request id is never sent twice.
        assert_eq!(
            policy.unary_wait(&unavailable, 1, Duration::MAX, false),
            None
        );
        for status in [
            Status::invalid_argument("bad"),
            Status::not_found("no trail"),
            Status::internal("bug"),
            Status::deadline_exceeded("late"),
        ] {
            assert_eq!(policy.unary_wait(&status, 1, Duration::MAX, true), None);
        }
    }

    #[test]
    fn backs_off_exponentially_without_retry_info() {
        let policy = RetryPolicy::default();
        let steps: Vec<Duration> = (1..=8)
            .map(|attempt| policy.wait(None, attempt, 0.999).expect("a wait"))
            .collect();
        assert!(steps.windows(2).all(|w| w[0] <= w[1]));
        assert!(steps[0] < Duration::from_millis(100));
        assert_eq!(
            *steps.last().unwrap(),
            Duration::from_secs(10).mul_f64(0.9995)
        );
        assert_eq!(policy.wait(None, 1, 0.0), Some(Duration::from_millis(50)));
    }

    #[test]
    fn streams_resume_after_breaks_but_not_after_refusals() {
        let policy = RetryPolicy::default();
        assert_eq!(
            policy.resume_wait(&Status::unavailable("draining"), 1),
            Some(Duration::ZERO)
        );
        assert!(
            policy
                .resume_wait(&Status::unknown("h2 protocol error"), 3)
                .is_some()
        );
        assert_eq!(
            policy.resume_wait(&Status::invalid_argument("bad cursor"), 1),
            None
        );
        assert_eq!(policy.resume_wait(&Status::unavailable("down"), 11), None);
        assert_eq!(
            RetryPolicy::none().resume_wait(&Status::unavailable("x"), 1),
            None
        );
    }
}
