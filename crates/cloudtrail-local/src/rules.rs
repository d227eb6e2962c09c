//! CloudTrail's own request rules, as the API reference documents them, answered with CloudTrail's
//! exceptions. This is deliberately a separate implementation from any client's validation (the
//! gateway has its own): where the two disagree, tests against this crate show it.

use crate::wire::ApiError;

/// Tags per trail.
pub const MAX_TAGS: usize = 50;
/// Characters in a tag key / value.
pub const MAX_TAG_KEY: usize = 128;
pub const MAX_TAG_VALUE: usize = 256;
/// Basic event selectors per trail.
pub const MAX_EVENT_SELECTORS: usize = 5;
/// ARNs in one ListTags call.
pub const MAX_LIST_TAGS_RESOURCES: usize = 20;
/// Trails per Region; a multi-Region trail counts in every Region.
pub const MAX_TRAILS_PER_REGION: usize = 5;
/// The data resource types basic event selectors take.
pub const DATA_RESOURCE_TYPES: [&str; 3] = [
    "AWS::S3::Object",
    "AWS::Lambda::Function",
    "AWS::DynamoDB::Table",
];

fn invalid_name(message: impl Into<String>) -> ApiError {
    ApiError::new("InvalidTrailNameException", message)
}

/// CreateTrail's name rules: 3-128 characters of ASCII letters, digits, `.`, `_`, `-`; a letter or
/// digit first and last; no two of `._-` in a row; not shaped like an IPv4 address.
pub fn check_trail_name(name: &str) -> Result<(), ApiError> {
    let length = name.chars().count();
    if length < 3 {
        return Err(invalid_name(format!(
            "Trail name too short. Minimum allowed length: 3 characters. Specified name length: {length} characters."
        )));
    }
    if length > 128 {
        return Err(invalid_name(format!(
            "Trail name too long. Maximum allowed length: 128 characters. Specified name length: {length} characters."
        )));
    }
    let mut previous_was_punctuation = false;
    for (i, c) in name.chars().enumerate() {
        let punctuation = matches!(c, '.' | '_' | '-');
        if !c.is_ascii_alphanumeric() && !punctuation {
            return Err(invalid_name(
                "Trail name can only contain uppercase letters, lowercase letters, numbers, periods (.), hyphens (-), and underscores (_).",
            ));
        }
        if punctuation && i == 0 {
            return Err(invalid_name(
                "Trail name must start with a letter or number.",
            ));
        }
        if punctuation && i + 1 == length {
            return Err(invalid_name("Trail name must end with a letter or number."));
        }
        if punctuation && previous_was_punctuation {
            return Err(invalid_name(
                "Trail name cannot have adjacent periods (.), hyphens (-), or underscores (_).",
            ));
        }
        previous_was_punctuation = punctuation;
    }
    let octets: Vec<&str> = name.split('.').collect();
    let ip_like = octets.len() == 4
        && octets
            .iter()
            .all(|o| !o.is_empty() && o.len() <= 3 && o.parse::<u8>().is_ok());
    if ip_like {
        return Err(invalid_name(
            "Trail name cannot be formatted as an IP address.",
        ));
    }
    Ok(())
}

/// A resource ARN CloudTrail issues: `arn:<partition>:cloudtrail:<region>:<account>:<type>/<id>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arn<'a> {
    pub partition: &'a str,
    pub region: &'a str,
    pub account: &'a str,
    pub resource_type: &'a str,
    pub id: &'a str,
}

