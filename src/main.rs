//! `cloudtrail-gateway`: parse the configuration, start logging, serve until SIGINT/SIGTERM, drain.

use std::process::ExitCode;

use cloudtrail_gateway::{
    config::{Config, ConfigError},
    server, telemetry,
};

// The SDK path allocates a lot per call; mimalloc serves that faster than glibc (docs/BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let config = match Config::from_args() {
        Ok(config) => config,
        // Usage errors, --help and --version, printed and exited as clap does.
        Err(ConfigError::Cli(e)) => e.exit(),
        Err(e) => {
            eprintln!("cloudtrail-gateway: {e}");
            return ExitCode::from(2);
        }
    };
    if let Some(effective) = &config.print_config {
        print!("{effective}");
        return ExitCode::SUCCESS;
    }
    let _tracing = match telemetry::init_tracing(
        config.server.log_format,
        config.server.otlp_endpoint.as_deref(),
    ) {
        Ok(guard) => guard,
        Err(e) => {
            eprintln!("cloudtrail-gateway: {e}");
            return ExitCode::from(2);
        }
    };
    match server::run(config, shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cloudtrail-gateway: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => return std::future::pending::<()>().await,
            };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
