//! Rate limits end to end: three gateway replicas sharing one real redis-server, the embedded
//! CloudTrail counting every upstream call and enforcing the quota as AWS would; coalescing of
//! identical lookups; Redis killed mid-run (fallback) and restarted (recovery); fairness between
//! principals.

use crate::common;

use std::time::{Duration, Instant, SystemTime};

use cloudtrail_gateway::{
    auth::{AuthConfig, tokens::TokenEntry},
    config::Config,
    limits::{LimitsConfig, Quotas},
    local::{self, LocalCloudTrail},
    pb::{self, LookupAttributeKey},
};
use common::{TestGateway, procs::Redis};
use sha2::{Digest, Sha256};
use tonic::{Code, Request};
use tonic_types::StatusExt;

/// Matches the embedded CloudTrail's tolerance for jitter between a slot and its call's arrival.
const JITTER: Duration = Duration::from_millis(50);

fn lookup(name: &str, deadline: Duration) -> Request<pb::LookupEventsRequest> {
    let mut request = Request::new(pb::LookupEventsRequest {
        lookup_attributes: vec![pb::LookupAttribute {
            attribute_key: LookupAttributeKey::EventName as i32,
            attribute_value: name.into(),
        }],
        ..Default::default()
    });
    request.set_timeout(deadline);
    request
}

fn config(lookup_rate: f64, redis: Option<&Redis>, expected_replicas: u32) -> Config {
    Config {
        limits: LimitsConfig {
            quotas: Quotas {
                lookup: lookup_rate,
                ..common::UNLIMITED
            },
            redis_url: redis.map(Redis::url),
            expected_replicas,
            ..Config::default().limits
        },
        ..common::test_config()
    }
}

/// An embedded CloudTrail enforcing `lookup_quota` LookupEvents per second, like AWS.
fn cloudtrail(lookup_quota: f64) -> LocalCloudTrail {
    LocalCloudTrail::new(local::Options {
        quotas: local::Quotas {
            lookup: lookup_quota,
            ..common::UNLIMITED_LOCAL
        },
        ..Default::default()
    })
}

