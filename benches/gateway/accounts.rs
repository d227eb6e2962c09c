//! Accounts and callers (issue 14), measured on the release binary over the embedded CloudTrail
//! (its quotas at 1e9):
//!
//! - the limiter's own ceiling: DescribeTrails at concurrency 16 with `--read-rate` 5000, 100 000
//!   and 1e9 (a rate far above what the gateway can do must cost nothing: 100 000 ÷ 1e9 ≥ 0.95);
//! - what calling as the caller costs: the same DescribeTrails with one account configured and
//!   caller identity on (a role session per principal, cached), off (one session for the gateway),
//!   and without accounts (the embedded CloudTrail's per-principal keys);
//! - how many STS calls 10 000 calls from 50 principals make.
//!
//! Run: `cargo bench --bench gateway -- accounts` (also part of the full run).

use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

use tonic::Code;

use crate::{
    Cell, Spread, closed, grpc_cell, load,
    load::Rpc,
    median, rounds,
    servers::{self, Server, TOKEN},
};

/// One account on the embedded CloudTrail (its role is created there), one Region.
const ACCOUNT: &str = r#"
[[accounts]]
id = "111111111111"
role_arn = "arn:aws:iam::111111111111:role/cloudtrail-gateway"
regions = ["us-east-1"]
"#;

fn describe() -> Rpc {
    Rpc::new("DescribeTrails", "{}", Some(TOKEN)).expect("rpc")
}

/// `rounds()` cells of DescribeTrails at concurrency 16 on each server, per server in round order:
/// each round runs every server once, the order turning by one each round (with two servers, A B,
/// then B A: each round is a pair of neighbouring cells).
async fn interleaved(servers: &[&Server]) -> Vec<Vec<Cell>> {
    let rpc = describe();
    let mut cells: Vec<Vec<Cell>> = servers.iter().map(|_| Vec::new()).collect();
    for round in 0..rounds() {
        for k in 0..servers.len() {
            let target = (k + round) % servers.len();
            cells[target].push(grpc_cell(servers[target], &rpc, closed(16)).await);
        }
    }
    cells
}

async fn limiter_ceiling() {
    println!("the limiter's own cost: DescribeTrails, concurrency 16, embedded quotas 1e9");
    let rates = ["5000", "100000", "1e9"];
    let mut servers = Vec::new();
    for rate in rates {
        servers.push(
            servers::gateway_with(&[], "", &[("--read-rate", rate)])
                .await
                .0,
        );
    }
    // The slow rate alone, then the two the ratio compares as pairs.
    let slow = interleaved(&[&servers[0]]).await;
    let pairs = interleaved(&[&servers[1], &servers[2]]).await;
    let paired = (
        Spread::paired(&pairs[0], &pairs[1], |c| c.report.rps()),
        Spread::paired(&pairs[0], &pairs[1], |c| c.cpu_us_per_req),
    );
    let cells: Vec<Cell> = slow.into_iter().chain(pairs).map(median).collect();
    println!(
        "{:<12} {:>9} {:>8} {:>8} {:>10} {:>6}",
        "--read-rate", "req/s", "p50 µs", "p99 µs", "CPU µs/req", "errors"
    );
    for (rate, cell) in rates.iter().zip(&cells) {
        println!(
            "{rate:<12} {:>9.0} {:>8} {:>8} {:>10.1} {:>6}",
            cell.report.rps(),
            cell.report.quantile(0.5),
            cell.report.quantile(0.99),
            cell.cpu_us_per_req,
            cell.report.errors()
        );
    }
    println!(
        "100000 ÷ 1e9, per pair of neighbouring cells, median (lowest-highest) of {}: req/s {}, CPU per call {} (target: req/s ≥ 0.97)",
        rounds(),
        paired.0,
        paired.1
    );
    // A finite rate far above the load should never make a call wait: say if one did.
    for (rate, server) in rates.iter().zip(&servers) {
        if let Some(metrics) = server.metrics {
            let waits = servers::sum(
                &servers::scrape(metrics),
                "cloudtrail_gateway_limiter_waits_total",
                "class=\"read\"",
            );
            println!("--read-rate {rate}: {waits} calls waited for a slot");
        }
    }
    println!();
}

