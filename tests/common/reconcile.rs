//! The reconcile scenario a control plane lives: 20 trails over two accounts and two Regions (the
//! shipped `deploy/examples/accounts.toml`, five trails in each account and Region: CloudTrail's
//! limit), applied from scratch, applied again, changed out of band, applied again; and a poll of
//! all 20. Shared by the test (`tests/reconcile.rs`) and the benchmark (`benches/gateway`), which
//! prints the upstream calls each step costs.

use cloudtrail_gateway::{
    local::LocalCloudTrail,
    pb::{self, cloud_trail_service_client::CloudTrailServiceClient},
};
use tonic::{Request, Response, Status, transport::Channel};

pub type Client = CloudTrailServiceClient<Channel>;

pub const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/examples/accounts.toml");
pub const TOKEN: &str = "platform-token";
pub const TARGETS: [(&str, &str); 4] = [
    ("111111111111", "us-east-1"),
    ("111111111111", "eu-west-1"),
    ("222222222222", "us-east-1"),
    ("222222222222", "eu-west-1"),
];
pub const TRAILS: usize = 20;

/// CloudTrail's write operations (what "no write call" counts).
pub const WRITES: [&str; 9] = [
    "CreateTrail",
    "UpdateTrail",
    "DeleteTrail",
    "StartLogging",
    "StopLogging",
    "PutEventSelectors",
    "PutInsightSelectors",
    "AddTags",
    "RemoveTags",
];

/// Trail `i`'s account and Region.
pub fn target(i: usize) -> (&'static str, &'static str) {
    TARGETS[i % TARGETS.len()]
}

pub fn name(i: usize) -> String {
    format!("reconciled-{i:02}")
}

/// `message` as the platform's call to trail `i`'s account and Region.
pub fn to<T>(i: usize, message: T) -> Request<T> {
    let (account, region) = target(i);
    let mut request = Request::new(message);
    let metadata = request.metadata_mut();
    let bearer = format!("Bearer {TOKEN}");
    for (key, value) in [
        ("authorization", bearer.as_str()),
        ("x-cloudtrail-account", account),
        ("x-cloudtrail-region", region),
    ] {
        if let Ok(value) = value.parse() {
            metadata.insert(key, value);
        }
    }
    request
}

fn selector(rw: pb::ReadWriteType, management: bool, values: &[String]) -> pb::EventSelector {
    pb::EventSelector {
        read_write_type: rw.into(),
        include_management_events: Some(management),
        data_resources: if values.is_empty() {
            vec![]
        } else {
            vec![pb::DataResource {
                r#type: "AWS::S3::Object".into(),
                values: values.to_vec(),
            }]
        },
        exclude_management_event_sources: vec![],
    }
}

fn tag(key: &str, value: &str) -> pb::Tag {
    pb::Tag {
        key: key.into(),
        value: Some(value.into()),
    }
}

/// Trail `i` as it should be: its settings, logging on, two event selectors, one Insights type,
/// two tags.
pub fn desired(i: usize) -> pb::ApplyTrailRequest {
    pb::ApplyTrailRequest {
        trail: Some(pb::CreateTrailRequest {
            name: name(i),
            s3_bucket_name: "audit-logs".into(),
            s3_key_prefix: format!("org/{i}"),
            enable_log_file_validation: Some(true),
            include_global_service_events: Some(true),
            ..Default::default()
        }),
        logging: Some(true),
        event_selectors: Some(pb::EventSelectorList {
            selectors: vec![
                selector(pb::ReadWriteType::WriteOnly, true, &[]),
                selector(
                    pb::ReadWriteType::ReadOnly,
                    false,
                    &[
                        format!("arn:aws:s3:::data-{i}/"),
                        "arn:aws:s3:::shared/".into(),
                    ],
                ),
            ],
        }),
        insight_selectors: Some(pb::InsightSelectorList {
            selectors: vec![pb::InsightSelector {
                insight_type: pb::InsightType::ApiCallRateInsight.into(),
            }],
        }),
        tags: Some(pb::TagList {
            tags: vec![tag("team", "platform"), tag("index", &i.to_string())],
        }),
        ..Default::default()
    }
}

