//! Durations in settings: `250ms`, `3s`, `2m`, `1h`, `90d` or plain seconds (`3`).

use std::{str::FromStr, time::Duration};

/// A duration as written in a setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HumanDuration(pub Duration);

impl FromStr for HumanDuration {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let split = s
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(s.len());
        let (number, unit) = s.split_at(split);
        let value: f64 = number
            .parse()
            .map_err(|_| format!("'{s}' is not a duration (e.g. 250ms, 3s, 2m, 1h, 90d)"))?;
        let seconds = match unit {
            "ms" => value / 1000.0,
            "" | "s" => value,
            "m" => value * 60.0,
            "h" => value * 3600.0,
            "d" => value * 86400.0,
            _ => {
                return Err(format!(
                    "'{s}': unknown unit '{unit}' (use ms, s, m, h or d)"
                ));
            }
        };
        Duration::try_from_secs_f64(seconds)
            .map(HumanDuration)
            .map_err(|_| format!("'{s}' is out of range"))
    }
}

impl From<HumanDuration> for Duration {
    fn from(d: HumanDuration) -> Duration {
        d.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        let parse = |s: &str| s.parse::<HumanDuration>().map(|d| d.0);
        assert_eq!(parse("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse("3"), Ok(Duration::from_secs(3)));
        assert_eq!(parse("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse("3d"), Ok(Duration::from_secs(3 * 86400)));
        assert!(parse("3w").is_err());
        assert!(parse("-1s").is_err());
    }
}
