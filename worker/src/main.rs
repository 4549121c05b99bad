//! The `thumbq-worker` binary: runs the worker until SIGINT or SIGTERM (see [`thumbq_worker::run_from_env`]).

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    thumbq_worker::run_from_env().await
}
