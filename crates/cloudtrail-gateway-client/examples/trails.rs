//! Creates a trail (retried safely: the client gives it a request id), starts its logging and
//! lists the trails, against a gateway on 127.0.0.1:50051 (`cargo run --release` in the
//! repository's root). Optional: CLOUDTRAIL_GATEWAY_ADDR, CLOUDTRAIL_GATEWAY_TOKEN.
//!
//!     cargo run -p cloudtrail-gateway-client --example trails

use cloudtrail_gateway_client::{Client, Code, StatusExt, pb};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let client = connect().await?;
    let created = client
        .create_trail(pb::CreateTrailRequest {
            name: "example-trail".into(),
            s3_bucket_name: "example-bucket".into(),
            ..Default::default()
        })
        .await;
    match created {
        Ok(created) => println!(
            "created {}",
            created.trail.map(|t| t.trail_arn).unwrap_or_default()
        ),
        // Run twice: CloudTrail says the name is taken (ErrorInfo carries its error code).
        Err(status) if status.code() == Code::AlreadyExists => {
            let reason = status.get_details_error_info().map(|i| i.reason);
            println!("already there ({})", reason.unwrap_or_default());
        }
        Err(status) => return Err(status.into()),
    }
    client
        .start_logging(pb::StartLoggingRequest {
            name: "example-trail".into(),
            ..Default::default()
        })
        .await?;
    let trails = client
        .describe_trails(pb::DescribeTrailsRequest::default())
        .await?;
    for trail in trails.trail_list {
        println!(
            "{} in {} -> s3://{}",
            trail.name, trail.home_region, trail.s3_bucket_name
        );
    }
    Ok(())
}

async fn connect() -> Result<Client, cloudtrail_gateway_client::Error> {
    let address = std::env::var("CLOUDTRAIL_GATEWAY_ADDR")
        .unwrap_or_else(|_| "http://127.0.0.1:50051".into());
    let mut builder = Client::builder(address);
    if let Ok(token) = std::env::var("CLOUDTRAIL_GATEWAY_TOKEN") {
        builder = builder.token(token);
    }
    builder.connect().await
}
