//! CloudTrail's request rules, each checked in one function that records field violations.
//!
//! The limits come from the CloudTrail API reference. The embedded CloudTrail (`cloudtrail-local`)
//! implements the same rules on its own, so the two check each other in the end-to-end tests.

use crate::error::Violations;

pub const MAX_TAGS: usize = 50;
pub const MAX_TAG_KEY_CHARS: usize = 128;
pub const MAX_TAG_VALUE_CHARS: usize = 256;
pub const MAX_EVENT_SELECTORS: usize = 5;
pub const MAX_DATA_RESOURCE_VALUES: usize = 250;
pub const MAX_ADVANCED_CONDITIONS: usize = 500;
pub const MAX_LIST_TAGS_ARNS: usize = 20;
/// DescribeTrails' `trailNameList`: CloudTrail documents no bound, so the gateway sets one far above
/// what an account holds (five trails per Region, plus organization and shadow trails): a 4 MB list
/// of 460 000 names was accepted and recorded as one event too large to page through.
pub const MAX_DESCRIBE_TRAILS_NAMES: usize = 1000;
pub const MAX_LOOKUP_RESULTS: i32 = 50;
pub const MAX_LOOKUP_VALUE_CHARS: usize = 2000;

/// The data resource types a basic event selector accepts.
pub const DATA_RESOURCE_TYPES: [&str; 3] = [
    "AWS::S3::Object",
    "AWS::Lambda::Function",
    "AWS::DynamoDB::Table",
];

/// What is wrong with a trail name, in CloudTrail's words, or `None` when it is valid.
pub fn trail_name_problem(name: &str) -> Option<String> {
    let len = name.chars().count();
    if len < 3 {
        return Some(format!(
            "Trail name too short. Minimum allowed length: 3 characters. Specified name length: {len} characters."
        ));
    }
    if len > 128 {
        return Some(format!(
            "Trail name too long. Maximum allowed length: 128 characters. Specified name length: {len} characters."
        ));
    }
    let is_separator = |c: char| matches!(c, '.' | '_' | '-');
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || is_separator(c))
    {
        return Some(
            "Trail name can only contain uppercase letters, lowercase letters, numbers, periods (.), hyphens (-), and underscores (_).".into(),
        );
    }
    let bytes = name.as_bytes();
    if !bytes[0].is_ascii_alphanumeric() {
        return Some("Trail name must start with a letter or number.".into());
    }
    if !bytes[bytes.len() - 1].is_ascii_alphanumeric() {
        return Some("Trail name must end with a letter or number.".into());
    }
    if bytes
        .windows(2)
        .any(|w| is_separator(w[0] as char) && is_separator(w[1] as char))
    {
        return Some(
            "Trail name cannot have adjacent periods (.), hyphens (-), or underscores (_).".into(),
        );
    }
    if name.parse::<std::net::Ipv4Addr>().is_ok() {
        return Some("Trail name cannot be formatted as an IP address.".into());
    }
    None
}

/// What is wrong with an AWS account id (12 digits), or `None`.
pub fn account_id_problem(id: &str) -> Option<String> {
    (id.len() != 12 || !id.bytes().all(|b| b.is_ascii_digit()))
        .then(|| format!("'{id}' is not a 12-digit account id"))
}

/// What is wrong with a Region name (`us-east-1`, `eu-central-2`, `us-gov-west-1`: lower-case
/// groups, two letters first, digits last), or `None`.
pub fn region_problem(region: &str) -> Option<String> {
    let groups: Vec<&str> = region.split('-').collect();
    let shaped = groups.len() >= 3
        && groups.first().is_some_and(|g| g.len() == 2)
        && groups.iter().all(|g| {
            !g.is_empty()
                && g.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
        && groups
            .last()
            .is_some_and(|g| g.bytes().all(|b| b.is_ascii_digit()));
    (!shaped).then(|| format!("'{region}' is not a Region name (e.g. us-east-1)"))
}

/// The parts of a CloudTrail resource ARN: `arn:<partition>:cloudtrail:<region>:<account>:<kind>/<id>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloudTrailArn<'a> {
    pub partition: &'a str,
    pub region: &'a str,
    pub account: &'a str,
    pub kind: &'a str,
    pub id: &'a str,
}

/// Parses a CloudTrail ARN, or says what is wrong with it.
pub fn parse_arn(arn: &str) -> Result<CloudTrailArn<'_>, String> {
    let bad = || {
        format!(
            "'{arn}' is not a valid CloudTrail ARN: expected arn:aws:cloudtrail:<region>:<12-digit account>:trail/<name>"
        )
    };
    let mut parts = arn.splitn(6, ':');
    let (Some("arn"), Some(partition), Some("cloudtrail"), Some(region), Some(account), Some(rest)) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Err(bad());
    };
    let (kind, id) = rest.split_once('/').ok_or_else(bad)?;
    let region_ok = !region.is_empty()
        && region
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    let account_ok = account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit());
    let kind_ok = matches!(kind, "trail" | "eventdatastore" | "channel");
    if !partition.starts_with("aws") || !region_ok || !account_ok || !kind_ok || id.is_empty() {
        return Err(bad());
    }
    Ok(CloudTrailArn {
        partition,
        region,
        account,
        kind,
        id,
    })
}

