//! Errors CloudTrail answers while something it depends on is not visible to it yet: a bucket, topic
//! or key policy just written, a CloudWatch Logs role just created (IAM takes seconds to minutes to
//! propagate), a change still settling (ConflictException), or a trail just created that another
//! Region's endpoint does not see yet. Retrying with backoff, within the caller's deadline, turns
//! those into success; anything else is answered at once.

use std::time::Duration;

use crate::error::Error;

/// Whether `error` is one propagation can explain. TrailNotFound counts only `after_create` (the
/// call follows a create of the same trail).
pub fn is_propagating(error: &Error, after_create: bool) -> bool {
    let Error::Upstream(up) = error else {
        return false;
    };
    let denied = || up.message.to_ascii_lowercase().contains("access denied");
    match up.reason.as_str() {
        "InsufficientS3BucketPolicyException"
        | "InsufficientSnsTopicPolicyException"
        | "InsufficientEncryptionPolicyException"
        | "CloudWatchLogsDeliveryUnavailableException"
        | "ConflictException" => true,
        "InvalidCloudWatchLogsRoleArnException" | "InvalidCloudWatchLogsLogGroupArnException" => {
            denied()
        }
        "KmsException" => denied(),
        "TrailNotFoundException" | "ResourceNotFoundException" => after_create,
        _ => false,
    }
}

/// Waits between attempts: 250 ms doubling to 4 s, each with up to a fifth more of jitter (replicas
/// and trails retrying together spread out).
#[derive(Debug)]
pub struct Backoff {
    next: Duration,
}

const FIRST: Duration = Duration::from_millis(250);
const MOST: Duration = Duration::from_secs(4);

impl Default for Backoff {
    fn default() -> Self {
        Backoff { next: FIRST }
    }
}

impl Backoff {
    /// The next wait.
    pub fn next(&mut self) -> Duration {
        let wait = self.next;
        self.next = (self.next * 2).min(MOST);
        let jitter = rand::random::<f64>() * 0.2;
        wait.mul_f64(1.0 + jitter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::UpstreamError;
    use tonic::Code;

    fn upstream(reason: &str, message: &str) -> Error {
        Error::Upstream(UpstreamError {
            code: Code::FailedPrecondition,
            reason: reason.into(),
            message: message.into(),
            request_id: None,
            http_status: Some(400),
            retry_after: None,
        })
    }

    #[test]
    fn propagation_errors_are_told_apart() {
        assert!(is_propagating(
            &upstream("InsufficientS3BucketPolicyException", "x"),
            false
        ));
        assert!(is_propagating(
            &upstream("ConflictException", "not ready"),
            false
        ));
        assert!(is_propagating(
            &upstream(
                "InvalidCloudWatchLogsRoleArnException",
                "Access denied. Verify..."
            ),
            false
        ));
        assert!(!is_propagating(
            &upstream("InvalidCloudWatchLogsRoleArnException", "not an ARN"),
            false
        ));
        assert!(!is_propagating(
            &upstream("TrailNotFoundException", "x"),
            false
        ));
        assert!(is_propagating(
            &upstream("TrailNotFoundException", "x"),
            true
        ));
        assert!(!is_propagating(
            &upstream("InvalidTrailNameException", "x"),
            true
        ));
        assert!(!is_propagating(&Error::DeadlineExceeded, true));
    }

    #[test]
    fn backoff_doubles_to_a_ceiling() {
        let mut b = Backoff::default();
        let waits: Vec<Duration> = (0..7).map(|_| b.next()).collect();
        assert!(waits[0] >= FIRST && waits[0] <= FIRST.mul_f64(1.2));
        assert!(waits[1] >= FIRST * 2);
        assert!(waits[6] >= MOST && waits[6] <= MOST.mul_f64(1.2));
    }
}
