//! Throughput, cost and latency of the gateway next to its yardsticks, in one run on one machine:
//!
//! - `echo`: a bare tonic server answering `grpc.health.v1.Health/Check` (the floor of gRPC cost);
//! - `proxy`: the minimal proxy, a tonic server whose handler only makes the SDK call against the same
//!   embedded CloudTrail transport the gateway uses (same Region, credentials, signing), on the
//!   system allocator; `proxy-mi`: the same on mimalloc, the allocator the gateway binary ships;
//! - `sdk`: the SDK call in a loop, no gRPC at all (in this process);
//! - `gateway`: the real binary with authentication (static token), metrics and the limiter on, its
//!   quotas and the embedded CloudTrail's raised above the offered load, the lookup cache off.
//!
//! Run: `scripts/bench.sh` (or `cargo bench --bench gateway`); `BENCH_SECONDS=10` for longer cells.
//! The load generator alone: `cargo bench --bench gateway -- load --addr HOST:PORT --rpc NAME ...`
//! (see `load.rs`). Instructions per call under callgrind: `cargo bench --bench gateway -- profile`.
//! Accounts and callers (the limiter's ceiling, caller identity, STS calls): `-- accounts`. The
//! throughput table alone (the paired ratios): `-- throughput`. The
//! reconcile scenario (upstream calls per ApplyTrail and per poll): `-- reconcile`. StreamEvents
//! under load (followers, lookers, lag, memory per stream): `-- streams`. The event store (ingest,
//! bytes per event, memory, LookupEvents from it): `-- store` (`BENCH_STORE_RECORDS`).

mod accounts;
mod load;
mod profile;
mod reconcile;
mod servers;
mod store;
mod streams;

use std::{
    alloc::{GlobalAlloc, Layout, System},
    collections::BTreeMap,
    process::Command,
    sync::atomic::{AtomicU8, Ordering},
    time::Duration,
};

use cloudtrail_gateway::{
    config::Config,
    local::{self, LocalCloudTrail},
    pb::{self, cloud_trail_service_client::CloudTrailServiceClient},
    upstream,
};
use load::{Load, Pace, Report, Rpc, Stop};
use servers::{EVENT_CAPACITY, RAISED, Server, TOKEN, TRAIL};
use tonic::Code;

/// Set in a reference server's environment to make it allocate with mimalloc.
pub const MIMALLOC: &str = "BENCH_MIMALLOC";

/// The system allocator, or mimalloc when `BENCH_MIMALLOC` is set: decided at the first allocation
/// (before `main`, one thread), so every block is freed by the allocator that made it.
struct ChosenAllocator;

static CHOICE: AtomicU8 = AtomicU8::new(0); // 0 undecided, 1 system, 2 mimalloc

unsafe extern "C" {
    // libc's; reading the environment through std would allocate inside the allocator.
    fn getenv(name: *const std::ffi::c_char) -> *const std::ffi::c_char;
}

fn use_mimalloc() -> bool {
    match CHOICE.load(Ordering::Relaxed) {
        1 => false,
        2 => true,
        _ => {
            // SAFETY: a NUL-terminated name; glibc's getenv neither allocates nor keeps the pointer.
            let set = unsafe { !getenv(c"BENCH_MIMALLOC".as_ptr()).is_null() };
            CHOICE.store(if set { 2 } else { 1 }, Ordering::Relaxed);
            set
        }
    }
}

// SAFETY: every call is forwarded to one allocator, the same one for the whole process.
unsafe impl GlobalAlloc for ChosenAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if use_mimalloc() {
            unsafe { mimalloc::MiMalloc.alloc(layout) }
        } else {
            unsafe { System.alloc(layout) }
        }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if use_mimalloc() {
            unsafe { mimalloc::MiMalloc.alloc_zeroed(layout) }
        } else {
            unsafe { System.alloc_zeroed(layout) }
        }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if use_mimalloc() {
            unsafe { mimalloc::MiMalloc.dealloc(ptr, layout) }
        } else {
            unsafe { System.dealloc(ptr, layout) }
        }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if use_mimalloc() {
            unsafe { mimalloc::MiMalloc.realloc(ptr, layout, new_size) }
        } else {
            unsafe { System.realloc(ptr, layout, new_size) }
        }
    }
}

