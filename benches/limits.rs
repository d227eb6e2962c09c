//! Slot utilisation of the rate limiter under load: how much of the available quota the gateway
//! uses when callers offer far more than the quota, locally and with 3 replicas sharing Redis.
//!
//!     cargo bench --bench limits                # quota 5/s, 10 s per scenario
//!     BENCH_RATE=2 BENCH_SECONDS=20 cargo bench --bench limits
//!
//! Prints one line per scenario: slots available (rate × time), upstream calls, utilisation, calls
//! refused at once (RESOURCE_EXHAUSTED), throttles the embedded CloudTrail had to answer (should be 0).

use std::{
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use cloudtrail_gateway::{
    config::{CacheConfig, Config, StoreConfig},
    limits::{LimitsConfig, Quotas},
    local::{self, LocalCloudTrail},
    pb::{self, cloud_trail_service_client::CloudTrailServiceClient},
    server,
};
use tokio::net::TcpListener;

const CALLERS: usize = 40;

fn env_or(name: &str, default: f64) -> f64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn replica(
    rate: f64,
    redis: Option<String>,
    replicas: u32,
    upstream: LocalCloudTrail,
) -> CloudTrailServiceClient<tonic::transport::Channel> {
    let unlimited = Quotas {
        lookup: 1e6,
        read: 1e6,
        write: 1e6,
    };
    let config = Config {
        limits: LimitsConfig {
            quotas: Quotas {
                lookup: rate,
                ..unlimited
            },
            redis_url: redis,
            expected_replicas: replicas,
            ..Config::default().limits
        },
        caches: CacheConfig {
            lookup_ttl: Duration::ZERO,
            ..Config::default().caches
        },
        store: StoreConfig {
            path: None,
            ..Config::default().store
        },
        ..Config::default()
    };
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(server::serve_with(
        listener,
        config,
        upstream,
        std::future::pending(),
    ));
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .expect("endpoint")
        .connect_lazy();
    CloudTrailServiceClient::new(channel)
}

async fn scenario(name: &str, rate: f64, seconds: f64, replicas: usize, redis: Option<String>) {
    let upstream = LocalCloudTrail::new(local::Options {
        quotas: local::Quotas {
            lookup: rate,
            read: 1e6,
            write: 1e6,
        },
        ..Default::default()
    });
    let mut clients = Vec::new();
    for _ in 0..replicas {
        clients.push(replica(rate, redis.clone(), replicas as u32, upstream.clone()).await);
    }
    let run_for = Duration::from_secs_f64(seconds);
    let started = Instant::now();
    let mut callers = Vec::new();
    for i in 0..CALLERS {
        let mut client = clients[i % replicas].clone();
        callers.push(tokio::spawn(async move {
            let (mut ok, mut refused, mut n) = (0u64, 0u64, 0u64);
            while started.elapsed() < run_for {
                n += 1;
                let mut request = tonic::Request::new(pb::LookupEventsRequest {
                    max_results: Some(1 + (n % 50) as i32),
                    next_token: String::new(),
                    lookup_attributes: vec![pb::LookupAttribute {
                        attribute_key: pb::LookupAttributeKey::EventName as i32,
                        attribute_value: format!("c{i}-{n}"),
                    }],
                    ..Default::default()
                });
                request.set_timeout(
                    run_for
                        .saturating_sub(started.elapsed())
                        .max(Duration::from_millis(50)),
                );
                match client.lookup_events(request).await {
                    Ok(_) => ok += 1,
                    Err(_) => {
                        refused += 1;
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
            }
            (ok, refused)
        }));
    }
    let (mut ok, mut refused) = (0, 0);
    for c in callers {
        let (o, r) = c.await.expect("caller");
        ok += o;
        refused += r;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let available = (elapsed * rate).floor() + 1.0;
    let used = upstream.served("LookupEvents").len() as f64;
    println!(
        "{name:<28} rate {rate:>4}/s  {elapsed:>5.1} s  slots {available:>4}  upstream calls {used:>4}  utilisation {:>5.1}%  ok {ok:>4}  refused {refused:>6}  throttled {}",
        100.0 * used / available,
        upstream.throttled()
    );
}

struct RedisServer(Child, u16);

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn redis() -> Option<RedisServer> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .ok()?
        .local_addr()
        .ok()?
        .port();
    let child = Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    std::thread::sleep(Duration::from_millis(300));
    Some(RedisServer(child, port))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let rate = env_or("BENCH_RATE", 5.0);
    let seconds = env_or("BENCH_SECONDS", 10.0);
    println!("LookupEvents slot utilisation, {CALLERS} callers offering far more than the quota");
    scenario("1 replica, local limiter", rate, seconds, 1, None).await;
    match redis() {
        Some(server) => {
            scenario(
                "3 replicas, shared Redis",
                rate,
                seconds,
                3,
                Some(format!("redis://127.0.0.1:{}", server.1)),
            )
            .await;
        }
        None => println!(
            "3 replicas, shared Redis      skipped: no redis-server on PATH (scripts/test.sh installs it)"
        ),
    }
}
