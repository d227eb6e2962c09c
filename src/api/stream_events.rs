//! StreamEvents: every matching event, then (with follow) the new ones as they appear.
//!
//! A stream first delivers what exists, newest first, page by page as LookupEvents orders it (each
//! page through `Gateway::upstream`: the quota, shared round-robin with LookupEvents callers, the
//! caller's session). Following, it joins the feed of its filters (`stream`): one poller per account,
//! Region and filter, whatever the number of followers. Each message carries the cursor (`cursor`),
//! so a stream can be resumed anywhere. Each stream's task sends into a bounded channel: a reader that
//! does not take its messages stops the task (history) or, as a follower, falls behind the feed and
//! is ended with its cursor.

use std::{
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use aws_sdk_cloudtrail::Client;
use prost::Message;
use tokio::{sync::broadcast, time::Instant};
use tonic::{Code, Request, Response, Status};

use super::{CallContext, Gateway, Operation::*, Retries, Routed};
use crate::{
    convert::events,
    feeds::{
        Batch, Feed, FeedKey, Snapshot, buffer, cursor::Cursor, cursor::fingerprint, second_of,
    },
    ingest::Mode,
    pb,
    target::Target,
    telemetry,
};

pub type EventStream = buffer::Receiver<Result<pb::StreamEventsResponse, Status>>;

/// A resumed follower whose cursor is older than the feed's window by more than this catches up by
/// itself first; within it, the feed's window is enough (an event CloudTrail shows only later than
/// the look-back less this could be missed: the README says so).
const CATCH_UP_SLACK: i64 = 60;

/// Returns once the gateway drains (never, if it cannot tell).
async fn drained(draining: &mut tokio::sync::watch::Receiver<bool>) {
    loop {
        if *draining.borrow_and_update() {
            return;
        }
        if draining.changed().await.is_err() {
            return std::future::pending().await;
        }
    }
}

fn now_second() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn timestamp(second: i64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: second,
        nanos: 0,
    }
}

/// How a stream ended, for its status.
enum End {
    /// All delivered (without follow), the caller's deadline, or the caller went away.
    Done,
    Failed(Status),
}

/// A stream's task: its filters, where it stands, where its messages go.
struct Streamer {
    gateway: Gateway,
    context: CallContext,
    target: Target,
    client: Client,
    filters: pb::LookupEventsRequest,
    cursor: Cursor,
    follow: bool,
    lookback: i64,
    sender: buffer::Sender<Result<pb::StreamEventsResponse, Status>>,
    /// The caller's deadline, as an instant.
    deadline: Option<Instant>,
    /// When an idle follower sends its next heartbeat.
    next_heartbeat: Instant,
}

impl Gateway {
    pub(super) async fn stream_events(
        &self,
        request: Request<pb::StreamEventsRequest>,
    ) -> Result<Response<EventStream>, Status> {
        let mut context = CallContext::of(&request, self.request_timeout);
        // A stream has no default deadline: a follower follows until it goes away.
        if !context.caller_deadline {
            context.deadline = None;
        }
        let message = request.into_inner();
        let (target, client) = match self.route(StreamEvents, &mut context, &[]).await {
            Ok(route) => route,
            Err(e) => {
                let status = Status::from(e);
                self.audit(StreamEvents, &context, None, status.code());
                return Err(status);
            }
        };
        let filters = pb::LookupEventsRequest {
            lookup_attributes: message.lookup_attributes,
            start_time: message.start_time,
            end_time: message.end_time,
            event_category: message.event_category,
            ..Default::default()
        };
        // LookupEvents' rules apply to the filters.
        events::lookup_events(filters.clone(), client.lookup_events())?;
        let fingerprint = fingerprint(&filters.encode_to_vec());
        let lookback = self.streams.lookback.as_secs() as i64;
        let cursor = match message.cursor.as_str() {
            "" => Cursor::start(fingerprint, now_second()),
            text => {
                let second = |t: &Option<prost_types::Timestamp>| t.as_ref().map(|t| t.seconds);
                let range = (second(&filters.start_time), second(&filters.end_time));
                Cursor::decode(text, &fingerprint, now_second(), lookback, range)?
            }
        };
        let (sender, receiver) = buffer::channel();
        let deadline = context.deadline.map(|d| Instant::now() + d);
        let streamer = Streamer {
            deadline,
            next_heartbeat: Instant::now() + self.streams.heartbeat,
            gateway: self.clone(),
            context,
            target,
            client,
            filters,
            cursor,
            follow: message.follow,
            lookback,
            sender,
        };
        tokio::spawn(streamer.run());
        Ok(Response::new(receiver))
    }

