//! Fixtures shared by the end-to-end tests: a gateway on an ephemeral loopback port, the generated
//! client, and helpers to read rich error details.
#![allow(dead_code)] // each test binary uses a different part of this module

pub mod jwks;
pub mod pki;
pub mod procs;
pub mod reconcile;

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use cloudtrail_gateway::{
    config::{CacheConfig, Config, StoreConfig},
    limits::{LimitsConfig, Quotas},
    local::{self, LocalCloudTrail},
    pb::{self, LookupAttributeKey, cloud_trail_service_client::CloudTrailServiceClient},
    server,
};
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};
use tonic::{Code, Status, transport::Channel};
use tonic_types::StatusExt;

pub type Client = CloudTrailServiceClient<Channel>;

/// A gateway serving in this process; stops when dropped.
pub struct TestGateway {
    pub addr: SocketAddr,
    /// The plain-HTTP side port (/metrics, /healthz, /readyz).
    pub http_addr: SocketAddr,
    pub client: Client,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

/// Quotas far above what functional tests send: they test behaviour, not rate limits (those have
/// their own tests with real quotas).
pub const UNLIMITED: Quotas = Quotas {
    lookup: 1000.0,
    read: 1000.0,
    write: 1000.0,
};

/// The same for the embedded CloudTrail's own enforcement of AWS's quotas.
pub const UNLIMITED_LOCAL: local::Quotas = local::Quotas {
    lookup: 1000.0,
    read: 1000.0,
    write: 1000.0,
};

/// The flags that do the same for a gateway process (pollers' reads not kept either).
pub const UNLIMITED_ARGS: [&str; 14] = [
    "--lookup-rate",
    "1000",
    "--read-rate",
    "1000",
    "--write-rate",
    "1000",
    "--local-lookup-quota",
    "1000",
    "--local-read-quota",
    "1000",
    "--local-write-quota",
    "1000",
    "--read-cache-ttl",
    "0s",
];

/// The default configuration (embedded CloudTrail, us-east-1), quotas raised, and pollers' reads
/// not kept (tests of upstream behaviour count upstream calls; the read cache has its own tests).
pub fn test_config() -> Config {
    let defaults = Config::default();
    Config {
        limits: LimitsConfig {
            quotas: UNLIMITED,
            ..defaults.limits.clone()
        },
        caches: CacheConfig {
            read_ttl: Duration::ZERO,
            ..defaults.caches.clone()
        },
        // No event store unless a test asks for one (tests/gateway/store.rs).
        store: StoreConfig {
            path: None,
            ..defaults.store.clone()
        },
        ..defaults
    }
}

/// An embedded CloudTrail with default options, quotas raised.
pub fn test_local() -> LocalCloudTrail {
    LocalCloudTrail::new(local::Options {
        quotas: UNLIMITED_LOCAL,
        ..Default::default()
    })
}

impl TestGateway {
    /// `test_config()` on an ephemeral port.
    pub async fn start() -> Self {
        Self::start_with(test_config(), test_local()).await
    }

    pub async fn start_with(config: Config, local: LocalCloudTrail) -> Self {
        let grpc = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = grpc.local_addr().expect("local addr");
        let http = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let http_addr = http.local_addr().expect("local addr");
        let listeners = server::Listeners {
            grpc,
            http: Some(http),
        };
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let shutdown = async {
                let _ = stopped.await;
            };
            if let Err(e) = server::serve_with(listeners, config, local, shutdown).await {
                panic!("gateway failed: {e}");
            }
        });
        let client = connect(addr).await;
        TestGateway {
            addr,
            http_addr,
            client,
            stop: Some(stop),
            task,
        }
    }

    /// Signals shutdown (as SIGTERM does) without waiting.
    pub fn begin_shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    /// Waits for the server to finish draining and stop.
    pub async fn stopped(&mut self) {
        (&mut self.task).await.expect("the gateway stopped cleanly");
    }

    /// GET on the side port: (status, body).
    pub async fn http_get(&self, path: &str) -> (u16, String) {
        procs::get(self.http_addr, path).await
    }
}

impl Drop for TestGateway {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task.abort();
    }
}

/// A plaintext channel; it connects on first use, so a fixture can start TLS gateways too.
pub async fn channel(addr: SocketAddr) -> Channel {
    tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .expect("endpoint")
        .connect_timeout(Duration::from_secs(5))
        .connect_lazy()
}

pub async fn connect(addr: SocketAddr) -> Client {
    CloudTrailServiceClient::new(channel(addr).await)
}

