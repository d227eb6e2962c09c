use std::{path::PathBuf, time::Duration};

use super::*;

fn parse(args: &[&str]) -> Result<Config, ConfigError> {
    let mut argv = vec!["cloudtrail-gateway"];
    argv.extend_from_slice(args);
    Config::from_args_of(argv)
}

fn temp_file(name: &str, contents: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ctgw-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join(name);
    std::fs::write(&file, contents).unwrap();
    file
}

fn error_of(args: &[&str]) -> String {
    parse(args).unwrap_err().to_string()
}

#[test]
fn no_arguments_means_local_on_loopback() {
    let c = parse(&[]).unwrap();
    assert_eq!(c.server.listen.to_string(), "127.0.0.1:50051");
    assert_eq!(c.upstream.kind, UpstreamKind::Local);
    assert_eq!(c.upstream.region.as_deref(), Some("us-east-1"));
    assert_eq!(c.server.request_timeout, Duration::from_secs(60));
    assert!(c.print_config.is_none());
}

#[test]
fn the_embedded_deliveries_settings_are_checked() {
    let c = parse(&[
        "--local-delivery-interval",
        "2s",
        "--local-http-listen",
        "127.0.0.1:4566",
        "--local-strict-buckets",
        "true",
    ])
    .unwrap();
    assert_eq!(c.local.options.delivery_interval, Duration::from_secs(2));
    assert_eq!(c.local.options.digest_interval, Duration::from_secs(3600));
    assert!(c.local.options.strict_buckets);
    assert_eq!(c.local.options.s3_capacity, 256 << 20);
    let cases: [(&[&str], &str); 5] = [
        (
            &["--local-http-listen", "0.0.0.0:4566"],
            "not a loopback address",
        ),
        (&["--local-delivery-interval", "100ms"], "at least 1s"),
        (
            &["--local-load-logs-bucket", "Not_A_Bucket"],
            "not an S3 bucket name",
        ),
        (
            &["--upstream", "aws", "--local-s3-dir", "/tmp/x"],
            "only with upstream = local",
        ),
        (
            &["--upstream", "aws", "--local-http-listen", "127.0.0.1:1"],
            "only with upstream = local",
        ),
    ];
    for (args, reason) in cases {
        let err = error_of(args);
        assert!(err.contains(reason), "{args:?}: {err}");
    }
}

#[test]
fn invalid_values_name_their_key() {
    let cases: [(&[&str], &str); 4] = [
        (&["--endpoint-url", "http://x"], "endpoint_url"),
        (
            &["--upstream", "aws", "--endpoint-url", "ftp://x"],
            "endpoint_url",
        ),
        (&["--max-attempts", "0"], "max_attempts"),
        (&["--operation-timeout", "0s"], "operation_timeout"),
    ];
    for (args, key) in cases {
        let err = error_of(args);
        assert!(err.contains(&format!("`{key}`")), "{args:?}: {err}");
    }
}

