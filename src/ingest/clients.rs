//! A source's S3 client: the gateway's credentials chain (or a role assumed with it, for the
//! log-archive account), the bucket's Region, an S3-compatible endpoint when configured.

use aws_config::{BehaviorVersion, Region, sts::AssumeRoleProvider};

use super::source::SourceConfig;

/// The session name CloudTrail records for the store's reads of a log-archive bucket.
const SESSION_NAME: &str = "cloudtrail-gateway-event-store";

/// The source's S3 client, and its SQS client when it has a queue.
pub async fn clients(source: &SourceConfig) -> (aws_sdk_s3::Client, Option<aws_sdk_sqs::Client>) {
    let mut shared = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(source.region.clone()))
        .load()
        .await;
    if let Some(arn) = &source.role_arn {
        let mut role = AssumeRoleProvider::builder(arn)
            .configure(&shared)
            .session_name(SESSION_NAME);
        if let Some(id) = &source.external_id {
            role = role.external_id(id);
        }
        let role = role.build().await;
        shared = shared
            .into_builder()
            .credentials_provider(
                aws_credential_types::provider::SharedCredentialsProvider::new(role),
            )
            .build();
    }
    let mut s3 = aws_sdk_s3::config::Builder::from(&shared);
    let mut sqs = aws_sdk_sqs::config::Builder::from(&shared);
    if let Some(url) = &source.endpoint_url {
        // S3-compatible stores (moto, MinIO) are addressed path-style.
        s3 = s3.endpoint_url(url).force_path_style(true);
        sqs = sqs.endpoint_url(url);
    }
    let sqs = source
        .queue_url
        .is_some()
        .then(|| aws_sdk_sqs::Client::from_conf(sqs.build()));
    (aws_sdk_s3::Client::from_conf(s3.build()), sqs)
}
