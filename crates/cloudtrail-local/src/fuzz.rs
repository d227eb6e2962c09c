//! Property tests: whatever arrives — arbitrary bytes as a body, arbitrary JSON for any operation,
//! arbitrary files to load — is answered with an error or served, never a panic. A fixed case count,
//! so CI runs the same work each time (`PROPTEST_CASES` raises it).

use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_types::body::SdkBody;
use proptest::prelude::*;
use serde_json::Value;

use crate::{LocalCloudTrail, Options, Quotas, operations::OPERATIONS, s3, wire};

fn request(operation: &str, body: Vec<u8>, auth: Option<String>) -> HttpRequest {
    let mut r = HttpRequest::new(SdkBody::from(body));
    let _ = r.set_uri("https://cloudtrail.us-east-1.amazonaws.com/");
    r.headers_mut()
        .insert("x-amz-target", format!("CloudTrail_20131101.{operation}"));
    if let Some(auth) = auth {
        // Only what HTTP can carry: the SDK never builds another header.
        let _ = r.headers_mut().try_insert("authorization", auth);
    }
    r
}

fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        any::<i64>().prop_map(|i| Value::Number(i.into())),
        ".{0,40}".prop_map(Value::String),
        "arn:aws:cloudtrail:us-east-1:123456789012:trail/[a-z]{1,8}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            proptest::collection::btree_map(
                prop_oneof![
                    Just("Name".to_owned()),
                    Just("TrailName".to_owned()),
                    Just("S3BucketName".to_owned()),
                    Just("TagsList".to_owned()),
                    Just("ResourceId".to_owned()),
                    Just("ResourceIdList".to_owned()),
                    Just("EventSelectors".to_owned()),
                    Just("AdvancedEventSelectors".to_owned()),
                    Just("LookupAttributes".to_owned()),
                    Just("StartTime".to_owned()),
                    Just("EndTime".to_owned()),
                    Just("MaxResults".to_owned()),
                    Just("NextToken".to_owned()),
                    Just("IsMultiRegionTrail".to_owned()),
                    ".{0,12}",
                ],
                inner,
                0..8,
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn cloudtrail() -> LocalCloudTrail {
    LocalCloudTrail::new(Options {
        quotas: Quotas {
            lookup: 1e9,
            read: 1e9,
            write: 1e9,
        },
        ..Options::default()
    })
}

/// An S3 request: `method` on `path?query` (both as arbitrary as a URI allows), with the headers
/// the embedded S3 reads.
fn s3_request(
    method: &str,
    path: &str,
    query: &str,
    headers: &[(String, String)],
    body: Vec<u8>,
) -> HttpRequest {
    let mut r = HttpRequest::new(SdkBody::from(body));
    let _ = r.set_method(method);
    if r.set_uri(format!("http://127.0.0.1:9000/{path}?{query}"))
        .is_err()
    {
        let _ = r.set_uri("http://127.0.0.1:9000/fuzz");
    }
    for (name, value) in headers {
        let _ = r.headers_mut().try_insert(name.clone(), value.clone());
    }
    r
}

/// 32 cases, unless `PROPTEST_CASES` asks for another number.
fn digest_cases() -> ProptestConfig {
    let mut config = cases();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = 32;
    }
    config
}

/// 256 cases, unless `PROPTEST_CASES` asks for another number.
fn cases() -> ProptestConfig {
    let mut config = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = 256;
    }
    config
}

