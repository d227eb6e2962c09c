//! Delivery, as CloudTrail does it: every event a logging trail selects waits for the next delivery
//! interval, then goes to the trail's bucket as one gzipped `{"Records":[...]}` log file per Region;
//! with log file validation on, every digest interval a signed digest per Region lists the files
//! delivered since the last one. What happened (the latest delivery, its error) is what
//! GetTrailStatus reports.

mod digest;
mod loaded;
mod names;

use std::{
    collections::{BTreeMap, VecDeque},
    io::Write,
};

use aws_smithy_types::{DateTime, date_time::Format};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::{
    ids::hex,
    keys::KeyRing,
    s3::{Buckets, Object},
    trails::{Trail, Trails},
};
use digest::{Chain, Link, LogFile, Placement};
use names::Owner;

/// What GetTrailStatus says of a trail's deliveries.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub(crate) struct Status {
    #[serde(with = "crate::state::epoch_seconds", default)]
    latest_delivery: Option<DateTime>,
    #[serde(default)]
    latest_delivery_error: Option<String>,
    #[serde(with = "crate::state::epoch_seconds", default)]
    latest_digest: Option<DateTime>,
    #[serde(default)]
    latest_digest_error: Option<String>,
}

/// Where a trail's files go: `<account>/<region>` (an organization trail delivers for every
/// account of the organization, each under its own id).
fn place(account: &str, region: &str) -> String {
    format!("{account}/{region}")
}

fn split_place(place: &str) -> (&str, &str) {
    place.split_once('/').unwrap_or((place, ""))
}

/// One trail's deliveries: events waiting, what happened last, its digest chains, by place.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub(crate) struct TrailDelivery {
    /// Records waiting for the next delivery, by place (not kept across restarts: CloudTrail's
    /// own undelivered events are not either).
    #[serde(skip)]
    pending: BTreeMap<String, VecDeque<Value>>,
    #[serde(default)]
    status: Status,
    #[serde(default)]
    chains: BTreeMap<String, Chain>,
}

/// Every trail's deliveries in one account, by trail ARN.
#[derive(Debug, Default)]
pub(crate) struct Deliveries {
    by_arn: BTreeMap<String, TrailDelivery>,
}

/// The delivery settings of the emulator.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// At most this many records wait per trail and place (a bucket that is gone holds them);
    /// the oldest are dropped first.
    pub pending: usize,
}

/// Loaded log files as a trail would have delivered them: (key, gzipped file) per account,
/// Region and five minutes of event time.
pub(crate) fn loaded_files(records: &[Value], account: &str) -> Vec<(String, Vec<u8>)> {
    loaded::files(records, account)
        .into_iter()
        .map(|(key, document)| (key, gzip(&document)))
        .collect()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    // Writing to a Vec cannot fail.
    let _ = encoder.write_all(bytes);
    encoder.finish().unwrap_or_default()
}

fn event_time(record: &Value) -> Option<DateTime> {
    let text = record.get("eventTime")?.as_str()?;
    DateTime::from_str(text, Format::DateTime).ok()
}

fn owner<'a>(trail: &'a Trail, account: &'a str, organization: Option<&'a str>) -> Owner<'a> {
    Owner {
        prefix: trail.key_prefix(),
        organization: organization.filter(|_| trail.is_organization()),
        account,
    }
}

impl Deliveries {
    /// The state file's copy: statuses and digest chains (not the waiting events, which the
    /// file does not keep: copying them for every write would be wasted).
    pub(crate) fn saved(&self) -> BTreeMap<String, TrailDelivery> {
        self.by_arn
            .iter()
            .map(|(arn, d)| {
                let kept = TrailDelivery {
                    pending: BTreeMap::new(),
                    status: d.status.clone(),
                    chains: d.chains.clone(),
                };
                (arn.clone(), kept)
            })
            .collect()
    }

    pub(crate) fn restore(&mut self, saved: BTreeMap<String, TrailDelivery>) {
        self.by_arn.extend(saved);
    }

