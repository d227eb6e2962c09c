//! Log-file delivery through the gateway: a trail created and started with the gateway's RPCs
//! delivers its calls to the embedded S3 on the gateway's delivery schedule, read back with a plain
//! aws-sdk-s3 client; its digest's signature verifies with the key the gateway's ListPublicKeys
//! returns.

use std::{collections::HashMap, io::Read, time::Duration};

use aws_lc_rs::signature::{RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey};
use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use cloudtrail_gateway::{
    local::{LocalCloudTrail, Options},
    pb,
};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::common::{self, TestGateway};

const BUCKET: &str = "delivered-logs";

fn s3(local: &LocalCloudTrail) -> aws_sdk_s3::Client {
    let config = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("AKIAREADER", "secret", None, None, "test"))
        .http_client(local.clone())
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

/// Every object under `prefix`: key → (gunzipped body, metadata).
async fn objects(
    s3: &aws_sdk_s3::Client,
    prefix: &str,
) -> Vec<(String, Vec<u8>, HashMap<String, String>)> {
    let listed = s3
        .list_objects_v2()
        .bucket(BUCKET)
        .prefix(prefix)
        .send()
        .await
        .expect("list");
    let mut out = Vec::new();
    for key in listed.contents().iter().filter_map(|o| o.key()) {
        let object = s3
            .get_object()
            .bucket(BUCKET)
            .key(key)
            .send()
            .await
            .expect("get");
        let metadata = object.metadata().cloned().unwrap_or_default();
        let raw = object.body.collect().await.expect("body").into_bytes();
        let mut plain = Vec::new();
        flate2::read::GzDecoder::new(&raw[..])
            .read_to_end(&mut plain)
            .expect("gzip");
        out.push((key.to_owned(), plain, metadata));
    }
    out
}

#[tokio::test]
async fn calls_are_delivered_once_with_a_digest_that_verifies() {
    let local = LocalCloudTrail::new(Options {
        quotas: common::UNLIMITED_LOCAL,
        delivery_interval: Duration::from_secs(1),
        digest_interval: Duration::from_secs(2),
        ..Options::default()
    });
    let gw = TestGateway::start_with(common::test_config(), local.clone()).await;
    let mut c = gw.client.clone();
    c.create_trail(pb::CreateTrailRequest {
        name: "audit".into(),
        s3_bucket_name: BUCKET.into(),
        enable_log_file_validation: Some(true),
        ..Default::default()
    })
    .await
    .expect("create");
    c.start_logging(pb::StartLoggingRequest {
        name: "audit".into(),
        ..Default::default()
    })
    .await
    .expect("start");
    for _ in 0..3 {
        c.get_trail_status(pb::GetTrailStatusRequest {
            name: "audit".into(),
        })
        .await
        .expect("status");
    }
    let s3 = s3(&local);
    let digest_prefix = "AWSLogs/123456789012/CloudTrail-Digest/us-east-1/";
    // Wait for a digest that lists a log file (deliveries every second, digests every two).
    let mut found = None;
    for _ in 0..100 {
        let digests = objects(&s3, digest_prefix).await;
        if let Some(d) = digests.into_iter().find(|(_, body, _)| {
            serde_json::from_slice::<Value>(body)
                .is_ok_and(|d| d["logFiles"].as_array().is_some_and(|l| !l.is_empty()))
        }) {
            found = Some(d);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (digest_key, digest_bytes, metadata) =
        found.expect("a digest listing a log file within 10 s");
    let digest: Value = serde_json::from_slice(&digest_bytes).expect("json");
    assert_eq!(digest["digestS3Object"], digest_key.as_str());

    // The log files: each call made while logging, each once.
    let logs = objects(&s3, "AWSLogs/123456789012/CloudTrail/us-east-1/").await;
    let mut names: HashMap<String, usize> = HashMap::new();
    let mut ids = std::collections::HashSet::new();
    for (_, plain, _) in &logs {
        let document: Value = serde_json::from_slice(plain).expect("json");
        for record in document["Records"].as_array().expect("Records") {
            assert!(
                ids.insert(record["eventID"].as_str().expect("id").to_owned()),
                "delivered twice"
            );
            *names
                .entry(record["eventName"].as_str().expect("name").to_owned())
                .or_default() += 1;
        }
    }
    assert_eq!(
        names.get("CreateTrail"),
        None,
        "made before logging started"
    );
    assert_eq!(names.get("StartLogging"), Some(&1));
    assert_eq!(names.get("GetTrailStatus"), Some(&3), "{names:?}");

    // Each file the digest lists is there with the hash it says.
    for file in digest["logFiles"].as_array().expect("logFiles") {
        let key = file["s3Object"].as_str().expect("key");
        let (_, plain, _) = logs
            .iter()
            .find(|(k, _, _)| k == key)
            .expect("listed file exists");
        assert_eq!(
            file["hashValue"],
            format!("{:x}", Sha256::digest(plain)).as_str()
        );
    }

    // The signature verifies with the key the gateway's ListPublicKeys returns.
    let keys = c
        .list_public_keys(pb::ListPublicKeysRequest::default())
        .await
        .expect("keys")
        .into_inner();
    let key = keys
        .public_key_list
        .iter()
        .find(|k| {
            k.fingerprint
                == digest["digestPublicKeyFingerprint"]
                    .as_str()
                    .unwrap_or_default()
        })
        .expect("the digest's key is listed");
    let to_sign = format!(
        "{}\n{BUCKET}/{digest_key}\n{:x}\n{}",
        digest["digestEndTime"].as_str().expect("end"),
        Sha256::digest(&digest_bytes),
        digest["previousDigestSignature"].as_str().unwrap_or("null"),
    );
    let signature: Vec<u8> = (0..metadata["signature"].len() / 2)
        .map(|i| u8::from_str_radix(&metadata["signature"][2 * i..2 * i + 2], 16).expect("hex"))
        .collect();
    UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, &key.value)
        .verify(to_sign.as_bytes(), &signature)
        .expect("the digest's signature verifies");
    assert_eq!(metadata["signature-algorithm"], "SHA256withRSA");

    // GetTrailStatus reports the deliveries.
    let status = c
        .get_trail_status(pb::GetTrailStatusRequest {
            name: "audit".into(),
        })
        .await
        .expect("status")
        .into_inner();
    assert!(status.latest_delivery_time.is_some());
    assert!(status.latest_digest_delivery_time.is_some());
    assert!(status.latest_delivery_error.is_empty());
}
