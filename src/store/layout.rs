//! CloudTrail's key layout in a trail's bucket:
//! `<prefix>/AWSLogs/[<o-id>/]<account>/CloudTrail/<region>/<YYYY>/<MM>/<DD>/<file>.json.gz`.

/// Where a log file belongs, read from its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogKey {
    pub account: String,
    pub region: String,
    /// Days since the epoch of the key's `YYYY/MM/DD`.
    pub day: i64,
}

/// The account and Region of a log file's key, or None when the key is not a log file of the
/// layout (a digest, a marker object, anything else).
pub fn log_key(prefix: &str, key: &str) -> Option<LogKey> {
    let rest = key.strip_prefix(prefix)?.strip_prefix("AWSLogs/")?;
    let mut parts: Vec<&str> = rest.split('/').collect();
    // An organization trail's files sit under its organization id.
    if parts.first().is_some_and(|p| p.starts_with("o-")) {
        parts.remove(0);
    }
    let [account, "CloudTrail", region, year, month, day, file] = parts.as_slice() else {
        return None;
    };
    let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(account, 12) || region.is_empty() || !file.ends_with(".json.gz") {
        return None;
    }
    if !(digits(year, 4) && digits(month, 2) && digits(day, 2)) {
        return None;
    }
    let day = days_from_civil(year.parse().ok()?, month.parse().ok()?, day.parse().ok()?)?;
    Some(LogKey {
        account: (*account).to_owned(),
        region: (*region).to_owned(),
        day,
    })
}

/// The listing prefix of an (account, Region)'s log files; `organization` for an organization
/// trail's bucket.
pub fn region_prefix(
    prefix: &str,
    organization: Option<&str>,
    account: &str,
    region: &str,
) -> String {
    match organization {
        Some(o) => format!("{prefix}AWSLogs/{o}/{account}/CloudTrail/{region}/"),
        None => format!("{prefix}AWSLogs/{account}/CloudTrail/{region}/"),
    }
}

/// The key to list after to begin at `day` (days since the epoch) in a Region's prefix: keys
/// sort by day, then by time within a day.
pub fn day_start_after(region_prefix: &str, day: i64) -> String {
    let (y, m, d) = civil_from_days(day);
    format!("{region_prefix}{y:04}/{m:02}/{d:02}")
}

/// Where to list from again after `cursor`, the last key stored: `minutes` before its file's
/// time stamp. Keys sort by minute only (`<account>_CloudTrail_<region>_<YYYYMMDDTHHmmZ>_<unique>`),
/// so a file delivered later in the same minute, or written late, can sort before the cursor;
/// the files listed again are found stored and not read twice. Before the day's first minutes,
/// the day's folder is listed from its start; a key not of the layout is its own cursor.
pub fn rewind(cursor: &str, minutes: u32) -> String {
    let Some((folder, file)) = cursor.rsplit_once('/') else {
        return cursor.to_owned();
    };
    let parts: Vec<&str> = file.split('_').collect();
    let [account, "CloudTrail", region, stamp, ..] = parts.as_slice() else {
        return cursor.to_owned();
    };
    let (Some(day), Some(hh), Some(mm)) = (
        stamp.get(..8),
        stamp.get(9..11).and_then(|h| h.parse::<u32>().ok()),
        stamp.get(11..13).and_then(|m| m.parse::<u32>().ok()),
    ) else {
        return cursor.to_owned();
    };
    match (hh * 60 + mm).checked_sub(minutes) {
        Some(at) => format!(
            "{folder}/{account}_CloudTrail_{region}_{day}T{:02}{:02}Z",
            at / 60,
            at % 60
        ),
        None => folder.to_owned(),
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> Option<i64> {
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some(era * 146_097 + doe - 719_468)
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_keys_of_both_layouts() {
        let key = "p/AWSLogs/123456789012/CloudTrail/eu-west-1/2026/12/03/123456789012_CloudTrail_eu-west-1_20261203T1005Z_abc.json.gz";
        let k = log_key("p/", key).expect("a log key");
        assert_eq!(
            (k.account.as_str(), k.region.as_str()),
            ("123456789012", "eu-west-1")
        );
        assert_eq!(civil_from_days(k.day), (2026, 12, 3));
        let org = "AWSLogs/o-abc123/210987654321/CloudTrail/us-east-1/2026/01/31/x.json.gz";
        assert_eq!(
            log_key("", org).map(|k| k.account),
            Some("210987654321".into())
        );
    }

    #[test]
    fn other_keys_are_not_log_files() {
        for key in [
            "AWSLogs/123456789012/CloudTrail-Digest/us-east-1/2026/12/03/d.json.gz",
            "AWSLogs/123456789012/CloudTrail/us-east-1/2026/12/03/",
            "AWSLogs/123456789012/CloudTrail/us-east-1/2026/13/03/x.json.gz",
            "AWSLogs/12345/CloudTrail/us-east-1/2026/12/03/x.json.gz",
            "elsewhere/x.json.gz",
            "AWSLogs/123456789012/CloudTrail/us-east-1/2026/12/03/x.txt",
        ] {
            assert_eq!(log_key("", key), None, "{key}");
        }
    }

    #[test]
    fn a_cursor_rewinds_by_minutes_within_its_day() {
        let dir = "AWSLogs/123456789012/CloudTrail/us-east-1/2026/12/03";
        let key = format!("{dir}/123456789012_CloudTrail_us-east-1_20261203T1759Z_zz.json.gz");
        let back = rewind(&key, 15);
        assert_eq!(
            back,
            format!("{dir}/123456789012_CloudTrail_us-east-1_20261203T1744Z")
        );
        let same_minute =
            format!("{dir}/123456789012_CloudTrail_us-east-1_20261203T1759Z_aa.json.gz");
        assert!(same_minute > back && same_minute < key);
        let early = format!("{dir}/123456789012_CloudTrail_us-east-1_20261203T0005Z_x.json.gz");
        assert_eq!(rewind(&early, 15), dir);
        assert_eq!(rewind("elsewhere", 15), "elsewhere");
    }

    #[test]
    fn days_round_trip_and_sort_as_keys() {
        for day in [-1, 0, 11_000, 20_425, 30_000] {
            let (y, m, d) = civil_from_days(day);
            assert_eq!(days_from_civil(y, m, d), Some(day));
        }
        let prefix = region_prefix("", None, "123456789012", "us-east-1");
        let after = day_start_after(&prefix, 20_425);
        assert!(format!("{prefix}2025/12/03/f.json.gz") > after);
        assert!(format!("{prefix}2025/12/02/f.json.gz") < after);
    }
}
