//! Discovery by listing: the accounts (and organizations) under `AWSLogs/`, their Regions, then per
//! (account, Region) one ListObjectsV2 after the last key stored, so an idle poll costs one LIST
//! per place (plus one per account and one for the bucket, to find new ones). Within a place's
//! prefix keys sort by day, then time, so the cursor only moves forward.
//!
//! A file that cannot be read for good (corrupt, not CloudTrail, outside the layout, too large) is
//! recorded as skipped and counted; one that fails for now (S3 500s, SlowDown past the SDK's own
//! retries, the disk full) ends the place's poll there, to be tried again at the next: nothing is
//! lost, and a file is stored once.

use std::{
    collections::BTreeSet,
    time::{Duration, Instant},
};

use super::{
    queue,
    read::{Found, Prepared, ReadError, Reader, s3_error},
    source::{IngestConfig, Source, now_ms},
};
use crate::{
    store::{Store, layout},
    telemetry,
};

/// One place of a bucket: its organization (for an organization trail's bucket), account, Region.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Place {
    bucket: String,
    organization: Option<String>,
    account: String,
    region: String,
}

/// Files fetched and parsed ahead of the one being stored.
const READ_AHEAD: usize = 4;

/// How far back of the last key stored each poll lists again (see `layout::rewind`).
const RELIST_MINUTES: u32 = 15;

pub struct Poller {
    source: Source,
    store: Store,
    config: IngestConfig,
    reader: Reader,
}

impl Poller {
    pub fn new(source: Source, store: Store, config: IngestConfig) -> Poller {
        let reader = Reader {
            source: source.clone(),
            store: store.clone(),
            config: config.clone(),
        };
        Poller {
            source,
            store,
            config,
            reader,
        }
    }

