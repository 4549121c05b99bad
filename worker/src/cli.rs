//! The `thumbq-worker` command line: `run` (the default) and `replay-dead-letters [LIMIT]`, and `render-pdf`, which
//! the worker runs itself (its PDF renderer). Settings come from the `THUMBQ_*` variables, whatever the command.

use anyhow::Context as _;
use clap::{Parser, Subcommand};

use crate::pipeline::pdf_renderer as renderer;
use thumbq_common::{
    Settings,
    dead_letters::{DeadLetters, Selection, Treatment},
    state_store::StateStore,
};

/// thumbq's worker. Settings come from the environment (see README); with no command it runs.
#[derive(Debug, Parser)]
#[command(name = "thumbq-worker", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the worker until SIGINT or SIGTERM (the default).
    Run,
    /// Move dead-lettered tasks back to the work queue as fresh tasks.
    ReplayDeadLetters {
        /// At most this many (default: all).
        limit: Option<usize>,
    },
    /// The PDF renderer the worker starts for itself, answering on standard input and output.
    #[command(hide = true)]
    RenderPdf,
}

/// The `thumbq-worker` binary: its arguments, then the command. `main.rs` is this call.
pub fn main() -> anyhow::Result<()> {
    // Before any thread starts: see `allocator`.
    crate::allocator::tune();
    let cli = Cli::parse();
    if let Some(Command::RenderPdf) = cli.command {
        // No runtime: the renderer is one thread answering one question at a time.
        return Ok(renderer::serve()?);
    }
    // Boxed: the worker's future is deep enough to overflow the compiler's layout depth inside `block_on`.
    tokio::runtime::Builder::new_multi_thread().enable_all().build()?.block_on(Box::pin(cli.run()))
}

impl Cli {
    /// Runs the command.
    pub async fn run(self) -> anyhow::Result<()> {
        match self.command {
            None | Some(Command::Run) => crate::run_from_env().await,
            Some(Command::ReplayDeadLetters { limit }) => {
                let settings = Settings::from_env().context("failed to read settings")?;
                let telemetry = thumbq_common::logging::init(&settings, "thumbq-worker");
                let replayed = replay_dead_letters(&settings, limit).await;
                telemetry.shutdown();
                replayed
            }
            Some(Command::RenderPdf) => Ok(tokio::task::block_in_place(renderer::serve)?),
        }
    }
}

/// Replays up to `limit` dead letters (all without one) and prints what became of them.
async fn replay_dead_letters(settings: &Settings, limit: Option<usize>) -> anyhow::Result<()> {
    let states = StateStore::new(&settings.redis)?;
    let replay = async {
        let dead = DeadLetters::open(settings, "thumbq-worker replay").await?;
        let done = dead.handle(&states, Treatment::Replay, Selection::All { limit }, None).await;
        dead.close().await;
        done
    };
    let done = replay.await.context("failed to replay dead letters")?;
    println!(
        "replayed {} task(s); skipped {} erased or cancelled task(s), their dead letters dropped; kept {} message(s) \
         that are not tasks",
        done.tasks, done.skipped, done.kept
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_is_well_formed() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn no_command_runs_and_replay_takes_an_optional_limit() {
        assert!(Cli::try_parse_from(["thumbq-worker"]).unwrap().command.is_none());
        assert!(matches!(Cli::try_parse_from(["thumbq-worker", "run"]).unwrap().command, Some(Command::Run)));
        let replay = |args: &[&str]| Cli::try_parse_from(["thumbq-worker", "replay-dead-letters"].iter().chain(args));
        assert!(matches!(replay(&[]).unwrap().command, Some(Command::ReplayDeadLetters { limit: None })));
        assert!(matches!(replay(&["10"]).unwrap().command, Some(Command::ReplayDeadLetters { limit: Some(10) })));
        assert!(replay(&["ten"]).is_err());
        assert!(replay(&["1", "2"]).is_err());
        let render = Cli::try_parse_from(["thumbq-worker", renderer::SUBCOMMAND]).unwrap();
        assert!(matches!(render.command, Some(Command::RenderPdf)));
    }
}
