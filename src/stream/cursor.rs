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

    /// The cursor a caller sent, checked against the filters of its request.
    pub fn decode(text: &str, filters: &[u8]) -> Result<Cursor, Error> {
        let cursor = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(text)
            .ok()
            .and_then(|raw| <Cursor as Message>::decode(raw.as_slice()).ok());
        let problem = match cursor {
            Some(c) if c.version == VERSION && c.filters == filters => return Ok(c),
            None => "not a cursor of this gateway's StreamEvents",
            Some(c) if c.version != VERSION => "a cursor of another version",
            Some(_) => {
                "the cursor belongs to a stream with other filters (attribute, times or category)"
            }
        };
        Err(Error::invalid("cursor", problem))
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
        assert_eq!(Cursor::decode(&text, &filters).unwrap(), c);
        let other = Cursor::decode(&text, &fingerprint(b"EventName=DeleteTrail")).unwrap_err();
        assert_eq!(other.code(), tonic::Code::InvalidArgument);
        assert!(Cursor::decode("not a cursor", &filters).is_err());
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
