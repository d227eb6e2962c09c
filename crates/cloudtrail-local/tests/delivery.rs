//! Trails deliver as CloudTrail does, read back with plain SDK clients: log files of exactly the
//! calls made, gzipped `{"Records":[...]}` under the documented keys, and digests whose signature
//! verifies with the key ListPublicKeys returns, chained one to the next.

use std::io::Read;

use aws_lc_rs::signature::{RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey};
use aws_sdk_cloudtrail::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_s3::error::ProvideErrorMetadata;
use cloudtrail_local::{LocalCloudTrail, Options, Quotas};
use serde_json::Value;
use sha2::{Digest, Sha256};

const ACCOUNT: &str = "123456789012";

fn local(strict: bool) -> LocalCloudTrail {
    LocalCloudTrail::new(Options {
        quotas: Quotas {
            lookup: 1000.0,
            read: 1000.0,
            write: 1000.0,
        },
        strict_buckets: strict,
        ..Options::default()
    })
}

fn cloudtrail(local: &LocalCloudTrail, region: &str) -> aws_sdk_cloudtrail::Client {
    let config = aws_sdk_cloudtrail::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(region.to_owned()))
        .credentials_provider(Credentials::new(
            "AKIADELIVERY",
            "secret",
            None,
            None,
            "test",
        ))
        .http_client(local.clone())
        .build();
    aws_sdk_cloudtrail::Client::from_conf(config)
}

fn s3(local: &LocalCloudTrail) -> aws_sdk_s3::Client {
    let config = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new(
            "AKIADELIVERY",
            "secret",
            None,
            None,
            "test",
        ))
        .http_client(local.clone())
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

async fn keys(s3: &aws_sdk_s3::Client, bucket: &str, prefix: &str) -> Vec<String> {
    let listed = s3
        .list_objects_v2()
        .bucket(bucket)
        .prefix(prefix)
        .send()
        .await
        .unwrap();
    listed
        .contents()
        .iter()
        .filter_map(|o| o.key().map(str::to_owned))
        .collect()
}

/// The object's bytes, gunzipped, and its metadata.
async fn fetch(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
) -> (Vec<u8>, std::collections::HashMap<String, String>) {
    let object = s3
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .unwrap();
    let metadata = object.metadata().cloned().unwrap_or_default();
    let raw = object.body.collect().await.unwrap().into_bytes();
    let mut plain = Vec::new();
    flate2::read::GzDecoder::new(&raw[..])
        .read_to_end(&mut plain)
        .unwrap();
    (plain, metadata)
}

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len() / 2)
        .map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16).unwrap())
        .collect()
}

/// Whether `signature` signs the digest as CloudTrail's user guide and the AWS CLI's validator
/// say: its end time, bucket/key, the hex SHA-256 of its uncompressed bytes, the previous signature.
fn verifies(public_der: &[u8], digest: &Value, bytes: &[u8], signature: &str) -> bool {
    let to_sign = format!(
        "{}\n{}/{}\n{:x}\n{}",
        digest["digestEndTime"].as_str().unwrap(),
        digest["digestS3Bucket"].as_str().unwrap(),
        digest["digestS3Object"].as_str().unwrap(),
        Sha256::digest(bytes),
        digest["previousDigestSignature"].as_str().unwrap_or("null"),
    );
    UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, public_der)
        .verify(to_sign.as_bytes(), &unhex(signature))
        .is_ok()
}

