//! The embedded S3 through a plain `aws-sdk-s3` client: what a reader of trail logs does with a
//! bucket (write, read, ranges, metadata, listings page by page) and S3's errors.

use aws_sdk_s3::{
    Client,
    config::{BehaviorVersion, Credentials, Region},
    error::ProvideErrorMetadata,
    primitives::ByteStream,
};
use cloudtrail_local::{LocalCloudTrail, Options};

fn client(local: &LocalCloudTrail, path_style: bool) -> Client {
    let config = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("eu-west-1"))
        .credentials_provider(Credentials::new("AKIAS3TEST", "secret", None, None, "test"))
        .force_path_style(path_style)
        .http_client(local.clone())
        .build();
    Client::from_conf(config)
}

#[tokio::test]
async fn objects_are_written_read_and_listed_as_in_s3() {
    let local = LocalCloudTrail::new(Options::default());
    for path_style in [true, false] {
        let s3 = client(&local, path_style);
        let bucket = if path_style {
            "path-style"
        } else {
            "virtual.hosted"
        };
        s3.create_bucket().bucket(bucket).send().await.unwrap();
        s3.head_bucket().bucket(bucket).send().await.unwrap();
        let body = b"0123456789".to_vec();
        s3.put_object()
            .bucket(bucket)
            .key("AWSLogs/a b+c/ü.json.gz")
            .metadata("signature", "cafe")
            .content_type("application/json")
            .body(ByteStream::from(body.clone()))
            .send()
            .await
            .unwrap();
        let got = s3
            .get_object()
            .bucket(bucket)
            .key("AWSLogs/a b+c/ü.json.gz")
            .send()
            .await
            .unwrap();
        assert_eq!(got.metadata().unwrap()["signature"], "cafe");
        assert_eq!(got.content_type(), Some("application/json"));
        assert_eq!(
            got.body.collect().await.unwrap().into_bytes().as_ref(),
            body
        );
        let part = s3
            .get_object()
            .bucket(bucket)
            .key("AWSLogs/a b+c/ü.json.gz")
            .range("bytes=2-4")
            .send()
            .await
            .unwrap();
        assert_eq!(part.content_range(), Some("bytes 2-4/10"));
        assert_eq!(
            part.body.collect().await.unwrap().into_bytes().as_ref(),
            b"234"
        );
        let head = s3
            .head_object()
            .bucket(bucket)
            .key("AWSLogs/a b+c/ü.json.gz")
            .send()
            .await
            .unwrap();
        assert_eq!(head.content_length(), Some(10));
    }
}

#[tokio::test]
async fn listings_page_with_prefixes_delimiters_and_start_after() {
    let local = LocalCloudTrail::new(Options::default());
    let s3 = client(&local, true);
    s3.create_bucket().bucket("logs").send().await.unwrap();
    let mut keys = Vec::new();
    for day in 1..=3 {
        for n in 0..5 {
            keys.push(format!(
                "AWSLogs/1/CloudTrail/eu-west-1/2026/12/0{day}/f{n}.json.gz"
            ));
        }
    }
    keys.push("other".to_owned());
    for key in &keys {
        s3.put_object()
            .bucket("logs")
            .key(key)
            .body(ByteStream::from_static(b"x"))
            .send()
            .await
            .unwrap();
    }
    // Page by page, 4 at a time, under the prefix.
    let prefix = "AWSLogs/1/CloudTrail/eu-west-1/";
    let listed: Vec<String> = s3
        .list_objects_v2()
        .bucket("logs")
        .prefix(prefix)
        .max_keys(4)
        .into_paginator()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .unwrap()
        .into_iter()
        .flat_map(|page| page.contents.unwrap_or_default())
        .filter_map(|o| o.key)
        .collect();
    assert_eq!(listed, keys[..15]);
    // Days as common prefixes.
    let days = s3
        .list_objects_v2()
        .bucket("logs")
        .prefix("AWSLogs/1/CloudTrail/eu-west-1/2026/12/")
        .delimiter("/")
        .send()
        .await
        .unwrap();
    let days: Vec<&str> = days
        .common_prefixes()
        .iter()
        .filter_map(|p| p.prefix())
        .collect();
    assert_eq!(days.len(), 3);
    assert!(days[0].ends_with("/01/"));
    // start-after the last key seen: only what came after it.
    let after = s3
        .list_objects_v2()
        .bucket("logs")
        .prefix(prefix)
        .start_after(&keys[12])
        .send()
        .await
        .unwrap();
    assert_eq!(after.key_count(), Some(2));
    // ListObjects (V1) with a marker, as the AWS CLI's validator lists digests.
    let v1 = s3
        .list_objects()
        .bucket("logs")
        .marker(&keys[13])
        .send()
        .await
        .unwrap();
    let v1: Vec<&str> = v1.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(v1, [keys[14].as_str(), "other"]);
    // GetBucketLocation.
    let location = s3
        .get_bucket_location()
        .bucket("logs")
        .send()
        .await
        .unwrap();
    assert_eq!(
        location.location_constraint().map(|c| c.as_str()),
        Some("eu-west-1")
    );
}

#[tokio::test]
async fn bad_requests_get_s3s_errors() {
    let local = LocalCloudTrail::new(Options::default());
    let s3 = client(&local, true);
    let code = |e: &dyn ProvideErrorMetadata| e.code().map(str::to_owned);
    let err = s3
        .create_bucket()
        .bucket("Bad_Name")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err).as_deref(), Some("InvalidBucketName"));
    let err = s3
        .get_object()
        .bucket("nope")
        .key("k")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err).as_deref(), Some("NoSuchBucket"));
    s3.create_bucket().bucket("logs").send().await.unwrap();
    let err = s3
        .get_object()
        .bucket("logs")
        .key("k")
        .send()
        .await
        .unwrap_err();
    assert!(err.into_service_error().is_no_such_key());
    let err = s3
        .put_object()
        .bucket("logs")
        .key("k".repeat(1025))
        .body(ByteStream::from_static(b"x"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err).as_deref(), Some("KeyTooLongError"));
    let err = s3
        .head_object()
        .bucket("logs")
        .key("k")
        .send()
        .await
        .unwrap_err();
    assert!(err.into_service_error().is_not_found());
    let err = s3
        .list_objects_v2()
        .bucket("logs")
        .continuation_token("not a token!")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err).as_deref(), Some("InvalidArgument"));
    s3.put_object()
        .bucket("logs")
        .key("k")
        .body(ByteStream::from_static(b"x"))
        .send()
        .await
        .unwrap();
    let err = s3.delete_bucket().bucket("logs").send().await.unwrap_err();
    assert_eq!(code(&err).as_deref(), Some("BucketNotEmpty"));
    s3.delete_object()
        .bucket("logs")
        .key("k")
        .send()
        .await
        .unwrap();
    s3.delete_bucket().bucket("logs").send().await.unwrap();
}
