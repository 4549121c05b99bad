//! The `thumbq` command line: `upload` (files and folders, with a progress bar, thumbnails saved beside the names
//! they came from) and `job create|watch|list|pause|resume|cancel|retry-failed`. A leaf over [`Client`].

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use futures_util::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use thumbq_common::job::{JobId, JobSpec, JobStatus, RerenderFilter};

use crate::{Client, ClientError};

/// thumbq's command line: uploads with progress, and bulk jobs.
#[derive(Debug, Parser)]
#[command(name = "thumbq", version, about)]
pub struct Cli {
    /// The API's address.
    #[arg(long, env = "THUMBQ_URL", default_value = "http://127.0.0.1:8000", global = true)]
    url: String,
    /// An API key (when keys are on).
    #[arg(long, env = "THUMBQ_KEY", global = true, hide_env_values = true)]
    key: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Upload images (folders recurse) and save their thumbnails under `--out`, with the names they came from.
    Upload {
        /// Files and folders.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        #[command(flatten)]
        params: Params,
        /// Where the thumbnails go.
        #[arg(long, default_value = "thumbnails")]
        out: PathBuf,
        /// Uploads at once.
        #[arg(long, default_value_t = 4)]
        concurrency: usize,
    },
    /// Bulk jobs.
    #[command(subcommand)]
    Job(JobCommand),
}

#[derive(Debug, Subcommand)]
enum JobCommand {
    /// Start a job over a prefix of the import store, the URLs of a file (one a line), or the kept originals.
    #[command(group(clap::ArgGroup::new("items").required(true).args(["prefix", "sources", "rerender"])))]
    Create {
        /// A folder of the import store (`THUMBQ_IMPORT_URL`).
        #[arg(long)]
        prefix: Option<String>,
        /// A file of URLs, one a line.
        #[arg(long)]
        sources: Option<PathBuf>,
        /// Make the kept originals of earlier tasks again with these parameters.
        #[arg(long)]
        rerender: bool,
        /// With --rerender: only the tasks made with this preset.
        #[arg(long, requires = "rerender")]
        of_preset: Option<String>,
        /// With --rerender: only the tasks uploaded with this API key (yours, without `admin`).
        #[arg(long, requires = "rerender")]
        of_owner: Option<String>,
        #[command(flatten)]
        params: Params,
    },
    /// Show a job's progress until it ends.
    Watch { id: JobId },
    /// List the jobs.
    List,
    /// Pause a job.
    Pause { id: JobId },
    /// Resume a job.
    Resume { id: JobId },
    /// Cancel a job.
    Cancel { id: JobId },
    /// Make a job's failed items again.
    RetryFailed { id: JobId },
}

/// The upload parameters, as `--sizes`, `--preset`, `--format`, or any of them as `--query`.
#[derive(Debug, Args)]
struct Params {
    /// Renditions by size, `320x240,64x64`.
    #[arg(long)]
    sizes: Option<String>,
    /// Renditions by preset name.
    #[arg(long)]
    preset: Option<String>,
    /// The thumbnails' format: `jpeg`, `png`, `webp`, `avif`, `gif` or `auto`.
    #[arg(long)]
    format: Option<String>,
    /// Any other upload parameters, as a query string (`width=200&height=200&fit=contain`).
    #[arg(long, default_value = "")]
    query: String,
}

impl Params {
    fn query(&self) -> String {
        let named = [("sizes", &self.sizes), ("preset", &self.preset), ("format", &self.format)];
        let mut pairs: Vec<String> = named.iter().filter_map(|(k, v)| Some(format!("{k}={}", v.as_ref()?))).collect();
        pairs.extend(Some(self.query.trim_start_matches('?').to_owned()).filter(|q| !q.is_empty()));
        pairs.join("&")
    }
}

/// Runs the command line; `Ok(false)` when something failed (the exit status says so).
pub async fn run(cli: Cli) -> anyhow::Result<bool> {
    let client = Client::new(&cli.url, cli.key);
    match cli.command {
        Command::Upload { paths, params, out, concurrency } => {
            upload(&client, &paths, &params.query(), &out, concurrency.max(1)).await
        }
        Command::Job(command) => job(&client, command).await,
    }
}

/// One file to upload: its path, and its name under `--out` (its path below the folder it was found in).
struct Source {
    path: PathBuf,
    name: PathBuf,
}

