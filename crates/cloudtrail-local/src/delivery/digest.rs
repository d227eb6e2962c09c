//! Digest files: per trail and Region, every digest interval, the log files delivered since the
//! last digest (with the SHA-256 of each uncompressed file and its oldest and newest event), chained
//! to the previous digest by its hash and signature, and signed SHA256withRSA over the string the
//! user guide's "Custom implementations of CloudTrail log file integrity validation" page gives
//! (read as the AWS CLI's validator, awscli/customizations/cloudtrail/validation.py, reads it).

use aws_smithy_types::DateTime;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::names::digest_time;

/// One delivered log file, as a digest lists it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct LogFile {
    pub bucket: String,
    pub key: String,
    /// Hex SHA-256 of the uncompressed file.
    pub hash: String,
    #[serde(with = "crate::state::epoch")]
    pub oldest: DateTime,
    #[serde(with = "crate::state::epoch")]
    pub newest: DateTime,
}

/// The previous digest, as the next one names it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Link {
    pub bucket: String,
    pub key: String,
    /// Hex SHA-256 of the uncompressed digest.
    pub hash: String,
    pub signature: String,
}

/// One trail's digest chain in one Region.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Chain {
    /// Where the next digest's period starts.
    #[serde(with = "crate::state::epoch")]
    pub start: DateTime,
    /// Log files delivered since the last digest.
    pub files: Vec<LogFile>,
    /// The last digest delivered; none before the first (then `previousDigestSignature` is null).
    pub previous: Option<Link>,
}

impl Chain {
    pub fn new(start: DateTime) -> Self {
        Chain {
            start,
            files: Vec::new(),
            previous: None,
        }
    }
}

/// Where a digest goes and what it is signed with.
pub(crate) struct Placement<'a> {
    pub account: &'a str,
    pub bucket: &'a str,
    pub key: &'a str,
    pub end: DateTime,
    pub fingerprint: &'a str,
}

/// The digest document, with the fields of the user guide's "CloudTrail digest file structure".
pub(crate) fn document(chain: &Chain, at: &Placement) -> Value {
    let oldest = chain.files.iter().map(|f| f.oldest).min();
    let newest = chain.files.iter().map(|f| f.newest).max();
    let previous = chain.previous.as_ref();
    json!({
        "awsAccountId": at.account,
        "digestStartTime": digest_time(chain.start),
        "digestEndTime": digest_time(at.end),
        "digestS3Bucket": at.bucket,
        "digestS3Object": at.key,
        "digestPublicKeyFingerprint": at.fingerprint,
        "digestSignatureAlgorithm": "SHA256withRSA",
        "newestEventTime": newest.map(digest_time),
        "oldestEventTime": oldest.map(digest_time),
        "previousDigestS3Bucket": previous.map(|p| &p.bucket),
        "previousDigestS3Object": previous.map(|p| &p.key),
        "previousDigestHashValue": previous.map(|p| &p.hash),
        "previousDigestHashAlgorithm": previous.map(|_| "SHA-256"),
        "previousDigestSignature": previous.map(|p| &p.signature),
        "logFiles": chain.files.iter().map(|f| json!({
            "s3Bucket": f.bucket,
            "s3Object": f.key,
            "hashValue": f.hash,
            "hashAlgorithm": "SHA-256",
            "newestEventTime": digest_time(f.newest),
            "oldestEventTime": digest_time(f.oldest),
        })).collect::<Vec<_>>(),
    })
}