/// The most calls any window of one second (less jitter) holds.
fn busiest_second(mut times: Vec<SystemTime>) -> usize {
    times.sort();
    let window = Duration::from_secs(1) - JITTER;
    (0..times.len())
        .map(|i| {
            times[i..]
                .iter()
                .take_while(|t| t.duration_since(times[i]).unwrap_or_default() < window)
                .count()
        })
        .max()
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_replicas_share_one_quota_through_redis() {
    let redis = Redis::start();
    let upstream = cloudtrail(1.0);
    let mut replicas = Vec::new();
    for _ in 0..3 {
        replicas
            .push(TestGateway::start_with(config(1.0, Some(&redis), 3), upstream.clone()).await);
    }
    let run_for = Duration::from_secs(10);
    let started = Instant::now();
    let mut callers = Vec::new();
    for i in 0..60 {
        let mut client = replicas[i % 3].client.clone();
        // Five callers can wait 30 s for a slot; the other 55 only 600 ms (the gateway answers 5%
        // before a deadline: at 300 ms that left 15 ms, which a loaded 2-core runner can miss, and
        // the caller then saw its own timeout instead of RESOURCE_EXHAUSTED).
        let patient = i < 5;
        let deadline = if patient {
            Duration::from_secs(30)
        } else {
            Duration::from_millis(600)
        };
        callers.push(tokio::spawn(async move {
            let (mut ok, mut refused) = (0, 0);
            let mut n = 0;
            while started.elapsed() < run_for {
                n += 1;
                // Distinct requests: no coalescing, every success is an upstream call.
                match client
                    .lookup_events(lookup(&format!("caller{i}-{n}"), deadline))
                    .await
                {
                    Ok(_) => ok += 1,
                    Err(status) => {
                        assert!(!patient, "a patient caller failed: {status:?}");
                        assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
                        let retry = status.get_details_retry_info().expect("RetryInfo");
                        assert!(retry.retry_delay.is_some_and(|d| d > Duration::ZERO));
                        assert!(status.get_details_quota_failure().is_some(), "QuotaFailure");
                        refused += 1;
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
            (patient, ok, refused)
        }));
    }
    let (mut patient_ok, mut short_ok, mut refused) = (0, 0, 0);
    for caller in callers {
        let (patient, ok, r) = caller.await.expect("caller");
        if patient {
            assert!(ok > 0, "every patient caller got through");
            patient_ok += ok;
        } else {
            short_ok += ok;
        }
        refused += r;
    }
    let calls = upstream.served("LookupEvents");
    eprintln!(
        "upstream calls {}, patient ok {patient_ok}, short ok {short_ok}, refused {refused}, throttled {}",
        calls.len(),
        upstream.throttled()
    );
    assert_eq!(
        upstream.throttled(),
        0,
        "the embedded CloudTrail never had to throttle"
    );
    assert_eq!(
        busiest_second(calls.clone()),
        1,
        "no second held more than the quota"
    );
    assert_eq!(calls.len(), patient_ok + short_ok);
    assert!(
        calls.len() >= 9,
        "the quota was used: {} calls in ~10 s",
        calls.len()
    );
    assert!(
        refused > 100,
        "short deadlines were refused at once: {refused}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn identical_concurrent_lookups_make_one_upstream_call() {
    let upstream = cloudtrail(1.0);
    let gw = TestGateway::start_with(config(1.0, None, 1), upstream.clone()).await;
    let mut tasks = Vec::new();
    for _ in 0..100 {
        let mut client = gw.client.clone();
        tasks.push(tokio::spawn(async move {
            client
                .lookup_events(lookup("CreateTrail", Duration::from_secs(10)))
                .await
                .map(|r| r.into_inner())
        }));
    }
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.expect("task").expect("every caller is answered"));
    }
    assert!(
        answers.windows(2).all(|w| w[0] == w[1]),
        "all share one answer"
    );
    assert_eq!(
        upstream.served("LookupEvents").len(),
        1,
        "exactly one upstream call"
    );
    // Within the cache TTL the same request is served again without a call.
    let mut client = gw.client.clone();
    client
        .lookup_events(lookup("CreateTrail", Duration::from_secs(5)))
        .await
        .expect("cached");
    assert_eq!(upstream.served("LookupEvents").len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_down_falls_back_per_replica_and_recovers() {
    let mut redis = Redis::start();
    let port = redis.port;
    // Separate embedded CloudTrails, so each replica's upstream calls can be counted; quota 3/s.
    let upstreams: Vec<LocalCloudTrail> = (0..3).map(|_| cloudtrail(3.0)).collect();
    let mut replicas = Vec::new();
    for upstream in &upstreams {
        replicas
            .push(TestGateway::start_with(config(3.0, Some(&redis), 3), upstream.clone()).await);
    }
    let hammer = |replica: usize, for_: Duration, tag: &'static str| {
        let mut client = replicas[replica].client.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let mut n = 0;
            while started.elapsed() < for_ {
                n += 1;
                let _ = client
                    .lookup_events(lookup(
                        &format!("{tag}-{replica}-{n}"),
                        Duration::from_secs(5),
                    ))
                    .await;
            }
        })
    };
    redis.kill();
    let killed_at = SystemTime::now();
    let tasks: Vec<_> = (0..3)
        .map(|r| hammer(r, Duration::from_secs(4), "down"))
        .collect();
    for t in tasks {
        t.await.expect("caller");
    }
    for (i, upstream) in upstreams.iter().enumerate() {
        let during: Vec<_> = upstream
            .served("LookupEvents")
            .into_iter()
            .filter(|t| *t > killed_at)
            .collect();
        // quota 3/s over 3 expected replicas: at most one call per second each.
        assert_eq!(
            busiest_second(during.clone()),
            1,
            "replica {i} stayed within quota / replicas"
        );
        assert!(
            during.len() >= 3,
            "replica {i} kept serving on its fallback: {}",
            during.len()
        );
        assert_eq!(upstream.throttled(), 0);
    }
    // Redis returns: one busy replica can use the whole shared quota again.
    let _redis = Redis::start_on(port);
    tokio::time::sleep(Duration::from_millis(1200)).await; // past the fallback's retry interval
    let back_at = SystemTime::now();
    hammer(0, Duration::from_secs(3), "back")
        .await
        .expect("caller");
    let after: Vec<_> = upstreams[0]
        .served("LookupEvents")
        .into_iter()
        .filter(|t| *t > back_at)
        .collect();
    assert!(
        busiest_second(after.clone()) >= 2,
        "shared limits again: {} calls in 3 s",
        after.len()
    );
    assert!(busiest_second(after) <= 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_busy_principal_cannot_take_every_slot() {
    let token = |principal: &str| TokenEntry {
        principal: principal.into(),
        sha256: Sha256::digest(principal.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect(),
        roles: vec!["reader".into()],
        accounts: Vec::new(),
        regions: Vec::new(),
    };
    let config = Config {
        auth: AuthConfig {
            tokens: vec![token("busy"), token("quiet")],
            open_health: true,
            ..Default::default()
        },
        ..config(5.0, None, 1)
    };
    let gw = TestGateway::start_with(config, cloudtrail(5.0)).await;
    let authorized = |mut r: Request<pb::LookupEventsRequest>, who: &str| {
        r.metadata_mut().insert(
            "authorization",
            format!("Bearer {who}").parse().expect("header"),
        );
        r
    };
    let mut busy = Vec::new();
    for n in 0..20 {
        let mut client = gw.client.clone();
        let request = authorized(
            lookup(&format!("busy-{n}"), Duration::from_secs(30)),
            "busy",
        );
        busy.push(tokio::spawn(async move {
            client.lookup_events(request).await.is_ok()
        }));
    }
    tokio::time::sleep(Duration::from_millis(100)).await; // the busy principal has queued 20 calls
    let started = Instant::now();
    let mut client = gw.client.clone();
    client
        .lookup_events(authorized(
            lookup("quiet-1", Duration::from_secs(30)),
            "quiet",
        ))
        .await
        .expect("quiet caller");
    let waited = started.elapsed();
    assert!(
        waited < Duration::from_millis(700),
        "quiet waited {waited:?} behind 20 busy calls (4 s of slots)"
    );
    for b in busy {
        assert!(b.await.expect("busy caller"));
    }
}

/// Redis with a password, over TLS with a private CA (`rediss://:PASSWORD@…`, `redis_ca`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_with_a_password_over_tls() {
    let redis = Redis::start_tls("s3cret-redis-password");
    let url = format!("rediss://:s3cret-redis-password@localhost:{}", redis.port);
    let config = Config {
        limits: LimitsConfig {
            redis_url: Some(url),
            redis_ca: redis.ca.clone(),
            ..config(5.0, None, 1).limits
        },
        ..common::test_config()
    };
    let gw = TestGateway::start_with(config, common::test_local()).await;
    let mut c = gw.client.clone();
    // The first connection (TLS, AUTH) gets 250 ms; on a loaded machine it may miss that and a call
    // is served by the documented local fallback, the bucket asking Redis again on its next call a
    // second later. /readyz reports any bucket in fallback: the health probe's read bucket too, so
    // both classes are called here.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        c.lookup_events(lookup("over-tls", Duration::from_secs(5)))
            .await
            .expect("served");
        c.describe_trails(pb::DescribeTrailsRequest::default())
            .await
            .expect("served");
        let (_, body) = gw.http_get("/readyz").await;
        if !body.contains("fallback") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "slots never came from Redis: {body}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let keys = redis.command(&["KEYS", "cloudtrail-gateway:*"]);
    assert!(
        keys.contains("lookup"),
        "the limiter's key is in Redis: {keys}"
    );
}

/// A caller that sets no deadline (grpcurl-rs's --max-time sends none) waits for a slot only
/// `limit_max_wait_without_deadline`, then gets RESOURCE_EXHAUSTED with RetryInfo, instead of up to
/// `limit_max_wait` (30 s) while its own client has long given up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_without_a_deadline_waits_only_briefly() {
    let mut config = config(1.0, None, 1);
    config.limits.max_wait_without_deadline = Duration::from_secs(1);
    let gw = TestGateway::start_with(config, cloudtrail(1000.0)).await;
    let started = Instant::now();
    let mut calls = Vec::new();
    for i in 0..5 {
        let mut client = gw.client.clone();
        calls.push(tokio::spawn(async move {
            let request = Request::new(pb::LookupEventsRequest {
                lookup_attributes: vec![pb::LookupAttribute {
                    attribute_key: LookupAttributeKey::EventName as i32,
                    attribute_value: format!("no-deadline-{i}"),
                }],
                ..Default::default()
            });
            client.lookup_events(request).await
        }));
    }
    let mut refused = 0;
    for call in calls {
        if let Err(status) = call.await.expect("task") {
            assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
            assert!(status.get_details_retry_info().is_some());
            refused += 1;
        }
    }
    assert!(
        refused >= 2,
        "5 calls at 1/s cannot all have a slot within 1 s"
    );
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "nobody waited long: {:?}",
        started.elapsed()
    );
}
