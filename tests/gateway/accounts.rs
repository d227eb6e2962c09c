//! Many accounts and Regions through one gateway, each call made as its caller: the shipped example
//! (`deploy/examples/accounts.toml`) on the embedded CloudTrail and its STS, through the generated
//! client. Targets by metadata and by ARN, scopes, the caller's name in CloudTrail's own records,
//! role sessions cached and renewed, STS failures, quotas per account.

use crate::common;

use std::time::Duration;

use cloudtrail_gateway::{
    config::Config,
    local::{Fault, LocalCloudTrail, Role},
    pb::{self, LookupAttributeKey},
};
use common::{Client, TestGateway, UNLIMITED_ARGS, create_request, procs::GatewayProcess};
use tonic::{Code, Request, Status};
use tonic_types::StatusExt;

const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/examples/accounts.toml");
const A: &str = "111111111111";
const B: &str = "222222222222";
const PLATFORM: &str = "platform-token";
const TEAM_A: &str = "team-a-token";

/// The example, quotas raised except those `extra` sets.
fn example_config(extra: &[&str]) -> Config {
    let mut args = vec!["cloudtrail-gateway", "--config", EXAMPLE];
    for pair in UNLIMITED_ARGS.chunks(2) {
        if !extra.contains(&pair[0]) {
            args.extend(pair);
        }
    }
    args.extend(extra);
    Config::from_args_of(args).expect("the example configuration")
}

