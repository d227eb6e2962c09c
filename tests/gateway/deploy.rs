//! The shipped Kubernetes manifests agree with the gateway and with each other: the configuration
//! uses only keys the gateway knows, `expected_replicas` is the HPA's maximum (so that in Redis
//! fallback the replicas together stay under the quota), and the grace period covers the preStop
//! delay and the drain.

use std::path::Path;

fn manifest(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("deploy/kubernetes")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The number after `key` (`key: 10` in YAML, `key = 10` in TOML).
fn number_after(text: &str, key: &str) -> u64 {
    text.lines()
        .map(str::trim)
        .find_map(|l| {
            let rest = l.strip_prefix(key)?.trim_start();
            let rest = rest.strip_prefix([':', '=']).unwrap_or(rest).trim();
            rest.trim_matches('"').trim_end_matches('s').parse().ok()
        })
        .unwrap_or_else(|| panic!("no {key} in\n{text}"))
}

/// The gateway.toml embedded in the ConfigMap.
fn gateway_toml() -> String {
    let configmap = manifest("configmap.yaml");
    let start = configmap.find("gateway.toml: |").expect("gateway.toml") + "gateway.toml: |".len();
    configmap[start..]
        .lines()
        .map(|l| l.strip_prefix("    ").unwrap_or(l))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn the_configmap_uses_only_known_keys() {
    let document: toml::Table = toml::from_str(&gateway_toml()).expect("gateway.toml is TOML");
    let known = cloudtrail_gateway::config::file_keys();
    for key in document.keys() {
        assert!(known.contains(key), "unknown key `{key}` in configmap.yaml");
    }
}

#[test]
fn expected_replicas_is_the_hpa_maximum() {
    let max_replicas = number_after(&manifest("hpa.yaml"), "maxReplicas");
    let expected = number_after(&gateway_toml(), "expected_replicas");
    assert_eq!(
        expected, max_replicas,
        "expected_replicas must be the HPA's maxReplicas: in Redis fallback each replica takes quota / expected_replicas"
    );
}

#[test]
fn the_grace_period_covers_pre_stop_and_drain() {
    let deployment = manifest("deployment.yaml");
    let grace = number_after(&deployment, "terminationGracePeriodSeconds");
    let pre_stop = number_after(&deployment, "seconds");
    let drain = number_after(&gateway_toml(), "drain_timeout");
    assert!(
        grace > pre_stop + drain,
        "grace {grace}s ≤ preStop {pre_stop}s + drain {drain}s"
    );
}
