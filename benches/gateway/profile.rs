//! `profile`: the proxies and the gateway each under callgrind for the same number of DescribeTrails
//! calls. Instructions per call are deterministic where wall-clock figures on a shared 2-core machine
//! vary by ±5%, so they show what a change to the gateway's own code is worth. Prints instructions
//! per call per server, then the gateway's costliest entries of its own code (inclusive), then where
//! its instructions differ from the minimal proxy's (proxy-mi, the same allocator): the functions
//! whose own (exclusive) instructions per call differ most, either way.

use std::{process::Command, time::Duration};

use crate::{
    load::{self, Load, Pace, Rpc, Stop},
    servers::{self, Server, TOKEN},
};

const WARM_UP: u64 = 500;
const CALLS: u64 = 3000;

async fn drive(server: &Server, rpc: &Rpc, count: u64) -> load::Report {
    let channels = load::connect(server.addr, 4).await.expect("connect");
    let load = Load {
        concurrency: 16,
        pace: Pace::Closed,
        stop: Stop::Count(count),
    };
    load::run(load, load::caller(rpc, channels)).await
}

/// callgrind_annotate's inclusive listing of a profile.
fn annotate_inclusive(file: &std::path::Path) -> String {
    let output = Command::new("callgrind_annotate")
        .arg("--inclusive=yes")
        .arg(file)
        .output();
    output
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

/// A function's name as both binaries spell it: without the legacy mangling's `::h<hash>`.
fn function_name(name: &str) -> String {
    match name.rfind("::h") {
        Some(at) if name[at + 3..].chars().all(|c| c.is_ascii_hexdigit()) => name[..at].to_owned(),
        _ => name.to_owned(),
    }
}

/// Exclusive instructions per function, read from the callgrind file itself (callgrind_annotate
/// 3.19 puts a server's whole exclusive cost on its thread's entry function). The format: `fn=(id)
/// name` starts a function (later `fn=(id)` alone), `cfn=` names a callee, and the cost line after
/// `calls=` is the call's inclusive cost, not the function's own; a cost line is `position Ir`.
fn self_costs(file: &std::path::Path) -> std::collections::HashMap<String, f64> {
    let mut names: std::collections::HashMap<String, String> = Default::default();
    let mut costs = std::collections::HashMap::new();
    let text = std::fs::read_to_string(file).unwrap_or_default();
    let (mut current, mut call_cost) = (None::<String>, false);
    let mut name_of = |spec: &str| -> String {
        let (id, name) = spec.split_once(' ').unwrap_or((spec, ""));
        if !name.is_empty() {
            names.insert(id.to_owned(), function_name(name));
        }
        names.get(id).cloned().unwrap_or_else(|| id.to_owned())
    };
    for line in text.lines() {
        if let Some(spec) = line.strip_prefix("fn=") {
            current = Some(name_of(spec));
        } else if let Some(spec) = line.strip_prefix("cfn=") {
            name_of(spec);
        } else if line.starts_with("calls=") {
            call_cost = true;
        } else if line.starts_with(|c: char| c.is_ascii_digit() || "+-*".contains(c)) {
            let ir = line
                .split_whitespace()
                .nth(1)
                .and_then(|n| n.parse::<f64>().ok());
            if !std::mem::take(&mut call_cost)
                && let (Some(function), Some(ir)) = (&current, ir)
            {
                *costs.entry(function.clone()).or_default() += ir;
            }
        }
    }
    costs
}

fn instructions(line: &str) -> Option<f64> {
    line.split_whitespace()
        .next()?
        .replace(',', "")
        .parse()
        .ok()
}

/// `PROFILE_CACHES=1`: callgrind also simulates the caches and the branch predictor (slower), and
/// each server's misses per call are printed: instructions alike can still cost unlike time.
fn simulate_caches() -> bool {
    std::env::var_os("PROFILE_CACHES").is_some()
}

/// A profile's totals since the counters were zeroed, by event (`Ir`, and with the caches
/// simulated `I1mr`, `D1mr`, ...): its `events:` and `summary:` lines.
fn totals(file: &std::path::Path) -> Vec<(String, f64)> {
    let text = std::fs::read_to_string(file).unwrap_or_default();
    let field = |key: &str| -> Vec<String> {
        text.lines()
            .find_map(|l| l.strip_prefix(key))
            .map(|v| v.split_whitespace().map(str::to_owned).collect())
            .unwrap_or_default()
    };
    field("events:")
        .into_iter()
        .zip(field("summary:"))
        .map(|(event, n)| (event, n.parse().unwrap_or(0.0)))
        .collect()
}

pub async fn profile(top: usize) {
    if Command::new("valgrind").arg("--version").output().is_err() {
        println!("profile: valgrind is not installed (Debian package valgrind)");
        return;
    }
    let dir = std::env::temp_dir().join(format!("ctgw-profile-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let rpc = Rpc::new("DescribeTrails", "{}", Some(TOKEN)).expect("rpc");
    println!("callgrind, DescribeTrails, concurrency 16: {CALLS} calls counted after {WARM_UP}");
    let mut gateway_profile = None;
    let mut proxy_mi_profile = None;
    for target in ["proxy", "proxy-mi", "gateway"] {
        let file = dir.join(format!("callgrind.{target}.out"));
        let mut wrapper = vec![
            "valgrind".to_owned(),
            "-q".to_owned(),
            "--tool=callgrind".to_owned(),
            format!("--callgrind-out-file={}", file.display()),
        ];
        if simulate_caches() {
            wrapper.extend(["--cache-sim=yes".to_owned(), "--branch-sim=yes".to_owned()]);
        }
        let server = match target {
            "gateway" => servers::gateway_server(&wrapper).await.0,
            other => servers::reference_server("proxy", other == "proxy-mi", &wrapper),
        };
        // A reference server prints its port before it serves; under valgrind that gap is long.
        tokio::time::sleep(Duration::from_secs(2)).await;
        drive(&server, &rpc, WARM_UP).await;
        let _ = Command::new("callgrind_control")
            .args(["-z", &server.pid().to_string()])
            .output();
        let report = drive(&server, &rpc, CALLS).await;
        server.terminate();
        let totals = totals(&file);
        let total = totals
            .iter()
            .find(|(event, _)| event == "Ir")
            .map_or(0.0, |(_, n)| *n);
        println!(
            "{target:<9} {:>9.0} instructions per call   ({} errors)",
            total / CALLS as f64,
            report.errors()
        );
        if simulate_caches() {
            let misses: Vec<String> = totals
                .iter()
                .filter(|(event, _)| event != "Ir")
                .map(|(event, n)| format!("{event} {:.0}", n / CALLS as f64))
                .collect();
            println!("          {}", misses.join("  "));
        }
        match target {
            "gateway" => gateway_profile = Some((file, total)),
            "proxy-mi" => proxy_mi_profile = Some(file),
            _ => {}
        }
    }
    let Some((file, total)) = gateway_profile else {
        return;
    };
    println!();
    println!(
        "gateway, this crate's functions (the embedded CloudTrail's are shared with the proxies), inclusive instructions per call (share of all):"
    );
    let inclusive = annotate_inclusive(&file);
    for line in inclusive
        .lines()
        .filter(|l| l.contains("cloudtrail_gateway::") && !l.contains("'2"))
        .take(top)
    {
        let Some(n) = instructions(line) else {
            continue;
        };
        let name = line
            .split("???:")
            .nth(1)
            .unwrap_or(line)
            .split(" [")
            .next()
            .unwrap_or("");
        println!(
            "{:>9.0} {:>5.1}%  {name}",
            n / CALLS as f64,
            100.0 * n / total.max(1.0)
        );
    }
    if let Some(proxy_mi) = proxy_mi_profile {
        println!();
        println!(
            "gateway - proxy-mi, exclusive instructions per call by function (the {top} largest differences each way):"
        );
        let (ours, theirs) = (self_costs(&file), self_costs(&proxy_mi));
        let mut names: Vec<&String> = ours.keys().chain(theirs.keys()).collect();
        names.sort();
        names.dedup();
        let mut differences: Vec<(f64, &String)> = names
            .into_iter()
            .map(|name| {
                let of = |m: &std::collections::HashMap<String, f64>| {
                    m.get(name).copied().unwrap_or(0.0)
                };
                ((of(&ours) - of(&theirs)) / CALLS as f64, name)
            })
            .collect();
        differences.sort_by(|a, b| b.0.total_cmp(&a.0));
        let sum: f64 = differences.iter().map(|(d, _)| d).sum();
        let more = differences.iter().take(top);
        let fewer = differences.iter().rev().take(top).filter(|(d, _)| *d < 0.0);
        for (difference, name) in more.chain(fewer) {
            println!("{difference:>+9.0}  {name}");
        }
        println!("{sum:>+9.0}  in all");
    }
    // PROFILE_KEEP=1 keeps the profiles for callgrind_annotate.
    if std::env::var_os("PROFILE_KEEP").is_some() {
        println!("profiles kept in {}", dir.display());
    } else {
        let _ = std::fs::remove_dir_all(&dir);
    }
}
