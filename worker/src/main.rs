//! The `thumbq-worker` binary: runs the worker until SIGINT or SIGTERM, or replays dead letters (see
//! [`thumbq_worker::cli`]).

fn main() -> anyhow::Result<()> {
    thumbq_worker::cli::main()
}
