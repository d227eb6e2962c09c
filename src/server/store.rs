//! The event store's side of a start: the store opened, each source's S3 client (the embedded S3's
//! for the embedded source), the ingest tasks, and the store's size and lag in metrics.

use std::time::Duration;

use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use cloudtrail_local::LocalCloudTrail;

use super::tasks::AbortOnDrop;
use crate::{
    config::{LOCAL_SOURCE, StoreConfig},
    ingest::{self, History, Source, SourceConfig, Sources, now_ms},
    principal::GATEWAY,
    store::{Store, StoreError},
    telemetry,
};

/// Opens the store and starts reading its sources; None when there is no store.
pub(super) async fn start(
    config: &StoreConfig,
    local: &LocalCloudTrail,
) -> Result<(Option<History>, Vec<AbortOnDrop>), StoreError> {
    let Some(path) = &config.path else {
        return Ok((None, Vec::new()));
    };
    let store = Store::open(path)?;
    let mut sources = Vec::new();
    if config.local_source {
        sources.push(Source::new(embedded_source(config), local_s3(local), None));
    }
    for source in &config.sources {
        let (s3, sqs) = ingest::clients::clients(source).await;
        sources.push(Source::new(source.clone(), s3, sqs));
    }
    let sources = Sources::new(sources);
    // Every source's series from the start, at zero, so its alerts and panels have them.
    for source in sources.all() {
        let name = source.config.name.clone();
        metrics::counter!(telemetry::STORE_FILES, "source" => name.clone()).increment(0);
        metrics::counter!(telemetry::STORE_EVENTS, "source" => name.clone()).increment(0);
        for kind in ["s3", "store"] {
            metrics::counter!(telemetry::STORE_ERRORS, "source" => name.clone(), "kind" => kind)
                .increment(0);
        }
        metrics::gauge!(telemetry::STORE_BACKFILL, "source" => name).set(0.0);
    }
    tracing::info!(
        path = %path.display(),
        sources = sources.all().len(),
        "event store: open"
    );
    let mut tasks: Vec<AbortOnDrop> = ingest::spawn(&store, &sources, &config.ingest)
        .into_iter()
        .map(AbortOnDrop)
        .collect();
    let history = History { store, sources };
    tasks.push(AbortOnDrop(tokio::spawn(watch(history.clone()))));
    Ok((Some(history), tasks))
}

/// The embedded S3's source: every bucket there, every account and Region found.
fn embedded_source(config: &StoreConfig) -> SourceConfig {
    SourceConfig {
        name: LOCAL_SOURCE.into(),
        bucket: String::new(),
        prefix: String::new(),
        region: "us-east-1".into(),
        role_arn: None,
        external_id: None,
        endpoint_url: None,
        queue_url: None,
        accounts: Vec::new(),
        regions: Vec::new(),
        mode: config.default_mode,
    }
}

/// An S3 client on the embedded S3, as the gateway's own user.
fn local_s3(local: &LocalCloudTrail) -> aws_sdk_s3::Client {
    let key = local.user_key(GATEWAY);
    let config = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new(
            key.access_key_id,
            key.secret_access_key,
            None,
            None,
            "embedded",
        ))
        .http_client(local.clone())
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

/// Publishes the store's size and each place's lag every few seconds.
async fn watch(history: History) {
    loop {
        metrics::gauge!(telemetry::STORE_BYTES).set(history.store.bytes_on_disk() as f64);
        let now = now_ms();
        for source in history.sources.all() {
            for ((account, region), place) in source.status.snapshot().places {
                if let Some(watermark) = place.watermark_ms {
                    let labels = [
                        ("source", source.config.name.clone()),
                        ("account", account),
                        ("region", region),
                    ];
                    metrics::gauge!(telemetry::STORE_LAG, &labels)
                        .set((now - watermark) as f64 / 1000.0);
                }
            }
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
}
