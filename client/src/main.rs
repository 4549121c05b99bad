//! `thumbq`: the command line (see `thumbq_client::cli`). Exits 1 when something failed, with a summary.

use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match thumbq_client::cli::run(thumbq_client::cli::Cli::parse()).await {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => std::process::ExitCode::FAILURE,
        Err(e) => {
            eprintln!("thumbq: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
