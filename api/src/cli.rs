//! The `thumbq-api` command line: `serve` (the default) and `keys create|list|revoke`. A leaf: it calls the
//! library ([`crate::run_from_env`], [`crate::keys`]) and nothing in the library calls it.

use anyhow::Context;
use clap::{Parser, Subcommand};
use thumbq_common::{
    Settings,
    api_key::{Rate, Scopes, generate_key, valid_key_name},
    state_store::{StateStore, api_keys::KeySpec},
};

use crate::key_file::own_limit;

/// thumbq's HTTP API. Settings come from the environment (see README); with no command it serves.
#[derive(Debug, Parser)]
#[command(name = "thumbq-api", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the API until SIGINT or SIGTERM (the default).
    Serve,
    /// Manage API keys (stored in Redis under THUMBQ_KEY_PREFIX, as hashes only).
    #[command(subcommand)]
    Keys(KeysCommand),
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Create a key; it is printed once, alone on the last line.
    Create {
        /// A unique name: 1 to 64 letters, digits, '-', '_', '.'.
        #[arg(long, value_parser = |s: &str| valid_key_name(s).map(str::to_owned))]
        name: String,
        /// Comma-separated: upload, read, admin.
        #[arg(long)]
        scopes: Scopes,
        /// Its own sustained rate, e.g. 10/s, 600/m, 1000/h, or off (default: THUMBQ_RATE_LIMIT).
        #[arg(long)]
        rate: Option<Rate>,
        /// Its own burst (default: THUMBQ_RATE_BURST).
        #[arg(long)]
        burst: Option<u32>,
        /// A storage quota: MiB of originals its unfinished tasks may hold (default: none).
        #[arg(long)]
        quota_mb: Option<u64>,
    },
    /// List the keys (never the keys themselves).
    List,
    /// Revoke the key named NAME at once.
    Revoke {
        /// The key's name.
        name: String,
    },
}

/// The `thumbq-api` binary: its arguments, then the command. `main.rs` is this call.
pub async fn run_from_args() -> anyhow::Result<()> {
    Cli::parse().run().await
}

impl Cli {
    /// Runs the command.
    pub async fn run(self) -> anyhow::Result<()> {
        let Some(Command::Keys(command)) = self.command else { return crate::run_from_env().await };
        let settings = Settings::from_env().context("failed to read settings")?;
        let states = StateStore::new(&settings.redis).context("failed to set up the Redis pool")?;
        match command {
            KeysCommand::Create { name, scopes, rate, burst, quota_mb } => {
                let default = settings.access.key_rate;
                let spec = KeySpec {
                    limit: own_limit(rate, burst, default),
                    quota_bytes: quota_mb.map(|mb| mb << 20),
                    ..KeySpec::new(&name, scopes)
                };
                let key = generate_key();
                states.create_key(&spec, &key, false).await?;
                let limit = spec.limit.unwrap_or(default);
                let quota =
                    quota_mb.map_or_else(|| "no storage quota".to_owned(), |mb| format!("a {mb} MiB storage quota"));
                println!(
                    "Created key {name:?}: scopes {}, rate {} (burst {}), {quota}.",
                    spec.scopes, limit.rate, limit.burst
                );
                println!("It is shown only this once; send it as `Authorization: Bearer <key>`:");
                println!("{key}");
            }
            KeysCommand::List => {
                let keys = states.list_keys().await?;
                println!("{:<24} {:<20} {:<12} {:<10} {:<26} LAST USED", "NAME", "SCOPES", "RATE", "QUOTA", "CREATED");
                for key in keys {
                    let time = |t: Option<chrono::DateTime<chrono::Utc>>| {
                        t.map_or_else(|| "never".to_owned(), |t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
                    };
                    let rate = key
                        .rate
                        .as_deref()
                        .map_or_else(|| "default".to_owned(), |r| format!("{r}/{}", key.burst.unwrap_or(1)));
                    let quota = key.quota_bytes.map_or_else(|| "none".to_owned(), |b| format!("{} MiB", b >> 20));
                    println!(
                        "{:<24} {:<20} {:<12} {:<10} {:<26} {}",
                        key.name,
                        key.scopes,
                        rate,
                        quota,
                        time(key.created_at),
                        time(key.last_used)
                    );
                }
            }
            KeysCommand::Revoke { name } => {
                if !states.revoke_key(&name).await? {
                    anyhow::bail!("no key named {name:?}");
                }
                println!("Revoked key {name:?}.");
            }
        }
        Ok(())
    }
}
