//! The reconcile scenario (`tests/common/reconcile.rs`) at CloudTrail's own quotas, in process on
//! the embedded CloudTrail (AWS's quotas enforced): the upstream calls each step costs, per ApplyTrail
//! and per poll of all 20 trails, how long it took, and whether CloudTrail throttled anything.

#[path = "../../tests/common/reconcile.rs"]
#[allow(dead_code)] // the test uses more of it
mod scenario;

use std::time::{Duration, Instant};

use cloudtrail_gateway::{
    config::Config,
    local::{self, Fault, LocalCloudTrail},
    server,
};
use scenario::{Client, TRAILS};

/// Long enough for a poll of all 20 at the read quota to find the previous poll's answers.
const READ_CACHE_TTL: &str = "30s";

async fn start(local: LocalCloudTrail) -> Client {
    let config = Config::from_args_of([
        "cloudtrail-gateway",
        "--config",
        scenario::EXAMPLE,
        "--read-cache-ttl",
        READ_CACHE_TTL,
        "--store",
        "false",
    ])
    .expect("the example configuration");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(server::serve_with(
        listener,
        config,
        local,
        std::future::pending(),
    ));
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .expect("endpoint")
        .connect_lazy();
    Client::new(channel)
}

fn row(
    step: &str,
    local: &LocalCloudTrail,
    before: (usize, usize),
    took: Duration,
    per: &str,
    n: usize,
) {
    let (writes, all) = scenario::served(local);
    let (writes, all) = (writes - before.0, all - before.1);
    println!(
        "{step:<44} {all:>6} {writes:>7} {:>10.1} {:>9.1} {:>8.1}   {per}",
        all as f64 / n as f64,
        writes as f64 / n as f64,
        took.as_secs_f64()
    );
}

pub async fn reconcile() {
    println!(
        "reconcile: 20 trails over 2 accounts x 2 Regions, at CloudTrail's quotas (gateway 10 reads/s, 1 write/s per account and Region)"
    );
    let local = LocalCloudTrail::new(local::Options {
        event_capacity: crate::servers::EVENT_CAPACITY,
        ..Default::default()
    });
    let c = start(local.clone()).await;
    println!(
        "{:<44} {:>6} {:>7} {:>10} {:>9} {:>8}",
        "step", "calls", "writes", "calls/each", "writes/ea", "seconds"
    );
    for (operation, count, code) in [
        ("CreateTrail", 3, "InsufficientS3BucketPolicyException"),
        ("PutEventSelectors", 2, "ConflictException"),
    ] {
        local.inject(Some(operation), count, Fault::error(code));
    }
    let before = scenario::served(&local);
    let started = Instant::now();
    let first = scenario::apply_by_target(&c).await;
    let failed = first.as_ref().map_or(TRAILS, |_| 0);
    row(
        &format!(
            "ApplyTrail from scratch ({} propagation faults)",
            local.faults_happened()
        ),
        &local,
        before,
        started.elapsed(),
        "per ApplyTrail",
        TRAILS,
    );
    let before = scenario::served(&local);
    let started = Instant::now();
    let again = scenario::apply_by_target(&c).await;
    let changed = again
        .as_ref()
        .map_or(0, |a| a.iter().filter(|r| !r.changes.is_empty()).count());
    row(
        "ApplyTrail again (nothing to do)",
        &local,
        before,
        started.elapsed(),
        "per ApplyTrail",
        TRAILS,
    );
    let mut plain = c.clone();
    let drifted = scenario::drift(&mut plain).await.map_or(0, |d| d.len());
    let before = scenario::served(&local);
    let started = Instant::now();
    let repaired = scenario::apply_by_target(&c).await;
    let changes: usize = repaired
        .as_ref()
        .map_or(0, |a| a.iter().map(|r| r.changes.len()).sum());
    row(
        &format!("ApplyTrail after {drifted} drifts"),
        &local,
        before,
        started.elapsed(),
        "per ApplyTrail",
        TRAILS,
    );
    let again = format!("poll again (--read-cache-ttl {READ_CACHE_TTL})");
    for poll in ["poll all 20 (GetTrail, status, selectors)", again.as_str()] {
        let before = scenario::served(&local);
        let started = Instant::now();
        let mut poller = c.clone();
        if let Err(e) = scenario::poll_all(&mut poller).await {
            println!("poll failed: {e}");
        }
        row(poll, &local, before, started.elapsed(), "per trail", TRAILS);
    }
    println!(
        "failures {failed}; trails changed by the second apply {changed}; changes listed after the drift {changes}; throttled by CloudTrail {}",
        local.throttled()
    );
    println!();
}
