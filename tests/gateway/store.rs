//! The event store end to end: log files in a bucket (the embedded S3, or moto's), read by the
//! gateway's ingest, answering LookupEvents as CloudTrail would — compared page by page with the
//! embedded CloudTrail's own LookupEvents over the same records — without calling CloudTrail.

use std::{io::Read, path::Path, time::Duration};

use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use cloudtrail_gateway::{api::ANSWERED_FROM_KEY, ingest::Mode, pb};
use cloudtrail_local::LocalCloudTrail;
use flate2::{Compression, write::GzEncoder};
use serde_json::Value;

use crate::common::{
    self, ACCOUNT, Client, TestGateway,
    procs::{GatewayProcess, Moto},
    shared_logs,
};

/// The shipped log files' records in the order the embedded CloudTrail loads them (files by path,
/// then as written), grouped by Region: one object per (file, Region).
fn shipped_objects() -> Vec<(String, Vec<Value>)> {
    fn walk(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .expect("read dir")
            .map(|e| e.expect("entry").path())
            .collect();
        entries.sort();
        for e in entries {
            let name = e.to_string_lossy().into_owned();
            if e.is_dir() {
                walk(&e, out);
            } else if name.ends_with(".json") || name.ends_with(".json.gz") {
                out.push(e);
            }
        }
    }
    let mut files = Vec::new();
    walk(&shared_logs().join("logs"), &mut files);
    let mut objects = Vec::new();
    for path in files {
        let raw = std::fs::read(&path).expect("read");
        let text = if raw.starts_with(&[0x1f, 0x8b]) {
            let mut out = Vec::new();
            flate2::read::MultiGzDecoder::new(&raw[..])
                .read_to_end(&mut out)
                .expect("gunzip");
            out
        } else {
            raw
        };
        let doc: Value = serde_json::from_slice(&text).expect("JSON");
        let mut by_region: Vec<(String, Vec<Value>)> = Vec::new();
        for record in doc["Records"].as_array().expect("Records") {
            let Some(region) = record["awsRegion"].as_str() else {
                continue;
            };
            match by_region.iter_mut().find(|(r, _)| r == region) {
                Some((_, records)) => records.push(record.clone()),
                None => by_region.push((region.to_owned(), vec![record.clone()])),
            }
        }
        objects.extend(by_region);
    }
    objects
}

fn gzip_json(value: &Value) -> Vec<u8> {
    gzip(value.to_string().as_bytes())
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = GzEncoder::new(Vec::new(), Compression::fast());
    e.write_all(bytes).expect("gzip");
    e.finish().expect("gzip")
}

/// The key of the `n`th object of a Region, all on one day so keys sort as written.
fn log_key(region: &str, n: usize) -> String {
    format!(
        "AWSLogs/{ACCOUNT}/CloudTrail/{region}/2020/01/01/{ACCOUNT}_CloudTrail_{region}_20200101T0000Z_{n:06}.json.gz"
    )
}

async fn put_shipped(s3: &aws_sdk_s3::Client, bucket: &str) -> usize {
    s3.create_bucket()
        .bucket(bucket)
        .send()
        .await
        .expect("bucket");
    let objects = shipped_objects();
    for (n, (region, records)) in objects.iter().enumerate() {
        s3.put_object()
            .bucket(bucket)
            .key(log_key(region, n))
            .body(gzip_json(&serde_json::json!({ "Records": records })).into())
            .send()
            .await
            .expect("put");
    }
    objects.len()
}

fn embedded_s3(local: &LocalCloudTrail) -> aws_sdk_s3::Client {
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("AKIAWRITER", "secret", None, None, "test"))
            .http_client(local.clone())
            .build(),
    )
}

fn moto_s3(moto: &Moto) -> aws_sdk_s3::Client {
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .endpoint_url(moto.url())
            .force_path_style(true)
            .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
            .build(),
    )
}

fn moto_sqs(moto: &Moto) -> aws_sdk_sqs::Client {
    aws_sdk_sqs::Client::from_conf(
        aws_sdk_sqs::Config::builder()
            .behavior_version(aws_sdk_sqs::config::BehaviorVersion::latest())
            .region(aws_sdk_sqs::config::Region::new("us-east-1"))
            .endpoint_url(moto.url())
            .credentials_provider(aws_sdk_sqs::config::Credentials::new(
                "testing", "testing", None, None, "test",
            ))
            .build(),
    )
}

