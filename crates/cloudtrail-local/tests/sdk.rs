//! The embedded CloudTrail through a plain `aws-sdk-cloudtrail` client, as another project would use
//! it: quotas answered as AWS answers them, callers named by their access keys, rules enforced.

use aws_sdk_cloudtrail::{
    Client,
    config::{BehaviorVersion, Credentials, Region, retry::RetryConfig},
    error::ProvideErrorMetadata,
    types::{LookupAttribute, LookupAttributeKey},
};
use cloudtrail_local::{LocalCloudTrail, Options, Quotas};

/// For tests of behaviour, not of quotas.
const RAISED: Quotas = Quotas {
    lookup: 1000.0,
    read: 1000.0,
    write: 1000.0,
};

fn client(cloudtrail: &LocalCloudTrail, access_key_id: &str, secret: &str) -> Client {
    let config = aws_sdk_cloudtrail::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new(access_key_id, secret, None, None, "test"))
        // One attempt: the SDK would retry a ThrottlingException by itself.
        .retry_config(RetryConfig::standard().with_max_attempts(1))
        .http_client(cloudtrail.clone())
        .build();
    Client::from_conf(config)
}

async fn usernames(client: &Client, event_name: &str) -> Vec<String> {
    let attribute = LookupAttribute::builder()
        .attribute_key(LookupAttributeKey::EventName)
        .attribute_value(event_name)
        .build()
        .unwrap();
    client
        .lookup_events()
        .lookup_attributes(attribute)
        .send()
        .await
        .unwrap()
        .events()
        .iter()
        .filter_map(|e| e.username().map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn writes_beyond_the_quota_are_throttled_as_aws_does() {
    let cloudtrail = LocalCloudTrail::new(Options::default());
    let c = client(&cloudtrail, "AKIAANYKEY", "secret");
    c.create_trail()
        .name("first")
        .s3_bucket_name("audit-logs")
        .send()
        .await
        .unwrap();
    let err = c
        .create_trail()
        .name("second")
        .s3_bucket_name("audit-logs")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("ThrottlingException"));
    assert_eq!(cloudtrail.throttled(), 1);
    assert_eq!(cloudtrail.served("CreateTrail").len(), 1);
    // Reads have their own quota.
    assert_eq!(
        c.describe_trails().send().await.unwrap().trail_list().len(),
        1
    );
}

#[tokio::test]
async fn events_name_the_user_whose_key_signed_the_call() {
    let cloudtrail = LocalCloudTrail::new(Options {
        username: "default-user".into(),
        quotas: RAISED,
        ..Options::default()
    });
    let key = cloudtrail.user_key("alice");
    let alice = client(&cloudtrail, &key.access_key_id, &key.secret_access_key);
    let stranger = client(&cloudtrail, "AKIANOTISSUEDHERE000", "whatever");
    alice.describe_trails().send().await.unwrap();
    stranger.describe_trails().send().await.unwrap();
    let mut names = usernames(&alice, "DescribeTrails").await;
    names.sort();
    assert_eq!(names, ["alice", "default-user"]);
}

#[tokio::test]
async fn its_own_rules_refuse_what_cloudtrail_refuses() {
    let cloudtrail = LocalCloudTrail::new(Options {
        quotas: RAISED,
        ..Options::default()
    });
    let c = client(&cloudtrail, "AKIAANYKEY", "secret");
    for (name, code) in [
        ("my--trail", "InvalidTrailNameException"),
        ("10.0.0.1", "InvalidTrailNameException"),
        ("ab", "InvalidTrailNameException"),
    ] {
        let err = c
            .create_trail()
            .name(name)
            .s3_bucket_name("audit-logs")
            .send()
            .await
            .unwrap_err();
        assert_eq!(err.code(), Some(code), "{name}");
    }
    let err = c
        .get_trail_status()
        .name("arn:aws:cloudtrail:us-east-1:123456789012:channel/x")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("CloudTrailARNInvalidException"));
}