/// Applies every trail's desired state; the answers in trail order.
pub async fn apply_all(c: &mut Client) -> Result<Vec<pb::ApplyTrailResponse>, Status> {
    let mut answers = Vec::with_capacity(TRAILS);
    for i in 0..TRAILS {
        answers.push(c.apply_trail(to(i, desired(i))).await?.into_inner());
    }
    Ok(answers)
}

/// The same, the four accounts and Regions side by side (each has its own quotas).
pub async fn apply_by_target(c: &Client) -> Result<Vec<pb::ApplyTrailResponse>, Status> {
    let tasks: Vec<_> = (0..TARGETS.len())
        .map(|t| {
            let mut c = c.clone();
            tokio::spawn(async move {
                let mut answers = Vec::new();
                for i in (t..TRAILS).step_by(TARGETS.len()) {
                    answers.push((i, c.apply_trail(to(i, desired(i))).await?.into_inner()));
                }
                Ok::<_, Status>(answers)
            })
        })
        .collect();
    let mut answers = Vec::with_capacity(TRAILS);
    for task in tasks {
        let done = task
            .await
            .map_err(|e| Status::internal(format!("task: {e}")))??;
        answers.extend(done);
    }
    answers.sort_by_key(|(i, _)| *i);
    Ok(answers.into_iter().map(|(_, a)| a).collect())
}

/// What a poller reads of each trail: its settings, status and event selectors.
pub async fn poll_all(c: &mut Client) -> Result<(), Status> {
    for i in 0..TRAILS {
        let name = name(i);
        c.get_trail(to(i, pb::GetTrailRequest { name: name.clone() }))
            .await?;
        c.get_trail_status(to(i, pb::GetTrailStatusRequest { name: name.clone() }))
            .await?;
        c.get_event_selectors(to(i, pb::GetEventSelectorsRequest { trail_name: name }))
            .await?;
    }
    Ok(())
}

/// Out of band, with the plain RPCs: four trails drift, one way each. Returns what ApplyTrail
/// should then report, by trail: (index, changed field).
pub async fn drift(c: &mut Client) -> Result<Vec<(usize, String)>, Status> {
    c.update_trail(to(
        3,
        pb::UpdateTrailRequest {
            name: name(3),
            s3_key_prefix: Some("drifted".into()),
            ..Default::default()
        },
    ))
    .await?;
    c.stop_logging(to(
        7,
        pb::StopLoggingRequest {
            name: name(7),
            ..Default::default()
        },
    ))
    .await?;
    let arn = arn(c, 11).await?;
    c.add_tags(to(
        11,
        pb::AddTagsRequest {
            resource_id: arn,
            tags_list: vec![tag("extra", "x")],
            ..Default::default()
        },
    ))
    .await?;
    c.put_event_selectors(to(
        15,
        pb::PutEventSelectorsRequest {
            trail_name: name(15),
            event_selectors: vec![selector(pb::ReadWriteType::All, true, &[])],
            ..Default::default()
        },
    ))
    .await
    .map(|_: Response<_>| ())?;
    Ok(vec![
        (3, "s3_key_prefix".into()),
        (7, "logging".into()),
        (11, "tags.extra".into()),
        (15, "event_selectors".into()),
    ])
}

pub async fn arn(c: &mut Client, i: usize) -> Result<String, Status> {
    let trail = c
        .get_trail(to(i, pb::GetTrailRequest { name: name(i) }))
        .await?
        .into_inner()
        .trail
        .unwrap_or_default();
    Ok(trail.trail_arn)
}

/// How many calls of each kind the embedded CloudTrail served so far: (writes, all).
pub fn served(local: &LocalCloudTrail) -> (usize, usize) {
    // Not DescribeTrails: the health probe's, now and then.
    const READS: [&str; 8] = [
        "GetTrail",
        "ListTrails",
        "GetTrailStatus",
        "GetEventSelectors",
        "GetInsightSelectors",
        "ListTags",
        "LookupEvents",
        "ListPublicKeys",
    ];
    let writes: usize = WRITES.iter().map(|op| local.served(op).len()).sum();
    let reads: usize = READS.iter().map(|op| local.served(op).len()).sum();
    (writes, writes + reads)
}