    /// Lists for good; with a queue, lists once (the backfill) and then follows the queue.
    pub async fn run(self) {
        let mut tick = tokio::time::interval(self.config.poll_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let queue = match (&self.source.sqs, &self.source.config.queue_url) {
            (Some(sqs), Some(url)) => Some((sqs.clone(), url.clone())),
            _ => None,
        };
        loop {
            tick.tick().await;
            self.poll().await;
            if let Some((sqs, url)) = &queue
                && self.source.status.snapshot().backfill.done
            {
                return queue::consume(self.reader, sqs.clone(), url.clone()).await;
            }
        }
    }

    /// One pass over every place of the source.
    pub async fn poll(&self) {
        let started = now_ms();
        let places = match self.places().await {
            Ok(places) => places,
            Err(e) => {
                self.failed(None, &e);
                return;
            }
        };
        let first = !self.source.status.snapshot().backfill.done;
        let progress = Progress::new(places.len());
        for (i, place) in places.iter().enumerate() {
            self.source
                .status
                .place(&place.account, &place.region, |_| {});
            match self.poll_place(place, first.then_some(&progress)).await {
                Ok(()) => {
                    let watermark = started - self.config.delivery_delay.as_millis() as i64;
                    self.source
                        .status
                        .place(&place.account, &place.region, |p| {
                            p.watermark_ms = p.watermark_ms.max(Some(watermark));
                            p.polled_ms = Some(started);
                            p.backlog = 0;
                        });
                    self.record_watermark(place, watermark);
                }
                Err(e) => self.failed(Some(place), &e),
            }
            if first {
                progress.place_done(i + 1, &self.source);
            }
        }
        if first {
            self.source.status.backfill(|b| {
                b.done = true;
                b.percent = 100.0;
            });
            progress.log(&self.source, true);
        }
    }

    fn record_watermark(&self, place: &Place, watermark: i64) {
        let labels = [
            ("source", self.source.config.name.clone()),
            ("account", place.account.clone()),
            ("region", place.region.clone()),
        ];
        metrics::gauge!(telemetry::STORE_WATERMARK, &labels).set(watermark as f64 / 1000.0);
        metrics::gauge!(telemetry::STORE_LAG, &labels).set((now_ms() - watermark) as f64 / 1000.0);
    }

    fn failed(&self, place: Option<&Place>, e: &ReadError) {
        let text = e.to_string();
        metrics::counter!(telemetry::STORE_ERRORS, "source" => self.source.config.name.clone(), "kind" => e.kind())
            .increment(1);
        match place {
            Some(place) => {
                tracing::warn!(source = %self.source.config.name, account = %place.account, region = %place.region, error = %text, "event store: poll failed, retried at the next");
                self.source
                    .status
                    .place(&place.account, &place.region, |p| {
                        p.errors += 1;
                        p.last_error = Some(text.clone());
                    });
            }
            None => {
                tracing::warn!(source = %self.source.config.name, error = %text, "event store: listing the bucket failed, retried at the next poll");
                self.source.status.failed(&text);
            }
        }
    }

    /// Every place under the prefix, filtered by the source's accounts and Regions; those
    /// configured count even before their first file.
    async fn places(&self) -> Result<Vec<Place>, ReadError> {
        let c = &self.source.config;
        let mut places = BTreeSet::new();
        let root = format!("{}AWSLogs/", c.prefix);
        for bucket in self.buckets().await? {
            for top in self.folders(&bucket, &root).await? {
                if top.starts_with("o-") {
                    for account in self.folders(&bucket, &format!("{root}{top}/")).await? {
                        self.add_regions(&mut places, &bucket, Some(&top), &account)
                            .await?;
                    }
                } else {
                    self.add_regions(&mut places, &bucket, None, &top).await?;
                }
            }
        }
        if !c.accounts.is_empty() && !c.regions.is_empty() && !c.bucket.is_empty() {
            let organization = places.iter().find_map(|p: &Place| p.organization.clone());
            for account in &c.accounts {
                for region in &c.regions {
                    places.insert(Place {
                        bucket: c.bucket.clone(),
                        organization: organization.clone(),
                        account: account.clone(),
                        region: region.clone(),
                    });
                }
            }
        }
        Ok(places.into_iter().collect())
    }

    /// The source's bucket, or (the embedded S3's source) every bucket there is.
    async fn buckets(&self) -> Result<Vec<String>, ReadError> {
        let c = &self.source.config;
        if !c.bucket.is_empty() {
            return Ok(vec![c.bucket.clone()]);
        }
        let listed = self
            .source
            .s3
            .list_buckets()
            .send()
            .await
            .map_err(|e| s3_error("ListBuckets", &e))?;
        Ok(listed
            .buckets()
            .iter()
            .filter_map(|b| b.name().map(str::to_owned))
            .collect())
    }

    async fn add_regions(
        &self,
        places: &mut BTreeSet<Place>,
        bucket: &str,
        organization: Option<&str>,
        account: &str,
    ) -> Result<(), ReadError> {
        let c = &self.source.config;
        if !c.accounts.is_empty() && !c.accounts.iter().any(|a| a == account) {
            return Ok(());
        }
        let base = match organization {
            Some(o) => format!("{}AWSLogs/{o}/{account}/CloudTrail/", c.prefix),
            None => format!("{}AWSLogs/{account}/CloudTrail/", c.prefix),
        };
        for region in self.folders(bucket, &base).await? {
            if c.regions.is_empty() || c.regions.contains(&region) {
                places.insert(Place {
                    bucket: bucket.to_owned(),
                    organization: organization.map(str::to_owned),
                    account: account.to_owned(),
                    region,
                });
            }
        }
        Ok(())
    }

    /// The names of the "folders" right below `prefix`.
    async fn folders(&self, bucket: &str, prefix: &str) -> Result<Vec<String>, ReadError> {
        let mut names = Vec::new();
        let mut token = None;
        loop {
            let page = self
                .source
                .s3
                .list_objects_v2()
                .bucket(bucket)
                .prefix(prefix)
                .delimiter("/")
                .set_continuation_token(token)
                .send()
                .await
                .map_err(|e| s3_error("ListObjectsV2", &e))?;
            names.extend(page.common_prefixes().iter().filter_map(|p| {
                let name = p.prefix()?.strip_prefix(prefix)?.trim_end_matches('/');
                (!name.is_empty()).then(|| name.to_owned())
            }));
            match page.next_continuation_token {
                Some(next) if page.is_truncated == Some(true) => token = Some(next),
                _ => return Ok(names),
            }
        }
    }

    /// Reads a place's new files, in key order, each stored with the cursor moved past it.
    async fn poll_place(
        &self,
        place: &Place,
        progress: Option<&Progress>,
    ) -> Result<(), ReadError> {
        let c = &self.source.config;
        let prefix = layout::region_prefix(
            &c.prefix,
            place.organization.as_deref(),
            &place.account,
            &place.region,
        );
        // Cursors and files are named with their bucket: a source may read several.
        let cursor = format!("{}/{prefix}", place.bucket);
        let after = match self.store.cursor(c.name.clone(), cursor.clone()).await? {
            Some(after) => layout::rewind(&after, RELIST_MINUTES),
            None => {
                let backfill_days = self.config.backfill.as_secs().div_ceil(86_400) as i64;
                layout::day_start_after(&prefix, now_ms().div_euclid(86_400_000) - backfill_days)
            }
        };
        let mut token = None;
        loop {
            let page = self.list(&place.bucket, &prefix, &after, token).await?;
            let objects = page.contents();
            self.source
                .status
                .place(&place.account, &place.region, |p| {
                    p.backlog = objects.len() as u64;
                });
            // A few files fetched and parsed ahead, stored one by one in key order (the cursor
            // only moves forward).
            let mut ahead = std::collections::VecDeque::new();
            for object in objects {
                let Some(key) = object.key().map(str::to_owned) else {
                    continue;
                };
                let (reader, bucket, cursor) =
                    (self.reader.clone(), place.bucket.clone(), cursor.clone());
                let (account, region) = (place.account.clone(), place.region.clone());
                let size = object.size().map(|s| s as u64);
                ahead.push_back(tokio::spawn(async move {
                    reader
                        .prepare(Found {
                            bucket: &bucket,
                            key: &key,
                            size,
                            cursor: Some(&cursor),
                            listed_place: Some((&account, &region)),
                        })
                        .await
                }));
                if ahead.len() >= READ_AHEAD {
                    self.commit_next(&mut ahead, place, progress).await?;
                }
            }
            while !ahead.is_empty() {
                self.commit_next(&mut ahead, place, progress).await?;
            }
            match page.next_continuation_token {
                Some(next) if page.is_truncated == Some(true) => token = Some(next),
                _ => return Ok(()),
            }
        }
    }

    /// Stores the oldest file read ahead.
    async fn commit_next(
        &self,
        ahead: &mut std::collections::VecDeque<
            tokio::task::JoinHandle<Result<Prepared, ReadError>>,
        >,
        place: &Place,
        progress: Option<&Progress>,
    ) -> Result<(), ReadError> {
        let Some(next) = ahead.pop_front() else {
            return Ok(());
        };
        let prepared = match next.await {
            Ok(prepared) => prepared,
            Err(e) => Err(ReadError::Task(e.to_string())),
        };
        let committed = match prepared {
            Ok(prepared) => self.reader.commit(prepared).await,
            Err(e) => Err(e),
        };
        if committed.is_err() {
            // The files after it are read again at the next poll.
            ahead.iter().for_each(|task| task.abort());
            ahead.clear();
        }
        committed?;
        self.source
            .status
            .place(&place.account, &place.region, |p| {
                p.backlog = p.backlog.saturating_sub(1);
            });
        if let Some(progress) = progress {
            progress.file(&self.source);
        }
        Ok(())
    }

    /// One page of a place's keys after `after` (the first page) or from `token`.
    async fn list(
        &self,
        bucket: &str,
        prefix: &str,
        after: &str,
        token: Option<String>,
    ) -> Result<aws_sdk_s3::operation::list_objects_v2::ListObjectsV2Output, ReadError> {
        let list = self
            .source
            .s3
            .list_objects_v2()
            .bucket(bucket)
            .prefix(prefix);
        let list = match token {
            Some(token) => list.continuation_token(token),
            None => list.start_after(after),
        };
        list.send().await.map_err(|e| s3_error("ListObjectsV2", &e))
    }
}

/// The first pass's progress, logged every few seconds: percent, files, events, rate, ETA.
struct Progress {
    started: Instant,
    places: usize,
    last_log: std::sync::Mutex<Instant>,
}

impl Progress {
    fn new(places: usize) -> Progress {
        Progress {
            started: Instant::now(),
            places: places.max(1),
            last_log: std::sync::Mutex::new(Instant::now()),
        }
    }

