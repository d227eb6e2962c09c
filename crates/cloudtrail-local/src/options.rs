//! How the embedded CloudTrail is set up.

use std::time::Duration;

use crate::quotas::Quotas;

/// How the embedded CloudTrail is set up.
#[derive(Debug, Clone)]
pub struct Options {
    /// The 12-digit account that unknown access keys (and [`LocalCloudTrail::user_key`]) belong to.
    pub account_id: String,
    /// The IAM user that calls with an access key it did not issue are recorded as (moto does the
    /// same: any credentials work).
    pub username: String,
    /// At most this many events are kept per account and Region (oldest dropped first).
    pub event_capacity: usize,
    /// The quotas it enforces per account and Region, answering ThrottlingException beyond them.
    pub quotas: Quotas,
    /// The embedded S3 keeps at most this many bytes of objects; past it the oldest objects
    /// written are evicted (counted by [`LocalCloudTrail::s3_evicted`]).
    pub s3_capacity: u64,
    /// How often logging trails deliver their events as log files (CloudTrail: about every 5
    /// minutes), when [`LocalCloudTrail::spawn_delivery`] runs.
    pub delivery_interval: Duration,
    /// How often validating trails deliver digests (CloudTrail: every hour).
    pub digest_interval: Duration,
    /// A trail's bucket must exist in the embedded S3 (S3BucketDoesNotExistException otherwise),
    /// as in CloudTrail; by default a missing bucket is made.
    pub strict_buckets: bool,
    /// The organization `account_id` manages (`o-` and 10 to 32 lowercase letters and digits):
    /// its trails may be organization trails, which log every account of the emulator under
    /// `AWSLogs/<o-id>/<account>/`. `None`: no organization (OrganizationsNotInUseException).
    pub organization_id: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            account_id: "123456789012".into(),
            username: "cloudtrail-local".into(),
            event_capacity: 20_000,
            quotas: Quotas::AWS,
            s3_capacity: 256 << 20,
            delivery_interval: Duration::from_secs(300),
            digest_interval: Duration::from_secs(3600),
            strict_buckets: false,
            organization_id: None,
        }
    }
}