    /// A record of time `at` just written in `account` and `region`: every trail that logs it
    /// there keeps it for the next delivery. `members_only`: the record is another account's, and
    /// only organization trails log it.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn enqueue(
        &mut self,
        trails: &Trails,
        (account, region): (&str, &str),
        record: &Value,
        at: DateTime,
        members_only: bool,
        limits: Limits,
    ) {
        for trail in trails.all() {
            let logs = trail.logs_at(at) && trail.visible_in(region) && trail.selects(record);
            if !logs || (members_only && !trail.is_organization()) {
                continue;
            }
            let waiting = self
                .by_arn
                .entry(trail.arn.clone())
                .or_default()
                .pending
                .entry(place(account, region))
                .or_default();
            if waiting.len() >= limits.pending {
                waiting.pop_front();
            }
            waiting.push_back(record.clone());
        }
    }

    /// Delivers what waits: one log file per trail and place. Returns how many were written.
    pub(crate) fn deliver_logs(
        &mut self,
        account: &str,
        trails: &Trails,
        s3: &mut Buckets,
        now: DateTime,
        organization: Option<&str>,
    ) -> usize {
        self.by_arn
            .retain(|arn, _| trails.all().any(|t| &t.arn == arn));
        let mut written = 0;
        for trail in trails.all() {
            let delivery = self.by_arn.entry(trail.arn.clone()).or_default();
            if trail.is_logging() && trail.validates() {
                let start = trail.start_logging_time().unwrap_or(now);
                delivery
                    .chains
                    .entry(place(account, &trail.home_region))
                    .or_insert_with(|| Chain::new(start));
            }
            let places: Vec<String> = delivery.pending.keys().cloned().collect();
            for at in places {
                let Some(records) = delivery.pending.remove(&at).filter(|r| !r.is_empty()) else {
                    continue;
                };
                let (member, region) = split_place(&at);
                let key = owner(trail, member, organization).log_file(region, now);
                let records: Vec<Value> = records.into_iter().collect();
                let document = json!({ "Records": records }).to_string();
                let mut object = Object::new(
                    gzip(document.as_bytes()),
                    BTreeMap::new(),
                    Some("application/json".into()),
                    now,
                );
                object.content_encoding = Some("gzip".into());
                match s3.put(trail.bucket(), &key, object) {
                    Ok(()) => {
                        written += 1;
                        delivery.status.latest_delivery = Some(now);
                        delivery.status.latest_delivery_error = None;
                        if trail.validates() {
                            let times: Vec<DateTime> =
                                records.iter().filter_map(event_time).collect();
                            let file = LogFile {
                                bucket: trail.bucket().to_owned(),
                                key,
                                hash: hex(&Sha256::digest(document.as_bytes())),
                                oldest: times.iter().copied().min().unwrap_or(now),
                                newest: times.iter().copied().max().unwrap_or(now),
                            };
                            let start = trail.start_logging_time().unwrap_or(now);
                            delivery
                                .chains
                                .entry(at.clone())
                                .or_insert_with(|| Chain::new(start))
                                .files
                                .push(file);
                        }
                    }
                    Err(e) => {
                        // Kept for the next delivery, as CloudTrail retries.
                        delivery.status.latest_delivery_error = Some(e.code.to_owned());
                        delivery.pending.insert(at, records.into());
                    }
                }
            }
        }
        written
    }

    /// Delivers a digest per trail and Region where validation is on (an empty one when no file
    /// came); where logging or validation stopped, a last digest of the files not yet digested,
    /// then the chain ends. Returns how many were written.
    pub(crate) fn deliver_digests(
        &mut self,
        trails: &Trails,
        s3: &mut Buckets,
        keys: &mut KeyRing,
        now: DateTime,
        organization: Option<&str>,
    ) -> usize {
        let mut written = 0;
        for trail in trails.all() {
            let Some(delivery) = self.by_arn.get_mut(&trail.arn) else {
                continue;
            };
            let active = trail.is_logging() && trail.validates();
            let places: Vec<String> = delivery.chains.keys().cloned().collect();
            for at in places {
                let Some(chain) = delivery.chains.get_mut(&at) else {
                    continue;
                };
                if !active && chain.files.is_empty() {
                    delivery.chains.remove(&at);
                    continue;
                }
                let (member, region) = split_place(&at);
                let owner = owner(trail, member, organization);
                match deliver_digest(trail, &owner, region, chain, s3, keys, now) {
                    Ok(()) => {
                        written += 1;
                        delivery.status.latest_digest = Some(now);
                        delivery.status.latest_digest_error = None;
                        if !active {
                            delivery.chains.remove(&at);
                        }
                    }
                    Err(code) => delivery.status.latest_digest_error = Some(code),
                }
            }
        }
        written
    }

    /// GetTrailStatus' delivery fields.
    pub(crate) fn status_json(&self, arn: &str, answer: &mut Value) {
        let Some(status) = self.by_arn.get(arn).map(|d| &d.status) else {
            return;
        };
        let epoch = |t: DateTime| json!(t.as_secs_f64());
        if let Some(t) = status.latest_delivery {
            answer["LatestDeliveryTime"] = epoch(t);
        }
        if let Some(e) = &status.latest_delivery_error {
            answer["LatestDeliveryError"] = json!(e);
        }
        if let Some(t) = status.latest_digest {
            answer["LatestDigestDeliveryTime"] = epoch(t);
        }
        if let Some(e) = &status.latest_digest_error {
            answer["LatestDigestDeliveryError"] = json!(e);
        }
    }
}

/// Writes one signed digest of `chain` and moves the chain on. `Err`: S3's error code.
fn deliver_digest(
    trail: &Trail,
    owner: &Owner,
    region: &str,
    chain: &mut Chain,
    s3: &mut Buckets,
    keys: &mut KeyRing,
    now: DateTime,
) -> Result<(), String> {
    let key = owner.digest_file(region, &trail.name, &trail.home_region, now);
    let signer = keys.key(region).map_err(|e| e.code.to_string())?;
    let fingerprint = signer.fingerprint();
    let at = Placement {
        account: owner.account,
        bucket: trail.bucket(),
        key: &key,
        end: now,
        fingerprint: &fingerprint,
    };
    let document = digest::document(chain, &at).to_string();
    let hash = hex(&Sha256::digest(document.as_bytes()));
    let previous = chain.previous.as_ref().map(|p| p.signature.as_str());
    let to_sign = digest::string_to_sign(
        &names::digest_time(now),
        trail.bucket(),
        &key,
        &hash,
        previous,
    );
    let signature = signer
        .sign(to_sign.as_bytes())
        .map_err(|e| e.code.to_string())?;
    let mut metadata = BTreeMap::new();
    metadata.insert("signature".to_owned(), signature.clone());
    metadata.insert("signature-algorithm".to_owned(), "SHA256withRSA".to_owned());
    let mut object = Object::new(
        gzip(document.as_bytes()),
        metadata,
        Some("application/json".into()),
        now,
    );
    object.content_encoding = Some("gzip".into());
    s3.put(trail.bucket(), &key, object)
        .map_err(|e| e.code.to_owned())?;
    chain.previous = Some(Link {
        bucket: trail.bucket().to_owned(),
        key,
        hash,
        signature,
    });
    chain.files.clear();
    chain.start = now;
    Ok(())
}