impl<'a> Arn<'a> {
    pub fn parse(text: &'a str) -> Option<Arn<'a>> {
        let fields: Vec<&str> = text.splitn(6, ':').collect();
        let [arn, partition, service, region, account, resource] = fields.as_slice() else {
            return None;
        };
        let (resource_type, id) = resource.split_once('/')?;
        let well_formed = *arn == "arn"
            && matches!(*partition, "aws" | "aws-cn" | "aws-us-gov")
            && *service == "cloudtrail"
            && is_region(region)
            && account.len() == 12
            && account.bytes().all(|b| b.is_ascii_digit())
            && !id.is_empty();
        well_formed.then_some(Arn {
            partition,
            region,
            account,
            resource_type,
            id,
        })
    }

    /// A trail ARN (not an event data store's or a channel's).
    pub fn is_trail(&self) -> bool {
        self.resource_type == "trail"
    }
}

/// `us-east-1`, `eu-central-2`, `us-gov-west-1`, `cn-north-1`...: lowercase groups, a digit last.
pub fn is_region(text: &str) -> bool {
    let groups: Vec<&str> = text.split('-').collect();
    groups.len() >= 3
        && groups.iter().all(|g| {
            !g.is_empty()
                && g.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
        && groups
            .last()
            .is_some_and(|g| g.bytes().all(|b| b.is_ascii_digit()))
}

/// The name or ARN most operations take to find a trail.
pub fn check_trail_reference(value: &str) -> Result<(), ApiError> {
    if value.is_empty() {
        return Err(ApiError::new(
            "TrailNotProvidedException",
            "Trail name or ARN must be specified.",
        ));
    }
    if !value.starts_with("arn:") {
        return check_trail_name(value);
    }
    match Arn::parse(value) {
        Some(arn) if arn.is_trail() => Ok(()),
        _ => Err(ApiError::new(
            "CloudTrailARNInvalidException",
            format!(
                "Invalid ARN: {value}. ARN should be of the form arn:aws:cloudtrail:region:account:trail/name."
            ),
        )),
    }
}

/// S3 bucket naming: 3-63 of lowercase letters, digits, `.` and `-`, a letter or digit at each end,
/// no `..`, not shaped like an IPv4 address. The embedded S3 names buckets by the same rule.
pub fn is_bucket_name(bucket: &str) -> bool {
    let bytes = bucket.as_bytes();
    let ends_ok = |b: Option<&u8>| b.is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    let ip_shaped =
        bucket.split('.').count() == 4 && bucket.split('.').all(|part| part.parse::<u8>().is_ok());
    (3..=63).contains(&bytes.len())
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'.' || *b == b'-')
        && ends_ok(bytes.first())
        && ends_ok(bytes.last())
        && !bucket.contains("..")
        && !ip_shaped
}

/// CloudTrail's answer to a bucket name S3 would refuse.
pub fn check_bucket_name(bucket: &str) -> Result<(), ApiError> {
    if is_bucket_name(bucket) {
        Ok(())
    } else {
        Err(ApiError::new(
            "InvalidS3BucketNameException",
            format!("Bucket name is not valid: {bucket}"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_documented_rules() {
        for good in [
            "abc",
            "My-Trail_1.x",
            "a1b",
            &"a".repeat(128),
            "1.2.3",
            "1.2.3.4.5",
        ] {
            assert!(check_trail_name(good).is_ok(), "{good}");
        }
        for (bad, message) in [
            ("ab", "too short"),
            (&"a".repeat(129) as &str, "too long"),
            ("trail name", "can only contain"),
            ("träil", "can only contain"),
            ("-trail", "must start"),
            ("trail_", "must end"),
            ("a--b", "adjacent"),
            ("a._b", "adjacent"),
            ("192.168.5.4", "IP address"),
        ] {
            let err = check_trail_name(bad).unwrap_err();
            assert_eq!(err.code, "InvalidTrailNameException");
            assert!(err.message.contains(message), "{bad}: {}", err.message);
        }
    }

    #[test]
    fn arns_are_checked_field_by_field() {
        let arn = Arn::parse("arn:aws:cloudtrail:us-east-1:123456789012:trail/t1").unwrap();
        assert_eq!(
            (arn.region, arn.account, arn.id),
            ("us-east-1", "123456789012", "t1")
        );
        assert!(arn.is_trail());
        for bad in [
            "arn:aws:cloudtrail:us-east-1:12345:trail/t1",
            "arn:aws:s3:us-east-1:123456789012:trail/t1",
            "arn:aws:cloudtrail:us-east-1:123456789012:trail/",
            "arn:aws:cloudtrail::123456789012:trail/t1",
            "arn:other:cloudtrail:us-east-1:123456789012:trail/t1",
            "arn:aws:cloudtrail:Mars-1:123456789012:trail/t1",
        ] {
            assert_eq!(Arn::parse(bad), None, "{bad}");
        }
        assert_eq!(
            check_trail_reference("arn:aws:cloudtrail:us-east-1:123456789012:channel/c")
                .unwrap_err()
                .code,
            "CloudTrailARNInvalidException"
        );
    }

    #[test]
    fn regions_and_buckets() {
        for region in [
            "us-east-1",
            "eu-central-2",
            "us-gov-west-1",
            "ap-southeast-4",
        ] {
            assert!(is_region(region), "{region}");
        }
        for region in ["useast1", "us-east", "US-EAST-1", "us--1"] {
            assert!(!is_region(region), "{region}");
        }
        assert!(check_bucket_name("audit-logs").is_ok());
        assert!(check_bucket_name("Audit").is_err());
        assert!(check_bucket_name("-ab").is_err());
    }
}
