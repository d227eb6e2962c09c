//! Streaming LookupEvents (StreamEvents): what a stream needs besides the API's calls. `cursor`: where
//! a stream stands, resumable anywhere. The feeds here: followers with the same filters in one account
//! and Region share one upstream poll (a feed). A feed polls LookupEvents over the last `lookback`
//! (CloudTrail shows events minutes after they happen) as often as the quota lets it, remembers the
//! events of that window, and hands each newly visible one to every follower once, through a bounded
//! broadcast: a follower further behind than its capacity is told so (and ends with its cursor).

pub mod buffer;
pub mod cursor;

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio::sync::broadcast;

use crate::{locks::lock, pb, target::Target};

/// How streams behave (README: "Streaming events").
#[derive(Debug, Clone)]
pub struct StreamConfig {
    /// How far back each follow poll looks, for CloudTrail's delivery delay.
    pub lookback: Duration,
    /// An idle stream sends a message this often.
    pub heartbeat: Duration,
    /// A feed polls at most this often (and never faster than the quota).
    pub poll_interval: Duration,
}

/// Messages a stream holds for a reader that has not taken them (then it stops fetching).
pub const STREAM_BUFFER: usize = 16;
/// Bytes a stream holds for a reader that has not taken them (then it stops fetching).
pub const STREAM_BUFFER_BYTES: usize = 1 << 20;
/// Batches a feed holds for its slowest follower (then that follower is ended with its cursor).
pub const FEED_BUFFER: usize = 256;

/// A feed's filters: the target, the attribute and the category (the time range is each
/// follower's own).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FeedKey {
    pub target: Target,
    /// The encoded LookupEventsRequest with only its attribute and category.
    pub filters: Vec<u8>,
}

/// One poll's news: events newly visible, oldest first.
#[derive(Debug)]
pub struct Batch {
    pub events: Vec<Arc<pb::Event>>,
    /// The second the poll was made at.
    pub polled_at: i64,
    /// From this second on, every event visible at the poll has been handed out.
    pub covered_from: i64,
}

#[derive(Debug, Default)]
struct Window {
    /// The events of the last look-back, by (second, id).
    events: BTreeMap<(i64, String), Arc<pb::Event>>,
    /// The last poll's coverage (none before the first poll).
    covered_from: Option<i64>,
}

#[derive(Debug)]
pub struct Feed {
    pub key: FeedKey,
    window: Mutex<Window>,
    sender: broadcast::Sender<Arc<Batch>>,
}

/// What a follower finds when it joins: the window's events (oldest first) and their coverage.
#[derive(Debug)]
pub struct Snapshot {
    pub events: Vec<Arc<pb::Event>>,
    pub covered_from: Option<i64>,
}

/// An event's second.
pub fn second_of(event: &pb::Event) -> i64 {
    event.event_time.as_ref().map_or(0, |t| t.seconds)
}

impl Feed {
    /// Takes a poll's answer (every event visible from `from` on, at second `now`): hands out the
    /// new ones, forgets those older than `from`.
    pub fn polled(&self, events: Vec<pb::Event>, from: i64, now: i64) {
        let mut window = lock(&self.window);
        let mut new = Vec::new();
        for event in events {
            let key = (second_of(&event), event.event_id.clone());
            if let std::collections::btree_map::Entry::Vacant(slot) = window.events.entry(key) {
                let event = Arc::new(event);
                slot.insert(event.clone());
                new.push(event);
            }
        }
        window.events = window.events.split_off(&(from, String::new()));
        window.covered_from = Some(from);
        new.sort_by_key(|e| (second_of(e), e.event_id.clone()));
        // Under the lock: a follower joining now sees these either in the window or as news.
        let _ = self.sender.send(Arc::new(Batch {
            events: new,
            polled_at: now,
            covered_from: from,
        }));
    }

    /// Whether anyone still follows.
    pub fn followed(&self) -> bool {
        self.sender.receiver_count() > 0
    }

