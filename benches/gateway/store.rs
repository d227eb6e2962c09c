//! The event store on a generated corpus (`BENCH_STORE_RECORDS`, default 1 000 000; the issue's
//! figure is 10 000 000), records shaped like the shipped ones (each a shipped record with its own
//! id, time, account and Region), 1000 to a gzipped file in CloudTrail's layout:
//!
//! - the floor: gunzip + JSON parse of every file, in this process, one thread;
//! - ingest: the release gateway reading the files from an embedded S3 in another process (a second
//!   gateway binary serving its S3 over `--local-http-listen`), so the measured gateway's memory is
//!   its own: events/s, ÷ the floor, bytes on disk per event, its peak RSS;
//! - serving: LookupEvents from the store (`lookups = "store"`) at c=16 ÷ DescribeTrails through
//!   the same gateway, p50/p99, and ÷ CloudTrail's 2 calls/s.

use std::{
    io::{Read, Write},
    time::{Duration, Instant},
};

use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use cloudtrail_gateway::pb::{self, cloud_trail_service_client::CloudTrailServiceClient};
use flate2::{Compression, write::GzEncoder};
use serde_json::Value;

use crate::{
    load::{self, Load, Pace, Stop},
    servers::{self, TOKEN},
};

const PER_FILE: usize = 1000;
const BUCKET: &str = "corpus";
const ACCOUNTS: [&str; 4] = [
    "123456789012",
    "210987654321",
    "333333333333",
    "444444444444",
];
const REGIONS: [&str; 2] = ["us-east-1", "eu-west-1"];

