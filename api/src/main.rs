//! The `thumbq-api` binary: serves until SIGINT or SIGTERM (see [`thumbq_api::run_from_env`]).

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    thumbq_api::run_from_env().await
}