    fn subscribe(&self) -> (Snapshot, broadcast::Receiver<Arc<Batch>>) {
        let window = lock(&self.window);
        let receiver = self.sender.subscribe();
        let snapshot = Snapshot {
            events: window.events.values().cloned().collect(),
            covered_from: window.covered_from,
        };
        (snapshot, receiver)
    }
}

/// The feeds followed now.
#[derive(Debug, Default)]
pub struct Feeds {
    feeds: Mutex<HashMap<FeedKey, Arc<Feed>>>,
}

impl Feeds {
    /// Joins the feed of `key`, made (and `start`ed) if none runs.
    pub fn join(
        &self,
        key: FeedKey,
        start: impl FnOnce(Arc<Feed>),
    ) -> (Snapshot, broadcast::Receiver<Arc<Batch>>) {
        let mut feeds = lock(&self.feeds);
        if let Some(feed) = feeds.get(&key) {
            return feed.subscribe();
        }
        let (sender, _) = broadcast::channel(FEED_BUFFER);
        let feed = Arc::new(Feed {
            key: key.clone(),
            window: Mutex::new(Window::default()),
            sender,
        });
        let joined = feed.subscribe();
        feeds.insert(key, feed.clone());
        metrics::gauge!(crate::telemetry::STREAM_FEEDS).increment(1.0);
        start(feed);
        joined
    }

    /// Ends `feed` if nobody follows it any more (its poller then stops). Under the registry's lock,
    /// so a follower joining meanwhile keeps it.
    pub fn end_if_unfollowed(&self, feed: &Arc<Feed>) -> bool {
        let mut feeds = lock(&self.feeds);
        if feed.followed() {
            return false;
        }
        if feeds
            .get(&feed.key)
            .is_some_and(|current| Arc::ptr_eq(current, feed))
        {
            feeds.remove(&feed.key);
            metrics::gauge!(crate::telemetry::STREAM_FEEDS).decrement(1.0);
        }
        true
    }

    pub fn len(&self) -> usize {
        lock(&self.feeds).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(id: &str, second: i64) -> pb::Event {
        pb::Event {
            event_id: id.into(),
            event_time: Some(prost_types::Timestamp {
                seconds: second,
                nanos: 0,
            }),
            ..Default::default()
        }
    }

    fn key() -> FeedKey {
        FeedKey {
            target: Target {
                account: "123456789012".into(),
                region: "us-east-1".into(),
            },
            filters: vec![],
        }
    }

    #[tokio::test]
    async fn a_feed_hands_each_new_event_out_once_to_every_follower() {
        let feeds = Feeds::default();
        let mut started = None;
        let (snapshot, mut first) = feeds.join(key(), |feed| started = Some(feed));
        let feed = started.expect("started");
        assert!(snapshot.events.is_empty() && snapshot.covered_from.is_none());
        feed.polled(vec![event("b", 101), event("a", 100)], 40, 160);
        feed.polled(
            vec![event("c", 150), event("b", 101), event("a", 100)],
            41,
            161,
        );
        let ids = |batch: &Batch| {
            batch
                .events
                .iter()
                .map(|e| e.event_id.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            ids(&first.recv().await.unwrap()),
            ["a", "b"],
            "oldest first"
        );
        assert_eq!(ids(&first.recv().await.unwrap()), ["c"], "only the new one");
        // A second follower joins the running feed: the window, then news.
        let (snapshot, mut second) = feeds.join(key(), |_| panic!("a second poller"));
        assert_eq!(snapshot.events.len(), 3);
        assert_eq!(snapshot.covered_from, Some(41));
        feed.polled(vec![event("d", 170)], 111, 171);
        assert_eq!(ids(&second.recv().await.unwrap()), ["d"]);
        // Older than the look-back: forgotten.
        let (snapshot, _third) = feeds.join(key(), |_| {});
        assert_eq!(snapshot.events.len(), 2, "{:?}", snapshot.events);
        drop((first, second, _third));
        assert!(feeds.end_if_unfollowed(&feed));
        assert!(feeds.is_empty());
    }
}
