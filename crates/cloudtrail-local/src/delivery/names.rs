//! Where CloudTrail puts a trail's files, as its user guide writes the layout:
//! `[<prefix>/]AWSLogs/[<o-id>/]<account>/CloudTrail/<region>/<YYYY>/<MM>/<DD>/
//! <account>_CloudTrail_<region>_<YYYYMMDDTHHmmZ>_<unique>.json.gz` for log files, and
//! `.../CloudTrail-Digest/<region>/<YYYY>/<MM>/<DD>/
//! <account>_CloudTrail-Digest_<region>_<trail>_<home region>_<YYYYMMDDTHHmmssZ>.json.gz` for digests.

use aws_smithy_types::DateTime;

use crate::{clock::rfc3339, ids};

/// The parts of a time the names use, in UTC.
struct Civil {
    year: String,
    month: String,
    day: String,
    hour: String,
    minute: String,
    second: String,
}

impl Civil {
    /// `YYYYMMDDTHHmm`, with `ss` for digests.
    fn stamp(&self, seconds: bool) -> String {
        let s = if seconds { self.second.as_str() } else { "" };
        format!(
            "{}{}{}T{}{}{s}",
            self.year, self.month, self.day, self.hour, self.minute
        )
    }
}

fn civil(t: DateTime) -> Civil {
    // "YYYY-MM-DDTHH:MM:SSZ" of the whole second.
    let text = rfc3339(DateTime::from_secs(t.secs()));
    let part = |range: std::ops::Range<usize>| text.get(range).unwrap_or("00").to_owned();
    Civil {
        year: part(0..4),
        month: part(5..7),
        day: part(8..10),
        hour: part(11..13),
        minute: part(14..16),
        second: part(17..19),
    }
}

/// Times in digest files: whole seconds, `2015-08-17T15:01:31Z`.
pub fn digest_time(t: DateTime) -> String {
    rfc3339(DateTime::from_secs(t.secs()))
}

/// Whose files these are: the prefix, the organization (organization trails) and the account.
pub struct Owner<'a> {
    pub prefix: Option<&'a str>,
    pub organization: Option<&'a str>,
    pub account: &'a str,
}

impl Owner<'_> {
    fn root(&self, kind: &str, region: &str, t: &Civil) -> String {
        let mut key = String::new();
        if let Some(prefix) = self.prefix.filter(|p| !p.is_empty()) {
            key.push_str(prefix);
            key.push('/');
        }
        key.push_str("AWSLogs/");
        if let Some(org) = self.organization {
            key.push_str(org);
            key.push('/');
        }
        key.push_str(&format!(
            "{}/{kind}/{region}/{}/{}/{}/",
            self.account, t.year, t.month, t.day
        ));
        key
    }

    /// A log file's key, delivered at `t`.
    pub fn log_file(&self, region: &str, t: DateTime) -> String {
        let c = civil(t);
        format!(
            "{}{}_CloudTrail_{region}_{}Z_{}.json.gz",
            self.root("CloudTrail", region, &c),
            self.account,
            c.stamp(false),
            ids::alphanumeric(16)
        )
    }

    /// A digest file's key, for the digest ending at `end`.
    pub fn digest_file(&self, region: &str, trail: &str, home: &str, end: DateTime) -> String {
        let c = civil(end);
        format!(
            "{}{}_CloudTrail-Digest_{region}_{trail}_{home}_{}Z.json.gz",
            self.root("CloudTrail-Digest", region, &c),
            self.account,
            c.stamp(true),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The examples of the user guide's "Finding your CloudTrail log files" and "CloudTrail digest
    /// file structure" pages (docs.aws.amazon.com/awscloudtrail/latest/userguide/
    /// cloudtrail-find-log-files.html, cloudtrail-log-file-validation-digest-file-structure.html).
    #[test]
    fn names_follow_the_documented_layout() {
        let owner = Owner {
            prefix: None,
            organization: None,
            account: "111122223333",
        };
        // 2015-08-17T14:45:00Z and 2015-08-17T15:01:31Z.
        let log = owner.log_file("us-east-2", DateTime::from_secs(1_439_822_700));
        let expected = "AWSLogs/111122223333/CloudTrail/us-east-2/2015/08/17/111122223333_CloudTrail_us-east-2_20150817T1445Z_";
        assert!(log.starts_with(expected), "{log}");
        let unique = &log[expected.len()..log.len() - ".json.gz".len()];
        assert_eq!(unique.len(), 16);
        assert!(unique.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_eq!(
            owner.digest_file(
                "us-east-2",
                "your-trail-name",
                "us-east-2",
                DateTime::from_secs(1_439_823_691)
            ),
            "AWSLogs/111122223333/CloudTrail-Digest/us-east-2/2015/08/17/111122223333_CloudTrail-Digest_us-east-2_your-trail-name_us-east-2_20150817T150131Z.json.gz"
        );
        assert_eq!(
            digest_time(DateTime::from_secs_f64(1_439_823_691.7)),
            "2015-08-17T15:01:31Z"
        );
        // A prefix and an organization, as the pages write them.
        let org = Owner {
            prefix: Some("audit"),
            organization: Some("o-exampleorgid"),
            account: "111111111111",
        };
        assert!(
            org.log_file("eu-west-1", DateTime::from_secs(1_439_822_700))
                .starts_with("audit/AWSLogs/o-exampleorgid/111111111111/CloudTrail/eu-west-1/2015/08/17/111111111111_CloudTrail_eu-west-1_20150817T1445Z_")
        );
    }
}
