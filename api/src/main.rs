//! The `thumbq-api` binary: serves until SIGINT or SIGTERM, or manages API keys (see [`thumbq_api::cli`]).

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    thumbq_api::cli::run_from_args().await
}