#[test]
fn authentication_settings_are_checked() {
    let jwks = temp_file("jwks.json", r#"{"keys": []}"#);
    let jwks = jwks.to_str().unwrap();
    let cases: [(&[&str], &str); 7] = [
        (&["--listen", "0.0.0.0:50051"], "insecure_no_auth"),
        (&["--tls-cert", "c.pem"], "tls_key"),
        (&["--tls-client-ca", "ca.pem"], "tls_client_ca"),
        (
            &["--jwks-file", jwks, "--jwks-url", "https://x/jwks"],
            "jwks_url",
        ),
        (&["--jwks-url", "http://idp.example.com/jwks"], "jwks_url"),
        (&["--jwks-file", jwks, "--jwt-audience", "gw"], "jwt_issuer"),
        (&["--jwt-issuer", "https://idp"], "jwks_file"),
    ];
    for (args, key) in cases {
        let err = error_of(args);
        assert!(err.contains(&format!("`{key}`")), "{args:?}: {err}");
    }
    let open = parse(&["--listen", "0.0.0.0:50051", "--insecure-no-auth"]).unwrap();
    assert!(open.auth.insecure_no_auth && !open.auth.is_enabled());
    let jwt = parse(&[
        "--jwks-url",
        "http://127.0.0.1:8080/jwks",
        "--jwt-issuer",
        "i",
        "--jwt-audience",
        "a",
    ])
    .unwrap();
    assert_eq!(jwt.auth.jwt.map(|j| j.principal_claim), Some("sub".into()));
}

#[test]
fn tokens_and_roles_come_from_the_file() {
    let file = temp_file(
        "auth.toml",
        &format!(
            "listen = \"0.0.0.0:50051\"\n[[tokens]]\nprincipal = \"ci\"\nsha256 = \"{}\"\nroles = [\"auditor\"]\n[roles]\nauditor = [\"LookupEvents\"]\n",
            "0".repeat(64)
        ),
    );
    let c = parse(&["--config", file.to_str().unwrap()]).unwrap();
    assert!(
        c.auth.is_enabled(),
        "a token makes a public address acceptable"
    );
    assert_eq!(c.auth.tokens[0].principal, "ci");
    assert_eq!(c.auth.roles["auditor"].rpcs(), ["LookupEvents"]);
}

#[test]
fn flags_override_the_file() {
    let file = temp_file(
        "gateway.toml",
        "listen = \"127.0.0.1:7000\"\nregion = \"eu-west-1\"\nmax_attempts = 5\nlocal_load_logs = [\"a\", \"b\"]\n",
    );
    let file = file.to_str().unwrap();
    let c = parse(&["--config", file, "--region", "ap-south-1"]).unwrap();
    assert_eq!(c.server.listen.port(), 7000);
    assert_eq!(c.upstream.region.as_deref(), Some("ap-south-1"));
    assert_eq!(c.upstream.max_attempts, 5);
    assert_eq!(c.local.load_logs, [PathBuf::from("a"), PathBuf::from("b")]);
    let unknown = temp_file("unknown.toml", "listen_address = \"x\"\n");
    let err = error_of(&["--config", unknown.to_str().unwrap()]);
    assert!(err.contains("listen_address"), "{err}");
}

#[test]
fn what_start_up_refuses_is_refused_by_the_check() {
    let hash = |h: &str| {
        temp_file(
            "hash.toml",
            &format!("[[tokens]]\nprincipal = \"ci\"\nsha256 = \"{h}\"\n"),
        )
    };
    for bad in ["abc", &format!("{}  -", "0".repeat(64))] {
        let err = error_of(&["--config", hash(bad).to_str().unwrap()]);
        assert!(err.contains("`tokens[0].sha256`"), "{bad}: {err}");
    }
    let role = temp_file(
        "role.toml",
        &format!(
            "[[tokens]]\nprincipal = \"ci\"\nsha256 = \"{}\"\nroles = [\"reeder\"]\n",
            "0".repeat(64)
        ),
    );
    let err = error_of(&["--config", role.to_str().unwrap()]);
    assert!(
        err.contains("`tokens[0].roles`") && err.contains("reeder"),
        "{err}"
    );
    // The names the gateway uses itself are nobody's (H6).
    for reserved in [
        "cloudtrail-gateway",
        "event-streams",
        "Gateway-Health-Probe",
    ] {
        let file = temp_file(
            "reserved.toml",
            &format!(
                "[[tokens]]\nprincipal = \"{reserved}\"\nsha256 = \"{}\"\n",
                "0".repeat(64)
            ),
        );
        let err = error_of(&["--config", file.to_str().unwrap()]);
        assert!(
            err.contains("`tokens[0].principal`") && err.contains("reserved"),
            "{err}"
        );
    }
    let missing = [
        "--jwks-file",
        "/nonexistent/jwks.json",
        "--jwt-issuer",
        "i",
        "--jwt-audience",
        "a",
    ];
    assert!(error_of(&missing).contains("`jwks_file`"));
    let tls = [
        "--tls-cert",
        "/nonexistent/c.pem",
        "--tls-key",
        "/nonexistent/k.pem",
    ];
    assert!(error_of(&tls).contains("`tls_cert`"));
    let jwks = temp_file("jwks2.json", r#"{"keys": []}"#);
    let zero_interval = [
        "--jwks-file",
        jwks.to_str().unwrap(),
        "--jwt-issuer",
        "i",
        "--jwt-audience",
        "a",
        "--jwks-min-refresh-interval",
        "0s",
    ];
    assert!(error_of(&zero_interval).contains("`jwks_min_refresh_interval`"));
}

#[test]
fn print_config_is_toml_in_the_files_keys_and_reads_back() {
    let c = parse(&[
        "--print-config",
        "--redis-url",
        "redis://user:hunter2@10.0.0.1:6379",
        "--max-attempts",
        "4",
        "--local-account-id",
        "012345678901",
    ])
    .unwrap();
    let printed = c.print_config.expect("printed");
    assert!(!printed.contains("hunter2"), "{printed}");
    assert!(
        printed.contains("redis_url = \"redis://***@10.0.0.1:6379\""),
        "{printed}"
    );
    assert!(printed.contains("max_attempts = 4"), "{printed}");
    assert!(printed.contains("lookup_cache_ttl = \"2s\""), "{printed}");
    assert!(printed.contains("fairness = \"round-robin\""), "{printed}");
    // Saved and read back, it is the same configuration (the masked secret aside).
    let saved = printed.replace("redis://***@10.0.0.1:6379", "redis://10.0.0.1:6379");
    let file = temp_file("printed.toml", &saved);
    let again = parse(&["--config", file.to_str().unwrap()]).unwrap();
    assert_eq!(again.upstream.max_attempts, 4);
    assert_eq!(again.local.options.account_id, "012345678901");
    assert_eq!(
        again.limits.redis_url.as_deref(),
        Some("redis://10.0.0.1:6379")
    );
}

#[test]
fn every_file_table_is_described() {
    let tables = FileTables {
        accounts: vec![super::accounts::AccountEntry {
            id: "111111111111".into(),
            external_id: Some("secret-ish".into()),
            ..Default::default()
        }],
        tokens: vec![crate::auth::tokens::TokenEntry {
            principal: "p".into(),
            sha256: "0".repeat(64),
            roles: vec![],
            accounts: Vec::new(),
            regions: Vec::new(),
        }],
        certificates: vec![crate::auth::certificates::CertificateEntry {
            principal: "p".into(),
            roles: vec![],
            accounts: Vec::new(),
            regions: Vec::new(),
        }],
        roles: [("r".to_owned(), crate::auth::policy::RoleEntry::Rpcs(vec![]))].into(),
        log_sources: vec![super::store::LogSourceEntry {
            bucket: "logs".into(),
            ..Default::default()
        }],
        weights: [("p".to_owned(), 1)].into(),
    };
    let keys: Vec<String> = toml::from_str::<toml::Table>(&tables.to_toml())
        .unwrap()
        .keys()
        .cloned()
        .collect();
    for key in &keys {
        assert!(
            FileTables::is_table(key),
            "{key} is not in FileTables::DESCRIBED"
        );
    }
    assert_eq!(keys.len(), FileTables::DESCRIBED.len());
}

/// `--print-config` of the shipped examples, saved and used as `--config`, is the same
/// configuration (it printed `"<redacted>"` for token hashes and external ids, which the loader
/// then refused).
#[test]
fn print_config_of_the_examples_reads_back() {
    for example in ["deploy/examples/auth.toml", "deploy/examples/accounts.toml"] {
        let path = format!("{}/{example}", env!("CARGO_MANIFEST_DIR"));
        let first = parse(&["--config", &path, "--print-config"])
            .unwrap_or_else(|e| panic!("{example}: {e}"));
        let printed = first.print_config.clone().expect("printed");
        let file = temp_file("printed-example.toml", &printed);
        let again = parse(&["--config", file.to_str().unwrap(), "--print-config"])
            .unwrap_or_else(|e| panic!("{example} printed does not load: {e}\n{printed}"));
        assert_eq!(
            again.print_config.as_deref(),
            Some(printed.as_str()),
            "{example}"
        );
        assert_eq!(
            format!("{:?}", again.auth.tokens),
            format!("{:?}", first.auth.tokens),
            "{example}"
        );
        assert_eq!(
            format!("{:?}", again.accounts),
            format!("{:?}", first.accounts),
            "{example}"
        );
    }
    // Credentials in a URL are the one thing masked; a masked URL is refused naming its key.
    let masked = temp_file("masked.toml", "redis_url = \"redis://***@10.0.0.1:6379\"\n");
    let err = error_of(&["--config", masked.to_str().unwrap()]);
    assert!(
        err.contains("`redis_url`") && err.contains("masked"),
        "{err}"
    );
    // An invalid URL is named without its credentials.
    let bad = error_of(&["--redis-url", "rediz://u:hunter2@10.0.0.1"]);
    assert!(
        bad.contains("rediz://***@10.0.0.1") && !bad.contains("hunter2"),
        "{bad}"
    );
}

/// The README's configuration table is the one the declarations give. To renew it after changing a
/// setting: `UPDATE_README=1 cargo test --lib the_readme_table`.
#[test]
fn the_readme_table_is_the_declared_one() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/README.md");
    let readme = std::fs::read_to_string(path).unwrap();
    let begin = "<!-- settings:begin -->\n";
    let end = "<!-- settings:end -->";
    let start = readme.find(begin).expect("README has the settings markers") + begin.len();
    let stop = readme[start..]
        .find(end)
        .expect("README has the end marker")
        + start;
    let expected = markdown_table();
    if readme[start..stop] != expected && std::env::var_os("UPDATE_README").is_some() {
        let renewed = format!("{}{expected}{}", &readme[..start], &readme[stop..]);
        std::fs::write(path, renewed).unwrap();
        return;
    }
    assert!(
        readme[start..stop] == expected,
        "README.md's configuration table differs from the settings: run `UPDATE_README=1 cargo test --lib the_readme_table`"
    );
}

/// The README's `gateway.toml` starts as shown (it was refused: a public address with no identity
/// source), and its token hash is the SHA-256 of the token it names.
#[test]
fn the_readme_gateway_toml_is_accepted() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    let block = readme
        .split("```toml\n# gateway.toml\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("the gateway.toml block");
    let file = temp_file("readme-gateway.toml", block);
    let config = parse(&["--config", file.to_str().unwrap()]).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.server.listen.to_string(), "0.0.0.0:50051");
    assert!(config.auth.is_enabled());
    use sha2::Digest;
    let hash: String = sha2::Sha256::digest(b"change-me")
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(config.auth.tokens[0].sha256, hash);
}

