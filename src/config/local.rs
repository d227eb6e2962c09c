//! The embedded CloudTrail (`--upstream local`): its account, history and the AWS quotas it enforces.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use clap::{ArgAction, Args};
use cloudtrail_local::{Fault, Options, Quotas};

use super::{
    checks::{ConfigError, account_id, at_least_one, invalid, rate},
    duration::HumanDuration,
    upstream::{UpstreamConfig, UpstreamKind},
};

#[derive(Debug, Args)]
pub struct LocalSettings {
    /// Embedded CloudTrail: the account id in its ARNs.
    #[arg(long, value_name = "ID", default_value = "123456789012")]
    pub local_account_id: String,
    /// Embedded CloudTrail: CloudTrail log files or directories to load at start (repeatable;
    /// comma-separated in the environment variable).
    #[arg(long, value_name = "PATH", value_delimiter = ',')]
    pub local_load_logs: Vec<PathBuf>,
    /// Embedded CloudTrail: a JSON file that keeps its trails (settings, selectors, tags, logging)
    /// across restarts, created when missing [unset: trails live in memory only]. The event
    /// history is not kept.
    #[arg(long, value_name = "FILE")]
    pub local_state_file: Option<PathBuf>,
    /// Embedded CloudTrail: events kept per account and Region, oldest dropped first (about 1.8 KB
    /// each: ~36 MB at the default, which fits a small pod).
    #[arg(long, value_name = "N", default_value = "20000")]
    pub local_event_capacity: usize,
    /// Embedded CloudTrail: its LookupEvents quota per second, as AWS enforces it.
    #[arg(long, value_name = "RATE", default_value = "2")]
    pub local_lookup_quota: f64,
    /// Embedded CloudTrail: its read (Describe/Get/List) quota per second.
    #[arg(long, value_name = "RATE", default_value = "10")]
    pub local_read_quota: f64,
    /// Embedded CloudTrail: its write quota per second.
    #[arg(long, value_name = "RATE", default_value = "1")]
    pub local_write_quota: f64,
    /// Embedded CloudTrail: faults for its next calls, `OPERATION:COUNT:WHAT` (OPERATION `*` for
    /// any; WHAT an AWS error code such as InsufficientS3BucketPolicyException, `delay=2s`,
    /// `status=503`, `reset` or `hang`); repeatable, comma-separated in the environment variable.
    #[arg(long, value_name = "FAULT", value_delimiter = ',')]
    pub local_faults: Vec<String>,
    /// Embedded CloudTrail: also serve its CloudTrail, STS and S3 over plain HTTP on this loopback
    /// address, for boto3 or the AWS CLI (`--endpoint-url http://ADDR`; S3 path-style; signatures
    /// are not checked) [unset: off].
    #[arg(long, value_name = "ADDR")]
    pub local_http_listen: Option<SocketAddr>,
    /// Embedded CloudTrail: how often logging trails deliver their events as log files to their
    /// bucket in the embedded S3 (CloudTrail: about every 5 minutes).
    #[arg(long, value_name = "DURATION", default_value = "5m")]
    pub local_delivery_interval: HumanDuration,
    /// Embedded CloudTrail: how often trails with log file validation deliver signed digests
    /// (CloudTrail: every hour).
    #[arg(long, value_name = "DURATION", default_value = "1h")]
    pub local_digest_interval: HumanDuration,
    /// Embedded CloudTrail: refuse a trail whose bucket is not in the embedded S3
    /// (S3BucketDoesNotExistException), as CloudTrail does; off: the bucket is made for it.
    #[arg(long, value_name = "BOOL", default_value = "false", action = ArgAction::Set)]
    pub local_strict_buckets: bool,
    /// Embedded S3: bytes of objects kept in all; past it the oldest are evicted, with a warning
    /// and cloudtrail_local_s3_evicted_objects_total.
    #[arg(long, value_name = "BYTES", default_value = "268435456")]
    pub local_s3_capacity: u64,
    /// Embedded S3: a directory that keeps its buckets (the delivered files) across restarts,
    /// created when missing [unset: memory only].
    #[arg(long, value_name = "DIR")]
    pub local_s3_dir: Option<PathBuf>,
    /// Embedded CloudTrail: also write the files of --local-load-logs into this bucket of the
    /// embedded S3, in CloudTrail's layout (made when missing) [unset: history only].
    #[arg(long, value_name = "BUCKET")]
    pub local_load_logs_bucket: Option<String>,
    /// Embedded CloudTrail: the id of the organization its account manages (`o-` and 10 to 32
    /// lowercase letters and digits): organization trails log every account's events under
    /// `AWSLogs/<o-id>/<account>/` [unset: no organization, OrganizationsNotInUseException].
    #[arg(long, value_name = "O-ID")]
    pub local_organization_id: Option<String>,
}

/// Faults planned for the embedded CloudTrail: the operation (`None`: any), how many calls, how.
pub type PlannedFault = (Option<String>, u64, Fault);

/// The embedded CloudTrail's options, the log files it loads and the faults planned at start.
#[derive(Debug, Clone)]
pub struct LocalConfig {
    pub options: Options,
    pub load_logs: Vec<PathBuf>,
    pub load_logs_bucket: Option<String>,
    pub state_file: Option<PathBuf>,
    pub faults: Vec<PlannedFault>,
    pub http_listen: Option<SocketAddr>,
    pub s3_dir: Option<PathBuf>,
}

