//! The worker as a separate process for tests that kill it (`CARGO_BIN_EXE_thumbq-test-worker`), and the PDF
//! renderer of the workers the tests run in their own process: the same code as the `thumbq-worker` binary.

fn main() -> anyhow::Result<()> {
    thumbq_worker::cli::main()
}