/// The string CloudTrail signs: the digest's end time as the file writes it, its bucket and key,
/// the hex SHA-256 of the uncompressed digest, and the previous signature (`null` for the first).
pub(crate) fn string_to_sign(
    end_time: &str,
    bucket: &str,
    key: &str,
    digest_hash: &str,
    previous_signature: Option<&str>,
) -> String {
    format!(
        "{end_time}\n{bucket}/{key}\n{digest_hash}\n{}",
        previous_signature.unwrap_or("null")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sample digest of the "CloudTrail digest file structure" page
    /// (docs.aws.amazon.com/awscloudtrail/latest/userguide/
    /// cloudtrail-log-file-validation-digest-file-structure.html): the same fields, no others.
    #[test]
    fn fields_are_those_of_the_documented_sample() {
        let documented = [
            "awsAccountId",
            "digestStartTime",
            "digestEndTime",
            "digestS3Bucket",
            "digestS3Object",
            "digestPublicKeyFingerprint",
            "digestSignatureAlgorithm",
            "newestEventTime",
            "oldestEventTime",
            "previousDigestS3Bucket",
            "previousDigestS3Object",
            "previousDigestHashValue",
            "previousDigestHashAlgorithm",
            "previousDigestSignature",
            "logFiles",
        ];
        let file_fields = [
            "s3Bucket",
            "s3Object",
            "hashValue",
            "hashAlgorithm",
            "newestEventTime",
            "oldestEventTime",
        ];
        let mut chain = Chain::new(DateTime::from_secs(1_439_820_091));
        chain.files.push(LogFile {
            bucket: "amzn-s3-demo-bucket".into(),
            key: "AWSLogs/111122223333/CloudTrail/us-east-2/2015/08/17/111122223333_CloudTrail_us-east-2_20150817T1445Z_9nYN7gp2eWAJHIfT.json.gz".into(),
            hash: "9bb6196fc6b84d6f075a56548feca262bd99ba3c2de41b618e5b6e22c1fc71f6".into(),
            oldest: DateTime::from_secs(1_439_822_547),
            newest: DateTime::from_secs(1_439_823_147),
        });
        let key = "AWSLogs/111122223333/CloudTrail-Digest/us-east-2/2015/08/17/111122223333_CloudTrail-Digest_us-east-2_your-trail-name_us-east-2_20150817T150131Z.json.gz";
        let at = Placement {
            account: "111122223333",
            bucket: "amzn-s3-demo-bucket",
            key,
            end: DateTime::from_secs(1_439_823_691),
            fingerprint: "31e8b5433410dfb61a9dc45cc65b22ff",
        };
        let first = document(&chain, &at);
        let mut fields: Vec<&str> = first
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        fields.sort_unstable();
        let mut expected = documented.to_vec();
        expected.sort_unstable();
        assert_eq!(fields, expected);
        let mut listed: Vec<&str> = first["logFiles"][0]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        listed.sort_unstable();
        let mut expected = file_fields.to_vec();
        expected.sort_unstable();
        assert_eq!(listed, expected);
        // The sample's times, as it writes them.
        assert_eq!(first["digestStartTime"], "2015-08-17T14:01:31Z");
        assert_eq!(first["digestEndTime"], "2015-08-17T15:01:31Z");
        assert_eq!(first["oldestEventTime"], "2015-08-17T14:42:27Z");
        assert_eq!(first["newestEventTime"], "2015-08-17T14:52:27Z");
        // The first digest of a chain has no previous one.
        assert!(first["previousDigestSignature"].is_null());
        chain.previous = Some(Link {
            bucket: "amzn-s3-demo-bucket".into(),
            key: "prev".into(),
            hash: "97fb".into(),
            signature: "5088".into(),
        });
        let next = document(&chain, &at);
        assert_eq!(next["previousDigestHashAlgorithm"], "SHA-256");
        assert_eq!(next["previousDigestSignature"], "5088");
    }

    #[test]
    fn the_signing_string_is_the_validators() {
        assert_eq!(
            string_to_sign("2015-08-17T15:01:31Z", "b", "k.json.gz", "ab12", None),
            "2015-08-17T15:01:31Z\nb/k.json.gz\nab12\nnull"
        );
        assert_eq!(
            string_to_sign("t", "b", "k", "h", Some("5088")),
            "t\nb/k\nh\n5088"
        );
    }
}
