//! The `thumbq-worker` binary: runs the worker until SIGINT or SIGTERM, or replays dead letters (see
//! [`thumbq_worker::cli`]).

fn main() -> anyhow::Result<()> {
    // Before any thread starts: see `allocator`.
    thumbq_worker::allocator::tune();
    tokio::runtime::Builder::new_multi_thread().enable_all().build()?.block_on(thumbq_worker::cli::run_from_args())
}