/// A default stated in prose ("`max_connections` (2000)", "`--read-cache-ttl` (default 2 s)") in
/// README.md or docs/SECURITY.md is the declared one: change a default and this names each text
/// that still says the old one.
#[test]
fn defaults_named_in_prose_are_the_declared_ones() {
    let command = super::command();
    let default_of = |name: &str| -> Option<String> {
        let id = name.trim_start_matches("--").replace('-', "_");
        command
            .get_arguments()
            .find(|a| a.get_id().as_str() == id)
            .map(|a| {
                a.get_default_values()
                    .iter()
                    .map(|v| v.to_string_lossy().into_owned())
                    .collect::<Vec<_>>()
                    .join(",")
            })
    };
    // "10 s" → "10s", "1/s" → "1", "2000" → "2000"; None when it is not a number.
    let figure = |text: &str| -> Option<String> {
        let text = text
            .trim_start_matches("default")
            .trim_start_matches(':')
            .trim();
        let digits: String = text
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == '.')
            .collect();
        if digits.is_empty() {
            return None;
        }
        let unit: String = text[digits.len()..]
            .trim_start()
            .chars()
            .take_while(|c| c.is_ascii_alphabetic())
            .collect();
        match unit.as_str() {
            "KiB" | "MiB" => {
                let scale = if unit == "KiB" { 1 << 10 } else { 1 << 20 };
                Some((digits.parse::<u64>().ok()? * scale).to_string())
            }
            // Prose spells units out ("15 min", "400 days"); flags take the short form.
            "min" | "mins" | "minutes" => Some(format!("{digits}m")),
            "day" | "days" => Some(format!("{digits}d")),
            _ => Some(format!("{digits}{unit}")),
        }
    };
    let mut checked = 0;
    for doc in ["README.md", "docs/SECURITY.md"] {
        let text = std::fs::read_to_string(format!("{}/{doc}", env!("CARGO_MANIFEST_DIR")))
            .expect("the document");
        let mut rest = text.as_str();
        while let Some(at) = rest.find("` (") {
            let (before, after) = rest.split_at(at);
            rest = &after[3..];
            let Some(open) = before.rfind('`') else {
                continue;
            };
            let name = &before[open + 1..];
            let Some(declared) = default_of(name) else {
                continue;
            };
            let said = rest.split([')', ';', ',']).next().unwrap_or_default();
            let Some(said) = figure(said) else { continue };
            let same = said == declared
                || (said.parse::<f64>().ok()).is_some_and(|s| declared.parse::<f64>() == Ok(s));
            assert!(
                same,
                "{doc}: `{name}` is said to default to {said}, declared {declared}"
            );
            checked += 1;
        }
    }
    assert!(checked >= 8, "the prose defaults were found ({checked})");
}

