//! The `thumbq-api` command line: `serve` (the default) and `keys create|list|revoke`, plus the key file that
//! `THUMBQ_API_KEYS_FILE` names.

use std::path::Path;

use anyhow::Context;
use clap::{Parser, Subcommand};
use serde::Deserialize;
use thumbq_common::{
    Settings,
    access::{Rate, RateLimit, Scopes, generate_key, valid_key_name},
    state_store::{StateStore, access::KeySpec},
};

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

/// One key of a `THUMBQ_API_KEYS_FILE`, as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFileEntry {
    name: String,
    key: String,
    scopes: String,
    rate: Option<String>,
    burst: Option<u32>,
    quota_mb: Option<u64>,
}

/// A checked key from a key file.
#[derive(Debug)]
pub struct KeySeed {
    spec: KeySpec,
    key: String,
}

/// A key's own rate limit, when `rate` or `burst` is given; the default fills in the other.
fn own_limit(rate: Option<Rate>, burst: Option<u32>, default: RateLimit) -> Option<RateLimit> {
    (rate.is_some() || burst.is_some())
        .then(|| RateLimit { rate: rate.unwrap_or(default.rate), burst: burst.unwrap_or(default.burst).max(1) })
}

/// The shortest key a file may hold: a short key could be guessed.
const MIN_SEEDED_KEY_LEN: usize = 32;

/// Reads and checks a key file: a JSON array of
/// `{"name", "key", "scopes": "upload,read", "rate"?: "10/s", "burst"?: 20, "quota_mb"?: 500}`.
pub fn read_key_file(path: &Path, default: RateLimit) -> anyhow::Result<Vec<KeySeed>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let seeds: Vec<KeyFileEntry> =
        serde_json::from_str(&text).with_context(|| format!("{} is not a JSON array of keys", path.display()))?;
    seeds
        .into_iter()
        .map(|seed| {
            let fail = |e: String| anyhow::anyhow!("{}: key {:?}: {e}", path.display(), seed.name);
            valid_key_name(&seed.name).map_err(fail)?;
            if seed.key.len() < MIN_SEEDED_KEY_LEN {
                return Err(fail(format!("the key must be at least {MIN_SEEDED_KEY_LEN} characters")));
            }
            let scopes: Scopes = seed.scopes.parse().map_err(fail)?;
            let rate = seed.rate.as_deref().map(str::parse::<Rate>).transpose().map_err(fail)?;
            let spec = KeySpec {
                limit: own_limit(rate, seed.burst, default),
                quota_bytes: seed.quota_mb.map(|mb| mb << 20),
                ..KeySpec::new(&seed.name, scopes)
            };
            Ok(KeySeed { spec, key: seed.key.clone() })
        })
        .collect()
}

/// Stores the keys of a key file, replacing keys of the same names; retries until Redis answers (the API starts
/// while its services are down).
pub async fn seed_keys(states: StateStore, keys: Vec<KeySeed>) {
    for KeySeed { spec, key } in keys {
        let mut delay = std::time::Duration::from_millis(200);
        while let Err(e) = states.create_key(&spec, &key, true).await {
            tracing::warn!(error = %e, key = spec.name, "could not store a key from THUMBQ_API_KEYS_FILE; retrying");
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(std::time::Duration::from_secs(10));
        }
    }
    tracing::info!("keys from THUMBQ_API_KEYS_FILE stored");
}
