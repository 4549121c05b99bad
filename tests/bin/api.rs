//! The API as a separate process for tests of memory, restarts and the `keys` command
//! (`CARGO_BIN_EXE_thumbq-test-api`); the same code as the `thumbq-api` binary.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    thumbq_api::cli::run_from_args().await
}