#[test]
fn log_sources_are_checked() {
    let file = |text: &str| {
        let dir = std::env::temp_dir().join(format!("ctgw-cfg-{}", crate::ids::uuid()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("g.toml");
        std::fs::write(&path, text).unwrap();
        let result =
            Config::from_args_of(["cloudtrail-gateway", "--config", path.to_str().unwrap()]);
        let _ = std::fs::remove_dir_all(&dir);
        result
    };
    let ok = file(
        "region = \"eu-west-1\"\n[[log_sources]]\nbucket = \"org-logs\"\nprefix = \"trails/\"\nlookups = \"store\"\naccounts = [\"111111111111\"]\n",
    )
    .expect("valid");
    let source = &ok.store.sources[0];
    assert_eq!(
        (source.name.as_str(), source.region.as_str()),
        ("org-logs", "eu-west-1")
    );
    assert_eq!(source.mode, crate::ingest::Mode::Store);
    assert_eq!(
        ok.store.path.as_deref(),
        Some(std::path::Path::new("cloudtrail-store.db"))
    );
    for (bad, key) in [
        (
            "[[log_sources]]\nbucket = \"b\"\nlookups = \"sometimes\"\n",
            "log_sources[0].lookups",
        ),
        (
            "[[log_sources]]\nbucket = \"b\"\nprefix = \"no-slash\"\n",
            "log_sources[0].prefix",
        ),
        (
            "[[log_sources]]\nbucket = \"b\"\naccounts = [\"12\"]\n",
            "log_sources[0].accounts",
        ),
        ("[[log_sources]]\nbucket = \"\"\n", "log_sources[0].bucket"),
        (
            "[[log_sources]]\nbucket = \"b\"\n[[log_sources]]\nbucket = \"b\"\n",
            "log_sources[1].name",
        ),
    ] {
        let e = file(&format!("region = \"eu-west-1\"\n{bad}"))
            .expect_err(bad)
            .to_string();
        assert!(e.contains(key), "{bad}: {e}");
    }
}
