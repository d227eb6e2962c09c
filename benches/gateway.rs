//! Throughput and cost of the gateway next to its yardsticks, in one run on one machine:
//!
//! - `echo`: a bare tonic server answering `grpc.health.v1.Health/Check` (the floor of gRPC cost);
//! - `proxy`: the minimal proxy, a tonic server whose handler only makes the SDK call against the same
//!   embedded CloudTrail transport the gateway uses (same Region, credentials, signing);
//! - `sdk`: the SDK call in a loop, no gRPC at all (in this process);
//! - `gateway`: the real binary with authentication (static token), metrics and the limiter on, its
//!   quotas and the embedded CloudTrail's raised above the offered load, the lookup cache off.
//!
//! Run: `scripts/bench.sh` (or `cargo bench --bench gateway`); `BENCH_SECONDS=10` for longer cells.
//!
//! Prints, per target × RPC × concurrency: req/s, p50/p99 latency, server CPU µs per request (from
//! /proc/<pid>/stat utime+stime over the run), peak RSS (VmHWM), errors; then the ratios gateway ÷
//! proxy and gateway ÷ echo, and the gateway's time from process start to SERVING.

use std::{
    io::{BufRead, BufReader},
    net::SocketAddr,
    process::{Child, Command, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};

use cloudtrail_gateway::{
    config::Config,
    limits::Quotas,
    local::{LocalCloudTrail, LocalOptions},
    pb::{self, cloud_trail_service_client::CloudTrailServiceClient, cloud_trail_service_server},
    upstream,
};
use tonic::{Request, Response, Status, transport::Channel};
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

const TOKEN: &str = "bench-token";
const TRAIL: &str = "bench-trail";
const RAISED: Quotas = Quotas {
    lookup: 1e9,
    read: 1e9,
    write: 1e9,
};

fn seconds() -> f64 {
    std::env::var("BENCH_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5.0)
}

// ---- server side (the bench binary re-executed as `serve echo|proxy`) ----

/// The minimal proxy: the two RPCs measured, each nothing but the SDK call and the conversion.
struct Proxy {
    client: aws_sdk_cloudtrail::Client,
}

#[tonic::async_trait]
impl cloud_trail_service_server::CloudTrailService for Proxy {
    async fn describe_trails(
        &self,
        _: Request<pb::DescribeTrailsRequest>,
    ) -> Result<Response<pb::DescribeTrailsResponse>, Status> {
        let output = self
            .client
            .describe_trails()
            .send()
            .await
            .map_err(|e| Status::internal(e.to_string()))?;
        Ok(Response::new(output.into()))
    }

    async fn get_trail_status(
        &self,
        request: Request<pb::GetTrailStatusRequest>,
    ) -> Result<Response<pb::GetTrailStatusResponse>, Status> {
        let name = request.into_inner().name;
        let output = self
            .client
            .get_trail_status()
            .name(name)
            .send()
            .await
            .map_err(|e| Status::internal(e.to_string()))?;
        Ok(Response::new(output.into()))
    }
}

async fn serve(kind: &str) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    println!("PORT {}", listener.local_addr().expect("addr").port());
    let incoming = tonic::transport::server::TcpIncoming::from(listener);
    let (health_reporter, health) = tonic_health::server::health_reporter();
    health_reporter
        .set_service_status("", tonic_health::ServingStatus::Serving)
        .await;
    let router = tonic::transport::Server::builder().add_service(health);
    let result = if kind == "proxy" {
        let local = LocalCloudTrail::new(LocalOptions {
            quotas: RAISED,
            ..Default::default()
        });
        let client = upstream::local(&Config::default().upstream, &local).client;
        client
            .create_trail()
            .name(TRAIL)
            .s3_bucket_name("bench-bucket")
            .send()
            .await
            .expect("create trail");
        router
            .add_service(cloud_trail_service_server::CloudTrailServiceServer::new(
                Proxy { client },
            ))
            .serve_with_incoming(incoming)
            .await
    } else {
        router.serve_with_incoming(incoming).await
    };
    result.expect("serve");
}

// ---- measuring side ----

struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn reference_server(kind: &str) -> Server {
    let mut child = Command::new(std::env::current_exe().expect("own path"))
        .args(["serve", kind])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start reference server");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("port line");
    let port: u16 = line
        .trim()
        .trim_start_matches("PORT ")
        .parse()
        .expect("port");
    Server {
        child,
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("port")
}

/// The gateway binary, production layers on, quotas raised; returns it with its time to SERVING.
async fn gateway_server() -> (Server, Duration) {
    let dir = std::env::temp_dir().join(format!("ctgw-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let config = dir.join("bench.toml");
    let hash: String = {
        use sha2::Digest;
        sha2::Sha256::digest(TOKEN.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    };
    std::fs::write(
        &config,
        format!("[[tokens]]\nprincipal = \"bench\"\nsha256 = \"{hash}\"\nroles = [\"admin\"]\n"),
    )
    .expect("config");
    let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let started = Instant::now();
    let child = Command::new(env!("CARGO_BIN_EXE_cloudtrail-gateway"))
        .args([
            "--listen",
            &addr.to_string(),
            "--metrics-listen",
            &format!("127.0.0.1:{}", free_port()),
        ])
        .args(["--config", config.to_str().expect("path")])
        .args([
            "--lookup-rate",
            "1e9",
            "--read-rate",
            "1e9",
            "--write-rate",
            "1e9",
        ])
        .args([
            "--local-lookup-quota",
            "1e9",
            "--local-read-quota",
            "1e9",
            "--local-write-quota",
            "1e9",
        ])
        .args([
            "--lookup-cache-ttl",
            "0s",
            "--max-concurrent-requests",
            "100000",
        ])
        .env("RUST_LOG", "warn")
        .spawn()
        .expect("start the gateway");
    let server = Server { child, addr };
    loop {
        if let Ok(channel) = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
            .expect("endpoint")
            .connect()
            .await
        {
            let status = HealthClient::new(channel)
                .check(HealthCheckRequest::default())
                .await
                .map(|r| r.into_inner().status);
            if status.is_ok_and(|s| {
                s == tonic_health::pb::health_check_response::ServingStatus::Serving as i32
            }) {
                break;
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "gateway not SERVING"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    (server, started.elapsed())
}

/// utime + stime of a process, in µs.
fn cpu_us(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks: f64 = fields.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0)
        + fields.get(12).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    ticks * 1e6 / 100.0 // USER_HZ is 100 on Linux
}

fn peak_rss_mb(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

#[derive(Clone, Copy)]
enum Call {
    Health,
    DescribeTrails,
    GetTrailStatus,
}

fn authorized<T>(message: T) -> Request<T> {
    let mut request = Request::new(message);
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {TOKEN}").parse().expect("header"),
    );
    request
}

/// One call over gRPC; Ok(()) or the status code.
async fn grpc_call(channel: Channel, call: Call) -> Result<(), tonic::Code> {
    let result = match call {
        Call::Health => HealthClient::new(channel)
            .check(HealthCheckRequest::default())
            .await
            .map(|_| ()),
        Call::DescribeTrails => CloudTrailServiceClient::new(channel)
            .describe_trails(authorized(pb::DescribeTrailsRequest::default()))
            .await
            .map(|_| ()),
        Call::GetTrailStatus => CloudTrailServiceClient::new(channel)
            .get_trail_status(authorized(pb::GetTrailStatusRequest { name: TRAIL.into() }))
            .await
            .map(|_| ()),
    };
    result.map_err(|s| s.code())
}

struct Figures {
    rps: f64,
    p50_us: u64,
    p99_us: u64,
    cpu_us_per_req: f64,
    rss_mb: f64,
    errors: u64,
}

/// Runs `concurrency` loops of `call` for the configured time; `pid` is the process whose CPU counts.
async fn load<F, Fut>(concurrency: usize, pid: u32, call: F) -> Figures
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<(), tonic::Code>> + Send,
{
    let call = Arc::new(call);
    let run = |duration: Duration| {
        let call = call.clone();
        async move {
            let started = Instant::now();
            let mut tasks = Vec::new();
            for i in 0..concurrency {
                let call = call.clone();
                tasks.push(tokio::spawn(async move {
                    let (mut latencies, mut errors) = (Vec::new(), 0u64);
                    while started.elapsed() < duration {
                        let t = Instant::now();
                        if call(i).await.is_err() {
                            errors += 1;
                        }
                        latencies.push(t.elapsed().as_micros() as u64);
                    }
                    (latencies, errors)
                }));
            }
            let (mut all, mut errors) = (Vec::new(), 0);
            for t in tasks {
                let (l, e) = t.await.expect("load task");
                all.extend(l);
                errors += e;
            }
            (all, errors, started.elapsed())
        }
    };
    run(Duration::from_millis(500)).await; // warm-up: connections, caches, allocator
    let cpu_before = cpu_us(pid);
    let (mut latencies, errors, elapsed) = run(Duration::from_secs_f64(seconds())).await;
    let cpu = cpu_us(pid) - cpu_before;
    latencies.sort_unstable();
    let pct = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0)
    };
    let n = latencies.len() as f64;
    Figures {
        rps: n / elapsed.as_secs_f64(),
        p50_us: pct(0.50),
        p99_us: pct(0.99),
        cpu_us_per_req: cpu / n.max(1.0),
        rss_mb: peak_rss_mb(pid),
        errors,
    }
}

async fn channels(addr: SocketAddr, n: usize) -> Vec<Channel> {
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(
            tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
                .expect("endpoint")
                .connect()
                .await
                .expect("connect"),
        );
    }
    out
}

async fn over_grpc(addr: SocketAddr, pid: u32, call: Call, concurrency: usize) -> Figures {
    let pool = Arc::new(channels(addr, concurrency.clamp(1, 4)).await);
    load(concurrency, pid, move |i| {
        grpc_call(pool[i % pool.len()].clone(), call)
    })
    .await
}

fn row(target: &str, rpc: &str, concurrency: usize, f: &Figures) {
    println!(
        "{target:<8} {rpc:<15} {concurrency:>4} {:>10.0} {:>8} {:>8} {:>10.1} {:>8.1} {:>7}",
        f.rps, f.p50_us, f.p99_us, f.cpu_us_per_req, f.rss_mb, f.errors
    );
}

async fn measure() {
    let concurrencies = [1, 16, 64];
    println!(
        "{} s per cell; server CPU from /proc; RSS = peak (VmHWM) of the server process",
        seconds()
    );
    println!(
        "{:<8} {:<15} {:>4} {:>10} {:>8} {:>8} {:>10} {:>8} {:>7}",
        "target", "rpc", "conc", "req/s", "p50 µs", "p99 µs", "CPU µs/req", "RSS MB", "errors"
    );
    let echo = reference_server("echo");
    let proxy = reference_server("proxy");
    let (gateway, to_serving) = gateway_server().await;
    // Create the trail GetTrailStatus asks about.
    let mut admin = CloudTrailServiceClient::new(channels(gateway.addr, 1).await.remove(0));
    let create = pb::CreateTrailRequest {
        name: TRAIL.into(),
        s3_bucket_name: "bench-bucket".into(),
        ..Default::default()
    };
    admin
        .create_trail(authorized(create))
        .await
        .expect("create the bench trail");

    let sdk_local = LocalCloudTrail::new(LocalOptions {
        quotas: RAISED,
        ..Default::default()
    });
    let sdk = upstream::local(&Config::default().upstream, &sdk_local).client;
    sdk.create_trail()
        .name(TRAIL)
        .s3_bucket_name("bench-bucket")
        .send()
        .await
        .expect("create trail");
    let own_pid = std::process::id();

    let mut ratios = Vec::new();
    for (rpc, call) in [
        ("DescribeTrails", Call::DescribeTrails),
        ("GetTrailStatus", Call::GetTrailStatus),
    ] {
        for &c in &concurrencies {
            let e = over_grpc(echo.addr, echo.child.id(), Call::Health, c).await;
            row("echo", "Health/Check", c, &e);
            let p = over_grpc(proxy.addr, proxy.child.id(), call, c).await;
            row("proxy", rpc, c, &p);
            let client = sdk.clone();
            let s = load(c, own_pid, move |_| {
                let client = client.clone();
                async move {
                    let result = match call {
                        Call::GetTrailStatus => client
                            .get_trail_status()
                            .name(TRAIL)
                            .send()
                            .await
                            .map(|_| ())
                            .map_err(|_| ()),
                        _ => client
                            .describe_trails()
                            .send()
                            .await
                            .map(|_| ())
                            .map_err(|_| ()),
                    };
                    result.map_err(|()| tonic::Code::Internal)
                }
            })
            .await;
            row("sdk", rpc, c, &s);
            let g = over_grpc(gateway.addr, gateway.child.id(), call, c).await;
            row("gateway", rpc, c, &g);
            ratios.push((
                rpc,
                c,
                g.rps / p.rps,
                g.rps / e.rps,
                g.cpu_us_per_req / p.cpu_us_per_req,
                g.p50_us as i64 - s.p50_us as i64,
                g.p99_us as i64 - s.p99_us as i64,
            ));
        }
    }
    println!();
    println!(
        "{:<15} {:>4} {:>14} {:>14} {:>14} {:>16} {:>16}",
        "rpc",
        "conc",
        "gw÷proxy req/s",
        "gw÷echo req/s",
        "gw÷proxy CPU",
        "gw-sdk p50 µs",
        "gw-sdk p99 µs"
    );
    for (rpc, c, vs_proxy, vs_echo, cpu, p50, p99) in ratios {
        println!(
            "{rpc:<15} {c:>4} {vs_proxy:>14.2} {vs_echo:>14.2} {cpu:>14.2} {p50:>16} {p99:>16}"
        );
    }
    println!();
    println!(
        "gateway: process start to SERVING {:.0} ms",
        to_serving.as_secs_f64() * 1000.0
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    match args.get(1).map(String::as_str) {
        Some("serve") => runtime.block_on(serve(args.get(2).map_or("echo", String::as_str))),
        // `cargo bench` passes `--bench`; anything else measures.
        _ => runtime.block_on(measure()),
    }
}
