//! The API as a separate process for tests that measure its memory (`CARGO_BIN_EXE_thumbq-test-api`); the same
//! code as the `thumbq-api` binary.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    thumbq_api::run_from_env().await
}
