//! ApplyTrail as a control plane uses it: the reconcile scenario (`common::reconcile`) on the
//! embedded CloudTrail through the shipped accounts example. From scratch with propagation errors
//! on the first attempts: no failure; again: no write, no change; after out-of-band drift: exactly
//! the drift repaired. Also: validate_only, a retried request_id, what is refused.

use crate::common;

use cloudtrail_gateway::{
    config::Config,
    local::{Fault, LocalCloudTrail},
    pb,
};
use common::{
    TestGateway, UNLIMITED_ARGS,
    reconcile::{self, TRAILS, apply_all, desired, served, to},
};
use tonic::Code;

async fn platform() -> (TestGateway, LocalCloudTrail) {
    let mut args = vec!["cloudtrail-gateway", "--config", reconcile::EXAMPLE];
    args.extend(UNLIMITED_ARGS);
    let config = Config::from_args_of(args).expect("the example configuration");
    let local = common::test_local();
    (TestGateway::start_with(config, local.clone()).await, local)
}

#[tokio::test]
async fn twenty_trails_reconciled_from_scratch_again_and_after_drift() {
    let (gw, local) = platform().await;
    let mut c = gw.client.clone();
    // What CloudTrail answers while a new bucket policy, key policy or role propagates, and a new
    // trail not yet visible: on the first attempts of each step.
    for (operation, count, code) in [
        ("CreateTrail", 3, "InsufficientS3BucketPolicyException"),
        ("StartLogging", 2, "ConflictException"),
        ("PutEventSelectors", 1, "TrailNotFoundException"),
        (
            "PutInsightSelectors",
            2,
            "InsufficientEncryptionPolicyException",
        ),
    ] {
        local.inject(Some(operation), count, Fault::error(code));
    }
    let answers = apply_all(&mut c)
        .await
        .expect("no failure despite propagation errors");
    assert_eq!(local.faults_happened(), 8);
    for (i, answer) in answers.iter().enumerate() {
        let fields: Vec<&str> = answer.changes.iter().map(|c| c.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "trail",
                "tags.team",
                "tags.index",
                "logging",
                "event_selectors",
                "insight_selectors"
            ],
            "trail {i}"
        );
        let trail = answer.trail.as_ref().expect("the trail as it stands");
        assert_eq!(trail.s3_key_prefix, format!("org/{i}"));
        assert_eq!(answer.is_logging, Some(true));
    }

    // Again: reads only, no write, no change.
    let before = served(&local);
    let again = apply_all(&mut c).await.expect("second apply");
    let after = served(&local);
    assert!(again.iter().all(|a| a.changes.is_empty()), "{again:?}");
    assert_eq!(after.0 - before.0, 0, "no write call");
    assert_eq!(after.1 - before.1, 5 * TRAILS, "five reads per trail");

    // Drift out of band; applied again, exactly the drift is repaired and listed.
    let drifted = reconcile::drift(&mut c).await.expect("drift");
    let before = served(&local);
    let repaired = apply_all(&mut c).await.expect("third apply");
    for (i, answer) in repaired.iter().enumerate() {
        let fields: Vec<String> = answer.changes.iter().map(|c| c.field.clone()).collect();
        let expected: Vec<String> = drifted
            .iter()
            .filter(|(t, _)| *t == i)
            .map(|(_, f)| f.clone())
            .collect();
        assert_eq!(fields, expected, "trail {i}");
    }
    assert_eq!(
        served(&local).0 - before.0,
        drifted.len(),
        "one write per drift"
    );
    let prefix = &repaired[3].changes[0];
    assert_eq!(
        (prefix.from.as_str(), prefix.to.as_str()),
        ("drifted", "org/3")
    );
    let again = apply_all(&mut c).await.expect("fourth apply");
    assert!(again.iter().all(|a| a.changes.is_empty()));
}

#[tokio::test]
async fn validate_only_says_what_would_change_and_changes_nothing() {
    let (gw, local) = platform().await;
    let mut c = gw.client.clone();
    let plan = c
        .apply_trail(to(
            0,
            pb::ApplyTrailRequest {
                validate_only: true,
                ..desired(0)
            },
        ))
        .await
        .expect("plan")
        .into_inner();
    assert_eq!(plan.changes[0].field, "trail");
    assert_eq!(
        plan.changes[0].to,
        "arn:aws:cloudtrail:us-east-1:111111111111:trail/reconciled-00"
    );
    assert!(plan.trail.is_none());
    assert_eq!(served(&local).0, 0, "nothing written");
    c.apply_trail(to(0, desired(0))).await.expect("apply");
    let mut changed = desired(0);
    if let Some(trail) = &mut changed.trail {
        trail.s3_key_prefix = "elsewhere".into();
    }
    let before = served(&local).0;
    let plan = c
        .apply_trail(to(
            0,
            pb::ApplyTrailRequest {
                validate_only: true,
                ..changed
            },
        ))
        .await
        .expect("plan")
        .into_inner();
    let fields: Vec<&str> = plan.changes.iter().map(|c| c.field.as_str()).collect();
    assert_eq!(fields, ["s3_key_prefix"]);
    assert_eq!(
        plan.trail.map(|t| t.s3_key_prefix).as_deref(),
        Some("org/0"),
        "as it stood"
    );
    assert_eq!(served(&local).0, before);
}

#[tokio::test]
async fn apply_is_idempotent_by_request_id_and_checks_its_request() {
    let (gw, local) = platform().await;
    let mut c = gw.client.clone();
    let id = "5b4a3c2d-1e0f-4a9b-8c7d-6e5f4a3b2c1d";
    let first = c
        .apply_trail(to(
            1,
            pb::ApplyTrailRequest {
                request_id: id.into(),
                ..desired(1)
            },
        ))
        .await
        .expect("apply")
        .into_inner();
    let writes = served(&local).0;
    let replayed = c
        .apply_trail(to(
            1,
            pb::ApplyTrailRequest {
                request_id: id.into(),
                ..desired(1)
            },
        ))
        .await
        .expect("retry");
    assert!(replayed.metadata().get("x-cloudtrail-replayed").is_some());
    assert_eq!(
        replayed.into_inner(),
        first,
        "the first answer, changes and all"
    );
    assert_eq!(served(&local).0, writes);

    let mut bad = desired(2);
    if let Some(trail) = &mut bad.trail {
        trail.name = "a".into();
        trail.tags_list = vec![pb::Tag::default()];
    }
    bad.advanced_event_selectors = Some(pb::AdvancedEventSelectorList::default());
    let refused = c.apply_trail(to(2, bad)).await.expect_err("invalid");
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert_eq!(
        common::violations(&refused),
        ["trail.name", "trail.tags_list", "advanced_event_selectors"]
    );
}