/// A trail name (CreateTrail takes only a name).
pub fn trail_name(v: &mut Violations, field: &str, name: &str) {
    if name.is_empty() {
        v.add(field, "a trail name is required");
    } else if let Some(problem) = trail_name_problem(name) {
        v.add(field, problem);
    }
}

/// A trail name or a trail ARN, as most operations accept.
pub fn trail_name_or_arn(v: &mut Violations, field: &str, value: &str) {
    if !value.starts_with("arn:") {
        return trail_name(v, field, value);
    }
    match parse_arn(value) {
        Ok(arn) if arn.kind != "trail" => v.add(field, format!("'{value}' is not a trail ARN")),
        Ok(arn) => {
            if let Some(problem) = trail_name_problem(arn.id) {
                v.add(field, problem);
            }
        }
        Err(problem) => v.add(field, problem),
    }
}

/// A resource ARN that tag operations accept (trail, event data store or channel).
pub fn resource_arn(v: &mut Violations, field: &str, value: &str) {
    if value.is_empty() {
        v.add(field, "a resource ARN is required");
    } else if let Err(problem) = parse_arn(value) {
        v.add(field, problem);
    }
}

/// A tag list: at most 50 tags, keys 1-128 and values at most 256 characters, keys unique.
/// `check_values` is false for RemoveTags, where only the keys matter.
pub fn tags<'a>(
    v: &mut Violations,
    field: &str,
    tags: impl ExactSizeIterator<Item = (&'a str, Option<&'a str>)>,
    check_values: bool,
) {
    if tags.len() > MAX_TAGS {
        v.add(
            field,
            format!("at most {MAX_TAGS} tags are allowed, got {}", tags.len()),
        );
    }
    let mut seen = std::collections::HashSet::new();
    for (i, (key, value)) in tags.enumerate() {
        let key_len = key.chars().count();
        if key_len == 0 || key_len > MAX_TAG_KEY_CHARS {
            v.add(
                format!("{field}[{i}].key"),
                format!("tag key must be 1 to {MAX_TAG_KEY_CHARS} characters, got {key_len}"),
            );
        } else if key.starts_with("aws:") {
            v.add(
                format!("{field}[{i}].key"),
                "tag keys starting with 'aws:' are reserved for AWS",
            );
        }
        if !seen.insert(key) {
            v.add(
                format!("{field}[{i}].key"),
                format!("duplicate tag key '{key}'"),
            );
        }
        let value_len = value.map_or(0, |s| s.chars().count());
        if check_values && value_len > MAX_TAG_VALUE_CHARS {
            v.add(
                format!("{field}[{i}].value"),
                format!(
                    "tag value must be at most {MAX_TAG_VALUE_CHARS} characters, got {value_len}"
                ),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_names_pass() {
        for name in ["abc", "My-Trail_1.x", "a1b", &"a".repeat(128), "1.2.3"] {
            assert_eq!(trail_name_problem(name), None, "{name}");
        }
    }

    #[test]
    fn each_name_rule_is_enforced() {
        let cases = [
            ("ab", "too short"),
            (&"a".repeat(129) as &str, "too long"),
            ("trail name", "can only contain"),
            ("träil", "can only contain"),
            ("-trail", "must start"),
            ("trail_", "must end"),
            ("a--b", "adjacent"),
            ("a._b", "adjacent"),
            ("192.168.5.4", "IP address"),
        ];
        for (name, expected) in cases {
            let problem = trail_name_problem(name).unwrap_or_default();
            assert!(problem.contains(expected), "{name}: {problem}");
        }
    }

    #[test]
    fn arns_are_parsed_strictly() {
        let arn = parse_arn("arn:aws:cloudtrail:us-east-1:123456789012:trail/t1").unwrap();
        assert_eq!(
            (arn.region, arn.account, arn.kind, arn.id),
            ("us-east-1", "123456789012", "trail", "t1")
        );
        for bad in [
            "arn:aws:cloudtrail:us-east-1:12345:trail/t1",
            "arn:aws:s3:us-east-1:123456789012:trail/t1",
            "arn:aws:cloudtrail:us-east-1:123456789012:bucket/t1",
            "arn:aws:cloudtrail:us-east-1:123456789012:trail/",
            "arn:aws:cloudtrail::123456789012:trail/t1",
        ] {
            assert!(parse_arn(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn trail_arn_with_bad_name_is_rejected() {
        let mut v = Violations::default();
        trail_name_or_arn(
            &mut v,
            "name",
            "arn:aws:cloudtrail:us-east-1:123456789012:trail/a..b",
        );
        assert!(!v.is_empty());
    }

    #[test]
    fn tag_rules() {
        let long_key = "k".repeat(129);
        let long_value = "v".repeat(257);
        let mut v = Violations::default();
        let list = [
            ("a", Some("1")),
            ("a", None),
            (long_key.as_str(), None),
            ("b", Some(long_value.as_str())),
        ];
        tags(&mut v, "tags_list", list.into_iter(), true);
        let Err(crate::error::Error::InvalidArgument(found)) = v.into_result(()) else {
            panic!("expected violations");
        };
        let fields: Vec<_> = found.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(
            fields,
            ["tags_list[1].key", "tags_list[2].key", "tags_list[3].value"]
        );
    }
}
