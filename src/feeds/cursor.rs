//! The cursor of a StreamEvents message: everything a new stream needs to carry on right after it,
//! on any replica, without state on the server. Times are whole seconds (CloudTrail's events have
//! second precision on the wire; finer times do not survive its JSON doubles), and the events
//! delivered at a boundary second are named by id, so nothing is skipped or sent twice.
//!
//! While the stream delivers what existed when it started (`history`), newest first: every matching
//! event newer than `low` up to `top` is delivered, and of the events in second `low` those in
//! `low_ids`. Afterwards (following): every event older than `horizon - lookback` is done, and `seen`
//! holds the events delivered since (id and second), so a late one (CloudTrail shows events minutes
//! after they happen) is delivered once, and a repeated one never again. `seen` also carries the
//! history's newest events into the following.

use base64::Engine;
use prost::Message;
use sha2::{Digest, Sha256};

use crate::error::Error;

#[derive(Clone, PartialEq, Message)]
pub struct Seen {
    #[prost(string, tag = "1")]
    pub id: String,
    #[prost(int64, tag = "2")]
    pub second: i64,
}

#[derive(Clone, PartialEq, Message)]
pub struct Cursor {
    #[prost(uint32, tag = "1")]
    pub version: u32,
    /// The fingerprint of the filters the stream was started with.
    #[prost(bytes = "vec", tag = "2")]
    pub filters: Vec<u8>,
    /// Every event that existed at the start has been delivered.
    #[prost(bool, tag = "3")]
    pub caught_up: bool,
    /// History: the newest second it covers (the stream's start).
    #[prost(int64, tag = "4")]
    pub top: i64,
    /// History: the oldest second reached so far (`None` before the first event).
    #[prost(int64, optional, tag = "5")]
    pub low: Option<i64>,
    #[prost(string, repeated, tag = "6")]
    pub low_ids: Vec<String>,
    /// Following: the last poll's second; events older than it minus the look-back are done.
    #[prost(int64, tag = "7")]
    pub horizon: i64,
    #[prost(message, repeated, tag = "8")]
    pub seen: Vec<Seen>,
}

const VERSION: u32 = 1;

/// The longest cursor accepted, as text. A cursor travels in every message, so its size is bounded
/// like the entries in it; ours never reach it (see `MAX_ENTRIES`).
pub const MAX_TEXT: usize = 640 * 1024;
/// The most ids a cursor holds in `seen` and in `low_ids` each. Beyond, the oldest are forgotten:
/// a very busy window may deliver one of them again (never miss one).
pub const MAX_ENTRIES: usize = 4096;
/// The longest event id accepted (CloudTrail's are 36-character UUIDs).
const MAX_ID: usize = 128;
/// How far ahead of the gateway's clock a cursor's times may be (another replica's clock).
const CLOCK_SLACK: i64 = 300;

/// The fingerprint of a stream's filters (attribute, time range, category; not follow).
pub fn fingerprint(filters: &[u8]) -> Vec<u8> {
    Sha256::digest(filters)[..8].to_vec()
}

impl Cursor {
    /// The cursor of a stream starting at second `now`.
    pub fn start(filters: Vec<u8>, now: i64) -> Cursor {
        Cursor {
            version: VERSION,
            filters,
            caught_up: false,
            top: now,
            low: None,
            low_ids: Vec::new(),
            horizon: now,
            seen: Vec::new(),
        }
    }

