//! The servers measured: the reference servers (this bench binary re-executed as `serve echo|proxy`,
//! each its own process) and the real gateway binary; and what /proc says about a process.

use std::{
    io::{BufRead, BufReader},
    net::SocketAddr,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use cloudtrail_gateway::{
    config::Config,
    local::{self, LocalCloudTrail},
    pb::{self, cloud_trail_service_server},
    upstream,
};
use tonic::{Request, Response, Status};
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

pub const TOKEN: &str = "bench-token";
pub const TRAIL: &str = "bench-trail";
/// Every embedded CloudTrail here (proxy, SDK loop, gateway) keeps this many events: its history
/// (~1.8 KB an event) is the emulator's memory, not the gateway's, and would otherwise grow with every
/// call measured up to the default 100 000 events.
pub const EVENT_CAPACITY: usize = 1000;
pub const RAISED: local::Quotas = local::Quotas {
    lookup: 1e9,
    read: 1e9,
    write: 1e9,
};

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

/// Runs a reference server: `echo` (Health/Check only) or `proxy`; prints `PORT <n>` first.
pub async fn serve(kind: &str) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    println!("PORT {}", listener.local_addr().expect("addr").port());
    // TCP_NODELAY, as tonic sets when it binds itself (and as the gateway does).
    let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
    let (health_reporter, health) = tonic_health::server::health_reporter();
    health_reporter
        .set_service_status("", tonic_health::ServingStatus::Serving)
        .await;
    let router = tonic::transport::Server::builder().add_service(health);
    let result = if kind == "proxy" {
        let local = LocalCloudTrail::new(local::Options {
            quotas: RAISED,
            event_capacity: EVENT_CAPACITY,
            ..Default::default()
        });
        let client = upstream::local_client(&Config::default().upstream, &local);
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

pub struct Server {
    pub child: Child,
    pub addr: SocketAddr,
    /// The gateway's side port (/metrics).
    pub metrics: Option<SocketAddr>,
}

impl Server {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM, then waits: the gateway drains, and a profiler around the process writes its data.
    pub fn terminate(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

/// `program`, or `wrapper[0] wrapper[1..] program` (a profiler around it).
fn command(program: impl AsRef<std::ffi::OsStr>, wrapper: &[String]) -> Command {
    match wrapper.split_first() {
        None => Command::new(program),
        Some((first, rest)) => {
            let mut command = Command::new(first);
            command.args(rest).arg(program);
            command
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A reference server in its own process; with `mimalloc` it allocates with mimalloc (as the gateway
/// binary does) instead of the system allocator.
pub fn reference_server(kind: &str, mimalloc: bool, wrapper: &[String]) -> Server {
    let mut command = command(std::env::current_exe().expect("own path"), wrapper);
    if mimalloc {
        command.env(crate::MIMALLOC, "1");
    } else {
        command.env_remove(crate::MIMALLOC);
    }
    let mut child = command
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
        metrics: None,
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("port")
}

/// The gateway binary, production layers on, quotas raised; returns it with its time to SERVING.
/// `BENCH_GATEWAY_FLAGS="--store false"` (name value pairs) changes its flags, e.g. to compare the
/// idle event store with none.
pub async fn gateway_server(wrapper: &[String]) -> (Server, Duration) {
    let extra = std::env::var("BENCH_GATEWAY_FLAGS").unwrap_or_default();
    let words: Vec<&str> = extra.split_whitespace().collect();
    let flags: Vec<(&str, &str)> = words.chunks_exact(2).map(|w| (w[0], w[1])).collect();
    assert!(
        words.len().is_multiple_of(2),
        "BENCH_GATEWAY_FLAGS: name value pairs, got {extra:?}"
    );
    gateway_with(wrapper, "", &flags).await
}

/// The SHA-256 (hex) a `[[tokens]]` entry holds for `token`.
pub fn token_hash(token: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// As `gateway_server`, with `toml` added to its configuration file and `flags` (name, value)
/// replacing or adding to its flags.
pub async fn gateway_with(
    wrapper: &[String],
    toml: &str,
    flags: &[(&str, &str)],
) -> (Server, Duration) {
    let dir = std::env::temp_dir().join(format!("ctgw-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let config = dir.join(format!("bench-{}.toml", free_port()));
    std::fs::write(
        &config,
        format!(
            "{toml}\n[[tokens]]\nprincipal = \"bench\"\nsha256 = \"{}\"\nroles = [\"admin\"]\n",
            token_hash(TOKEN)
        ),
    )
    .expect("config");
    let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let metrics = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let capacity = EVENT_CAPACITY.to_string();
    // The event store on (as a newcomer runs it), idle: no trail delivers in the benchmark.
    let store = dir.join(format!("store-{}.db", metrics.port()));
    let store = store.to_string_lossy().into_owned();
    let defaults = [
        ("--store-path", store.as_str()),
        ("--lookup-rate", "1e9"),
        ("--read-rate", "1e9"),
        ("--write-rate", "1e9"),
        ("--local-lookup-quota", "1e9"),
        ("--local-read-quota", "1e9"),
        ("--local-write-quota", "1e9"),
        ("--local-event-capacity", capacity.as_str()),
        ("--lookup-cache-ttl", "0s"),
        ("--read-cache-ttl", "0s"),
        ("--max-concurrent-requests", "100000"),
    ];
    let mut args: Vec<&str> = Vec::new();
    for (name, value) in defaults {
        let value = flags
            .iter()
            .find(|(n, _)| *n == name)
            .map_or(value, |(_, v)| *v);
        args.extend([name, value]);
    }
    for (name, value) in flags {
        if !defaults.iter().any(|(n, _)| n == name) {
            args.extend([*name, *value]);
        }
    }
    let started = Instant::now();
    let child = command(env!("CARGO_BIN_EXE_cloudtrail-gateway"), wrapper)
        .args([
            "--listen",
            &addr.to_string(),
            "--metrics-listen",
            &metrics.to_string(),
        ])
        .args(["--config", config.to_str().expect("path")])
        .args(args)
        // The production log level (info); its few lines stay out of the table.
        .env_remove("RUST_LOG")
        // Credentials for an event store source's S3 (the embedded one checks no signature); no
        // instance metadata probe.
        .env("AWS_ACCESS_KEY_ID", "bench")
        .env("AWS_SECRET_ACCESS_KEY", "bench")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .stdout(Stdio::null())
        .spawn()
        .expect("start the gateway");
    let server = Server {
        child,
        addr,
        metrics: Some(metrics),
    };
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
            started.elapsed() < Duration::from_secs(120),
            "gateway not SERVING"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    (server, started.elapsed())
}

/// utime + stime of a process, in µs.
pub fn cpu_us(pid: u32) -> f64 {
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

pub fn peak_rss_mb(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// The gateway's /metrics text.
pub fn scrape(addr: SocketAddr) -> String {
    use std::io::{Read, Write};
    let mut text = String::new();
    if let Ok(mut stream) = std::net::TcpStream::connect(addr) {
        let _ = stream.write_all(b"GET /metrics HTTP/1.0\r\nHost: bench\r\n\r\n");
        let _ = stream.read_to_string(&mut text);
    }
    text
}

/// A metric's samples whose labels contain `label`: (the labels, the value).
pub fn samples<'a>(
    metrics: &'a str,
    name: &'a str,
    label: &'a str,
) -> impl Iterator<Item = (&'a str, f64)> + 'a {
    metrics.lines().filter_map(move |line| {
        let (labels, value) = line.strip_prefix(name)?.rsplit_once(' ')?;
        let labels = labels.strip_prefix('{')?;
        labels.contains(label).then_some(())?;
        Some((labels, value.parse().ok()?))
    })
}

pub fn sum(metrics: &str, name: &str, label: &str) -> f64 {
    samples(metrics, name, label).map(|(_, value)| value).sum()
}

/// Between two scrapes of the gateway's /metrics: the mean time per `rpc` call in the server
/// (`grpc_server_handling_seconds`) and in its SDK call (`cloudtrail_upstream_duration_seconds`), µs.
pub fn mean_us(before: &str, after: &str, rpc: &str) -> (f64, f64) {
    let mean = |name: &str, label: &str| {
        let delta = |suffix: &str| {
            let metric = format!("{name}_{suffix}");
            sum(after, &metric, label) - sum(before, &metric, label)
        };
        1e6 * delta("sum") / delta("count").max(1.0)
    };
    (
        mean(
            "grpc_server_handling_seconds",
            &format!("grpc_method=\"{rpc}\""),
        ),
        mean(
            "cloudtrail_upstream_duration_seconds",
            &format!("operation=\"{rpc}\""),
        ),
    )
}