#[global_allocator]
static ALLOCATOR: ChosenAllocator = ChosenAllocator;

fn seconds() -> f64 {
    std::env::var("BENCH_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3.0)
}

/// Wall-clock figures on a shared 2-core machine vary by ±5-15% from run to run; each cell is run
/// this many times and the median kept.
fn rounds() -> usize {
    std::env::var("BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3)
        .max(1)
}

/// A ratio measured once per round, each round's two cells run back to back: its median and its
/// spread, so one noisy minute moves one pair, not the verdict.
#[derive(Debug, Clone, Copy)]
struct Spread {
    median: f64,
    low: f64,
    high: f64,
}

impl Spread {
    /// Of per-round ratios (NaN-free; an empty list is 0).
    fn of(mut ratios: Vec<f64>) -> Spread {
        ratios.retain(|r| r.is_finite());
        ratios.sort_by(f64::total_cmp);
        let at = |i: usize| ratios.get(i).copied().unwrap_or(0.0);
        Spread {
            median: at(ratios.len() / 2),
            low: at(0),
            high: at(ratios.len().saturating_sub(1)),
        }
    }

    /// `a[i] ÷ b[i]` for each round `i`, of the figure `f`.
    fn paired(a: &[Cell], b: &[Cell], f: impl Fn(&Cell) -> f64) -> Spread {
        Spread::of(a.iter().zip(b).map(|(a, b)| f(a) / f(b)).collect())
    }
}

impl std::fmt::Display for Spread {
    fn fmt(&self, out: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = format!("{:.2} ({:.2}-{:.2})", self.median, self.low, self.high);
        out.pad(&text)
    }
}

/// The cell with the median req/s.
fn median(mut cells: Vec<Cell>) -> Cell {
    cells.sort_by(|a, b| a.report.rps().total_cmp(&b.report.rps()));
    let middle = cells.len() / 2;
    cells.swap_remove(middle)
}

/// One measured cell: the load report plus the server process's CPU and peak RSS.
struct Cell {
    report: Report,
    cpu_us_per_req: f64,
    rss_mb: f64,
}

/// Runs `load` (after a 0.5 s warm-up) with `pid`'s CPU counted over the measured part.
async fn cell<F, Fut>(pid: u32, load: Load, call: F) -> Cell
where
    F: Fn(usize) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Code> + Send,
{
    let warm_up = Load {
        stop: Stop::After(Duration::from_millis(500)),
        ..load
    };
    load::run(warm_up, call.clone()).await;
    let before = servers::cpu_us(pid);
    let report = load::run(load, call).await;
    let cpu = servers::cpu_us(pid) - before;
    Cell {
        cpu_us_per_req: cpu / (report.latencies.len() as f64).max(1.0),
        rss_mb: servers::peak_rss_mb(pid),
        report,
    }
}

/// The same over gRPC: 4 HTTP/2 connections (fewer below concurrency 4).
async fn grpc_cell(server: &Server, rpc: &Rpc, load: Load) -> Cell {
    let channels = load::connect(server.addr, load.concurrency.clamp(1, 4))
        .await
        .expect("connect");
    cell(server.pid(), load, load::caller(rpc, channels)).await
}

/// The same as a direct SDK call in this process.
async fn sdk_cell(client: &aws_sdk_cloudtrail::Client, rpc: &str, load: Load) -> Cell {
    let (client, status) = (client.clone(), rpc == "GetTrailStatus");
    cell(std::process::id(), load, move |_| {
        let client = client.clone();
        async move {
            let ok = if status {
                client.get_trail_status().name(TRAIL).send().await.is_ok()
            } else {
                client.describe_trails().send().await.is_ok()
            };
            if ok { Code::Ok } else { Code::Internal }
        }
    })
    .await
}

fn row(target: &str, rpc: &str, concurrency: usize, c: &Cell) {
    println!(
        "{target:<9} {rpc:<15} {concurrency:>4} {:>9.0} {:>8} {:>8} {:>10.1} {:>7.1} {:>6}",
        c.report.rps(),
        c.report.quantile(0.5),
        c.report.quantile(0.99),
        c.cpu_us_per_req,
        c.rss_mb,
        c.report.errors()
    );
}

fn closed(concurrency: usize) -> Load {
    Load {
        concurrency,
        pace: Pace::Closed,
        stop: Stop::After(Duration::from_secs_f64(seconds())),
    }
}

struct Targets {
    echo: Server,
    proxy: Server,
    proxy_mi: Server,
    gateway: Server,
    sdk: aws_sdk_cloudtrail::Client,
}

async fn start() -> (Targets, Duration) {
    let echo = servers::reference_server("echo", false, &[]);
    let proxy = servers::reference_server("proxy", false, &[]);
    let proxy_mi = servers::reference_server("proxy", true, &[]);
    let (gateway, to_serving) = servers::gateway_server(&[]).await;
    // The trail GetTrailStatus asks about (the proxies create their own).
    let channel = load::connect(gateway.addr, 1).await.expect("connect");
    let mut create = tonic::Request::new(pb::CreateTrailRequest {
        name: TRAIL.into(),
        s3_bucket_name: "bench-bucket".into(),
        ..Default::default()
    });
    create.metadata_mut().insert(
        "authorization",
        format!("Bearer {TOKEN}").parse().expect("header"),
    );
    CloudTrailServiceClient::new(channel[0].clone())
        .create_trail(create)
        .await
        .expect("create the bench trail");
    let local = LocalCloudTrail::new(local::Options {
        quotas: RAISED,
        event_capacity: EVENT_CAPACITY,
        ..Default::default()
    });
    let sdk = upstream::local_client(&Config::default().upstream, &local);
    sdk.create_trail()
        .name(TRAIL)
        .s3_bucket_name("bench-bucket")
        .send()
        .await
        .expect("create trail");
    let targets = Targets {
        echo,
        proxy,
        proxy_mi,
        gateway,
        sdk,
    };
    (targets, to_serving)
}

fn rpcs() -> [(&'static str, Rpc); 2] {
    let status = format!(r#"{{"name":"{TRAIL}"}}"#);
    [
        (
            "DescribeTrails",
            Rpc::new("DescribeTrails", "{}", Some(TOKEN)),
        ),
        (
            "GetTrailStatus",
            Rpc::new("GetTrailStatus", &status, Some(TOKEN)),
        ),
    ]
    .map(|(name, rpc)| (name, rpc.expect("rpc")))
}

/// req/s, latency, CPU and memory at concurrency 1, 16, 64; then the ratios.
async fn throughput(t: &Targets) -> f64 {
    println!(
        "{:<9} {:<15} {:>4} {:>9} {:>8} {:>8} {:>10} {:>7} {:>6}",
        "target", "rpc", "conc", "req/s", "p50 µs", "p99 µs", "CPU µs/req", "RSS MB", "errors"
    );
    let health = Rpc::new("grpc.health.v1.Health/Check", "{}", None).expect("health");
    let mut ratios = Vec::new();
    let mut inside = Vec::new();
    let mut proxy_mi_capacity = 0.0;
    for (name, rpc) in rpcs() {
        for c in [1, 16, 64] {
            // Each round runs every target once: the three yardsticks in turn (starting one later
            // each round), then proxy-mi and the gateway back to back, in alternating order, so
            // their ratio is taken within one pair of neighbouring cells.
            let mut cells: [Vec<Cell>; 5] = Default::default();
            for round in 0..rounds() {
                let others = [0, 1, 3];
                let pair = if round % 2 == 0 { [2, 4] } else { [4, 2] };
                let order = (0..3).map(|k| others[(k + round) % 3]).chain(pair);
                for target in order {
                    let cell = match target {
                        0 => grpc_cell(&t.echo, &health, closed(c)).await,
                        1 => grpc_cell(&t.proxy, &rpc, closed(c)).await,
                        2 => grpc_cell(&t.proxy_mi, &rpc, closed(c)).await,
                        3 => sdk_cell(&t.sdk, name, closed(c)).await,
                        _ => {
                            let before = t.gateway.metrics.map(servers::scrape).unwrap_or_default();
                            let cell = grpc_cell(&t.gateway, &rpc, closed(c)).await;
                            let after = t.gateway.metrics.map(servers::scrape).unwrap_or_default();
                            inside.push((name, c, servers::mean_us(&before, &after, name)));
                            cell
                        }
                    };
                    cells[target].push(cell);
                }
            }
            ratios.push([
                Spread::paired(&cells[4], &cells[2], |c| c.report.rps()),
                Spread::paired(&cells[4], &cells[1], |c| c.report.rps()),
                Spread::paired(&cells[4], &cells[0], |c| c.report.rps()),
                Spread::paired(&cells[4], &cells[2], |c| c.cpu_us_per_req),
                Spread::paired(&cells[4], &cells[1], |c| c.cpu_us_per_req),
                Spread::paired(&cells[4], &cells[2], |c| c.rss_mb),
            ]);
            let [e, p, m, s, g] = cells.map(median);
            row("echo", "Health/Check", c, &e);
            row("proxy", name, c, &p);
            row("proxy-mi", name, c, &m);
            row("sdk", name, c, &s);
            row("gateway", name, c, &g);
            if name == "DescribeTrails" && c == 64 {
                proxy_mi_capacity = m.report.rps();
            }
        }
    }
    println!();
    println!(
        "gateway ÷ each, per round (the two cells of a round back to back): median (lowest-highest) of {} rounds",
        rounds()
    );
    println!(
        "{:<15} {:>4}   {:>17} {:>17} {:>17} {:>17} {:>17} {:>17}",
        "gateway ÷",
        "conc",
        "proxy-mi r/s",
        "proxy r/s",
        "echo r/s",
        "proxy-mi CPU",
        "proxy CPU",
        "proxy-mi RSS"
    );
    let cells = rpcs()
        .map(|(name, _)| name)
        .into_iter()
        .flat_map(|name| [1, 16, 64].map(|c| (name, c)));
    for ((name, c), r) in cells.zip(ratios) {
        println!(
            "{name:<15} {c:>4}   {:>17} {:>17} {:>17} {:>17} {:>17} {:>17}",
            r[0], r[1], r[2], r[3], r[4], r[5]
        );
    }
    println!();
    println!("inside the gateway (its own histograms, mean over the rounds): µs per call");
    println!(
        "{:<15} {:>4} {:>12} {:>12} {:>14}",
        "rpc", "conc", "in server", "in SDK call", "gateway's own"
    );
    for (name, c) in rpcs()
        .map(|(name, _)| name)
        .into_iter()
        .flat_map(|name| [1, 16, 64].map(|c| (name, c)))
    {
        let cells: Vec<_> = inside
            .iter()
            .filter(|(n, k, _)| *n == name && *k == c)
            .map(|(_, _, means)| *means)
            .collect();
        let n = cells.len().max(1) as f64;
        let handling = cells.iter().map(|m| m.0).sum::<f64>() / n;
        let upstream = cells.iter().map(|m| m.1).sum::<f64>() / n;
        println!(
            "{name:<15} {c:>4} {handling:>12.0} {upstream:>12.0} {:>14.0}",
            handling - upstream
        );
    }
    proxy_mi_capacity
}

/// The gateway's added latency: every target offered the same fixed rate (a quarter of the mimalloc
/// proxy's capacity, at most 64 in flight), so queueing is light and alike and the differences are
/// cost. Median of the rounds by p50.
async fn added_latency(t: &Targets, capacity: f64) {
    let rate = (capacity / 4.0).max(100.0);
    let open = Load {
        concurrency: 64,
        pace: Pace::Rate(rate),
        stop: Stop::After(Duration::from_secs_f64(seconds())),
    };
    println!();
    println!(
        "open loop, {rate:.0} req/s offered (a quarter of the proxy-mi capacity), at most 64 in flight; latency µs"
    );
    println!(
        "{:<15} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>11} {:>11}",
        "rpc",
        "sdk p50",
        "sdk p99",
        "proxy p50",
        "proxy p99",
        "gw p50",
        "gw p99",
        "gw-sdk p50",
        "gw-sdk p99"
    );
    let mut inside = Vec::new();
    for (name, rpc) in rpcs() {
        let before = t.gateway.metrics.map(servers::scrape).unwrap_or_default();
        let mut reports: [Vec<Report>; 3] = Default::default();
        for round in 0..rounds() {
            for k in 0..reports.len() {
                let target = (k + round) % reports.len();
                let report = match target {
                    0 => sdk_cell(&t.sdk, name, open).await.report,
                    1 => grpc_cell(&t.proxy_mi, &rpc, open).await.report,
                    _ => grpc_cell(&t.gateway, &rpc, open).await.report,
                };
                reports[target].push(report);
            }
        }
        let after = t.gateway.metrics.map(servers::scrape).unwrap_or_default();
        inside.push((name, servers::mean_us(&before, &after, name)));
        let [s, p, g] = reports.map(|mut r| {
            r.sort_by_key(|r| r.quantile(0.5));
            let middle = r.len() / 2;
            r.swap_remove(middle)
        });
        let q = |r: &Report, x| r.quantile(x) as i64;
        println!(
            "{name:<15} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>11} {:>11}",
            q(&s, 0.5),
            q(&s, 0.99),
            q(&p, 0.5),
            q(&p, 0.99),
            q(&g, 0.5),
            q(&g, 0.99),
            q(&g, 0.5) - q(&s, 0.5),
            q(&g, 0.99) - q(&s, 0.99)
        );
        println!(
            "{:<15} of which the gRPC hop (proxy-mi - sdk): p50 {} p99 {}; the gateway's own (gw - proxy-mi): p50 {} p99 {}",
            "",
            q(&p, 0.5) - q(&s, 0.5),
            q(&p, 0.99) - q(&s, 0.99),
            q(&g, 0.5) - q(&p, 0.5),
            q(&g, 0.99) - q(&p, 0.99)
        );
        for (target, r) in [("sdk", &s), ("proxy-mi", &p), ("gateway", &g)] {
            if r.errors() > 0 || r.delayed > 0 {
                println!(
                    "  {target}: {} errors, {} calls waited for a slot",
                    r.errors(),
                    r.delayed
                );
            }
        }
    }
    // The same from inside the gateway: its own histograms, whole call versus the SDK call alone.
    for (name, (handling, upstream)) in inside {
        println!(
            "inside the gateway, {name}: {handling:.0} µs per call in the server (mean), {upstream:.0} µs of it in the SDK call; the gateway's own: {:.0} µs",
            handling - upstream
        );
    }
}

/// One figure again with h2load (if installed): DescribeTrails on the gateway at 4 connections × 16
/// streams, next to this generator's figure at concurrency 64. h2load cannot read grpc-status, so
/// errors are counted from the gateway's own metrics.
async fn cross_check(t: &Targets) {
    println!();
    let Ok(probe) = Command::new("h2load").arg("--version").output() else {
        println!(
            "h2load cross-check skipped: h2load not installed (Debian package nghttp2-client)"
        );
        return;
    };
    let version = String::from_utf8_lossy(&probe.stdout).trim().to_owned();
    let [(_, rpc), _] = rpcs();
    let body = std::env::temp_dir().join(format!("ctgw-bench-{}.bin", std::process::id()));
    std::fs::write(&body, rpc.framed()).expect("request body");
    let Some(metrics) = t.gateway.metrics else {
        return;
    };
    // Calls answered, by status code, from the gateway's grpc_server_handled_total.
    // Calls answered, by status code, from the gateway's grpc_server_handled_total.
    let handled = |text: &str| -> BTreeMap<String, f64> {
        let mut codes = BTreeMap::new();
        let method = r#"grpc_method="DescribeTrails""#;
        for (labels, n) in servers::samples(text, "grpc_server_handled_total", method) {
            let code = labels
                .split("grpc_code=\"")
                .nth(1)
                .and_then(|rest| rest.split('"').next())
                .unwrap_or("?");
            *codes.entry(code.to_owned()).or_default() += n;
        }
        codes
    };
    let before = servers::scrape(metrics);
    let duration = format!("{}", seconds().ceil().max(1.0) as u64);
    let output = Command::new("h2load")
        .args(["-c", "4", "-m", "16", "-t", "1", "-D", &duration])
        .args(["-H", "content-type: application/grpc", "-H", "te: trailers"])
        .args([
            "-H",
            &format!("authorization: {}", rpc.authorization().unwrap_or("")),
        ])
        .arg("-d")
        .arg(&body)
        .arg(format!("http://{}{}", t.gateway.addr, rpc.path()))
        .output();
    let _ = std::fs::remove_file(&body);
    let after = servers::scrape(metrics);
    let Ok(output) = output else {
        println!("h2load failed to run");
        return;
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    let summary = stdout
        .lines()
        .find(|l| l.starts_with("finished in"))
        .unwrap_or("no summary");
    let requests = stdout
        .lines()
        .find(|l| l.starts_with("requests:"))
        .unwrap_or("");
    let ours = grpc_cell(&t.gateway, &rpc, closed(64)).await;
    println!("h2load cross-check ({version}): gateway DescribeTrails, 4 connections x 16 streams");
    println!("  h2load:         {summary}");
    println!("                  {requests}");
    let (before, after) = (handled(&before), handled(&after));
    let answered: Vec<String> = after
        .iter()
        .map(|(code, n)| (code, n - before.get(code).unwrap_or(&0.0)))
        .filter(|(_, n)| *n > 0.0)
        .map(|(code, n)| format!("{code} {n}"))
        .collect();
    println!(
        "  server side:    answered {} (grpc_server_handled_total; the calls h2load cuts off when it stops end Canceled or Unknown)",
        answered.join(", ")
    );
    println!(
        "  this generator: {:.0} req/s, {} errors (concurrency 64 over 4 connections)",
        ours.report.rps(),
        ours.report.errors()
    );
}

async fn measure() {
    println!(
        "{} s per cell, median of {} rounds; server CPU from /proc (utime+stime); RSS = peak (VmHWM) of the server process",
        seconds(),
        rounds()
    );
    let (targets, to_serving) = start().await;
    let capacity = throughput(&targets).await;
    added_latency(&targets, capacity).await;
    cross_check(&targets).await;
    println!();
    println!(
        "gateway: process start to SERVING {:.0} ms",
        to_serving.as_secs_f64() * 1000.0
    );
    drop(targets);
    println!();
    accounts::accounts().await;
    reconcile::reconcile().await;
    streams::streams().await;
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    match args.get(1).map(String::as_str) {
        Some("serve") => {
            runtime.block_on(servers::serve(args.get(2).map_or("echo", String::as_str)))
        }
        Some("load") => {
            if let Err(e) = runtime.block_on(load::cli(&args[2..])) {
                eprintln!("load: {e}");
                std::process::exit(2);
            }
        }
        Some("accounts") => runtime.block_on(accounts::accounts()),
        Some("throughput") => runtime.block_on(async {
            let (targets, _) = start().await;
            throughput(&targets).await;
        }),
        Some("reconcile") => runtime.block_on(reconcile::reconcile()),
        Some("streams") => runtime.block_on(streams::streams()),
        Some("store") => runtime.block_on(store::store()),
        Some("profile") => runtime.block_on(profile::profile(
            args.get(2).and_then(|n| n.parse().ok()).unwrap_or(25),
        )),
        // `cargo bench` passes `--bench`; anything else measures.
        _ => runtime.block_on(measure()),
    }
}
