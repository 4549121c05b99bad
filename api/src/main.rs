//! The `thumbq-api` binary: reads settings, sets up logging, and serves until SIGINT or SIGTERM.

use anyhow::Context;
use thumbq_common::{Settings, telemetry};
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings = Settings::from_env().context("failed to read settings")?;
    telemetry::init(&settings.log);
    let shutdown = CancellationToken::new();
    tokio::spawn(thumbq_common::shutdown::on_signal(shutdown.clone()));
    thumbq_api::run(settings, shutdown).await
}