/// The queue's messages, visible and in flight ("visible+in flight").
async fn queue_depth(sqs: &aws_sdk_sqs::Client, queue: &str) -> String {
    use aws_sdk_sqs::types::QueueAttributeName;
    let attributes = sqs
        .get_queue_attributes()
        .queue_url(queue)
        .attribute_names(QueueAttributeName::All)
        .send()
        .await
        .expect("attributes")
        .attributes
        .unwrap_or_default();
    let count = |name| attributes.get(&name).cloned().unwrap_or_default();
    format!(
        "{}+{}",
        count(QueueAttributeName::ApproximateNumberOfMessages),
        count(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
    )
}

/// A gateway whose one source is `bucket` on moto with `queue` for its notifications, in store
/// mode for us-east-1, once its first pass is done.
async fn queue_gateway(
    moto: &Moto,
    bucket: &str,
    queue: &str,
) -> (common::TempDir, GatewayProcess, Client) {
    let source = format!(
        "bucket = \"{bucket}\"\nqueue_url = \"{queue}\"\nlookups = \"store\"\nregions = [\"us-east-1\"]"
    );
    let (dir, gateway) = source_gateway(moto, &source, &[]).await;
    let mut c = gateway.client().await;
    stored(&mut c, "us-east-1").await;
    (dir, gateway, c)
}

/// Waits (20 s at most) until the queue holds no message, visible or in flight; its last depth.
async fn queue_drained(sqs: &aws_sdk_sqs::Client, queue: &str) -> String {
    let mut left = String::from("?");
    for _ in 0..100 {
        left = queue_depth(sqs, queue).await;
        if left == "0+0" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    left
}

/// A log file's body of five GetBucketAcl records, `{id}-{from}` to `{id}-{from + 4}`, a second
/// apart from `from` seconds past 2020-01-01T00:00:00Z.
fn five_records(id: &str, from: usize) -> Value {
    serde_json::json!({"Records": (from..from + 5).map(|i| serde_json::json!({
        "eventID": format!("{id}-{i}"), "eventName": "GetBucketAcl", "eventSource": "s3.amazonaws.com",
        "eventTime": format!("2020-01-01T00:00:{i:02}Z"), "awsRegion": "us-east-1", "readOnly": true,
    })).collect::<Vec<_>>()})
}

/// Sends the S3 notification of `key` created in `bucket` (keys URL-encoded, as S3 sends them).
async fn notify(sqs: &aws_sdk_sqs::Client, queue: &str, bucket: &str, key: &str) {
    let notification = serde_json::json!({"Records": [{"eventName": "ObjectCreated:Put",
        "s3": {"bucket": {"name": bucket}, "object": {"key": key.replace('/', "%2F")}}}]});
    sqs.send_message()
        .queue_url(queue)
        .message_body(notification.to_string())
        .send()
        .await
        .expect("send");
}

/// Waits until the store's first pass is done and `region` of the default account has a
/// watermark; returns that place.
async fn stored(c: &mut Client, region: &str) -> pb::EventStorePlace {
    for _ in 0..300 {
        if let Ok(status) = c
            .get_event_store_status(pb::GetEventStoreStatusRequest {})
            .await
        {
            let place = status.into_inner().sources.into_iter().find_map(|s| {
                s.places
                    .into_iter()
                    .find(|p| p.account == ACCOUNT && p.region == region && p.watermark.is_some())
                    .filter(|_| s.backfill_done)
            });
            if let Some(place) = place {
                return place;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the store never covered {region}");
}

/// Every page of `request`, as (events with their records parsed, whether a token followed).
async fn pages(
    c: &mut Client,
    mut request: pb::LookupEventsRequest,
    region: Option<&str>,
) -> (Vec<(Vec<(pb::Event, Value)>, bool)>, Vec<String>) {
    let mut pages = Vec::new();
    let mut sources = Vec::new();
    loop {
        let answer = c
            .lookup_events(match region {
                Some(region) => {
                    common::request(request.clone(), &[("x-cloudtrail-region", region)])
                }
                None => tonic::Request::new(request.clone()),
            })
            .await
            .expect("lookup");
        sources.extend(
            answer
                .metadata()
                .get(ANSWERED_FROM_KEY)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
        );
        let page = answer.into_inner();
        let events = page
            .events
            .into_iter()
            .map(|mut e| {
                let record = serde_json::from_str(&e.cloud_trail_event).expect("record JSON");
                e.cloud_trail_event.clear();
                (e, record)
            })
            .collect();
        pages.push((events, !page.next_token.is_empty()));
        if page.next_token.is_empty() {
            return (pages, sources);
        }
        request.next_token = page.next_token;
    }
}

fn time(rfc3339: &str) -> prost_types::Timestamp {
    let t = aws_smithy_types::DateTime::from_str(
        rfc3339,
        aws_smithy_types::date_time::Format::DateTime,
    )
    .expect("time");
    prost_types::Timestamp {
        seconds: t.secs(),
        nanos: 0,
    }
}

/// The lookups of tests/gateway/logs.rs (and a few more), all before the gateway's own events.
fn queries() -> Vec<pb::LookupEventsRequest> {
    let end = Some(time("2026-01-01T00:00:00Z"));
    let by = |key: pb::LookupAttributeKey, value: &str, max: Option<i32>| pb::LookupEventsRequest {
        lookup_attributes: vec![pb::LookupAttribute {
            attribute_key: key as i32,
            attribute_value: value.into(),
        }],
        end_time: end,
        max_results: max,
        ..Default::default()
    };
    use pb::LookupAttributeKey as K;
    vec![
        pb::LookupEventsRequest {
            end_time: end,
            ..Default::default()
        },
        pb::LookupEventsRequest {
            end_time: end,
            max_results: Some(7),
            ..Default::default()
        },
        by(K::EventSource, "s3.amazonaws.com", Some(4)),
        by(K::EventName, "GetBucketAcl", None),
        by(K::ResourceType, "AWS::S3::Bucket", Some(5)),
        by(K::ResourceType, "AWS::KMS::Key", None),
        by(
            K::ResourceName,
            "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
            None,
        ),
        by(K::Username, "chris", None),
        by(K::ReadOnly, "false", None),
        by(K::ReadOnly, "true", Some(3)),
        by(K::AccessKeyId, "AKIAIOSFODNN7EXAMPLE", None),
        by(K::EventName, "Publish", None),
        by(K::EventId, "nonexistent", None),
        pb::LookupEventsRequest {
            event_category: pb::EventCategory::Insight as i32,
            end_time: end,
            ..Default::default()
        },
        pb::LookupEventsRequest {
            start_time: Some(time("2024-08-02T09:07:00Z")),
            end_time: Some(time("2024-08-02T09:08:00Z")),
            max_results: Some(5),
            ..Default::default()
        },
    ]
}

#[tokio::test]
async fn the_store_answers_as_the_embedded_cloudtrail_page_by_page() {
    let local = common::test_local();
    let written = put_shipped(&embedded_s3(&local), "shipped-logs").await;
    assert!(written >= 42, "{written}");
    // The embedded CloudTrail holds the same records in its own history, loaded in the same order.
    assert_eq!(
        local.load_logs(&shared_logs().join("logs")).expect("load"),
        346
    );
    let dir = common::TempDir::new("store");
    let mut compared = 0;
    // The anonymised Region names of the shipped files are not Region names callers may ask for,
    // so each Region gets its gateways (as in tests/gateway/logs.rs).
    for region in ["us-east-1", "sagov-westsouth-1r", "us-west-2"] {
        let mut cloudtrail_config = common::test_config();
        cloudtrail_config.upstream.region = Some(region.into());
        let mut store_config = cloudtrail_config.clone();
        store_config.store.path = Some(dir.join(&format!("{region}.db")));
        store_config.store.default_mode = Mode::Store;
        store_config.store.ingest.backfill = Duration::from_secs(10_000 * 86_400);
        store_config.store.ingest.poll_interval = Duration::from_millis(200);
        let from_store = TestGateway::start_with(store_config, local.clone()).await;
        let from_cloudtrail = TestGateway::start_with(cloudtrail_config, local.clone()).await;
        let (mut s, mut c) = (from_store.client.clone(), from_cloudtrail.client.clone());
        let place = stored(&mut s, region).await;
        assert!(place.events_stored > 0, "{region}: {place:?}");
        for query in queries() {
            let lookups_before = local.served("LookupEvents").len();
            let (ours, sources) = pages(&mut s, query.clone(), None).await;
            assert_eq!(
                local.served("LookupEvents").len(),
                lookups_before,
                "the store answered without calling CloudTrail"
            );
            assert!(sources.iter().all(|s| s == "store"), "{sources:?}");
            let (theirs, _) = pages(&mut c, query.clone(), None).await;
            assert_eq!(ours.len(), theirs.len(), "{region} {query:?}: pages");
            for (page, (a, b)) in ours.iter().zip(&theirs).enumerate() {
                assert_eq!(a, b, "{region} {query:?}: page {page}");
            }
            compared += ours.iter().map(|(events, _)| events.len()).sum::<usize>();
        }
        // StreamEvents' history reads the store the same way: every event, newest first.
        let lookups_before = local.served("LookupEvents").len();
        let mut stream = s
            .stream_events(pb::StreamEventsRequest {
                end_time: Some(time("2026-01-01T00:00:00Z")),
                ..Default::default()
            })
            .await
            .expect("stream")
            .into_inner();
        let mut streamed = Vec::new();
        while let Some(message) = stream.message().await.expect("message") {
            streamed.extend(message.events.into_iter().map(|e| e.event_id));
        }
        assert_eq!(local.served("LookupEvents").len(), lookups_before);
        let (all, _) = pages(&mut c, queries().remove(0), None).await;
        let expected: Vec<String> = all
            .iter()
            .flat_map(|(events, _)| events.iter().map(|(e, _)| e.event_id.clone()))
            .collect();
        assert_eq!(streamed, expected, "{region}: streamed from the store");
    }
    assert!(compared > 300, "{compared} events compared");
}

/// `auto`: the store up to its watermark, CloudTrail for what was not delivered yet, merged
/// without gap or repeat, as CloudTrail alone answers.
#[tokio::test]
async fn auto_merges_the_undelivered_part_from_cloudtrail() {
    let local = LocalCloudTrail::new(cloudtrail_local::Options {
        quotas: common::UNLIMITED_LOCAL,
        delivery_interval: Duration::from_millis(500),
        ..Default::default()
    });
    let delivery = local.spawn_delivery();
    let dir = common::TempDir::new("store-auto");
    let mut config = common::test_config();
    config.store.path = Some(dir.join("store.db"));
    config.store.ingest.poll_interval = Duration::from_millis(200);
    config.store.ingest.delivery_delay = Duration::from_secs(3);
    let auto = TestGateway::start_with(config, local.clone()).await;
    let plain = TestGateway::start_with(common::test_config(), local.clone()).await;
    let (mut a, mut p) = (auto.client.clone(), plain.client.clone());
    p.create_trail(pb::CreateTrailRequest {
        name: "auto".into(),
        s3_bucket_name: "auto-logs".into(),
        ..Default::default()
    })
    .await
    .expect("create");
    p.start_logging(pb::StartLoggingRequest {
        name: "auto".into(),
        ..Default::default()
    })
    .await
    .expect("start");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let start = std::time::SystemTime::now();
    let calls = async |c: &mut Client, n: usize| {
        for _ in 0..n {
            c.get_trail_status(pb::GetTrailStatusRequest {
                name: "auto".into(),
            })
            .await
            .expect("status");
        }
    };
    calls(&mut p, 8).await;
    // Delivered, stored, and older than the watermark (3 s behind the polls).
    tokio::time::sleep(Duration::from_secs(5)).await;
    calls(&mut p, 5).await;
    // The window ends at a whole second after them (still within the 3 s not yet in the store).
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let end = std::time::SystemTime::now();
    let stamp = |t: std::time::SystemTime| {
        let d = t.duration_since(std::time::UNIX_EPOCH).expect("time");
        prost_types::Timestamp {
            seconds: d.as_secs() as i64,
            nanos: 0,
        }
    };
    let request = pb::LookupEventsRequest {
        start_time: Some(stamp(start)),
        // Up to the last whole second: the lookups below are recorded too, after it.
        end_time: Some(stamp(end)),
        max_results: Some(3),
        ..Default::default()
    };
    let ids = |pages: &[(Vec<(pb::Event, Value)>, bool)]| -> Vec<String> {
        pages
            .iter()
            .flat_map(|(events, _)| events.iter().map(|(e, _)| e.event_id.clone()))
            .collect()
    };
    let (merged, sources) = pages(&mut a, request.clone(), None).await;
    let (alone, _) = pages(&mut p, request, None).await;
    assert!(ids(&alone).len() >= 13, "{}", ids(&alone).len());
    assert_eq!(ids(&merged), ids(&alone), "no gap, no repeat, same order");
    assert!(
        sources.iter().any(|s| s.contains("store"))
            && sources.iter().any(|s| s.contains("cloudtrail")),
        "both parts answered: {sources:?}"
    );
    delivery.abort();
}

/// `store` mode: a follower's feed follows the store's watermark, never LookupEvents; an event is
/// handed out once, a resumed follower gets only what is new, and a follower with an end time ends
/// once the watermark has passed it.
#[tokio::test]
async fn a_follower_in_store_mode_follows_the_watermark_without_calling_cloudtrail() {
    let local = LocalCloudTrail::new(cloudtrail_local::Options {
        quotas: common::UNLIMITED_LOCAL,
        delivery_interval: Duration::from_millis(500),
        ..Default::default()
    });
    let delivery = local.spawn_delivery();
    let dir = common::TempDir::new("store-follow");
    let mut config = common::test_config();
    config.store.path = Some(dir.join("store.db"));
    config.store.default_mode = Mode::Store;
    config.store.ingest.poll_interval = Duration::from_millis(200);
    config.store.ingest.delivery_delay = Duration::from_secs(2);
    config.streams.poll_interval = Duration::from_millis(100);
    config.streams.lookback = Duration::from_secs(5);
    config.streams.heartbeat = Duration::from_millis(500);
    let from_store = TestGateway::start_with(config, local.clone()).await;
    let plain = TestGateway::start_with(common::test_config(), local.clone()).await;
    let (mut s, mut p) = (from_store.client.clone(), plain.client.clone());
    p.create_trail(pb::CreateTrailRequest {
        name: "followed".into(),
        s3_bucket_name: "followed-logs".into(),
        ..Default::default()
    })
    .await
    .expect("create");
    p.start_logging(pb::StartLoggingRequest {
        name: "followed".into(),
        ..Default::default()
    })
    .await
    .expect("start");
    // The store covers the place once it has found its first file (until then CloudTrail answers).
    stored(&mut s, "us-east-1").await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("time")
        .as_secs() as i64;
    let stamp = |seconds| prost_types::Timestamp { seconds, nanos: 0 };
    let request = pb::StreamEventsRequest {
        lookup_attributes: vec![pb::LookupAttribute {
            attribute_key: pb::LookupAttributeKey::EventName.into(),
            attribute_value: "GetTrailStatus".into(),
        }],
        start_time: Some(stamp(now)),
        follow: true,
        ..Default::default()
    };
    let lookups_before = local.served("LookupEvents").len();
    let open = async |c: &mut Client, r: pb::StreamEventsRequest| {
        c.stream_events(r).await.expect("stream").into_inner()
    };
    let mut follower = open(&mut s, request.clone()).await;
    let mut bounded = open(
        &mut s,
        pb::StreamEventsRequest {
            end_time: Some(stamp(now + 2)),
            ..request.clone()
        },
    )
    .await;
    let status = async |c: &mut Client, n: usize| {
        for _ in 0..n {
            c.get_trail_status(pb::GetTrailStatusRequest {
                name: "followed".into(),
            })
            .await
            .expect("status");
        }
    };
    status(&mut p, 4).await;
    let (first, cursor) = crate::streams::follow_until(&mut follower, 4).await;
    assert_eq!(first.len(), 4, "each once: {first:?}");
    // The bounded follower got the same four, then ends: the watermark passed its end time.
    let (bounded_ids, _) = crate::streams::follow_until(&mut bounded, 4).await;
    assert_eq!(bounded_ids, first);
    let ended = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(message) = bounded.message().await.expect("message") {
            assert!(message.events.is_empty(), "nothing more: {message:?}");
        }
    })
    .await;
    assert!(ended.is_ok(), "the bounded follower ended");
    // Resumed from the cursor, after two more calls: those two only.
    drop(follower);
    status(&mut p, 2).await;
    let mut resumed = open(&mut s, pb::StreamEventsRequest { cursor, ..request }).await;
    let (next, _) = crate::streams::follow_until(&mut resumed, 2).await;
    assert_eq!(next.len(), 2, "{next:?}");
    assert!(next.iter().all(|id| !first.contains(id)), "only new events");
    assert_eq!(
        local.served("LookupEvents").len(),
        lookups_before,
        "the feeds followed the store, not CloudTrail"
    );
    delivery.abort();
}

/// The gateway binary with one `[[log_sources]]` on moto (`source`: its further keys) for the
/// default account, reading everything back, polling every 200 ms unless `args` say otherwise.
async fn source_gateway(
    moto: &Moto,
    source: &str,
    args: &[&str],
) -> (common::TempDir, GatewayProcess) {
    let dir = common::TempDir::new("store-source");
    let config = dir.join("gateway.toml");
    std::fs::write(
        &config,
        format!(
            "[[log_sources]]\n{source}\nregion = \"us-east-1\"\nendpoint_url = \"{}\"\naccounts = [\"{ACCOUNT}\"]\n",
            moto.url()
        ),
    )
    .expect("config");
    let (config, store) = (config.to_string_lossy(), dir.join("store.db"));
    let store = store.to_string_lossy();
    let mut all = vec![
        "--config",
        &config,
        "--store-path",
        &store,
        "--store-backfill",
        "10000d",
        "--store-poll-interval",
        "200ms",
    ];
    all.extend_from_slice(args);
    let gateway = GatewayProcess::start(&all, "warn").await;
    (dir, gateway)
}

/// moto's S3 as the bucket, the gateway binary reading it through `[[log_sources]]`: every shipped
/// record, and each bad file skipped, counted and never a reason to stop.
#[tokio::test]
async fn a_moto_bucket_with_bad_files() {
    let moto = Moto::start();
    let s3 = moto_s3(&moto);
    let written = put_shipped(&s3, "org-logs").await;
    let region = "us-east-1";
    let bad: [(&str, Vec<u8>); 5] = [
        ("corrupt", gzip(b"{\"Records\": []}")[..10].to_vec()),
        (
            "not-cloudtrail",
            gzip_json(&serde_json::json!({"hello": "world"})),
        ),
        (
            "missing-fields",
            gzip_json(&serde_json::json!({"Records": [
                {"eventID": "kept-1", "eventName": "GetCallerIdentity", "eventTime": "2020-01-01T00:00:00Z",
                 "eventSource": "sts.amazonaws.com", "awsRegion": region, "readOnly": true},
                {"eventName": "NoId", "eventTime": "2020-01-01T00:00:00Z"},
            ]})),
        ),
        (
            "huge",
            gzip_json(
                &serde_json::json!({"Records": [{"eventID": "big", "x": "y".repeat(400_000)}]}),
            ),
        ),
        ("readme", b"not a log file".to_vec()),
    ];
    for (i, (name, body)) in bad.iter().enumerate() {
        let key = match *name {
            "readme" => format!("AWSLogs/{ACCOUNT}/CloudTrail/{region}/2020/01/01/README.txt"),
            _ => log_key(region, written + i),
        };
        s3.put_object()
            .bucket("org-logs")
            .key(key)
            .body(body.clone().into())
            .send()
            .await
            .expect("put");
    }
    let source = "bucket = \"org-logs\"\nlookups = \"store\"";
    let (_dir, gateway) =
        source_gateway(&moto, source, &["--store-max-file-bytes", "300000"]).await;
    let mut c = gateway.client().await;
    let place = stored(&mut c, region).await;
    assert_eq!(place.files_skipped, 4, "{place:?}");
    assert_eq!(place.records_unusable, 1, "{place:?}");
    let (pages, sources) = pages(
        &mut c,
        pb::LookupEventsRequest {
            end_time: Some(time("2026-01-01T00:00:00Z")),
            ..Default::default()
        },
        Some(region),
    )
    .await;
    assert!(sources.iter().all(|s| s == "store"), "{sources:?}");
    let events: Vec<_> = pages.iter().flat_map(|(e, _)| e).collect();
    // tests/gateway/logs.rs: 26 management events in us-east-1, and the one usable bad-file record.
    assert_eq!(events.len(), 27);
    assert!(events.iter().any(|(e, _)| e.event_id == "kept-1"));
    let (status, metrics) = gateway.http_get("/metrics").await;
    assert_eq!(status, 200);
    for kind in ["gzip", "not_cloudtrail", "too_large", "outside_layout"] {
        assert!(
            metrics.contains(&format!(
                "cloudtrail_store_skipped_files_total{{source=\"org-logs\",kind=\"{kind}\"}} 1"
            )),
            "{kind}:\n{metrics}"
        );
    }
    let upstream_lookups = common::metric_sum(
        &metrics,
        "cloudtrail_upstream_requests_total",
        &[("operation", "LookupEvents")],
    );
    assert_eq!(upstream_lookups, 0.0, "no LookupEvents sent upstream");
}

/// moto's S3 notifying a moto SQS queue: files written after the start are found through the
/// queue, each message deleted once its file is stored; a message delivered again stores nothing
/// twice.
#[tokio::test]
async fn files_notified_through_sqs() {
    use aws_sdk_s3::types::{Event, NotificationConfiguration, QueueConfiguration};
    let moto = Moto::start();
    let s3 = moto_s3(&moto);
    let sqs = moto_sqs(&moto);
    let queue = sqs
        .create_queue()
        .queue_name("trail-files")
        .send()
        .await
        .expect("queue")
        .queue_url
        .expect("url");
    s3.create_bucket()
        .bucket("notified")
        .send()
        .await
        .expect("bucket");
    s3.put_bucket_notification_configuration()
        .bucket("notified")
        .notification_configuration(
            NotificationConfiguration::builder()
                .queue_configurations(
                    QueueConfiguration::builder()
                        .queue_arn(format!("arn:aws:sqs:us-east-1:{ACCOUNT}:trail-files"))
                        .events(Event::from("s3:ObjectCreated:*"))
                        .build()
                        .expect("queue configuration"),
                )
                .build(),
        )
        .send()
        .await
        .expect("notifications");
    let (_dir, _gateway, mut c) = queue_gateway(&moto, "notified", &queue).await;
    // Written after the start: only the queue says they are there (no listing after the backfill).
    let records = |from: usize| five_records("sqs", from);
    for (n, from) in [(1, 0), (2, 5), (3, 3)] {
        s3.put_object()
            .bucket("notified")
            .key(log_key("us-east-1", n))
            .body(gzip_json(&records(from)).into())
            .send()
            .await
            .expect("put");
    }
    let count = async |c: &mut Client| {
        let (pages, _) = pages(
            c,
            pb::LookupEventsRequest {
                end_time: Some(time("2026-01-01T00:00:00Z")),
                ..Default::default()
            },
            Some("us-east-1"),
        )
        .await;
        pages.iter().map(|(events, _)| events.len()).sum::<usize>()
    };
    let mut events = 0;
    for _ in 0..100 {
        events = count(&mut c).await;
        if events == 10 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(events, 10, "15 records, 5 of them twice");
    // The same notification again (SQS delivers at least once): nothing more is stored.
    notify(&sqs, &queue, "notified", &log_key("us-east-1", 2)).await;
    let left = queue_drained(&sqs, &queue).await;
    assert_eq!(
        left, "0+0",
        "every message deleted once its file was stored"
    );
    assert_eq!(count(&mut c).await, 10);
    let status = c
        .get_event_store_status(pb::GetEventStoreStatusRequest {})
        .await
        .expect("status")
        .into_inner();
    let source = status
        .sources
        .iter()
        .find(|s| s.name == "notified")
        .expect("source");
    let place = &source.places[0];
    assert_eq!(
        (place.files_stored, place.events_stored, place.duplicates),
        (3, 10, 5),
        "{place:?}"
    );
}

/// A notified file that cannot be read yet (its bucket is not there) fails: its message is kept,
/// comes back after the queue's visibility timeout, and once the file is there it is stored, once,
/// and the message deleted.
#[tokio::test]
async fn a_failed_notified_file_comes_back_after_the_visibility_timeout() {
    let moto = Moto::start();
    let (s3, sqs) = (moto_s3(&moto), moto_sqs(&moto));
    let queue = sqs
        .create_queue()
        .queue_name("retried")
        .attributes(
            aws_sdk_sqs::types::QueueAttributeName::VisibilityTimeout,
            "1",
        )
        .send()
        .await
        .expect("queue")
        .queue_url
        .expect("url");
    s3.create_bucket()
        .bucket("listed")
        .send()
        .await
        .expect("bucket");
    let (_dir, gateway, mut c) = queue_gateway(&moto, "listed", &queue).await;
    let key = log_key("us-east-1", 1);
    notify(&sqs, &queue, "later", &key).await;
    let errors = async || {
        let (_, metrics) = gateway.http_get("/metrics").await;
        common::metric_sum(
            &metrics,
            "cloudtrail_store_errors_total",
            &[("source", "listed")],
        )
    };
    // Read, failed and received again after a second: two failures, and the message still there.
    let mut failed = 0.0;
    for _ in 0..100 {
        failed = errors().await;
        if failed >= 2.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        failed >= 2.0,
        "the failed file was read again: {failed} errors"
    );
    assert_ne!(
        queue_depth(&sqs, &queue).await,
        "0+0",
        "the message is kept"
    );
    // The file arrives: the next delivery of the message stores it and deletes the message.
    s3.create_bucket()
        .bucket("later")
        .send()
        .await
        .expect("bucket");
    let records = five_records("late", 0);
    s3.put_object()
        .bucket("later")
        .key(&key)
        .body(gzip_json(&records).into())
        .send()
        .await
        .expect("put");
    let left = queue_drained(&sqs, &queue).await;
    assert_eq!(left, "0+0", "the message deleted once its file was stored");
    let status = c
        .get_event_store_status(pb::GetEventStoreStatusRequest {})
        .await
        .expect("status")
        .into_inner();
    let source = status.sources.iter().find(|s| s.name == "listed");
    let place = &source.expect("source").places[0];
    assert_eq!(
        (place.files_stored, place.events_stored, place.duplicates),
        (1, 5, 0),
        "{place:?}"
    );
}

/// S3 failing (SlowDown past the SDK's retries, 500s, a reset connection): each failure counted,
/// the place polled again, and in the end every file stored once.
#[tokio::test]
async fn s3_failures_are_retried_and_nothing_is_lost_or_doubled() {
    let local = common::test_local();
    let logs = shared_logs().join("logs");
    let files = local
        .write_logs_to_bucket(ACCOUNT, &logs, "flaky-logs")
        .expect("write");
    let expected = local.load_logs(&logs).expect("load");
    local.inject(
        Some("GetObject"),
        4,
        cloudtrail_local::Fault::error("SlowDown"),
    );
    local.inject(
        Some("ListObjectsV2"),
        2,
        cloudtrail_local::Fault::Status(500),
    );
    local.inject(Some("GetObject"), 1, cloudtrail_local::Fault::Reset);
    let dir = common::TempDir::new("store-faults");
    let mut config = common::test_config();
    config.store.path = Some(dir.join("store.db"));
    config.store.ingest.backfill = Duration::from_secs(10_000 * 86_400);
    config.store.ingest.poll_interval = Duration::from_millis(100);
    let gw = TestGateway::start_with(config, local.clone()).await;
    let mut c = gw.client.clone();
    let mut totals = (0, 0, 0);
    for _ in 0..200 {
        let status = c
            .get_event_store_status(pb::GetEventStoreStatusRequest {})
            .await
            .expect("status")
            .into_inner();
        totals = status.sources[0]
            .places
            .iter()
            .fold((0, 0, 0), |(f, e, x), p| {
                (f + p.files_stored, e + p.events_stored, x + p.errors)
            });
        if totals.0 == files as u64 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(totals.0, files as u64, "every file stored: {totals:?}");
    // 4 shipped records name recipients that are no account ids ("123456789", "ACCOUNT_ID"):
    // their files are outside the layout, skipped.
    assert_eq!(
        totals.1,
        expected as u64 - 4,
        "every event once: {totals:?}"
    );
    assert!(totals.2 >= 1, "the failures were counted: {totals:?}");
    assert_eq!(local.faults_happened(), 7, "every planned fault met");
}