async fn upload(
    client: &Client,
    paths: &[PathBuf],
    query: &str,
    out: &Path,
    concurrency: usize,
) -> anyhow::Result<bool> {
    let sources = files(paths)?;
    let bar = ProgressBar::new(sources.len() as u64).with_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} {per_sec} eta {eta} {msg}").expect("a valid template"),
    );
    let results: Vec<(PathBuf, anyhow::Result<usize>)> = futures_util::stream::iter(sources)
        .map(|source| {
            let bar = bar.clone();
            async move {
                let saved = upload_one(client, &source, query, out).await;
                bar.inc(1);
                (source.path, saved)
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    bar.finish_and_clear();
    let failed: Vec<_> = results.iter().filter_map(|(path, r)| r.as_ref().err().map(|e| (path, e))).collect();
    let saved: usize = results.iter().filter_map(|(_, r)| r.as_ref().ok()).sum();
    println!(
        "{} uploaded, {} failed; {saved} thumbnail(s) in {}",
        results.len() - failed.len(),
        failed.len(),
        out.display()
    );
    for (path, error) in &failed {
        eprintln!("{}: {error:#}", path.display());
    }
    Ok(failed.is_empty())
}

/// Uploads one file (its `Idempotency-Key` from its bytes and the parameters, so a re-run makes no second task)
/// and saves its thumbnails: how many.
async fn upload_one(client: &Client, source: &Source, query: &str, out: &Path) -> anyhow::Result<usize> {
    let bytes = tokio::fs::read(&source.path).await.with_context(|| format!("reading {}", source.path.display()))?;
    let key = uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_URL, &[query.as_bytes(), b"\n", &bytes].concat());
    let file_name = source.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let accepted = client.upload(bytes, &file_name, query, Some(&key.to_string())).await?;
    let mut made = vec![(accepted.url.clone(), extension(&accepted.name), None)];
    if !accepted.renditions.is_empty() {
        made = accepted
            .renditions
            .iter()
            .map(|r| (r.url.clone().unwrap_or_default(), extension(&r.file), Some(r.name.to_string())))
            .collect();
    }
    for (url, ext, rendition) in &made {
        let thumbnail = client.thumbnail(url).await?;
        let stem = source.name.with_extension("");
        let name = match rendition {
            Some(rendition) => format!("{}-{rendition}", stem.display()),
            None => stem.display().to_string(),
        };
        let path = out.join(format!("{name}.{ext}"));
        if let Some(folder) = path.parent() {
            tokio::fs::create_dir_all(folder).await?;
        }
        tokio::fs::write(&path, thumbnail).await.with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(made.len())
}

/// A thumbnail's extension from its name (`<uuid>.jpg`); none for `format=auto`'s negotiated name, saved as `img`.
fn extension(name: &str) -> String {
    name.rsplit_once('.').map_or_else(|| "img".to_owned(), |(_, ext)| ext.to_owned())
}

/// The files under `paths`, folders walked (sorted, so runs are repeatable), each with its name below its root.
fn files(paths: &[PathBuf]) -> anyhow::Result<Vec<Source>> {
    let mut found = Vec::new();
    for root in paths {
        if root.is_file() {
            let name = PathBuf::from(root.file_name().context("a file name")?);
            found.push(Source { path: root.clone(), name });
            continue;
        }
        let mut folders = vec![root.clone()];
        while let Some(folder) = folders.pop() {
            let mut entries: Vec<PathBuf> = std::fs::read_dir(&folder)
                .with_context(|| format!("reading {}", folder.display()))?
                .map(|e| e.map(|e| e.path()))
                .collect::<Result<_, _>>()?;
            entries.sort();
            for path in entries {
                if path.is_dir() {
                    folders.push(path);
                } else {
                    let name = path.strip_prefix(root).unwrap_or(&path).to_path_buf();
                    found.push(Source { path, name });
                }
            }
        }
    }
    if found.is_empty() {
        bail!("no files under {}", paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "));
    }
    Ok(found)
}

async fn job(client: &Client, command: JobCommand) -> anyhow::Result<bool> {
    let show = |job: &thumbq_common::job::Job| {
        println!(
            "{} {:9} {}/{} done, {} failed, {} cancelled, {}/s",
            job.id,
            job.status.as_str(),
            job.done,
            job.total,
            job.failed,
            job.cancelled,
            job.rate
        );
    };
    match command {
        JobCommand::Create { prefix, sources, rerender, of_preset, of_owner, params } => {
            let spec = match (prefix, sources) {
                (Some(prefix), _) => JobSpec::Prefix(prefix),
                (None, Some(file)) => {
                    let text = std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
                    JobSpec::Sources(text.lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_owned).collect())
                }
                (None, None) if rerender => JobSpec::Rerender(RerenderFilter { preset: of_preset, owner: of_owner }),
                (None, None) => bail!("give --prefix, --sources or --rerender"),
            };
            let job = client.create_job(&spec, &params.query()).await?;
            println!("{}", job.id);
        }
        JobCommand::Watch { id } => return watch(client, id).await,
        JobCommand::List => client.jobs().await?.iter().for_each(show),
        JobCommand::Pause { id } => show(&client.job_action(id, "pause").await?),
        JobCommand::Resume { id } => show(&client.job_action(id, "resume").await?),
        JobCommand::Cancel { id } => show(&client.job_action(id, "cancel").await?),
        JobCommand::RetryFailed { id } => show(&client.job_action(id, "retry-failed").await?),
    }
    Ok(true)
}

/// A progress bar of the job's ended items until it ends; `Ok(false)` when items failed or it was cancelled.
async fn watch(client: &Client, id: JobId) -> anyhow::Result<bool> {
    let bar = ProgressBar::new(0)
        .with_style(ProgressStyle::with_template("{bar:30} {pos}/{len} {msg}").expect("a valid template"));
    loop {
        let job = match client.job(id).await {
            Err(ClientError::Unreachable(e)) => {
                bar.set_message(format!("(the API is unreachable: {e})"));
                tokio::time::sleep(Duration::from_secs(2)).await;
                continue;
            }
            other => other?,
        };
        bar.set_length(job.total);
        bar.set_position(job.done + job.failed + job.cancelled);
        let eta = job.eta_secs.map(|s| format!(", eta {s} s")).unwrap_or_default();
        bar.set_message(format!(
            "{} failed, {}/s{eta}{}",
            job.failed,
            job.rate,
            if job.listed { "" } else { " (listing)" }
        ));
        if matches!(job.status, JobStatus::Done | JobStatus::Cancelled) {
            bar.finish_and_clear();
            println!(
                "{} {}: {} done, {} failed, {} cancelled",
                job.id, job.status, job.done, job.failed, job.cancelled
            );
            return Ok(job.status == JobStatus::Done && job.failed == 0);
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