#[tokio::test]
async fn a_logging_trail_delivers_its_calls_and_signed_digests() {
    let local = local(false);
    let ct = cloudtrail(&local, "eu-west-1");
    let s3 = s3(&local);
    ct.create_trail()
        .name("audit")
        .s3_bucket_name("audit-logs")
        .s3_key_prefix("org")
        .enable_log_file_validation(true)
        .send()
        .await
        .unwrap();
    // Nothing is delivered before logging starts, and the bucket was made for the trail.
    ct.describe_trails().send().await.unwrap();
    assert_eq!(local.deliver_now(true), (0, 0));
    ct.start_logging().name("audit").send().await.unwrap();
    let mut made = Vec::new();
    for _ in 0..3 {
        let status = ct.get_trail_status().name("audit").send().await.unwrap();
        made.push(status);
    }
    assert_eq!(local.deliver_now(false).0, 1);
    let logs = keys(
        &s3,
        "audit-logs",
        "org/AWSLogs/123456789012/CloudTrail/eu-west-1/",
    )
    .await;
    assert_eq!(logs.len(), 1, "{logs:?}");
    let (plain, _) = fetch(&s3, "audit-logs", &logs[0]).await;
    let document: Value = serde_json::from_slice(&plain).unwrap();
    let names: Vec<&str> = document["Records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["eventName"].as_str().unwrap())
        .collect();
    // StartLogging (the trail logs from its own start), then the three status calls; each once.
    assert_eq!(
        names,
        [
            "StartLogging",
            "GetTrailStatus",
            "GetTrailStatus",
            "GetTrailStatus"
        ]
    );
    let ids: std::collections::HashSet<&str> = document["Records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["eventID"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 4);
    // Delivered once: the next interval has nothing to deliver.
    assert_eq!(local.deliver_now(false).0, 0);
    let status = ct.get_trail_status().name("audit").send().await.unwrap();
    assert!(status.latest_delivery_time().is_some());
    assert!(status.latest_delivery_error().is_none());

    // The digest: the log file with its hash, signed with the Region's key.
    assert_eq!(local.deliver_now(true).1, 1);
    let digests = keys(
        &s3,
        "audit-logs",
        "org/AWSLogs/123456789012/CloudTrail-Digest/eu-west-1/",
    )
    .await;
    assert_eq!(digests.len(), 1);
    assert!(digests[0].contains("_CloudTrail-Digest_eu-west-1_audit_eu-west-1_"));
    let (digest_bytes, metadata) = fetch(&s3, "audit-logs", &digests[0]).await;
    let digest: Value = serde_json::from_slice(&digest_bytes).unwrap();
    assert_eq!(metadata["signature-algorithm"], "SHA256withRSA");
    assert_eq!(digest["digestS3Object"], digests[0].as_str());
    assert_eq!(digest["awsAccountId"], ACCOUNT);
    assert!(
        digest["previousDigestSignature"].is_null(),
        "the first of a chain"
    );
    assert_eq!(digest["logFiles"][0]["s3Object"], logs[0].as_str());
    let log_hash = format!("{:x}", Sha256::digest(&plain));
    assert_eq!(digest["logFiles"][0]["hashValue"], log_hash.as_str());
    let keys_listed = ct.list_public_keys().send().await.unwrap();
    let key = &keys_listed.public_key_list()[0];
    assert_eq!(
        key.fingerprint(),
        digest["digestPublicKeyFingerprint"].as_str()
    );
    let verify = |digest: &Value, bytes: &[u8], signature: &str| {
        verifies(key.value().unwrap().as_ref(), digest, bytes, signature)
    };
    assert!(verify(&digest, &digest_bytes, &metadata["signature"]));
    assert!(!verify(&digest, b"another digest", &metadata["signature"]));

    // The next digest lists the file of the calls made since (GetTrailStatus, ListPublicKeys),
    // chained to the first; one second later (digest names are to the second) an interval with no
    // log file still gets a digest, chained to that one.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(local.deliver_now(true), (1, 1));
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(local.deliver_now(true), (0, 1));
    let digests = keys(
        &s3,
        "audit-logs",
        "org/AWSLogs/123456789012/CloudTrail-Digest/eu-west-1/",
    )
    .await;
    assert_eq!(digests.len(), 3);
    let (second_bytes, second_meta) = fetch(&s3, "audit-logs", &digests[1]).await;
    let second: Value = serde_json::from_slice(&second_bytes).unwrap();
    assert_eq!(second["logFiles"].as_array().map(Vec::len), Some(1));
    assert_eq!(
        second["previousDigestSignature"],
        metadata["signature"].as_str()
    );
    assert_eq!(second["previousDigestS3Object"], digests[0].as_str());
    assert_eq!(
        second["previousDigestHashValue"],
        format!("{:x}", Sha256::digest(&digest_bytes)).as_str()
    );
    assert_eq!(second["digestStartTime"], digest["digestEndTime"]);
    assert!(verify(&second, &second_bytes, &second_meta["signature"]));
    let (third_bytes, third_meta) = fetch(&s3, "audit-logs", &digests[2]).await;
    let third: Value = serde_json::from_slice(&third_bytes).unwrap();
    assert_eq!(third["logFiles"].as_array().map(Vec::len), Some(0));
    assert!(third["oldestEventTime"].is_null());
    assert_eq!(
        third["previousDigestSignature"],
        second_meta["signature"].as_str()
    );
    assert!(verify(&third, &third_bytes, &third_meta["signature"]));
    let status = ct.get_trail_status().name("audit").send().await.unwrap();
    assert!(status.latest_digest_delivery_time().is_some());

    // Stopped: what was logged up to the stop (the StopLogging call too, as CloudTrail delivers
    // it) goes in a last file and digest, then nothing more.
    ct.stop_logging().name("audit").send().await.unwrap();
    ct.describe_trails().send().await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(local.deliver_now(true), (1, 1));
    let logs = keys(
        &s3,
        "audit-logs",
        "org/AWSLogs/123456789012/CloudTrail/eu-west-1/",
    )
    .await;
    let mut last = Vec::new();
    for key in &logs {
        let (plain, _) = fetch(&s3, "audit-logs", key).await;
        let document: Value = serde_json::from_slice(&plain).unwrap();
        for record in document["Records"].as_array().unwrap() {
            last.push(record["eventName"].as_str().unwrap().to_owned());
        }
    }
    // (Files delivered within one minute sort by their random part, not by time.)
    assert_eq!(last.iter().filter(|n| *n == "StopLogging").count(), 1);
    assert!(!last.contains(&"DescribeTrails".to_owned()), "{last:?}");
    assert_eq!(local.deliver_now(true), (0, 0));
}

#[tokio::test]
async fn multi_region_trails_deliver_every_regions_events_and_selectors_choose() {
    let local = local(false);
    let east = cloudtrail(&local, "us-east-1");
    let west = cloudtrail(&local, "eu-west-1");
    let s3 = s3(&local);
    east.create_trail()
        .name("everywhere")
        .s3_bucket_name("all-regions")
        .is_multi_region_trail(true)
        .send()
        .await
        .unwrap();
    east.create_trail()
        .name("writes")
        .s3_bucket_name("writes-only")
        .send()
        .await
        .unwrap();
    east.put_event_selectors()
        .trail_name("writes")
        .event_selectors(
            aws_sdk_cloudtrail::types::EventSelector::builder()
                .read_write_type(aws_sdk_cloudtrail::types::ReadWriteType::WriteOnly)
                .include_management_events(true)
                .build(),
        )
        .send()
        .await
        .unwrap();
    for name in ["everywhere", "writes"] {
        east.start_logging().name(name).send().await.unwrap();
    }
    east.describe_trails().send().await.unwrap();
    west.describe_trails().send().await.unwrap();
    east.add_tags()
        .resource_id("arn:aws:cloudtrail:us-east-1:123456789012:trail/writes")
        .tags_list(
            aws_sdk_cloudtrail::types::Tag::builder()
                .key("k")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    // A data event fed in, selected by no trail: delivered by none.
    let data_event = serde_json::json!({
        "eventVersion": "1.09", "eventID": "d1", "eventName": "GetObject", "eventSource": "s3.amazonaws.com",
        "eventTime": "2026-12-03T10:00:00Z", "awsRegion": "us-east-1", "eventCategory": "Data",
        "managementEvent": false, "readOnly": true,
        "resources": [{"type": "AWS::S3::Object", "ARN": "arn:aws:s3:::data/k"}]
    });
    assert_eq!(local.add_events(ACCOUNT, &[data_event]), 1);
    assert_eq!(
        local.deliver_now(false).0,
        3,
        "everywhere: two Regions; writes: one"
    );
    let west_logs = keys(
        &s3,
        "all-regions",
        "AWSLogs/123456789012/CloudTrail/eu-west-1/",
    )
    .await;
    assert_eq!(west_logs.len(), 1);
    let (plain, _) = fetch(&s3, "all-regions", &west_logs[0]).await;
    let records: Value = serde_json::from_slice(&plain).unwrap();
    assert_eq!(records["Records"][0]["eventName"], "DescribeTrails");
    assert_eq!(records["Records"][0]["awsRegion"], "eu-west-1");
    let writes = keys(&s3, "writes-only", "AWSLogs/").await;
    let (plain, _) = fetch(&s3, "writes-only", &writes[0]).await;
    let records: Value = serde_json::from_slice(&plain).unwrap();
    let names: Vec<&str> = records["Records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["eventName"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["StartLogging", "AddTags"], "reads are not selected");
}

#[tokio::test]
async fn buckets_strictly_or_made_and_deliveries_to_a_deleted_bucket_fail() {
    let strict = local(true);
    let err = cloudtrail(&strict, "us-east-1")
        .create_trail()
        .name("audit")
        .s3_bucket_name("missing-bucket")
        .send()
        .await
        .unwrap_err();
    assert!(
        err.into_service_error()
            .is_s3_bucket_does_not_exist_exception()
    );

    let local = local(false);
    let ct = cloudtrail(&local, "us-east-1");
    let s3 = s3(&local);
    ct.create_trail()
        .name("audit")
        .s3_bucket_name("made-for-me")
        .send()
        .await
        .unwrap();
    s3.head_bucket().bucket("made-for-me").send().await.unwrap();
    ct.start_logging().name("audit").send().await.unwrap();
    s3.delete_bucket()
        .bucket("made-for-me")
        .send()
        .await
        .unwrap();
    assert_eq!(local.deliver_now(false).0, 0);
    let status = ct.get_trail_status().name("audit").send().await.unwrap();
    assert_eq!(status.latest_delivery_error(), Some("NoSuchBucket"));
    // The bucket back: what waited is delivered.
    s3.create_bucket()
        .bucket("made-for-me")
        .send()
        .await
        .unwrap();
    assert_eq!(local.deliver_now(false).0, 1);
    let status = ct.get_trail_status().name("audit").send().await.unwrap();
    assert!(status.latest_delivery_error().is_none());
    let err = s3
        .get_object()
        .bucket("made-for-me")
        .key("nope")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("NoSuchKey"));
}

#[tokio::test]
async fn a_restart_keeps_the_files_the_keys_and_the_digest_chain() {
    let dir = std::env::temp_dir().join(format!("ctl-restart-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let (state, buckets) = (dir.join("state.json"), dir.join("s3"));
    let first_signature = {
        let local = local(false);
        local.keep_state_in(&state).unwrap();
        local.keep_s3_in(&buckets).unwrap();
        let ct = cloudtrail(&local, "us-east-1");
        ct.create_trail()
            .name("kept")
            .s3_bucket_name("kept-logs")
            .enable_log_file_validation(true)
            .send()
            .await
            .unwrap();
        ct.start_logging().name("kept").send().await.unwrap();
        assert_eq!(local.deliver_now(true), (1, 1));
        let digests = keys(
            &s3(&local),
            "kept-logs",
            "AWSLogs/123456789012/CloudTrail-Digest/",
        )
        .await;
        fetch(&s3(&local), "kept-logs", &digests[0]).await.1["signature"].clone()
    };
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let local = local(false);
    assert_eq!(local.keep_state_in(&state).unwrap(), 1);
    assert_eq!(
        local.keep_s3_in(&buckets).unwrap(),
        2,
        "the log file and the digest"
    );
    assert_eq!(local.deliver_now(true), (0, 1));
    let s3 = s3(&local);
    let digests = keys(&s3, "kept-logs", "AWSLogs/123456789012/CloudTrail-Digest/").await;
    assert_eq!(digests.len(), 2);
    let (bytes, metadata) = fetch(&s3, "kept-logs", &digests[1]).await;
    let digest: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(
        digest["previousDigestSignature"],
        first_signature.as_str(),
        "the chain goes on"
    );
    // Signed with the same key, which ListPublicKeys still returns.
    let listed = cloudtrail(&local, "us-east-1")
        .list_public_keys()
        .send()
        .await
        .unwrap();
    let key = &listed.public_key_list()[0];
    assert_eq!(
        key.fingerprint(),
        digest["digestPublicKeyFingerprint"].as_str()
    );
    assert!(verifies(
        key.value().unwrap().as_ref(),
        &digest,
        &bytes,
        &metadata["signature"]
    ));
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn loaded_log_files_become_a_bucket_in_cloudtrails_layout() {
    let logs = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/cloudtrail-logs/logs");
    let local = local(false);
    let written = local
        .write_logs_to_bucket(ACCOUNT, &logs, "loaded-logs")
        .unwrap();
    assert!(written > 0);
    let s3 = s3(&local);
    let listed = s3
        .list_objects_v2()
        .bucket("loaded-logs")
        .send()
        .await
        .unwrap();
    assert_eq!(listed.key_count(), Some(written as i32));
    let mut records = 0;
    for object in listed.contents() {
        let key = object.key().unwrap();
        let parts: Vec<&str> = key.split('/').collect();
        assert_eq!((parts[0], parts[2]), ("AWSLogs", "CloudTrail"), "{key}");
        assert!(
            parts[7].starts_with(&format!("{}_CloudTrail_{}_", parts[1], parts[3])),
            "{key}"
        );
        let (plain, _) = fetch(&s3, "loaded-logs", key).await;
        let document: Value = serde_json::from_slice(&plain).unwrap();
        records += document["Records"].as_array().unwrap().len();
    }
    assert_eq!(
        records, 348,
        "every record of the 42 files (two of them in two files)"
    );
}

#[tokio::test]
async fn an_organization_trail_delivers_every_accounts_events_under_the_organization() {
    let local = LocalCloudTrail::new(Options {
        quotas: Quotas {
            lookup: 1000.0,
            read: 1000.0,
            write: 1000.0,
        },
        organization_id: Some("o-exampleorgid".into()),
        ..Options::default()
    });
    let ct = cloudtrail(&local, "us-east-1");
    ct.create_trail()
        .name("org")
        .s3_bucket_name("org-logs")
        .is_multi_region_trail(true)
        .is_organization_trail(true)
        .enable_log_file_validation(true)
        .send()
        .await
        .unwrap();
    ct.start_logging().name("org").send().await.unwrap();
    let described = ct.describe_trails().send().await.unwrap();
    assert_eq!(
        described.trail_list()[0].is_organization_trail(),
        Some(true)
    );
    // A member account's event, in another Region.
    let member_event = serde_json::json!({
        "eventVersion": "1.09", "eventID": "m1", "eventName": "CreateBucket",
        "eventSource": "s3.amazonaws.com", "eventTime": "2026-12-03T10:00:00Z",
        "awsRegion": "eu-west-1", "recipientAccountId": "210987654321", "readOnly": false,
        "eventCategory": "Management", "managementEvent": true
    });
    assert_eq!(local.add_events("210987654321", &[member_event]), 1);
    assert_eq!(local.deliver_now(true), (2, 2));
    let s3 = s3(&local);
    let root = "AWSLogs/o-exampleorgid/";
    let own = keys(
        &s3,
        "org-logs",
        &format!("{root}123456789012/CloudTrail/us-east-1/"),
    )
    .await;
    let member = keys(
        &s3,
        "org-logs",
        &format!("{root}210987654321/CloudTrail/eu-west-1/"),
    )
    .await;
    assert_eq!((own.len(), member.len()), (1, 1));
    assert!(member[0].contains("/210987654321_CloudTrail_eu-west-1_"));
    let (plain, _) = fetch(&s3, "org-logs", &member[0]).await;
    let document: Value = serde_json::from_slice(&plain).unwrap();
    assert_eq!(document["Records"][0]["eventID"], "m1");
    let digests = keys(
        &s3,
        "org-logs",
        &format!("{root}210987654321/CloudTrail-Digest/eu-west-1/"),
    )
    .await;
    assert_eq!(digests.len(), 1);
    assert!(digests[0].contains("_CloudTrail-Digest_eu-west-1_org_us-east-1_"));
    let (bytes, metadata) = fetch(&s3, "org-logs", &digests[0]).await;
    let digest: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(digest["awsAccountId"], "210987654321");
    assert_eq!(digest["logFiles"][0]["s3Object"], member[0].as_str());
    let listed = cloudtrail(&local, "eu-west-1")
        .list_public_keys()
        .send()
        .await
        .unwrap();
    assert!(verifies(
        listed.public_key_list()[0].value().unwrap().as_ref(),
        &digest,
        &bytes,
        &metadata["signature"]
    ));
    // Without an organization, CloudTrail's refusal.
    let plain_local = LocalCloudTrail::new(Options::default());
    let err = cloudtrail(&plain_local, "us-east-1")
        .create_trail()
        .name("org")
        .s3_bucket_name("org-logs")
        .is_organization_trail(true)
        .send()
        .await
        .unwrap_err();
    assert!(
        err.into_service_error()
            .is_organizations_not_in_use_exception()
    );
}
