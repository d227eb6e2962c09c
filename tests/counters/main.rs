//! End-to-end tests that count on the process's metric counters while a gateway serves in this
//! process (its `LocalCloudTrail` at hand, to inject faults): the attacks of the reviews counted
//! where they are refused, faults retried and counted, the control plane's propagation retries. The
//! `metrics` facade has one recorder per process, so these live in a binary of their own and run one
//! at a time (`alone`); the other end-to-end tests are in `tests/gateway/` (its `metrics` module
//! runs the binary as a process, whose counters start at zero).

#[path = "../common/mod.rs"]
mod common;

mod control;
mod faults;
mod hardening;

use tokio::sync::{Mutex, MutexGuard};

static ALONE: Mutex<()> = Mutex::const_new(());

/// Held for a whole test: no other test of this binary moves a counter meanwhile.
pub async fn alone() -> MutexGuard<'static, ()> {
    ALONE.lock().await
}

/// Every test here takes `alone` first; one that did not could move another's counters.
#[test]
fn every_test_here_runs_alone() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/counters");
    for entry in std::fs::read_dir(dir).expect("tests/counters") {
        let path = entry.expect("entry").path();
        if path.file_name().is_some_and(|n| n == "main.rs") {
            continue;
        }
        let module = path.display();
        let source = std::fs::read_to_string(&path).expect("source");
        let tests = source.matches("#[tokio::test").count() + source.matches("#[test]").count();
        let alone = source.matches("let _alone = crate::alone().await;").count();
        assert!(tests > 0, "{module}");
        assert_eq!(tests, alone, "{module}: a test that does not run alone");
    }
}