/// The sum of the samples of `name` in a `/metrics` text whose labels include every `labels` pair.
pub fn metric_sum(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    let prefix = format!("{name}{{");
    text.lines()
        .filter(|l| l.starts_with(&prefix))
        .filter(|l| {
            labels
                .iter()
                .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// The fields named in the status's BadRequest, in order.
pub fn violations(status: &Status) -> Vec<String> {
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    status
        .get_details_bad_request()
        .unwrap_or_else(|| panic!("no BadRequest in {status:?}"))
        .field_violations
        .into_iter()
        .map(|v| v.field)
        .collect()
}

/// Asserts the status's code and its ErrorInfo reason (the AWS error code).
pub fn assert_upstream_error(status: &Status, code: Code, reason: &str) {
    assert_eq!(status.code(), code, "{status:?}");
    let info = status
        .get_details_error_info()
        .unwrap_or_else(|| panic!("no ErrorInfo in {status:?}"));
    assert_eq!(info.reason, reason, "{status:?}");
    assert_eq!(info.domain, "cloudtrail.amazonaws.com");
    assert!(
        info.metadata.contains_key("aws_request_id"),
        "no aws_request_id in {status:?}"
    );
}

/// The third-party CloudTrail log files shipped with the project (`testdata/cloudtrail-logs`, with
/// their sources and licences).
pub fn shared_logs() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata/cloudtrail-logs");
    assert!(
        dir.is_dir(),
        "missing {}: the real log files are part of the test suite",
        dir.display()
    );
    dir
}

/// A fresh directory for one test, removed with what it holds when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!(
            "ctgw-{name}-{}-{}",
            std::process::id(),
            procs::free_port()
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        TempDir(dir)
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The caller name of the gateway's health probe, as recorded by the embedded CloudTrail.
pub const PROBE: &str = cloudtrail_gateway::health::PROBE;

/// The account of both the embedded CloudTrail and moto.
pub const ACCOUNT: &str = "123456789012";

pub fn trail_arn(region: &str, name: &str) -> String {
    format!("arn:aws:cloudtrail:{region}:{ACCOUNT}:trail/{name}")
}

/// The names of the trails DescribeTrails lists for `request`.
pub async fn trail_names(
    c: &mut Client,
    request: tonic::Request<pb::DescribeTrailsRequest>,
) -> Vec<String> {
    c.describe_trails(request)
        .await
        .expect("DescribeTrails")
        .into_inner()
        .trail_list
        .into_iter()
        .map(|t| t.name)
        .collect()
}

/// `message` with request metadata (`key`, `value`) pairs.
pub fn request<T>(message: T, metadata: &[(&str, &str)]) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    for (key, value) in metadata {
        let key = tonic::metadata::MetadataKey::from_bytes(key.as_bytes()).expect("metadata key");
        request
            .metadata_mut()
            .append(key, value.parse().expect("metadata value"));
    }
    request
}

/// A CreateTrail request with the bucket every test backend has (`audit-logs`).
/// A token's SHA-256 in hex, as `[[tokens]]` holds it.
pub fn sha256_hex(token: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A `[[tokens]]` entry for `principal` presenting `token`.
pub fn token_entry(
    principal: &str,
    token: &str,
    roles: &[&str],
) -> cloudtrail_gateway::auth::tokens::TokenEntry {
    cloudtrail_gateway::auth::tokens::TokenEntry {
        principal: principal.into(),
        sha256: sha256_hex(token),
        roles: roles.iter().map(|r| (*r).to_owned()).collect(),
        accounts: Vec::new(),
        regions: Vec::new(),
    }
}

pub fn create_request(name: &str) -> pb::CreateTrailRequest {
    pb::CreateTrailRequest {
        name: name.into(),
        s3_bucket_name: "audit-logs".into(),
        ..Default::default()
    }
}

pub fn tag(key: &str, value: Option<&str>) -> pb::Tag {
    pb::Tag {
        key: key.into(),
        value: value.map(Into::into),
    }
}

/// LookupEvents filtered on one attribute (newest first).
pub async fn lookup(client: &mut Client, key: LookupAttributeKey, value: &str) -> Vec<pb::Event> {
    client
        .lookup_events(pb::LookupEventsRequest {
            lookup_attributes: vec![pb::LookupAttribute {
                attribute_key: key as i32,
                attribute_value: value.into(),
            }],
            ..Default::default()
        })
        .await
        .expect("lookup events")
        .into_inner()
        .events
}
