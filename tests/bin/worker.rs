//! The worker as a separate process for tests that kill it (`CARGO_BIN_EXE_thumbq-test-worker`); the same code as
//! the `thumbq-worker` binary.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    thumbq_worker::cli::run_from_args().await
}
