//! Health: SERVING only while the upstream answers (a DescribeTrails probe at start and every
//! `health_probe_interval`, within the read quota), NOT_SERVING from the start of a shutdown on.
//! The same state backs `grpc.health.v1` ("" and the service) and `/readyz`.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use aws_sdk_cloudtrail::error::SdkError;
use tonic_health::{ServingStatus, server::HealthReporter};

use crate::{
    limits::Limiter, operation::Operation, pb::cloud_trail_service_server::SERVICE_NAME as SERVICE,
    upstream::Upstream,
};

/// The probe's caller name (the `Username` of its events on the embedded CloudTrail).
pub const PROBE: &str = crate::principal::HEALTH_PROBE;
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug)]
pub struct Health {
    reporter: HealthReporter,
    /// What was last published.
    ready: AtomicBool,
    /// The upstream answered the last probe.
    upstream: AtomicBool,
    /// A probe has answered at all (before, the gateway is starting, not failing).
    probed: AtomicBool,
    /// Every identity source can check credentials (a JWKS loaded, when JWTs are configured).
    identities: AtomicBool,
    draining: AtomicBool,
}

impl Health {
    /// Not serving until the first probe answers; `identities_ready`: false while a JWKS is still to
    /// be loaded.
    pub async fn new(reporter: HealthReporter, identities_ready: bool) -> Arc<Health> {
        let health = Arc::new(Health {
            reporter,
            ready: AtomicBool::new(false),
            upstream: AtomicBool::new(false),
            probed: AtomicBool::new(false),
            identities: AtomicBool::new(identities_ready),
            draining: AtomicBool::new(false),
        });
        // Not serving yet is how every start begins: nothing to log until the first probe says.
        health.set_status(false).await;
        health
    }

    /// Why the gateway is not ready, if it is not.
    pub fn not_ready_because(&self) -> Option<&'static str> {
        if self.draining.load(Ordering::Relaxed) {
            Some("shutting down")
        } else if !self.identities.load(Ordering::Relaxed) {
            Some("no JWKS loaded yet: JWTs cannot be checked")
        } else if !self.probed.load(Ordering::Relaxed) {
            Some("starting: the first upstream probe has not answered yet")
        } else if !self.upstream.load(Ordering::Relaxed) {
            Some("the upstream CloudTrail does not answer")
        } else {
            None
        }
    }

    async fn publish(&self) {
        let reason = self.not_ready_because();
        let serving = reason.is_none();
        if self.ready.load(Ordering::Relaxed) != serving || !serving {
            tracing::info!(serving, reason = reason.unwrap_or("-"), "health");
        }
        self.set_status(serving).await;
    }

    /// Sets what the health service and `/readyz` say, without a log line.
    async fn set_status(&self, serving: bool) {
        self.ready.store(serving, Ordering::Relaxed);
        let status = if serving {
            ServingStatus::Serving
        } else {
            ServingStatus::NotServing
        };
        self.reporter.set_service_status("", status).await;
        self.reporter.set_service_status(SERVICE, status).await;
    }

    /// Every identity source can check credentials now.
    pub async fn identities_ready(&self) {
        self.identities.store(true, Ordering::Relaxed);
        self.publish().await;
    }

    /// From now on NOT_SERVING, whatever the probes say.
    pub async fn drain(&self) {
        self.draining.store(true, Ordering::Relaxed);
        metrics::gauge!(crate::telemetry::DRAINING).set(1.0);
        self.publish().await;
    }

    /// Whether CloudTrail answers at all (an error answer counts: it is reachable).
    async fn probe(upstream: &Upstream, limiter: &Limiter) -> bool {
        let probe = Operation::DescribeTrails;
        let target = upstream.accounts().default_target();
        if limiter
            .acquire(target, probe.quota(), PROBE, Some(PROBE_TIMEOUT))
            .await
            .is_err()
        {
            return true; // the quota is busy with real calls, which will tell if the upstream is down
        }
        let call = upstream.client_as(target, PROBE).describe_trails().send();
        match tokio::time::timeout(PROBE_TIMEOUT, call).await {
            Ok(Ok(_)) | Ok(Err(SdkError::ServiceError(_))) => true,
            Ok(Err(e)) => {
                tracing::warn!(error = %aws_sdk_cloudtrail::error::DisplayErrorContext(&e), "upstream probe failed");
                false
            }
            Err(_) => {
                tracing::warn!("upstream probe timed out");
                false
            }
        }
    }

    /// Probes now and then every `every`, publishing the result.
    pub fn spawn_probes(
        self: Arc<Self>,
        upstream: Upstream,
        limiter: Arc<Limiter>,
        every: Duration,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            loop {
                let reachable = Self::probe(&upstream, &limiter).await;
                self.upstream.store(reachable, Ordering::Relaxed);
                self.probed.store(true, Ordering::Relaxed);
                self.publish().await;
                tokio::time::sleep(every).await;
            }
        })
    }
}