/// `OPERATION:COUNT:WHAT`.
fn fault(spec: &str) -> Result<PlannedFault, String> {
    let mut parts = spec.splitn(3, ':');
    let (Some(operation), Some(count), Some(what)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(format!("'{spec}' is not OPERATION:COUNT:WHAT"));
    };
    let operation = (operation != "*").then(|| operation.to_owned());
    let count: u64 = count
        .parse()
        .map_err(|_| format!("'{spec}': COUNT '{count}' is not a number"))?;
    let fault = match what {
        "reset" => Fault::Reset,
        "hang" => Fault::Hang,
        _ if what.starts_with("delay=") => Fault::Delay(
            what.trim_start_matches("delay=")
                .parse::<super::duration::HumanDuration>()
                .map_err(|e| format!("'{spec}': {e}"))?
                .0,
        ),
        _ if what.starts_with("status=") => Fault::Status(
            what.trim_start_matches("status=")
                .parse()
                .map_err(|_| format!("'{spec}': not an HTTP status"))?,
        ),
        code if !code.is_empty() && code.chars().all(|c| c.is_ascii_alphanumeric()) => {
            Fault::error(code)
        }
        _ => {
            return Err(format!(
                "'{spec}': WHAT is an AWS error code, delay=, status=, reset or hang"
            ));
        }
    };
    Ok((operation, count, fault))
}

impl LocalSettings {
    pub fn check(self, upstream: &UpstreamConfig) -> Result<LocalConfig, ConfigError> {
        account_id("local_account_id", &self.local_account_id)?;
        if upstream.kind == UpstreamKind::Aws && !self.local_load_logs.is_empty() {
            return Err(invalid("local_load_logs", "only with upstream = local"));
        }
        if upstream.kind == UpstreamKind::Aws && !self.local_faults.is_empty() {
            return Err(invalid("local_faults", "only with upstream = local"));
        }
        if upstream.kind == UpstreamKind::Aws && self.local_state_file.is_some() {
            return Err(invalid("local_state_file", "only with upstream = local"));
        }
        if let Some(path) = &self.local_state_file {
            cloudtrail_local::check_state_file(path)
                .map_err(|e| invalid("local_state_file", e.to_string()))?;
        }
        if upstream.kind == UpstreamKind::Aws {
            let set = [
                ("local_http_listen", self.local_http_listen.is_some()),
                ("local_s3_dir", self.local_s3_dir.is_some()),
                (
                    "local_load_logs_bucket",
                    self.local_load_logs_bucket.is_some(),
                ),
            ];
            if let Some((key, _)) = set.iter().find(|(_, set)| *set) {
                return Err(invalid(*key, "only with upstream = local"));
            }
        }
        if let Some(addr) = self.local_http_listen
            && !addr.ip().is_loopback()
        {
            // Nothing checks who calls there: it is for tools on this machine.
            return Err(invalid(
                "local_http_listen",
                format!("{addr} is not a loopback address"),
            ));
        }
        if let Some(bucket) = &self.local_load_logs_bucket
            && !cloudtrail_local::is_bucket_name(bucket)
        {
            return Err(invalid(
                "local_load_logs_bucket",
                format!("'{bucket}' is not an S3 bucket name"),
            ));
        }
        if let Some(id) = &self.local_organization_id {
            let body = id.strip_prefix("o-").unwrap_or_default();
            let ok = (10..=32).contains(&body.len())
                && body
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
            if !ok {
                return Err(invalid(
                    "local_organization_id",
                    format!(
                        "'{id}' is not an organization id (o- and 10 to 32 lowercase letters and digits)"
                    ),
                ));
            }
        }
        let interval = |key: &str, d: HumanDuration| {
            if d.0 < Duration::from_secs(1) {
                Err(invalid(key, "at least 1s"))
            } else {
                Ok(d.0)
            }
        };
        let faults = self
            .local_faults
            .iter()
            .map(|spec| fault(spec).map_err(|reason| invalid("local_faults", reason)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(LocalConfig {
            options: Options {
                account_id: self.local_account_id,
                event_capacity: at_least_one("local_event_capacity", self.local_event_capacity)?,
                quotas: Quotas {
                    lookup: rate("local_lookup_quota", self.local_lookup_quota)?,
                    read: rate("local_read_quota", self.local_read_quota)?,
                    write: rate("local_write_quota", self.local_write_quota)?,
                },
                // Calls the gateway makes on nobody's behalf (authentication off) are this user's.
                username: "cloudtrail-gateway".into(),
                s3_capacity: self.local_s3_capacity.max(1),
                delivery_interval: interval(
                    "local_delivery_interval",
                    self.local_delivery_interval,
                )?,
                digest_interval: interval("local_digest_interval", self.local_digest_interval)?,
                strict_buckets: self.local_strict_buckets,
                organization_id: self.local_organization_id,
            },
            load_logs: self.local_load_logs,
            load_logs_bucket: self.local_load_logs_bucket,
            state_file: self.local_state_file,
            faults,
            http_listen: self.local_http_listen,
            s3_dir: self.local_s3_dir,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn faults_are_read_as_documented() {
        assert_eq!(
            fault("CreateTrail:2:InsufficientS3BucketPolicyException").unwrap(),
            (
                Some("CreateTrail".into()),
                2,
                Fault::error("InsufficientS3BucketPolicyException")
            )
        );
        assert_eq!(
            fault("*:1:delay=1500ms").unwrap(),
            (None, 1, Fault::Delay(Duration::from_millis(1500)))
        );
        assert_eq!(
            fault("GetTrail:3:status=503").unwrap().2,
            Fault::Status(503)
        );
        assert_eq!(fault("GetTrail:1:reset").unwrap().2, Fault::Reset);
        for bad in [
            "CreateTrail",
            "CreateTrail:x:reset",
            "CreateTrail:1:oops!",
            "CreateTrail:1:delay=soon",
        ] {
            assert!(fault(bad).is_err(), "{bad}");
        }
    }
}