    /// A feed's poller: while anyone follows, LookupEvents over the look-back, every page, as often
    /// as the quota (and `poll_interval`) lets it; made as the gateway, shared by every follower.
    /// Where the event store answers alone (`store` mode), it follows the store's watermark instead
    /// and CloudTrail is never called (`store_window`).
    async fn poll_feed(self, feed: Arc<Feed>, filters: pb::LookupEventsRequest) {
        let context = CallContext::internal(crate::principal::FEED_QUEUE);
        let context = Routed::new(&context, &feed.key.target);
        let client = self.upstream.client(&feed.key.target, None);
        let lookback = self.streams.lookback.as_secs() as i64;
        let mut failures = 0u32;
        let mut last_watermark = None;
        loop {
            if self.feeds.end_if_unfollowed(&feed) {
                return;
            }
            // Polls start at most every poll_interval; one that waited that long for its slot is
            // followed by the next at once, so the poll stays queued and gets its weight's share.
            let next = tokio::time::Instant::now() + self.streams.poll_interval;
            let now = now_second();
            let (from, horizon, pages) = match self.history_for(&feed.key.target) {
                Some((_, Mode::Store, watermark)) => {
                    let Some(watermark) = watermark.map(|w| w.div_euclid(1000)) else {
                        // Nothing is complete in the store yet: no poll could promise anything.
                        tokio::time::sleep_until(next).await;
                        continue;
                    };
                    let from = store_window(watermark, last_watermark, lookback);
                    last_watermark = Some(watermark);
                    (from, from + lookback, Pages::Shared)
                }
                _ => (now - lookback, now, Pages::Fresh),
            };
            let window = pb::LookupEventsRequest {
                start_time: Some(timestamp(from)),
                ..filters.clone()
            };
            match self.all_pages(context, &client, window, pages).await {
                Ok(events) => {
                    failures = 0;
                    feed.polled(events, from, horizon);
                    tokio::time::sleep_until(next).await;
                }
                Err(e) => {
                    failures += 1;
                    let wait = Duration::from_secs(1 << failures.min(5));
                    tracing::warn!(error = %e, ?wait, "event feed: LookupEvents failed; polling again later");
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    /// Every event LookupEvents has for `request`, all pages.
    async fn all_pages(
        &self,
        context: Routed<'_>,
        client: &Client,
        request: pb::LookupEventsRequest,
        pages: Pages,
    ) -> Result<Vec<pb::Event>, Status> {
        let mut events = Vec::new();
        let mut next_token = String::new();
        loop {
            let page = self
                .page(
                    context,
                    client,
                    pb::LookupEventsRequest {
                        next_token,
                        ..request.clone()
                    },
                    pages,
                )
                .await?;
            events.extend(page.events);
            if page.next_token.is_empty() {
                return Ok(events);
            }
            next_token = page.next_token;
        }
    }

    /// One LookupEvents page, through the quota.
    async fn page(
        &self,
        context: Routed<'_>,
        client: &Client,
        request: pb::LookupEventsRequest,
        pages: Pages,
    ) -> Result<pb::LookupEventsResponse, Status> {
        if pages == Pages::Fresh {
            let call = events::lookup_events(request, client.lookup_events())?;
            let output = self
                .upstream(LookupEvents, context, call, Retries::None)
                .await?;
            return Ok(output.into());
        }
        // History: from the event store where a source covers the target, as LookupEvents.
        if let Some(plan) = self.history_for(context.target) {
            let answer = self.history_lookup(context, client, plan, request).await?;
            return Ok(answer.response);
        }
        let (answer, _) = self.coalesced_lookup(context, client, request).await?;
        Ok(answer.as_ref().clone())
    }
}

/// Where a feed following the store looks from, in seconds: every event up to the watermark is
/// stored, so a poll from the look-back before it, or from the last poll's watermark if the
/// watermark jumped further (a backfill, an outage ended), sees each event once it is complete.
/// Newer events already stored are handed out as they appear, as CloudTrail's are. The poll's
/// horizon is this plus the look-back: what is older than `from` was all handed out before.
fn store_window(watermark: i64, last_watermark: Option<i64>, lookback: i64) -> i64 {
    let from = watermark - lookback;
    last_watermark.map_or(from, |last| from.min(last))
}

/// Where LookupEvents pages come from.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Pages {
    /// As LookupEvents answers: from the event store where it covers the target, else through
    /// LookupEvents' coalescer (streams started together with the same filters ask for the same
    /// pages, and share them; a cached answer is as good as a new one).
    Shared,
    /// Straight from CloudTrail: a feed's poll is already shared, and must see what is there now
    /// (the horizon it reports is the time it asked).
    Fresh,
}

impl Streamer {
    /// The stream's context and target, as the calls it makes take them.
    fn routed(&self) -> Routed<'_> {
        Routed::new(&self.context, &self.target)
    }

    async fn run(mut self) {
        metrics::gauge!(telemetry::STREAMS).increment(1.0);
        let end = match self.deliver().await {
            Ok(()) => End::Done,
            Err(status) => End::Failed(status),
        };
        if let End::Failed(status) = end {
            let size = status.message().len() + status.details().len();
            let _ = self.sender.send(Err(status), size).await;
        }
        metrics::gauge!(telemetry::STREAMS).decrement(1.0);
    }

    /// A status that ends the stream, carrying the cursor to resume with.
    fn ended(&self, code: Code, reason: &'static str, message: &str) -> Status {
        let mut details = tonic_types::ErrorDetails::new();
        let metadata: std::collections::HashMap<String, String> =
            [("cursor".to_owned(), self.cursor.encode())].into();
        details.set_error_info(reason, crate::error::GATEWAY_DOMAIN, metadata);
        if code == Code::Unavailable || code == Code::Aborted {
            details.set_retry_info(Some(Duration::ZERO));
        }
        use tonic_types::StatusExt;
        Status::with_error_details(code, message, details)
    }

    /// Sends a message; `false` when the caller went away.
    async fn send(&mut self, events: Vec<pb::Event>, phase: &'static str) -> bool {
        self.send_marked(events, phase, false).await
    }

    /// Sends a message, `caught_up` on the one that ends the history.
    async fn send_marked(
        &mut self,
        events: Vec<pb::Event>,
        phase: &'static str,
        caught_up: bool,
    ) -> bool {
        if !events.is_empty() {
            metrics::counter!(telemetry::STREAMED_EVENTS, "phase" => phase)
                .increment(events.len() as u64);
        }
        let message = pb::StreamEventsResponse {
            events,
            cursor: self.cursor.encode(),
            caught_up,
        };
        self.next_heartbeat = Instant::now() + self.gateway.streams.heartbeat;
        let size = message.encoded_len();
        self.sender.send(Ok(message), size).await
    }

    /// What is left of the caller's deadline for the next call (`Some(ZERO)`: none).
    fn remaining(&mut self) -> Option<Duration> {
        let left = self
            .deadline
            .map(|at| at.saturating_duration_since(Instant::now()));
        self.context.deadline = left;
        left
    }

    async fn deliver(&mut self) -> Result<(), Status> {
        if !self.cursor.caught_up {
            let done = self.history().await?;
            if !done {
                return Ok(());
            }
        }
        if self.follow {
            self.following().await?;
        }
        Ok(())
    }

    /// Delivers what exists, newest first, down from the cursor. `false`: the caller went away.
    async fn history(&mut self) -> Result<bool, Status> {
        let end = self
            .filters
            .end_time
            .as_ref()
            .map_or(i64::MAX, |t| t.seconds);
        // The second from which it goes down; inclusive, so the events of that second not yet
        // delivered come again (the cursor knows which were).
        let from = self.cursor.history_from().min(end);
        let request = pb::LookupEventsRequest {
            end_time: Some(timestamp(from.saturating_add(1))),
            ..self.filters.clone()
        };
        let mut next_token = String::new();
        loop {
            if self.remaining() == Some(Duration::ZERO) {
                return Ok(false);
            }
            let page = self
                .gateway
                .page(
                    self.routed(),
                    &self.client,
                    pb::LookupEventsRequest {
                        next_token,
                        ..request.clone()
                    },
                    Pages::Shared,
                )
                .await?;
            let mut batch = Vec::with_capacity(page.events.len());
            for event in page.events {
                let second = second_of(&event);
                if second > from || self.cursor.history_has(&event.event_id, second) {
                    continue;
                }
                self.cursor
                    .delivered_in_history(&event.event_id, second, self.lookback);
                batch.push(event);
            }
            if !batch.is_empty() && !self.send(batch, "history").await {
                return Ok(false);
            }
            if page.next_token.is_empty() {
                break;
            }
            next_token = page.next_token;
        }
        self.cursor.catch_up(self.lookback);
        Ok(self.send_marked(Vec::new(), "history", true).await)
    }

    /// Whether `event` is one this stream still owes its reader: in its time range, not delivered.
    fn owed(&self, event: &pb::Event) -> bool {
        let second = second_of(event);
        let after_start = self
            .filters
            .start_time
            .as_ref()
            .is_none_or(|t| second >= t.seconds);
        let before_end = self
            .filters
            .end_time
            .as_ref()
            .is_none_or(|t| second <= t.seconds);
        after_start
            && before_end
            && !self
                .cursor
                .followed_has(&event.event_id, second, self.lookback)
    }

    /// Delivers `events` (oldest first) it still owes; `false` when the caller went away.
    async fn deliver_owed(&mut self, events: impl IntoIterator<Item = pb::Event>) -> bool {
        let mut batch = Vec::new();
        for event in events {
            if self.owed(&event) {
                self.cursor
                    .delivered_following(&event.event_id, second_of(&event));
                batch.push(event);
            }
        }
        batch.is_empty() || self.send(batch, "follow").await
    }

    /// Joins the feed of its filters and delivers what appears, until the caller's deadline, its
    /// leaving, a drain, or (with an end time) nothing more can appear.
    async fn following(&mut self) -> Result<(), Status> {
        // A feed's filters: the attribute and the category (the time range is each follower's).
        let feed_filters = pb::LookupEventsRequest {
            lookup_attributes: self.filters.lookup_attributes.clone(),
            event_category: self.filters.event_category,
            ..Default::default()
        };
        let key = FeedKey {
            target: self.target.clone(),
            filters: feed_filters.encode_to_vec(),
        };
        let poller = self.gateway.clone();
        let (
            Snapshot {
                events,
                covered_from,
            },
            mut news,
        ) = self.gateway.feeds.join(key, move |feed| {
            tokio::spawn(poller.poll_feed(feed, feed_filters));
        });
        // The feed's window from its last poll (or its first poll, awaited).
        let (events, covered) = match covered_from {
            Some(covered) => (
                events
                    .into_iter()
                    .map(|e| e.as_ref().clone())
                    .collect::<Vec<_>>(),
                covered,
            ),
            None => match news.recv().await {
                Ok(batch) => {
                    let events = batch.events.iter().map(|e| e.as_ref().clone()).collect();
                    self.cursor.advance(batch.polled_at, self.lookback);
                    (events, batch.covered_from)
                }
                Err(_) => {
                    return Err(self.ended(
                        Code::Unavailable,
                        "FeedEnded",
                        "the event feed ended; resume with the cursor",
                    ));
                }
            },
        };
        // A follower resumed long after its cursor catches up on the gap by itself.
        let floor = self.cursor.horizon - self.lookback;
        if covered > floor + CATCH_UP_SLACK {
            self.remaining();
            let gap = pb::LookupEventsRequest {
                start_time: Some(timestamp(floor)),
                ..self.filters.clone()
            };
            let mut missed = self
                .gateway
                .all_pages(self.routed(), &self.client, gap, Pages::Shared)
                .await?;
            missed.reverse();
            if !self.deliver_owed(missed).await {
                return Ok(());
            }
        }
        if !self.deliver_owed(events).await {
            return Ok(());
        }
        let mut draining = self.gateway.draining.clone();
        loop {
            let deadline = self.deadline;
            let until_deadline = async {
                match deadline {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                news = news.recv() => match news {
                    Ok(batch) => {
                        let Batch { events, polled_at, .. } = batch.as_ref();
                        let owed: Vec<pb::Event> = events.iter().map(|e| e.as_ref().clone()).collect();
                        if !self.deliver_owed(owed).await {
                            return Ok(());
                        }
                        self.cursor.advance(*polled_at, self.lookback);
                        let end = self.filters.end_time.as_ref().map(|t| t.seconds);
                        if end.is_some_and(|end| self.cursor.horizon - self.lookback > end) {
                            // Nothing in the time range can appear any more.
                            self.send(Vec::new(), "follow").await;
                            return Ok(());
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        return Err(self.ended(
                            Code::Aborted,
                            "ReaderTooSlow",
                            &format!("the reader fell {missed} batches behind the shared feed; resume with the cursor"),
                        ));
                    }
                    Err(broadcast::error::RecvError::Closed) => {
                        return Err(self.ended(Code::Unavailable, "FeedEnded", "the event feed ended; resume with the cursor"));
                    }
                },
                () = tokio::time::sleep_until(self.next_heartbeat) => {
                    if !self.send(Vec::new(), "follow").await {
                        return Ok(());
                    }
                }
                () = drained(&mut draining) => {
                    return Err(self.ended(
                        Code::Unavailable,
                        "Draining",
                        "the gateway is shutting down; resume with the cursor on another replica",
                    ));
                }
                () = until_deadline => return Ok(()),
                () = self.sender.closed() => return Ok(()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_store_feed_looks_back_from_the_watermark_and_never_past_the_last_one() {
        assert_eq!(store_window(1000, None, 60), 940);
        assert_eq!(store_window(1010, Some(1000), 60), 950);
        // The watermark jumped an hour: from the last one, so nothing between is missed.
        assert_eq!(store_window(4600, Some(1000), 60), 1000);
    }
}
