//! Using the embedded CloudTrail as a test double: hand it to an `aws-sdk-cloudtrail` client as its
//! HTTP client, then call CloudTrail as usual. `cargo run -p cloudtrail-local --example sdk_client`
//! (the crate's tests run this same code).

use aws_sdk_cloudtrail::{
    Client,
    config::{BehaviorVersion, Credentials, Region},
    types::{LookupAttribute, LookupAttributeKey},
};
use cloudtrail_local::{LocalCloudTrail, Options, Quotas};

/// Creates a trail as IAM user `alice`, starts logging, and finds both calls in the event history
/// under her name. Returns the event names found, newest first.
pub async fn run() -> Result<Vec<String>, Box<dyn std::error::Error>> {
    // AWS allows one write per second per account and Region, and so does the emulator by default;
    // this example writes twice in a row, so it raises that quota (the SDK would otherwise retry).
    let cloudtrail = LocalCloudTrail::new(Options {
        quotas: Quotas {
            write: 10.0,
            ..Quotas::AWS
        },
        ..Options::default()
    });
    // Calls signed with this key are recorded as alice's; any other key is the default user's.
    let key = cloudtrail.user_key("alice");
    let config = aws_sdk_cloudtrail::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("eu-west-1"))
        .credentials_provider(Credentials::new(
            key.access_key_id,
            key.secret_access_key,
            None,
            None,
            "example",
        ))
        .http_client(cloudtrail.clone())
        .build();
    let client = Client::from_conf(config);

    let trail = client
        .create_trail()
        .name("audit")
        .s3_bucket_name("audit-logs")
        .send()
        .await?;
    client.start_logging().name("audit").send().await?;
    println!("created {}", trail.trail_arn().unwrap_or_default());

    let events = client
        .lookup_events()
        .lookup_attributes(
            LookupAttribute::builder()
                .attribute_key(LookupAttributeKey::Username)
                .attribute_value("alice")
                .build()?,
        )
        .send()
        .await?;
    let names: Vec<String> = events
        .events()
        .iter()
        .filter_map(|e| e.event_name().map(str::to_owned))
        .collect();
    println!("alice's events, newest first: {names:?}");
    Ok(names)
}

#[allow(dead_code)] // used when run as an example, not when the tests include this file
#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    run().await.map(|_| ())
}
