//! How StreamEvents follows.

use clap::Args;

use super::{
    checks::{ConfigError, positive},
    duration::HumanDuration,
};
use crate::feeds::StreamConfig;

#[derive(Debug, Args)]
pub struct StreamSettings {
    /// StreamEvents follow: how far back each poll looks, for CloudTrail's delivery delay (events
    /// show up minutes after they happen); an event shown later than this may be missed.
    #[arg(long, value_name = "DURATION", default_value = "15m")]
    pub stream_lookback: HumanDuration,
    /// StreamEvents: an idle stream sends a message (no events, the cursor) this often.
    #[arg(long, value_name = "DURATION", default_value = "15s")]
    pub stream_heartbeat: HumanDuration,
    /// StreamEvents follow: the shared poll of one filter runs at most this often (and never faster
    /// than the LookupEvents quota allows).
    #[arg(long, value_name = "DURATION", default_value = "1s")]
    pub stream_poll_interval: HumanDuration,
}

impl StreamSettings {
    pub fn check(self) -> Result<StreamConfig, ConfigError> {
        Ok(StreamConfig {
            lookback: positive("stream_lookback", self.stream_lookback.0)?,
            heartbeat: positive("stream_heartbeat", self.stream_heartbeat.0)?,
            poll_interval: positive("stream_poll_interval", self.stream_poll_interval.0)?,
        })
    }
}