proptest! {
    #![proptest_config(cases())]

    #[test]
    fn arbitrary_bytes_are_refused_not_panicked_on(
        op in 0..OPERATIONS.len() + 1,
        body in proptest::collection::vec(any::<u8>(), 0..300),
        auth in proptest::option::of(".{0,120}"),
    ) {
        let operation = OPERATIONS.get(op).map_or("Nope", |o| o.name);
        let cloudtrail = cloudtrail();
        let request = request(operation, body, auth);
        if let Ok(call) = wire::parse(&request) {
            let _ = cloudtrail.inner.serve(&call, "id", None);
        }
    }

    #[test]
    fn arbitrary_json_for_any_operation_is_served_or_refused(
        calls in proptest::collection::vec((0..OPERATIONS.len(), json()), 1..12),
    ) {
        let cloudtrail = cloudtrail();
        for (op, body) in calls {
            let operation = OPERATIONS[op].name;
            let request = request(operation, body.to_string().into_bytes(), None);
            let call = wire::parse(&request).map_err(|e| TestCaseError::fail(e.message))?;
            if let Err(e) = cloudtrail.inner.serve(&call, "id", None) {
                prop_assert!(!e.code.is_empty() && e.http_status >= 400);
            }
        }
    }

    #[test]
    fn arbitrary_log_files_are_errors_not_panics(
        bytes in prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..400),
            json().prop_map(|v| serde_json::json!({"Records": [v]}).to_string().into_bytes()),
            json().prop_map(|v| v.to_string().into_bytes()),
        ],
        gzip in any::<bool>(),
    ) {
        let dir = std::env::temp_dir().join(format!("ctl-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let path = dir.join(if gzip { "f.json.gz" } else { "f.json" });
        let data = if gzip {
            use std::io::Write;
            let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            encoder.write_all(&bytes).map_err(|e| TestCaseError::fail(e.to_string()))?;
            encoder.finish().map_err(|e| TestCaseError::fail(e.to_string()))?
        } else {
            bytes
        };
        std::fs::write(&path, data).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let cloudtrail = cloudtrail();
        let _ = cloudtrail.load_logs(&path);
    }

    #[test]
    fn arbitrary_s3_requests_get_s3s_answers_not_panics(
        calls in proptest::collection::vec((
            prop_oneof![Just("GET"), Just("PUT"), Just("HEAD"), Just("DELETE"), Just("POST")],
            prop_oneof![Just("fuzz".to_owned()), "fuzz/[a-z%/ü+ ]{0,20}", ".{0,40}", "[a-z]{1,2}/[a-z]{0,3}"],
            prop_oneof![
                Just(String::new()),
                "list-type=2&prefix=[a-z/]{0,4}&delimiter=[/a]{0,1}&max-keys=[-0-9]{0,5}",
                "continuation-token=.{0,12}&start-after=[a-z]{0,3}",
                "marker=[a-z]{0,3}&encoding-type=url",
                "location|uploads|tagging|x-id=PutObject",
                ".{0,20}",
            ],
            proptest::collection::vec((
                prop_oneof![Just("range".to_owned()), Just("x-amz-content-sha256".to_owned()),
                            Just("content-encoding".to_owned()), Just("x-amz-meta-k".to_owned()),
                            Just("x-amz-copy-source".to_owned())],
                prop_oneof!["bytes=[-0-9,]{0,8}", Just("STREAMING-UNSIGNED-PAYLOAD-TRAILER".to_owned()),
                            Just("aws-chunked".to_owned()), ".{0,12}"],
            ), 0..3),
            proptest::collection::vec(any::<u8>(), 0..64),
        ), 1..12),
    ) {
        let mut buckets = s3::Buckets::new(1 << 12);
        let _ = buckets.create("fuzz", "us-east-1", aws_smithy_types::DateTime::from_secs(1));
        for (method, path, query, headers, body) in calls {
            let request = s3_request(method, &path, &query, &headers, body);
            let answer = s3::serve(&mut buckets, &request, "us-east-1".into(), "id");
            let status = answer.status().as_u16();
            prop_assert!((200..600).contains(&status));
            prop_assert!(buckets.held() <= 1 << 12);
        }
    }
}

// Each case makes a Region's RSA key pair for its digest: fewer cases (PROPTEST_CASES raises them).
proptest! {
    #![proptest_config(digest_cases())]

    #[test]
    fn arbitrary_events_are_delivered_or_left_out_not_panicked_on(
        events in proptest::collection::vec(json(), 1..8),
    ) {
        let cloudtrail = cloudtrail();
        let create = request(
            "CreateTrail",
            br#"{"Name": "fuzz", "S3BucketName": "fuzz-logs", "EnableLogFileValidation": true}"#.to_vec(),
            None,
        );
        let call = wire::parse(&create).map_err(|e| TestCaseError::fail(e.message))?;
        cloudtrail.inner.serve(&call, "id", None).map_err(|e| TestCaseError::fail(e.message))?;
        let start = request("StartLogging", br#"{"Name": "fuzz"}"#.to_vec(), None);
        let call = wire::parse(&start).map_err(|e| TestCaseError::fail(e.message))?;
        cloudtrail.inner.serve(&call, "id", None).map_err(|e| TestCaseError::fail(e.message))?;
        let records: Vec<Value> = events
            .into_iter()
            .map(|mut e| {
                if let Some(map) = e.as_object_mut() {
                    map.insert("awsRegion".into(), "us-east-1".into());
                    map.insert("eventCategory".into(), "Management".into());
                }
                e
            })
            .collect();
        cloudtrail.add_events("123456789012", &records);
        let (logs, digests) = cloudtrail.deliver_now(true);
        prop_assert!(logs >= 1 && digests == 1);
    }
}
