//! Follows the changes made in the account (write events) as they appear, resuming by itself
//! when the connection breaks or the gateway restarts, against a gateway on 127.0.0.1:50051
//! (`cargo run --release` in the repository's root). Run the `trails` example in another
//! terminal to see events arrive. Optional: CLOUDTRAIL_GATEWAY_ADDR, CLOUDTRAIL_GATEWAY_TOKEN.
//!
//!     cargo run -p cloudtrail-gateway-client --example follow

use cloudtrail_gateway_client::{Client, StreamExt, pb};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let address = std::env::var("CLOUDTRAIL_GATEWAY_ADDR")
        .unwrap_or_else(|_| "http://127.0.0.1:50051".into());
    let mut builder = Client::builder(address);
    if let Ok(token) = std::env::var("CLOUDTRAIL_GATEWAY_TOKEN") {
        builder = builder.token(token);
    }
    let client = builder.connect().await?;
    let mut events = client.stream_events(pb::StreamEventsRequest {
        lookup_attributes: vec![pb::LookupAttribute {
            // Not the reads: LookupEvents is recorded too, so a follower would see its own polls.
            attribute_key: pb::LookupAttributeKey::ReadOnly.into(),
            attribute_value: "false".into(),
        }],
        follow: true,
        ..Default::default()
    });
    while let Some(message) = events.next().await {
        let message = message?;
        for event in &message.events {
            let at = event.event_time.as_ref().map_or(0, |t| t.seconds);
            println!("{at} {} by {}", event.event_name, event.username);
        }
        if message.caught_up && message.events.is_empty() {
            println!(
                "-- caught up; following (resumed {} times)",
                events.resumed()
            );
        }
    }
    Ok(())
}