/// The example on a fresh embedded CloudTrail, once ready: its health probe's first call (and its
/// role session) made, so the counts a test reads are its own calls'.
async fn example_gateway_with(extra: &[&str]) -> (TestGateway, LocalCloudTrail) {
    let local = common::test_local();
    let gateway = TestGateway::start_with(example_config(extra), local.clone()).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while gateway.http_get("/readyz").await.0 != 200 {
        assert!(tokio::time::Instant::now() < deadline, "not ready in 10 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    (gateway, local)
}

async fn example_gateway() -> (TestGateway, LocalCloudTrail) {
    example_gateway_with(&[]).await
}

/// `message` as `token`'s call, to `account` and `region` when given.
fn to<T>(token: &str, account: Option<&str>, region: Option<&str>, message: T) -> Request<T> {
    let mut request = Request::new(message);
    let metadata = request.metadata_mut();
    metadata.insert(
        "authorization",
        format!("Bearer {token}").parse().expect("header"),
    );
    if let Some(account) = account {
        metadata.insert("x-cloudtrail-account", account.parse().expect("header"));
    }
    if let Some(region) = region {
        metadata.insert("x-cloudtrail-region", region.parse().expect("header"));
    }
    request
}

async fn trail_names(c: &mut Client, token: &str, account: &str, region: &str) -> Vec<String> {
    let request = to(
        token,
        Some(account),
        Some(region),
        pb::DescribeTrailsRequest::default(),
    );
    common::trail_names(c, request).await
}

fn lookup(name: &str) -> pb::LookupEventsRequest {
    pb::LookupEventsRequest {
        lookup_attributes: vec![pb::LookupAttribute {
            attribute_key: LookupAttributeKey::EventName.into(),
            attribute_value: name.into(),
        }],
        ..Default::default()
    }
}

fn reason(status: &Status) -> String {
    status
        .get_error_details()
        .error_info()
        .map(|i| i.reason.clone())
        .unwrap_or_default()
}

#[tokio::test]
async fn calls_go_where_they_name_and_cloudtrail_records_the_caller() {
    let (gw, _local) = example_gateway().await;
    let mut c = gw.client.clone();
    let created = c
        .create_trail(to(
            PLATFORM,
            Some(B),
            Some("eu-west-1"),
            create_request("org-trail"),
        ))
        .await
        .expect("CreateTrail in B, eu-west-1")
        .into_inner()
        .trail
        .expect("trail");
    let arn = "arn:aws:cloudtrail:eu-west-1:222222222222:trail/org-trail";
    assert_eq!(created.trail_arn, arn);
    assert_eq!(
        trail_names(&mut c, PLATFORM, B, "eu-west-1").await,
        ["org-trail"]
    );
    assert!(
        trail_names(&mut c, PLATFORM, A, "eu-west-1")
            .await
            .is_empty()
    );
    assert!(
        trail_names(&mut c, PLATFORM, B, "us-east-1")
            .await
            .is_empty()
    );
    // The ARN routes the call by itself: no metadata needed.
    let status = c
        .get_trail_status(to(
            PLATFORM,
            None,
            None,
            pb::GetTrailStatusRequest { name: arn.into() },
        ))
        .await
        .expect("GetTrailStatus by ARN, from the default target");
    assert_eq!(status.into_inner().is_logging, Some(false));

    // CloudTrail's own record of the change names the caller, as AWS records an assumed role.
    let events = c
        .lookup_events(to(
            PLATFORM,
            Some(B),
            Some("eu-west-1"),
            lookup("CreateTrail"),
        ))
        .await
        .expect("LookupEvents")
        .into_inner()
        .events;
    let [event] = events.as_slice() else {
        panic!("one CreateTrail: {events:?}");
    };
    assert_eq!(
        event.username, "platform",
        "LookupEvents' Username: the session name"
    );
    let record: serde_json::Value =
        serde_json::from_str(&event.cloud_trail_event).expect("CloudTrailEvent JSON");
    let who = &record["userIdentity"];
    assert_eq!(who["type"], "AssumedRole");
    assert_eq!(
        who["arn"],
        "arn:aws:sts::222222222222:assumed-role/cloudtrail-gateway/platform"
    );
    assert_eq!(who["sessionContext"]["sourceIdentity"], "platform");
    assert_eq!(who["accountId"], B);
    // STS recorded the AssumeRole in B (from the gateway's STS Region, the default us-east-1).
    let assumed = c
        .lookup_events(to(
            PLATFORM,
            Some(B),
            Some("us-east-1"),
            lookup("AssumeRole"),
        ))
        .await
        .expect("LookupEvents")
        .into_inner()
        .events;
    assert!(
        assumed.iter().any(|e| e
            .cloud_trail_event
            .contains("\"sourceIdentity\":\"platform\"")
            || e.cloud_trail_event
                .contains("\"SourceIdentity\":\"platform\"")),
        "{assumed:?}"
    );
}

#[tokio::test]
async fn principals_stay_within_their_scope() {
    let (gw, _local) = example_gateway().await;
    let mut c = gw.client.clone();
    // team-a reads A (its default target) in either Region...
    for region in ["us-east-1", "eu-west-1"] {
        trail_names(&mut c, TEAM_A, A, region).await;
    }
    c.describe_trails(to(TEAM_A, None, None, pb::DescribeTrailsRequest::default()))
        .await
        .expect("team-a in the default account");
    // ...and nothing in B.
    let denied = c
        .describe_trails(to(
            TEAM_A,
            Some(B),
            None,
            pb::DescribeTrailsRequest::default(),
        ))
        .await
        .expect_err("team-a in B");
    assert_eq!(denied.code(), Code::PermissionDenied);
    for part in ["team-a", B, "us-east-1"] {
        assert!(denied.message().contains(part), "{}", denied.message());
    }
    assert_eq!(reason(&denied), "TargetNotPermitted");
    // By ARN too: the ARN's account is checked like the metadata's.
    let by_arn = c
        .get_trail_status(to(
            TEAM_A,
            None,
            None,
            pb::GetTrailStatusRequest {
                name: "arn:aws:cloudtrail:us-east-1:222222222222:trail/x".into(),
            },
        ))
        .await
        .expect_err("team-a by an ARN in B");
    assert_eq!(by_arn.code(), Code::PermissionDenied);
    // A reader writes nowhere.
    let write = c
        .create_trail(to(TEAM_A, Some(A), None, create_request("t")))
        .await
        .expect_err("team-a writes");
    assert_eq!(write.code(), Code::PermissionDenied);
}

#[tokio::test]
async fn malformed_or_unserved_targets_are_refused_and_nothing_is_sent() {
    let (gw, local) = example_gateway().await;
    let mut c = gw.client.clone();
    let status = |account: Option<&str>, region: Option<&str>, name: &str| {
        to(
            PLATFORM,
            account,
            region,
            pb::GetTrailStatusRequest { name: name.into() },
        )
    };
    let sent_before = (
        local.served("GetTrailStatus").len(),
        local.served("AssumeRole").len(),
    );

    let short = c
        .get_trail_status(status(Some("22222222222"), None, "t"))
        .await
        .expect_err("11 digits");
    assert_eq!(short.code(), Code::InvalidArgument);
    assert_eq!(common::violations(&short), ["x-cloudtrail-account"]);
    let mars = c
        .get_trail_status(status(None, Some("mars"), "t"))
        .await
        .expect_err("not a Region");
    assert_eq!(common::violations(&mars), ["x-cloudtrail-region"]);
    let mut twice = status(Some(A), None, "t");
    twice
        .metadata_mut()
        .append("x-cloudtrail-account", B.parse().expect("header"));
    let twice = c.get_trail_status(twice).await.expect_err("two values");
    assert_eq!(common::violations(&twice), ["x-cloudtrail-account"]);

    let unknown = c
        .get_trail_status(status(Some("333333333333"), None, "t"))
        .await
        .expect_err("an account not configured");
    assert_eq!(unknown.code(), Code::NotFound);
    assert!(unknown.message().contains("333333333333"));
    let region = c
        .get_trail_status(status(Some(A), Some("ap-south-1"), "t"))
        .await
        .expect_err("a Region not enabled");
    assert_eq!(region.code(), Code::FailedPrecondition);
    assert!(region.message().contains("ap-south-1"));

    let arn_b = "arn:aws:cloudtrail:eu-west-1:222222222222:trail/t";
    let mismatch = c
        .get_trail_status(status(Some(A), None, arn_b))
        .await
        .expect_err("metadata and ARN disagree");
    assert_eq!(mismatch.code(), Code::InvalidArgument);
    assert_eq!(reason(&mismatch), "TargetMismatch");
    let partition = c
        .get_trail_status(status(
            None,
            None,
            "arn:aws-cn:cloudtrail:cn-north-1:222222222222:trail/t",
        ))
        .await
        .expect_err("another partition");
    assert_eq!(partition.code(), Code::InvalidArgument);
    assert!(partition.message().contains("aws-cn"));

    assert_eq!(
        (
            local.served("GetTrailStatus").len(),
            local.served("AssumeRole").len()
        ),
        sent_before,
        "nothing reached CloudTrail or STS"
    );
}

#[tokio::test]
async fn one_accounts_spent_lookup_quota_does_not_slow_another_account() {
    let (gw, _local) = example_gateway_with(&["--lookup-rate", "1"]).await;
    let mut c = gw.client.clone();
    let within = |mut request: Request<pb::LookupEventsRequest>| {
        request.set_timeout(Duration::from_millis(400));
        request
    };
    c.lookup_events(to(PLATFORM, Some(A), None, lookup("one")))
        .await
        .expect("A's slot");
    // A's next slot is a second away: a call to A that cannot wait that long is refused...
    let refused = c
        .lookup_events(within(to(PLATFORM, Some(A), None, lookup("two"))))
        .await
        .expect_err("A's quota is spent");
    assert_eq!(refused.code(), Code::ResourceExhausted);
    assert!(
        refused.message().contains("111111111111/us-east-1"),
        "{}",
        refused.message()
    );
    // ...while B, and A in another Region, have slots of their own.
    c.lookup_events(within(to(PLATFORM, Some(B), None, lookup("three"))))
        .await
        .expect("B is not behind A");
    c.lookup_events(within(to(
        PLATFORM,
        Some(A),
        Some("eu-west-1"),
        lookup("four"),
    )))
    .await
    .expect("A's other Region is not behind A's us-east-1");
}

#[tokio::test]
async fn sessions_are_cached_shared_and_renewed_when_refused() {
    let (gw, local) = example_gateway().await;
    let mut c = gw.client.clone();
    let assumed = || local.served("AssumeRole").len();
    let before = assumed();
    // Concurrent first calls of one caller to one account share one STS call.
    let calls: Vec<_> = (0..10)
        .map(|_| {
            let mut c = c.clone();
            tokio::spawn(async move {
                c.describe_trails(to(
                    PLATFORM,
                    Some(B),
                    None,
                    pb::DescribeTrailsRequest::default(),
                ))
                .await
            })
        })
        .collect();
    for call in calls {
        call.await.expect("task").expect("DescribeTrails");
    }
    assert_eq!(
        assumed(),
        before + 1,
        "one AssumeRole for ten concurrent calls"
    );
    for _ in 0..10 {
        trail_names(&mut c, PLATFORM, B, "eu-west-1").await;
    }
    assert_eq!(
        assumed(),
        before + 1,
        "the session serves every Region of B"
    );
    trail_names(&mut c, PLATFORM, A, "us-east-1").await;
    assert_eq!(assumed(), before + 2, "another account, another session");

    // Revoked mid-life: CloudTrail answers ExpiredTokenException; the gateway drops the session,
    // assumes a new one and the call succeeds.
    local.expire_sessions();
    trail_names(&mut c, PLATFORM, B, "us-east-1").await;
    assert_eq!(assumed(), before + 3);
}

#[tokio::test]
async fn sts_failures_get_clear_statuses_and_never_the_gateways_identity() {
    let (gw, local) = example_gateway().await;
    let mut c = gw.client.clone();
    let described = || local.served("DescribeTrails").len();
    let describe = |account: &str| {
        to(
            PLATFORM,
            Some(account),
            None,
            pb::DescribeTrailsRequest::default(),
        )
    };

    // Unreachable (every attempt of the SDK's three).
    local.inject(Some("AssumeRole"), 3, Fault::Reset);
    let before = described();
    let unreachable = c.describe_trails(describe(B)).await.expect_err("STS down");
    assert_eq!(unreachable.code(), Code::Unavailable, "{unreachable:?}");
    assert_eq!(reason(&unreachable), "StsUnreachable");
    assert!(unreachable.get_details_retry_info().is_some());

    // Throttled.
    local.inject(
        Some("AssumeRole"),
        3,
        Fault::Error {
            code: "Throttling".into(),
            message: "Rate exceeded".into(),
        },
    );
    let throttled = c
        .describe_trails(describe(B))
        .await
        .expect_err("STS throttles");
    assert_eq!(throttled.code(), Code::Unavailable);
    assert_eq!(reason(&throttled), "StsThrottled");
    assert!(throttled.get_details_retry_info().is_some());

    // Refused: the role no longer trusts the gateway to set a source identity.
    let strict = Role {
        external_id: Some("platform-example".into()),
        allow_source_identity: false,
        ..Role::new(B, "cloudtrail-gateway")
    };
    local.add_role(strict.clone());
    let denied = c
        .describe_trails(describe(B))
        .await
        .expect_err("trust refused");
    assert_eq!(denied.code(), Code::PermissionDenied);
    assert_eq!(reason(&denied), "AssumeRoleDenied");
    assert!(
        denied
            .message()
            .contains("arn:aws:iam::222222222222:role/cloudtrail-gateway")
    );
    assert!(denied.message().contains("trust policy"));
    assert_eq!(
        described(),
        before,
        "nothing was sent to CloudTrail as anyone else"
    );

    // A session that expires mid-life and cannot be renewed: refused, not sent as the gateway.
    trail_names(&mut c, PLATFORM, A, "us-east-1").await;
    local.add_role(Role {
        allow_source_identity: false,
        ..Role::new(A, "cloudtrail-gateway")
    });
    local.expire_sessions();
    let before = described();
    let expired = c
        .describe_trails(describe(A))
        .await
        .expect_err("renewal refused");
    assert_eq!(expired.code(), Code::PermissionDenied, "{expired:?}");
    assert_eq!(described(), before);
}

/// The audit log: one record per change (refusals included), none for reads by default, never a
/// token; and the example starts as the README says.
#[tokio::test]
async fn changes_are_audited_with_who_where_and_what() {
    let gw = GatewayProcess::start(
        &["--config", EXAMPLE],
        "warn,cloudtrail_gateway::audit=info,cloudtrail_gateway::access=info",
    )
    .await;
    let mut c = gw.client().await;
    c.create_trail(to(
        PLATFORM,
        Some(B),
        Some("eu-west-1"),
        create_request("audited"),
    ))
    .await
    .expect("CreateTrail");
    c.create_trail(to(TEAM_A, None, None, create_request("refused")))
        .await
        .expect_err("a reader");
    c.describe_trails(to(
        PLATFORM,
        None,
        None,
        pb::DescribeTrailsRequest::default(),
    ))
    .await
    .expect("a read");
    // A read refused for where it goes is a security event: audited, reads or not.
    c.describe_trails(to(
        TEAM_A,
        Some(B),
        None,
        pb::DescribeTrailsRequest::default(),
    ))
    .await
    .expect_err("team-a may read only its own account");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let log = gw.log();
    let audit: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("cloudtrail_gateway::audit"))
        .collect();
    let created = audit
        .iter()
        .find(|l| l.contains("trail=audited"))
        .unwrap_or_else(|| panic!("no record of the CreateTrail:\n{log}"));
    for field in [
        "principal=platform",
        "auth=token",
        "account=222222222222",
        "region=eu-west-1",
        "rpc=CreateTrail",
        "outcome=ok",
        "code=OK",
        "request_id=",
        "aws_request_id=",
    ] {
        assert!(created.contains(field), "{field} missing: {created}");
    }
    assert!(!created.contains("aws_request_id=-"), "{created}");
    // Refused by the authorization layer: recorded too.
    assert!(
        audit.iter().any(|l| l.contains("principal=team-a")
            && l.contains("rpc=CreateTrail")
            && l.contains("outcome=error")
            && l.contains("code=PermissionDenied")),
        "{audit:?}"
    );
    assert!(
        created.contains("answer=cloudtrail") && created.contains("principal_id=token:platform"),
        "{created}"
    );
    // Reads are not audited by default; a refused one is.
    let reads: Vec<&&str> = audit
        .iter()
        .filter(|l| l.contains("rpc=DescribeTrails"))
        .collect();
    assert_eq!(reads.len(), 1, "{audit:?}");
    for field in [
        "principal=team-a",
        "account=222222222222",
        "code=PermissionDenied",
        "answer=-",
    ] {
        assert!(reads[0].contains(field), "{field} missing: {}", reads[0]);
    }
    // The access log names whom the authorization layer refused.
    assert!(
        log.lines().any(|l| l.contains("cloudtrail_gateway::access")
            && l.contains("method=CreateTrail")
            && l.contains("principal=team-a")
            && l.contains("PermissionDenied")),
        "{log}"
    );
    assert!(
        !log.contains(PLATFORM) && !log.contains(TEAM_A),
        "a token in the log"
    );
}
