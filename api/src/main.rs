//! The `thumbq-api` binary: reads settings, sets up logging, and serves until SIGINT or SIGTERM.

use anyhow::Context;
use std::sync::Arc;

use thumbq_common::{Settings, file_store::LocalFileStore, telemetry};
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings = Settings::from_env().context("failed to read settings")?;
    telemetry::init(&settings.log);
    let shutdown = CancellationToken::new();
    tokio::spawn(thumbq_common::shutdown::on_signal(shutdown.clone()));
    let store = LocalFileStore::open(&settings.store.dir)
        .with_context(|| format!("failed to open the file store at {}", settings.store.dir.display()))?;
    thumbq_api::run(settings, Arc::new(store), shutdown).await
}
