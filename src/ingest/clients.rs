//! A source's S3 client: the gateway's credentials chain (or a role assumed with it, for the
//! log-archive account), the bucket's Region, an S3-compatible endpoint when configured.

use aws_config::{BehaviorVersion, Region, sts::AssumeRoleProvider};

use super::SourceConfig;

/// The session name CloudTrail records for the store's reads of a log-archive bucket.
const SESSION_NAME: &str = "cloudtrail-gateway-event-store";

pub async fn s3(source: &SourceConfig) -> aws_sdk_s3::Client {
    let shared = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(source.region.clone()))
        .load()
        .await;
    let mut builder = aws_sdk_s3::config::Builder::from(&shared);
    if let Some(arn) = &source.role_arn {
        let mut role = AssumeRoleProvider::builder(arn)
            .configure(&shared)
            .session_name(SESSION_NAME);
        if let Some(id) = &source.external_id {
            role = role.external_id(id);
        }
        builder = builder.credentials_provider(role.build().await);
    }
    if let Some(url) = &source.endpoint_url {
        // S3-compatible stores (moto, MinIO) are addressed path-style.
        builder = builder.endpoint_url(url).force_path_style(true);
    }
    aws_sdk_s3::Client::from_conf(builder.build())
}
