//! The crate's example, run as a test: the embedded CloudTrail behind a plain `aws-sdk-cloudtrail`
//! client records the calls under the IAM user whose key signed them.

#[path = "../examples/sdk_client.rs"]
mod example;

#[tokio::test]
async fn the_example_runs_and_finds_the_callers_events() {
    let names = example::run().await.expect("the example's calls succeed");
    assert_eq!(names, ["StartLogging", "CreateTrail"]);
}
