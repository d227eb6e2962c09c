//! The tables of the TOML file (`[[accounts]]`, `[[tokens]]`, ...): they have no flags.

use serde::{Deserialize, Serialize};

use super::{accounts, store};
use crate::auth::{certificates::CertificateEntry, policy::RoleEntry, tokens::TokenEntry};

/// The tables of the TOML file, which have no flags.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct FileTables {
    /// `[[accounts]]`: the accounts calls can go to (`id`, `role_arn`, `external_id`,
    /// `session_duration`, `regions`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub accounts: Vec<accounts::AccountEntry>,
    /// `[[tokens]]`: static bearer tokens (`principal`, `sha256`, `roles`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tokens: Vec<TokenEntry>,
    /// `[[certificates]]`: roles of client-certificate identities (`principal`, `roles`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub certificates: Vec<CertificateEntry>,
    /// `[roles]`: custom roles, `name = ["RPC", ...]` or `[roles.name]` with `rpcs`, `accounts`,
    /// `regions`.
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub roles: std::collections::BTreeMap<String, RoleEntry>,
    /// `[[log_sources]]`: buckets of trail log files for the event store (`bucket`, `prefix`,
    /// `region`, `role_arn`, `external_id`, `endpoint_url`, `queue_url`, `accounts`, `regions`, `lookups`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub log_sources: Vec<store::LogSourceEntry>,
    /// `[weights]`: round-robin weights, `principal = weight`.
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub weights: std::collections::BTreeMap<String, u32>,
}

impl FileTables {
    /// Each table's key and what it holds (the README's table lists them; a test checks that every
    /// field is here).
    pub const DESCRIBED: [(&'static str, &'static str); 6] = [
        (
            "[[accounts]]",
            "accounts calls can go to: `id`, `role_arn`, `external_id`, `session_duration` (15m-12h, default 1h), `regions` (the first is the default)",
        ),
        (
            "[[tokens]]",
            "static bearer tokens: `principal`, `sha256` (of the token), `roles`, and optionally `accounts`, `regions` it may call",
        ),
        (
            "[[certificates]]",
            "roles of client-certificate identities: `principal` (SPIFFE id or CN), `roles`, optionally `accounts`, `regions`",
        ),
        (
            "[roles]",
            "custom roles: `name = [\"RPC\", ...]`, or `[roles.name]` with `rpcs` and optionally `accounts`, `regions`",
        ),
        (
            "[[log_sources]]",
            "buckets of trail log files the event store reads: `bucket`, `prefix` (before `AWSLogs/`), `region` (the bucket's), `role_arn` and `external_id` (a role to read as), `endpoint_url` (S3- and SQS-compatible), `queue_url` (the bucket's S3 notifications in SQS: new files found there, not by listing), `accounts`, `regions` (default: all found), `lookups` (auto, store, cloudtrail), `name`",
        ),
        ("[weights]", "round-robin weights: `principal = weight`"),
    ];

    pub(super) fn is_table(key: &str) -> bool {
        Self::DESCRIBED
            .iter()
            .any(|(described, _)| described.trim_matches(['[', ']']) == key)
    }

    /// The tables as TOML, as the file would hold them. Nothing in them is a secret: a token's
    /// SHA-256 is not the token, and an external id is not a secret either (AWS's IAM guide: it
    /// guards against the confused deputy, whoever knows it), so `--print-config` reads back.
    pub fn to_toml(&self) -> String {
        toml::to_string(self).unwrap_or_default()
    }
}