    fn place_done(&self, done: usize, source: &Source) {
        source.status.backfill(|b| {
            b.percent = b.percent.max(100.0 * done as f64 / self.places as f64);
        });
    }

    fn file(&self, source: &Source) {
        let snapshot = source.status.snapshot();
        let (files, events) = snapshot
            .places
            .values()
            .fold((0, 0), |(f, e), p| (f + p.files, e + p.events));
        source.status.backfill(|b| {
            b.files = files;
            b.events = events;
        });
        metrics::gauge!(telemetry::STORE_BACKFILL, "source" => source.config.name.clone())
            .set(snapshot.backfill.percent);
        let mut last = crate::locks::lock(&self.last_log);
        if last.elapsed() >= Duration::from_secs(5) {
            *last = Instant::now();
            drop(last);
            self.log(source, false);
        }
    }

    fn log(&self, source: &Source, done: bool) {
        let b = source.status.snapshot().backfill;
        let elapsed = self.started.elapsed().as_secs_f64().max(0.001);
        let rate = b.events as f64 / elapsed;
        let eta = if b.percent > 0.0 {
            elapsed * (100.0 - b.percent) / b.percent
        } else {
            0.0
        };
        tracing::info!(
            source = %source.config.name,
            percent = format!("{:.0}", b.percent),
            files = b.files,
            events = b.events,
            events_per_second = format!("{rate:.0}"),
            eta_seconds = format!("{eta:.0}"),
            done,
            "event store: backfill"
        );
    }
}