fn records_wanted() -> usize {
    std::env::var("BENCH_STORE_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000)
}

/// The shipped records, the corpus's templates.
fn templates() -> Vec<Value> {
    fn walk(dir: &std::path::Path, out: &mut Vec<Value>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .expect("dir")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        entries.sort();
        for path in entries {
            if path.is_dir() {
                walk(&path, out);
                continue;
            }
            let name = path.to_string_lossy().into_owned();
            if !(name.ends_with(".json") || name.ends_with(".json.gz")) {
                continue;
            }
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
            out.extend(doc["Records"].as_array().cloned().unwrap_or_default());
        }
    }
    let mut out = Vec::new();
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/cloudtrail-logs/logs");
    walk(std::path::Path::new(root), &mut out);
    out
}

fn rfc3339(secs: i64) -> String {
    aws_smithy_types::DateTime::from_secs(secs)
        .fmt(aws_smithy_types::date_time::Format::DateTime)
        .unwrap_or_default()
}

/// File `n`'s key and gzipped body; its records end at `end` (Unix seconds), one a second apart.
fn file(n: usize, templates: &[Value], end: i64) -> (String, Vec<u8>, usize) {
    let account = ACCOUNTS[n % ACCOUNTS.len()];
    let region = REGIONS[(n / ACCOUNTS.len()) % REGIONS.len()];
    let mut records = Vec::with_capacity(PER_FILE);
    let first = end - PER_FILE as i64;
    for i in 0..PER_FILE {
        let mut record = templates[(n * PER_FILE + i) % templates.len()].clone();
        let id = n * PER_FILE + i;
        record["eventID"] = format!("{:08x}-0000-4000-8000-{:012x}", n, id).into();
        record["eventTime"] = rfc3339(first + i as i64).into();
        record["awsRegion"] = region.into();
        record["recipientAccountId"] = account.into();
        records.push(record);
    }
    let stamp = rfc3339(end); // 2026-12-03T10:05:00Z
    let (date, time) = (&stamp[..10], &stamp[11..16]);
    let key = format!(
        "AWSLogs/{account}/CloudTrail/{region}/{}/{account}_CloudTrail_{region}_{}T{}Z_{n:08}.json.gz",
        date.replace('-', "/"),
        date.replace('-', ""),
        time.replace(':', "")
    );
    let text = serde_json::json!({ "Records": records }).to_string();
    let mut gz = GzEncoder::new(Vec::new(), Compression::default());
    gz.write_all(text.as_bytes()).expect("gzip");
    (key, gz.finish().expect("gzip"), text.len())
}

/// gunzip + parse of one file: the floor of any reader.
fn floor(body: &[u8]) -> usize {
    let mut text = Vec::new();
    flate2::read::MultiGzDecoder::new(body)
        .read_to_end(&mut text)
        .expect("gunzip");
    let doc: Value = serde_json::from_slice(&text).expect("parse");
    doc["Records"].as_array().map_or(0, Vec::len)
}

async fn status(c: &mut CloudTrailServiceClient<tonic::transport::Channel>) -> (u64, u64, bool) {
    let mut request = tonic::Request::new(pb::GetEventStoreStatusRequest {});
    if let Ok(v) = format!("Bearer {TOKEN}").parse() {
        request.metadata_mut().insert("authorization", v);
    }
    let Ok(answer) = c.get_event_store_status(request).await else {
        return (0, 0, false);
    };
    let answer = answer.into_inner();
    let Some(source) = answer.sources.iter().find(|s| s.name == BUCKET) else {
        return (0, 0, false);
    };
    let events = source.places.iter().map(|p| p.events_stored).sum();
    (events, answer.bytes_on_disk, source.backfill_done)
}

pub async fn store() {
    let wanted = records_wanted();
    let files = wanted.div_ceil(PER_FILE);
    let templates = templates();
    println!(
        "event store: {} records in {files} files of {PER_FILE} (templates: the {} shipped records)",
        files * PER_FILE,
        templates.len()
    );
    // The S3 holding the corpus: another gateway process, its embedded S3 over HTTP.
    let s3_port = servers::free_port();
    let s3_listen = format!("127.0.0.1:{s3_port}");
    let (s3_host, _) = servers::gateway_with(
        &[],
        "",
        &[
            ("--local-http-listen", &s3_listen),
            ("--local-s3-capacity", "100000000000"),
            ("--store", "false"),
        ],
    )
    .await;
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .endpoint_url(format!("http://{s3_listen}"))
            .force_path_style(true)
            .credentials_provider(Credentials::new("bench", "bench", None, None, "bench"))
            .build(),
    );
    s3.create_bucket()
        .bucket(BUCKET)
        .send()
        .await
        .expect("bucket");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    // Files spread over the last 20 days, newest last, per place in time order.
    let span = 20 * 86_400;
    let per_place = files.div_ceil(ACCOUNTS.len() * REGIONS.len()).max(1) as i64;
    let (mut floor_time, mut floor_events, mut gz_bytes, mut json_bytes) =
        (Duration::ZERO, 0usize, 0usize, 0usize);
    let generating = Instant::now();
    for n in 0..files {
        let slot = (n / (ACCOUNTS.len() * REGIONS.len())) as i64;
        let end = now - 3600 - span + span * slot / per_place;
        let (key, body, json) = file(n, &templates, end);
        let started = Instant::now();
        floor_events += floor(&body);
        floor_time += started.elapsed();
        gz_bytes += body.len();
        json_bytes += json;
        s3.put_object()
            .bucket(BUCKET)
            .key(key)
            .body(body.into())
            .send()
            .await
            .expect("put");
    }
    println!(
        "corpus: {:.0} MB gzipped ({:.0} MB of JSON, {:.0} B a record), made in {:.0} s",
        gz_bytes as f64 / 1e6,
        json_bytes as f64 / 1e6,
        json_bytes as f64 / floor_events.max(1) as f64,
        generating.elapsed().as_secs_f64()
    );
    let floor_rate = floor_events as f64 / floor_time.as_secs_f64().max(1e-9);

    // The measured gateway: the corpus is its source, read from the other process's S3.
    let toml = format!(
        "[[log_sources]]\nbucket = \"{BUCKET}\"\nregion = \"us-east-1\"\nendpoint_url = \"http://{s3_listen}\"\nlookups = \"store\"\n"
    );
    let started = Instant::now();
    // BENCH_STORE_WRAP="heaptrack": a profiler around the measured gateway (its RSS is then the
    // profiler's process, not the gateway's).
    let wrapper: Vec<String> = std::env::var("BENCH_STORE_WRAP")
        .map(|w| w.split_whitespace().map(str::to_owned).collect())
        .unwrap_or_default();
    let (gateway, _) = servers::gateway_with(
        &wrapper,
        &toml,
        &[("--store-backfill", "30d"), ("--store-poll-interval", "1s")],
    )
    .await;
    let mut client = CloudTrailServiceClient::new(
        tonic::transport::Endpoint::from_shared(format!("http://{}", gateway.addr))
            .expect("endpoint")
            .connect()
            .await
            .expect("connect"),
    );
    let (events, bytes) = loop {
        let (events, bytes, done) = status(&mut client).await;
        if done && events as usize >= floor_events {
            break (events, bytes);
        }
        assert!(
            started.elapsed() < Duration::from_secs(7200),
            "ingest never ended"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let ingest_seconds = started.elapsed().as_secs_f64();
    let ingest_rate = events as f64 / ingest_seconds;
    let ingest_rss = servers::peak_rss_mb(gateway.pid());
    println!();
    println!("| figure | measured | goal |");
    println!("|---|---|---|");
    println!("| floor: gunzip + JSON parse, one thread | {floor_rate:.0} events/s | |");
    println!(
        "| ingest from the embedded S3 (start to last file stored) | {ingest_rate:.0} events/s ({events} in {ingest_seconds:.1} s) | |"
    );
    println!(
        "| ingest ÷ floor | **{:.2}** | ≥ 0.5 |",
        ingest_rate / floor_rate
    );
    println!(
        "| bytes on disk per event (indexes included) | **{:.0}** ({:.0} MB) | ≤ 400 |",
        bytes as f64 / events.max(1) as f64,
        bytes as f64 / 1e6
    );
    println!("| peak RSS while ingesting | **{ingest_rss:.0} MB** | < 150 MB |");

    // Serving: LookupEvents from the store vs DescribeTrails, through the same gateway.
    let seconds: u64 = std::env::var("BENCH_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let channels = load::connect(gateway.addr, 4).await.expect("connect");
    let cell = async |name: &str, json: &str| {
        let rpc = load::Rpc::new(name, json, Some(TOKEN)).expect("rpc");
        let load = Load {
            concurrency: 16,
            pace: Pace::Closed,
            stop: Stop::After(Duration::from_secs(seconds)),
        };
        load::run(load, load::caller(&rpc, channels.clone())).await
    };
    let describe = cell("DescribeTrails", "{}").await;
    let page50 = cell("LookupEvents", "{}").await;
    let page10 = cell("LookupEvents", r#"{"maxResults": 10}"#).await;
    let by_name = cell(
        "LookupEvents",
        r#"{"lookupAttributes": [{"attributeKey": "LOOKUP_ATTRIBUTE_KEY_EVENT_NAME", "attributeValue": "GetBucketAcl"}], "maxResults": 10}"#,
    )
    .await;
    let serving_rss = servers::peak_rss_mb(gateway.pid());
    println!();
    println!(
        "| c=16, {seconds} s | req/s | p50 µs | p99 µs | errors | ÷ DescribeTrails | ÷ CloudTrail's 2/s |"
    );
    println!("|---|---|---|---|---|---|---|");
    for (name, r) in [
        ("DescribeTrails", &describe),
        ("LookupEvents, 50 a page", &page50),
        ("LookupEvents, 10 a page", &page10),
        ("LookupEvents, EventName, 10 a page", &by_name),
    ] {
        println!(
            "| {name} | {:.0} | {} | {} | {} | {:.2} | {:.0} |",
            r.rps(),
            r.quantile(0.5),
            r.quantile(0.99),
            r.errors(),
            r.rps() / describe.rps().max(1e-9),
            r.rps() / 2.0
        );
    }
    println!("peak RSS, ingesting and serving: {serving_rss:.0} MB");
    gateway.terminate();
    drop(s3_host);
}
