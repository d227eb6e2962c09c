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

fn sts(cloudtrail: &LocalCloudTrail, key: &cloudtrail_local::AccessKey) -> aws_sdk_sts::Client {
    let config = aws_sdk_sts::Config::builder()
        .behavior_version(aws_sdk_sts::config::BehaviorVersion::latest())
        .region(aws_sdk_sts::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_sts::config::Credentials::new(
            key.access_key_id.clone(),
            key.secret_access_key.clone(),
            None,
            None,
            "test",
        ))
        .http_client(cloudtrail.clone())
        .build();
    aws_sdk_sts::Client::from_conf(config)
}

#[tokio::test]
async fn a_role_session_is_recorded_as_aws_records_an_assumed_role() {
    let cloudtrail = LocalCloudTrail::new(Options {
        quotas: RAISED,
        ..Options::default()
    });
    cloudtrail.add_role(cloudtrail_local::Role::new("111111111111", "auditor"));
    let gateway = cloudtrail.user_key("gateway");
    let sts = sts(&cloudtrail, &gateway);
    let assumed = sts
        .assume_role()
        .role_arn("arn:aws:iam::111111111111:role/auditor")
        .role_session_name("alice")
        .source_identity("alice@example.com")
        .tags(
            aws_sdk_sts::types::Tag::builder()
                .key("principal")
                .value("alice@example.com")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .expect("AssumeRole");
    assert_eq!(assumed.source_identity(), Some("alice@example.com"));
    let creds = assumed.credentials().expect("credentials");
    let session_config = aws_sdk_cloudtrail::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("eu-west-1"))
        .credentials_provider(Credentials::new(
            creds.access_key_id(),
            creds.secret_access_key(),
            Some(creds.session_token().to_owned()),
            None,
            "session",
        ))
        .retry_config(RetryConfig::standard().with_max_attempts(1))
        .http_client(cloudtrail.clone())
        .build();
    let c = Client::from_conf(session_config);
    let trail = c
        .create_trail()
        .name("audit")
        .s3_bucket_name("audit-logs")
        .send()
        .await
        .expect("CreateTrail with the session");
    // The session acts in the role's account.
    assert_eq!(
        trail.trail_arn(),
        Some("arn:aws:cloudtrail:eu-west-1:111111111111:trail/audit")
    );
    let attribute = LookupAttribute::builder()
        .attribute_key(LookupAttributeKey::EventName)
        .attribute_value("CreateTrail")
        .build()
        .unwrap();
    let events = c
        .lookup_events()
        .lookup_attributes(attribute)
        .send()
        .await
        .unwrap();
    let event = &events.events()[0];
    assert_eq!(
        event.username(),
        Some("alice"),
        "Username is the session name"
    );
    let record: serde_json::Value =
        serde_json::from_str(event.cloud_trail_event().unwrap()).unwrap();
    let who = &record["userIdentity"];
    assert_eq!(who["type"], "AssumedRole");
    assert_eq!(
        who["arn"],
        "arn:aws:sts::111111111111:assumed-role/auditor/alice"
    );
    assert_eq!(who["sessionContext"]["sourceIdentity"], "alice@example.com");
    assert_eq!(
        who["sessionContext"]["sessionIssuer"]["arn"],
        "arn:aws:iam::111111111111:role/auditor"
    );
    // GetCallerIdentity on the session's credentials names the session.
    let session_sts = aws_sdk_sts::Client::from_conf(
        aws_sdk_sts::Config::builder()
            .behavior_version(aws_sdk_sts::config::BehaviorVersion::latest())
            .region(aws_sdk_sts::config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_sts::config::Credentials::new(
                creds.access_key_id(),
                creds.secret_access_key(),
                Some(creds.session_token().to_owned()),
                None,
                "session",
            ))
            .http_client(cloudtrail.clone())
            .build(),
    );
    let me = session_sts.get_caller_identity().send().await.unwrap();
    assert_eq!(me.account(), Some("111111111111"));
    assert_eq!(
        me.arn(),
        Some("arn:aws:sts::111111111111:assumed-role/auditor/alice")
    );
    // Revoked: the session's calls are refused from now on.
    cloudtrail.expire_sessions();
    let expired = c.describe_trails().send().await.expect_err("expired");
    assert_eq!(expired.code(), Some("ExpiredTokenException"));
    // An unknown role, or a refused source identity, is AccessDenied.
    let denied = sts
        .assume_role()
        .role_arn("arn:aws:iam::111111111111:role/nobody")
        .role_session_name("alice")
        .send()
        .await
        .expect_err("unknown role");
    assert_eq!(denied.code(), Some("AccessDenied"));
    assert_eq!(cloudtrail.served("AssumeRole").len(), 2);
}

#[tokio::test]
async fn trails_kept_in_a_state_file_outlive_the_emulator() {
    let dir = std::env::temp_dir().join(format!("cloudtrail-local-state-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("state.json");
    let _ = std::fs::remove_file(&path);
    let options = || Options {
        quotas: RAISED,
        ..Options::default()
    };

    let first = LocalCloudTrail::new(options());
    assert_eq!(first.keep_state_in(&path).unwrap(), 0);
    let c = client(&first, "AKIAANYKEY", "secret");
    c.create_trail()
        .name("kept")
        .s3_bucket_name("audit-logs")
        .tags_list(
            aws_sdk_cloudtrail::types::Tag::builder()
                .key("team")
                .value("platform")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    c.start_logging().name("kept").send().await.unwrap();
    c.put_event_selectors()
        .trail_name("kept")
        .event_selectors(
            aws_sdk_cloudtrail::types::EventSelector::builder()
                .read_write_type(aws_sdk_cloudtrail::types::ReadWriteType::WriteOnly)
                .build(),
        )
        .send()
        .await
        .unwrap();
    c.create_trail()
        .name("deleted")
        .s3_bucket_name("audit-logs")
        .send()
        .await
        .unwrap();
    c.delete_trail().name("deleted").send().await.unwrap();
    drop(first);

    let second = LocalCloudTrail::new(options());
    assert_eq!(second.keep_state_in(&path).unwrap(), 1);
    let c = client(&second, "AKIAANYKEY", "secret");
    let trails = c.describe_trails().send().await.unwrap();
    let names: Vec<_> = trails
        .trail_list()
        .iter()
        .filter_map(|t| t.name())
        .collect();
    assert_eq!(names, ["kept"]);
    let status = c.get_trail_status().name("kept").send().await.unwrap();
    assert_eq!(status.is_logging(), Some(true));
    assert!(status.start_logging_time().is_some());
    let selectors = c
        .get_event_selectors()
        .trail_name("kept")
        .send()
        .await
        .unwrap();
    assert_eq!(
        selectors.event_selectors()[0].read_write_type(),
        Some(&aws_sdk_cloudtrail::types::ReadWriteType::WriteOnly)
    );
    let arn = trails.trail_list()[0].trail_arn().unwrap();
    let tags = c.list_tags().resource_id_list(arn).send().await.unwrap();
    assert_eq!(
        tags.resource_tag_list()[0].tags_list()[0].value(),
        Some("platform")
    );

    // Not a state file: refused, naming the file.
    std::fs::write(&path, "{\"not\": \"state\"}").unwrap();
    let error = LocalCloudTrail::new(options())
        .keep_state_in(&path)
        .unwrap_err();
    assert!(error.to_string().contains("state.json"), "{error}");
    std::fs::remove_dir_all(&dir).unwrap();
}
