//! Soak: three gateway replicas (the release binary) and Redis under mixed load for `SOAK_SECONDS`
//! (default 600), while a replica and Redis are killed and restarted. One embedded CloudTrail serves
//! all replicas over HTTP (as AWS would: one endpoint, AWS's quotas per account and Region), so a
//! second over any quota shows as a throttle there.
//!
//!     scripts/soak.sh                 # 10 minutes
//!     SOAK_SECONDS=120 scripts/soak.sh
//!
//! Checks and prints: every call answered OK or with a retryable status carrying RetryInfo (calls
//! to the replica while it is down are counted apart: a client then uses another replica); no
//! throttle from CloudTrail and no second over a quota; each replica's RSS at the end of warm-up
//! and at the end. Exits non-zero when a check fails.

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant, SystemTime},
};

use cloudtrail_gateway::{
    local::{self, LocalCloudTrail},
    pb::{self, cloud_trail_service_client::CloudTrailServiceClient},
};
use tonic::{Code, transport::Channel};
use tonic_types::StatusExt;

const ACCOUNT: &str = "123456789012";
const REPLICAS: usize = 3;
const CALLERS: usize = 24;

fn seconds() -> u64 {
    std::env::var("SOAK_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(600)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// The embedded CloudTrail behind a real HTTP/1.1 endpoint on loopback.
async fn cloudtrail_endpoint(local: LocalCloudTrail) -> SocketAddr {
    cloudtrail_gateway::server::local::spawn_http(local)
        .await
        .expect("bind")
}

struct Process {
    child: Option<Child>,
    command: Vec<String>,
}

impl Process {
    fn start(command: Vec<String>) -> Process {
        let mut p = Process {
            child: None,
            command,
        };
        p.restart();
        p
    }

    fn restart(&mut self) {
        let child = Command::new(&self.command[0])
            .args(&self.command[1..])
            .env("AWS_ACCESS_KEY_ID", "AKIASOAKTEST")
            .env("AWS_SECRET_ACCESS_KEY", "soak")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_CONFIG_FILE", "/nonexistent")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start");
        self.child = Some(child);
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn rss_mb(&self) -> f64 {
        let Some(child) = &self.child else { return 0.0 };
        std::fs::read_to_string(format!("/proc/{}/status", child.id()))
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// How calls ended, by kind.
#[derive(Debug, Default)]
struct Tally {
    by_status: BTreeMap<String, u64>,
    /// Not OK and not retryable with RetryInfo: a failure of the soak.
    bad: Vec<String>,
    /// The replica was down (connection refused or reset): the client moves on.
    replica_down: u64,
}

fn classify(tally: &Mutex<Tally>, rpc: &str, result: Result<(), tonic::Status>) {
    let mut t = tally.lock().unwrap_or_else(|p| p.into_inner());
    match result {
        Ok(()) => *t.by_status.entry("OK".into()).or_default() += 1,
        Err(status) => {
            let transport = status.message().contains("transport error")
                || status.message().contains("connection")
                || (status.code() == Code::Unavailable
                    && status.get_details_error_info().is_none());
            let retryable = matches!(status.code(), Code::ResourceExhausted | Code::Unavailable)
                && status.get_details_retry_info().is_some();
            let expected = matches!(status.code(), Code::NotFound | Code::AlreadyExists);
            if transport && status.get_details_retry_info().is_none() {
                t.replica_down += 1;
            } else if retryable || expected {
                *t.by_status
                    .entry(format!("{:?}", status.code()))
                    .or_default() += 1;
            } else {
                t.bad.push(format!("{rpc}: {status:?}"));
            }
        }
    }
}

async fn connect(addr: SocketAddr) -> CloudTrailServiceClient<Channel> {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .expect("endpoint")
        .connect_timeout(Duration::from_secs(1))
        .connect_lazy();
    CloudTrailServiceClient::new(channel)
}

/// One call of the mix; `n` picks which.
async fn one_call(
    client: &mut CloudTrailServiceClient<Channel>,
    n: u64,
) -> (&'static str, Result<(), tonic::Status>) {
    let deadline = Duration::from_secs(10);
    macro_rules! call {
        ($method:ident, $request:expr) => {{
            let mut request = tonic::Request::new($request);
            request.set_timeout(deadline);
            client.$method(request).await.map(|_| ())
        }};
    }
    let trail = format!("soak-{}", n % 4);
    match n % 10 {
        0..=3 => (
            "DescribeTrails",
            call!(describe_trails, pb::DescribeTrailsRequest::default()),
        ),
        4 | 5 => (
            "GetTrailStatus",
            call!(get_trail_status, pb::GetTrailStatusRequest { name: trail }),
        ),
        6 | 7 => (
            "LookupEvents",
            call!(
                lookup_events,
                pb::LookupEventsRequest {
                    lookup_attributes: vec![pb::LookupAttribute {
                        attribute_key: pb::LookupAttributeKey::EventName as i32,
                        attribute_value: ["CreateTrail", "StartLogging", "DescribeTrails"]
                            [(n % 3) as usize]
                            .into(),
                    }],
                    max_results: Some(10),
                    ..Default::default()
                }
            ),
        ),
        8 => (
            "CreateTrail",
            call!(
                create_trail,
                pb::CreateTrailRequest {
                    name: trail,
                    s3_bucket_name: "soak-bucket".into(),
                    ..Default::default()
                }
            ),
        ),
        _ => (
            "StartLogging",
            call!(
                start_logging,
                pb::StartLoggingRequest {
                    name: trail,
                    request_id: String::new()
                }
            ),
        ),
    }
}

/// The most calls in any one-second window among `times` (sorted).
fn busiest_second(times: &[SystemTime]) -> usize {
    let mut most = 0;
    let mut first = 0;
    for last in 0..times.len() {
        while times[last]
            .duration_since(times[first])
            .is_ok_and(|d| d >= Duration::from_secs(1))
        {
            first += 1;
        }
        most = most.max(last - first + 1);
    }
    most
}

/// Every call of `operations` that reached CloudTrail (served or throttled), in or out of `outage`.
fn arrivals(
    local: &LocalCloudTrail,
    operations: &[&str],
    outage: (SystemTime, SystemTime),
    inside: bool,
) -> Vec<SystemTime> {
    let throttled = local.throttled_calls();
    let mut times: Vec<SystemTime> = operations
        .iter()
        .flat_map(|op| {
            local.served(op).into_iter().chain(
                throttled
                    .iter()
                    .filter(move |(o, _)| o == op)
                    .map(|(_, at)| *at),
            )
        })
        .filter(|at| (outage.0 <= *at && *at <= outage.1) == inside)
        .collect();
    times.sort();
    times
}

#[tokio::main]
async fn main() {
    if !std::env::args().any(|a| a == "--soak") {
        // `cargo bench` runs every bench target; the soak runs only when asked for.
        println!("soak: run scripts/soak.sh (SOAK_SECONDS sets its length)");
        return;
    }
    let total = Duration::from_secs(seconds());
    let warm_up = total / 10;
    let local = LocalCloudTrail::new(local::Options {
        account_id: ACCOUNT.into(),
        event_capacity: 20_000,
        ..Default::default()
    });
    let endpoint = cloudtrail_endpoint(local.clone()).await;
    let redis_port = free_port();
    let redis_command: Vec<String> = [
        "redis-server",
        "--port",
        &redis_port.to_string(),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut redis = Process::start(redis_command);
    let gateway = env!("CARGO_BIN_EXE_cloudtrail-gateway");
    let mut addrs = Vec::new();
    let mut replicas: Vec<Process> = (0..REPLICAS)
        .map(|_| {
            let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
            let metrics = SocketAddr::from(([127, 0, 0, 1], free_port()));
            addrs.push(addr);
            Process::start(
                [
                    gateway,
                    "--listen",
                    &addr.to_string(),
                    "--metrics-listen",
                    &metrics.to_string(),
                    "--upstream",
                    "aws",
                    "--region",
                    "us-east-1",
                    "--account-id",
                    ACCOUNT,
                    "--endpoint-url",
                    &format!("http://{endpoint}"),
                    "--redis-url",
                    &format!("redis://127.0.0.1:{redis_port}"),
                    "--expected-replicas",
                    &REPLICAS.to_string(),
                    "--max-attempts",
                    "1",
                ]
                .iter()
                .map(|s| s.to_string())
                .collect(),
            )
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(2)).await;
    println!(
        "soak: {} s, {REPLICAS} replicas + Redis, {CALLERS} callers, one embedded CloudTrail at AWS's quotas",
        total.as_secs()
    );

    let tally = Arc::new(Mutex::new(Tally::default()));
    let started = Instant::now();
    let soak_started = SystemTime::now();
    let mut callers = Vec::new();
    for i in 0..CALLERS {
        let (tally, addrs) = (tally.clone(), addrs.clone());
        callers.push(tokio::spawn(async move {
            let mut clients = Vec::new();
            for addr in &addrs {
                clients.push(connect(*addr).await);
            }
            let mut n = i as u64;
            let mut replica = i % REPLICAS;
            while started.elapsed() < total {
                let (rpc, result) = one_call(&mut clients[replica], n).await;
                let retry_after = result
                    .as_ref()
                    .err()
                    .and_then(|s| s.get_details_retry_info())
                    .and_then(|r| r.retry_delay);
                let down = result.as_ref().is_err_and(|s| {
                    s.get_details_retry_info().is_none() && s.code() == Code::Unavailable
                });
                classify(&tally, rpc, result);
                if down {
                    replica = (replica + 1) % REPLICAS; // another replica
                }
                // A well-behaved client: waits what RetryInfo says, else a little.
                tokio::time::sleep(
                    retry_after
                        .unwrap_or(Duration::from_millis(200))
                        .min(Duration::from_secs(5)),
                )
                .await;
                n += CALLERS as u64;
            }
        }));
    }

    let mut rss_start = [0.0; REPLICAS];
    let chaos = [
        (total * 3 / 10, "kill replica 2"),
        (total * 4 / 10, "restart replica 2"),
        (total * 6 / 10, "kill Redis"),
        (total * 7 / 10, "restart Redis"),
    ];
    let mut step = 0;
    let mut warmed = false;
    while started.elapsed() < total {
        tokio::time::sleep(Duration::from_millis(200)).await;
        if !warmed && started.elapsed() >= warm_up {
            for (i, r) in replicas.iter().enumerate() {
                rss_start[i] = r.rss_mb();
            }
            warmed = true;
        }
        if let Some((at, what)) = chaos.get(step)
            && started.elapsed() >= *at
        {
            println!("  {:>5.0} s  {what}", started.elapsed().as_secs_f64());
            match step {
                0 => replicas[1].kill(),
                1 => replicas[1].restart(),
                2 => redis.kill(),
                _ => redis.restart(),
            }
            step += 1;
        }
    }
    let rss_end: Vec<f64> = replicas.iter().map(Process::rss_mb).collect();
    for caller in callers {
        let _ = caller.await;
    }

    let tally = tally.lock().unwrap_or_else(|p| p.into_inner());
    let calls: u64 =
        tally.by_status.values().sum::<u64>() + tally.bad.len() as u64 + tally.replica_down;
    println!();
    println!("calls            {calls}");
    for (status, n) in &tally.by_status {
        println!("  {status:<16} {n}");
    }
    println!(
        "  to the replica while down (client moved on): {}",
        tally.replica_down
    );
    println!("  not answered as documented: {}", tally.bad.len());
    for bad in tally.bad.iter().take(10) {
        println!("    {bad}");
    }
    // Without Redis, each replica keeps to quota / expected_replicas: under the quota on average,
    // but the replicas cannot space their calls against each other's, so calls may coincide and
    // CloudTrail throttle some (answered RESOURCE_EXHAUSTED with RetryInfo, as checked above).
    // With Redis there must be no throttle and no window over the quota.
    let outage = (
        soak_started + chaos[2].0,
        soak_started + chaos[3].0 + Duration::from_secs(2),
    );
    let in_outage = |at: &SystemTime| outage.0 <= *at && *at <= outage.1;
    let throttles = local.throttled_calls();
    let shared_throttles = throttles.iter().filter(|(_, at)| !in_outage(at)).count();
    let outage_throttles = throttles.len() - shared_throttles;
    // A GCRA at r/s admits r calls in a one-second window, r + 1 at its edges (the emulator, like
    // AWS, allows 50 ms of jitter).
    let classes: [(&str, &[&str], usize); 3] = [
        ("LookupEvents", &["LookupEvents"], 2),
        ("reads", &["DescribeTrails", "GetTrailStatus"], 10),
        ("writes", &["CreateTrail", "StartLogging"], 1),
    ];
    let mut over = false;
    println!(
        "calls reaching CloudTrail, busiest one-second window (with Redis | during its outage):"
    );
    for (name, operations, quota) in classes {
        let shared = busiest_second(&arrivals(&local, operations, outage, false));
        let fallback = busiest_second(&arrivals(&local, operations, outage, true));
        over |= shared > quota + 1;
        println!("  {name:<13} quota {quota:>2}/s   {shared:>3} | {fallback:>3}");
    }
    println!(
        "throttled by CloudTrail: {shared_throttles} with Redis, {outage_throttles} during its outage"
    );
    println!("replica   RSS MB after warm-up   at the end");
    for i in 0..REPLICAS {
        let note = if i == 1 { "  (restarted mid-run)" } else { "" };
        println!(
            "{:>7}   {:>20.1}   {:>10.1}{note}",
            i + 1,
            rss_start[i],
            rss_end[i]
        );
    }
    let failed = !tally.bad.is_empty() || shared_throttles > 0 || over;
    if failed {
        println!("SOAK FAILED");
        std::process::exit(1);
    }
    println!("soak passed");
}
