//! How the embedded CloudTrail is set up.

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
}

impl Default for Options {
    fn default() -> Self {
        Options {
            account_id: "123456789012".into(),
            username: "cloudtrail-local".into(),
            event_capacity: 20_000,
            quotas: Quotas::AWS,
        }
    }
}