async fn caller_identity() {
    println!("calling as the caller: DescribeTrails, concurrency 16, one account, sessions cached");
    let (on, _) = servers::gateway_with(&[], ACCOUNT, &[]).await;
    let (off, _) = servers::gateway_with(&[], ACCOUNT, &[("--caller-identity", "false")]).await;
    let (none, _) = servers::gateway_with(&[], "", &[]).await;
    let cells: Vec<Cell> = interleaved(&[&on, &off, &none])
        .await
        .into_iter()
        .map(median)
        .collect();
    println!(
        "{:<34} {:>9} {:>8} {:>8} {:>10} {:>6}",
        "gateway", "req/s", "p50 µs", "p99 µs", "CPU µs/req", "errors"
    );
    let names = [
        "accounts, caller identity on",
        "accounts, caller identity off",
        "no accounts (per-principal keys)",
    ];
    for (name, c) in names.iter().zip(&cells) {
        println!(
            "{name:<34} {:>9.0} {:>8} {:>8} {:>10.1} {:>6}",
            c.report.rps(),
            c.report.quantile(0.5),
            c.report.quantile(0.99),
            c.cpu_us_per_req,
            c.report.errors()
        );
    }
    if let [on, off, none] = cells.as_slice() {
        println!(
            "caller identity on ÷ off: CPU per call {:.2}, p50 {:.2}, req/s {:.2} (target: cost ≤ 1.10)",
            on.cpu_us_per_req / off.cpu_us_per_req,
            on.report.quantile(0.5) as f64 / off.report.quantile(0.5).max(1) as f64,
            on.report.rps() / off.report.rps()
        );
        println!(
            "caller identity on ÷ no accounts: CPU per call {:.2}, p50 {:.2}, req/s {:.2}",
            on.cpu_us_per_req / none.cpu_us_per_req,
            on.report.quantile(0.5) as f64 / none.report.quantile(0.5).max(1) as f64,
            on.report.rps() / none.report.rps()
        );
    }
    println!();
}

async fn sts_sessions() {
    const PRINCIPALS: usize = 50;
    const CALLS: usize = 10_000;
    let tokens: Vec<String> = (0..PRINCIPALS)
        .map(|i| format!("bench-token-{i}"))
        .collect();
    let mut toml = ACCOUNT.to_owned();
    for (i, token) in tokens.iter().enumerate() {
        toml.push_str(&format!(
            "\n[[tokens]]\nprincipal = \"principal-{i}\"\nsha256 = \"{}\"\nroles = [\"reader\"]\n",
            servers::token_hash(token)
        ));
    }
    let (gateway, _) = servers::gateway_with(&[], &toml, &[]).await;
    let metrics = gateway.metrics.expect("metrics port");
    let assumed = |text: &str| {
        servers::sum(
            text,
            "cloudtrail_gateway_sts_assume_role_total",
            "outcome=\"ok\"",
        )
    };
    let before = assumed(&servers::scrape(metrics));
    let rpcs: Arc<Vec<Rpc>> = Arc::new(
        tokens
            .iter()
            .map(|t| Rpc::new("DescribeTrails", "{}", Some(t)).expect("rpc"))
            .collect(),
    );
    let channels = load::connect(gateway.addr, 4).await.expect("connect");
    let next = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..16)
        .map(|w| {
            let (rpcs, next, failed) = (rpcs.clone(), next.clone(), failed.clone());
            let channel = channels[w % channels.len()].clone();
            tokio::spawn(async move {
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    if n >= CALLS {
                        break;
                    }
                    if rpcs[n % rpcs.len()].call(channel.clone()).await != Code::Ok {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    for worker in workers {
        let _ = worker.await;
    }
    let made = assumed(&servers::scrape(metrics)) - before;
    println!(
        "STS: {CALLS} calls from {PRINCIPALS} principals made {made:.0} AssumeRole calls ({} calls failed)",
        failed.load(Ordering::Relaxed)
    );
    println!();
}

/// Everything above, in one run.
pub async fn accounts() {
    limiter_ceiling().await;
    caller_identity().await;
    sts_sessions().await;
}