    pub fn encode(&self) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(self.encode_to_vec())
    }

    /// The cursor a caller sent, checked against the filters of its request and against what a
    /// cursor of this gateway can hold at second `now`: nothing in it is trusted beyond that (a
    /// forged one with far-future seconds was never pruned and grew every message).
    pub fn decode(
        text: &str,
        filters: &[u8],
        now: i64,
        lookback: i64,
        range: (Option<i64>, Option<i64>),
    ) -> Result<Cursor, Error> {
        if text.len() > MAX_TEXT {
            return Err(Error::invalid(
                "cursor",
                format!("longer than {MAX_TEXT} characters: not a cursor of this gateway"),
            ));
        }
        let cursor = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(text)
            .ok()
            .and_then(|raw| <Cursor as Message>::decode(raw.as_slice()).ok());
        let problem = match cursor {
            Some(c) if c.version == VERSION && c.filters == filters => match c.checked(now) {
                Ok(mut c) => {
                    c.prune(lookback, range);
                    return Ok(c);
                }
                Err(problem) => problem,
            },
            None => "not a cursor of this gateway's StreamEvents",
            Some(c) if c.version != VERSION => "a cursor of another version",
            Some(_) => {
                "the cursor belongs to a stream with other filters (attribute, times or category)"
            }
        };
        Err(Error::invalid("cursor", problem))
    }

    /// What no cursor of this gateway holds: times before 1970 or after now, more ids than it
    /// keeps, ids longer than CloudTrail's.
    fn checked(self, now: i64) -> Result<Cursor, &'static str> {
        let latest = now.saturating_add(CLOCK_SLACK);
        let in_time = |second: i64| (0..=latest).contains(&second);
        if !in_time(self.top) || !in_time(self.horizon) || self.low.is_some_and(|l| !in_time(l)) {
            return Err("a time in the cursor is before 1970 or after now");
        }
        if self.low.is_some_and(|low| low > self.top) {
            return Err("the cursor's history goes below its own start");
        }
        if self.seen.len() > MAX_ENTRIES || self.low_ids.len() > MAX_ENTRIES {
            return Err("the cursor holds more events than a cursor of this gateway");
        }
        let ids = self.low_ids.iter().chain(self.seen.iter().map(|s| &s.id));
        if ids.into_iter().any(|id| id.len() > MAX_ID) {
            return Err("an event id in the cursor is longer than CloudTrail's");
        }
        if self.seen.iter().any(|s| !in_time(s.second)) {
            return Err("a time in the cursor is before 1970 or after now");
        }
        Ok(self)
    }

    /// Forgets what its own horizon says is done (and, while catching up, what is newer than its
    /// start) and what the request's time range (`start`, `end`) excludes, and keeps at most
    /// `MAX_ENTRIES` of each list.
    fn prune(&mut self, lookback: i64, (start, end): (Option<i64>, Option<i64>)) {
        // Following, a message's cursor holds the events of its batch, newer than the horizon of
        // the poll before (`checked` bounded them by now); catching up, nothing newer than the top.
        let (floor, top) = if self.caught_up {
            (self.horizon - lookback, i64::MAX)
        } else {
            (self.top - lookback, self.top)
        };
        let floor = floor.max(start.unwrap_or(i64::MIN));
        let top = top.min(end.unwrap_or(i64::MAX));
        self.seen.retain(|s| (floor..=top).contains(&s.second));
        self.bound();
    }

    /// At most `MAX_ENTRIES` ids in each list: past it, the oldest eighth goes (at once, so the
    /// sort is not paid per event).
    fn bound(&mut self) {
        const KEEP: usize = MAX_ENTRIES - MAX_ENTRIES / 8;
        if self.seen.len() > MAX_ENTRIES {
            self.seen.sort_by_key(|s| std::cmp::Reverse(s.second));
            self.seen.truncate(KEEP);
        }
        if self.low_ids.len() > MAX_ENTRIES {
            let extra = self.low_ids.len() - KEEP;
            self.low_ids.drain(..extra);
        }
    }

    /// Notes `id` (of `second`) delivered while catching up, newest first.
    pub fn delivered_in_history(&mut self, id: &str, second: i64, lookback: i64) {
        if self.low != Some(second) {
            self.low = Some(second);
            self.low_ids.clear();
        }
        self.low_ids.push(id.to_owned());
        if second >= self.top - lookback {
            self.seen.push(Seen {
                id: id.to_owned(),
                second,
            });
        }
        self.bound();
    }

    /// Whether an event met again while catching up was delivered already.
    pub fn history_has(&self, id: &str, second: i64) -> bool {
        match self.low {
            None => false,
            Some(low) => second > low || (second == low && self.low_ids.iter().any(|i| i == id)),
        }
    }

    /// The second catching up goes down from: the oldest reached, else the start.
    pub fn history_from(&self) -> i64 {
        self.low.unwrap_or(self.top)
    }

    /// Following: whether an event was delivered (or is older than what is followed).
    pub fn followed_has(&self, id: &str, second: i64, lookback: i64) -> bool {
        second < self.horizon - lookback || self.seen.iter().any(|s| s.id == id)
    }

    /// Following: notes `id` delivered.
    pub fn delivered_following(&mut self, id: &str, second: i64) {
        self.seen.push(Seen {
            id: id.to_owned(),
            second,
        });
        self.bound();
    }

    /// Following: a poll up to second `horizon` is done; what is older than the look-back is
    /// forgotten.
    pub fn advance(&mut self, horizon: i64, lookback: i64) {
        self.horizon = self.horizon.max(horizon);
        let floor = self.horizon - lookback;
        self.seen.retain(|s| s.second >= floor);
    }

    /// Catching up is done: from now on, following.
    pub fn catch_up(&mut self, lookback: i64) {
        self.caught_up = true;
        self.horizon = self.top;
        self.low_ids.clear();
        let floor = self.top - lookback;
        self.seen.retain(|s| s.second >= floor);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(cursor: &Cursor, now: i64) -> String {
        let status =
            Cursor::decode(&cursor.encode(), &cursor.filters, now, 900, (None, None)).unwrap_err();
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        format!("{status:?}")
    }

    /// The attack: `seen` entries with second = i64::MAX were never pruned and were re-encoded into
    /// every message (10 streams with 4 MB cursors: RSS 30 MiB -> 964 MiB).
    #[test]
    fn forged_cursors_are_refused_or_pruned() {
        let filters = fingerprint(b"f");
        let now = 1_700_000_000;
        let forged = |f: &dyn Fn(&mut Cursor)| {
            let mut c = Cursor::start(filters.clone(), now);
            c.catch_up(900);
            f(&mut c);
            c
        };
        let far = forged(&|c| {
            c.seen.push(Seen {
                id: "x".into(),
                second: i64::MAX,
            })
        });
        assert!(refused(&far, now).contains("after now"));
        assert!(refused(&forged(&|c| c.horizon = i64::MIN), now).contains("before 1970"));
        assert!(refused(&forged(&|c| c.top = now + 3_600), now).contains("after now"));
        let many = forged(&|c| {
            c.seen = (0..=MAX_ENTRIES)
                .map(|i| Seen {
                    id: i.to_string(),
                    second: now,
                })
                .collect()
        });
        assert!(refused(&many, now).contains("more events"));
        let long_id = forged(&|c| {
            c.seen.push(Seen {
                id: "i".repeat(200),
                second: now,
            })
        });
        assert!(refused(&long_id, now).contains("longer"));
        // Too long as text: refused before decoding.
        let text = "A".repeat(MAX_TEXT + 1);
        assert!(Cursor::decode(&text, &filters, now, 900, (None, None)).is_err());
        // Within bounds, what its own horizon says is done is forgotten at once.
        let stale = forged(&|c| {
            c.seen = vec![
                Seen {
                    id: "old".into(),
                    second: now - 5_000,
                },
                Seen {
                    id: "new".into(),
                    second: now - 10,
                },
            ]
        });
        let decoded = Cursor::decode(&stale.encode(), &filters, now, 900, (None, None)).unwrap();
        assert_eq!(decoded.seen.len(), 1);
        assert_eq!(decoded.seen[0].id, "new");
        // A follower's cursor holds its last batch, newer than the poll before: kept.
        let ahead = forged(&|c| {
            c.horizon = now - 60;
            c.seen = vec![Seen {
                id: "batch".into(),
                second: now - 5,
            }];
        });
        let decoded = Cursor::decode(&ahead.encode(), &filters, now, 900, (None, None)).unwrap();
        assert_eq!(
            decoded.seen.len(),
            1,
            "an event of the last batch is remembered"
        );
        // And what the request's own time range excludes.
        let ranged =
            Cursor::decode(&stale.encode(), &filters, now, 900, (None, Some(now - 20))).unwrap();
        assert!(ranged.seen.is_empty());
    }

    #[test]
    fn a_cursor_keeps_a_bounded_number_of_ids() {
        let mut c = Cursor::start(fingerprint(b"f"), 10_000);
        for i in 0..(MAX_ENTRIES + 100) {
            c.delivered_in_history(&format!("h{i}"), 10_000, 900);
        }
        assert!(c.low_ids.len() <= MAX_ENTRIES && c.seen.len() <= MAX_ENTRIES);
        assert!(
            c.low_ids.contains(&format!("h{}", MAX_ENTRIES + 99)),
            "the newest stay"
        );
        c.catch_up(900);
        for i in 0..(MAX_ENTRIES * 2) {
            c.delivered_following(&format!("{:036}", i), 10_000 + i as i64 / 100);
        }
        assert!(c.seen.len() <= MAX_ENTRIES);
        assert!(c.encode().len() < MAX_TEXT, "{}", c.encode().len());
        let oldest_kept = c.seen.iter().map(|s| s.second).min().unwrap();
        assert!(
            oldest_kept > 10_000 + 40,
            "the oldest went first: {oldest_kept}"
        );
    }

    #[test]
    fn cursors_round_trip_and_belong_to_their_filters() {
        let filters = fingerprint(b"EventName=CreateTrail");
        let mut c = Cursor::start(filters.clone(), 1_000);
        c.delivered_in_history("a", 990, 60);
        c.delivered_in_history("b", 990, 60);
        c.delivered_in_history("c", 900, 60);
        assert_eq!(
            (c.low, c.low_ids.as_slice()),
            (Some(900), &["c".to_owned()][..])
        );
        assert!(c.history_has("a", 990) && c.history_has("c", 900) && !c.history_has("d", 900));
        assert!(!c.history_has("e", 899));
        let text = c.encode();
        let all = (None, None);
        assert_eq!(Cursor::decode(&text, &filters, 1_000, 60, all).unwrap(), c);
        let other = Cursor::decode(
            &text,
            &fingerprint(b"EventName=DeleteTrail"),
            1_000,
            60,
            all,
        )
        .unwrap_err();
        assert_eq!(other.code(), tonic::Code::InvalidArgument);
        assert!(Cursor::decode("not a cursor", &filters, 1_000, 60, all).is_err());
        // Into following: the history's newest events (within the look-back) are remembered.
        c.catch_up(60);
        assert_eq!(
            c.seen.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(),
            ["a", "b"]
        );
        assert!(c.followed_has("a", 990, 60) && !c.followed_has("z", 995, 60));
        assert!(
            c.followed_has("old", 900, 60),
            "older than the look-back: done"
        );
        c.delivered_following("z", 995);
        c.advance(1_051, 60);
        assert_eq!(
            c.seen.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(),
            ["z"]
        );
    }
}
