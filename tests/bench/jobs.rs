//! `make bench`, part 3: bulk jobs (`POST /jobs`), on the release binaries as processes (`stack`), 2 workers.
//!
//! 1. A job over 10,000 images under a prefix of the import store (a folder, then S3 on a moto server of the
//!    bench's own), against the same images uploaded one by one by 8 clients that long-poll each thumbnail (as
//!    the end-to-end rows do): items per second, the API's CPU per item, and the Redis memory per finished item,
//!    with its record kept and once it has expired (`THUMBQ_JOB_ITEM_TTL_SECS`).
//! 2. Interactive latency: one client uploading a 1-4 MP photo at a time and downloading its thumbnail, idle and
//!    while a job of 1,500 such photos runs on the same 2 workers; the ratios against the bound (median
//!    within 2x idle, maximum within 2.5x).
//!
//! `THUMBQ_BENCH_JOB_ITEMS` changes the 10,000.

mod kit;
use kit::{corpus, load, measure, s3, services, stack, wait};
/// What the support code reads of itself, under the names it uses.
mod support {
    pub(crate) use crate::kit::{broker_node, daemon, wait};
}
mod job_run;

use corpus::{locate, photos};
use job_run::{Library, interactive, job_row};

fn main() {
    let Some((release, corpus)) = locate("jobs") else { return };
    let images = photos(&corpus.join("jpeg"));
    let items: usize = std::env::var("THUMBQ_BENCH_JOB_ITEMS").ok().and_then(|n| n.parse().ok()).unwrap_or(10_000);
    let small = job_run::web_sized(&images);
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    println!(
        "\nBulk jobs: {items} items under a prefix of the import store ({} web-sized JPEGs of 640x480, avg {:.0} KB, \
         repeated), 2 workers, 100x100 cover JPEG; against the same images uploaded one by one by 8 clients.",
        small.len(),
        small.iter().map(Vec::len).sum::<usize>() as f64 / small.len() as f64 / 1e3
    );
    println!(
        "{:>7} {:>12} {:>11} {:>8} {:>14} {:>12} {:>14} {:>16}",
        "store",
        "one-by-one/s",
        "job items/s",
        "ratio",
        "API ms/upload",
        "API ms/item",
        "Redis B/item",
        "after item TTL"
    );
    for library in [Library::Folder, Library::S3] {
        let row = runtime.block_on(job_row(&release, &small, items, library));
        println!(
            "{:>7} {:>12.1} {:>11.1} {:>8.2} {:>14.3} {:>12.3} {:>14.0} {:>16.0}",
            library.name(),
            row.uploads_per_second,
            row.items_per_second,
            row.items_per_second / row.uploads_per_second,
            row.api_ms_per_upload,
            row.api_ms_per_item,
            row.redis_bytes_kept,
            row.redis_bytes_expired,
        );
    }
    println!(
        "ratio: job items/s over one-by-one uploads/s; Redis B/item: used_memory over the job per item, with the \
         items' records, then once they expired (the job's counts and item index stay)."
    );
    let latency = runtime.block_on(interactive(&release, &images));
    println!(
        "\nInteractive latency, upload to downloaded thumbnail, one 1-4 MP photo at a time ({} each), idle and \
         during a {}-photo job on the same 2 workers:",
        latency.samples, latency.job_items
    );
    println!("{:>8} {:>10} {:>10}", "", "median ms", "max ms");
    println!("{:>8} {:>10.1} {:>10.1}", "idle", latency.idle.0, latency.idle.1);
    println!("{:>8} {:>10.1} {:>10.1}", "job", latency.busy.0, latency.busy.1);
    let (median, max) = (latency.busy.0 / latency.idle.0, latency.busy.1 / latency.idle.1);
    let verdict = |ratio: f64, bound: f64| if ratio <= bound { "within" } else { "OVER" };
    println!(
        "{:>8} {:>9.2}x {:>9.2}x   (bound: 2x, {}; 2.5x, {}; the job had done {} of {} when the measure ended)",
        "ratio",
        median,
        max,
        verdict(median, 2.0),
        verdict(max, 2.5),
        latency.job_done_at_end,
        latency.job_items
    );
}
