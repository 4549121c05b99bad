//! `make bench`, part 4: what one task costs Redis, on a Redis of the bench's own that nothing else uses (a
//! `redis-server` on a spare port, removed afterwards), with one API and one worker as processes (`stack`).
//!
//! After 20 tasks to warm up, 200 tasks one at a time, each an upload and one long-poll download of its thumbnail:
//! the commands Redis ran per task (`total_commands_processed`, commands run inside scripts included, less what the
//! stack runs idle over the same time: heartbeats and the job pump's turns), Redis's CPU time per task (idle time
//! subtracted the same way), the most called, and the memory each
//! finished task keeps (marginal `used_memory`, less the growth of the clients' buffers, printed apart), against
//! issue 27's goals of 15 commands and 800 bytes.
//! `THUMBQ_BENCH_CENSUS_TASKS` changes the 200.

mod kit;
use kit::{broker_node, corpus, daemon, load, measure, services, stack, wait};
/// What the support code reads of itself, under the names it uses.
mod support {
    pub(crate) use crate::kit::{broker_node, daemon, wait};
}

use std::time::{Duration, Instant};

use corpus::{locate, photos};
use load::{download, upload};
use measure::{redis_client_memory, redis_command_calls, redis_commands, redis_cpu_ms, redis_memory};
use stack::Stack;

/// The goals.
const COMMANDS_GOAL: f64 = 15.0;
const BYTES_GOAL: f64 = 800.0;

fn main() {
    let Some((release, corpus)) = locate("redis_costs") else { return };
    let images = photos(&corpus.join("jpeg"));
    let tasks: usize = std::env::var("THUMBQ_BENCH_CENSUS_TASKS").ok().and_then(|n| n.parse().ok()).unwrap_or(200);
    let [port] = broker_node::spare_ports::<1>();
    let folder = tempfile::tempdir().expect("a folder for Redis");
    let port_arg = port.to_string();
    let dir = folder.path().display().to_string();
    let _redis = daemon::Daemon::spawn(
        "redis-server",
        &["--port", &port_arg, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", &dir],
    );
    let url = format!("redis://127.0.0.1:{port}");
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    runtime.block_on(async {
        wait::Wait::new("the private Redis answers")
            .until(async || services::redis_connection(&url).await.is_ok())
            .await;
        let stack = Stack::start(&release, 1, &[("THUMBQ_REDIS_URL", url.clone())]).await;
        let client = reqwest::Client::new();
        let one = async |i: usize| {
            let image = images[i % images.len()].clone();
            download(&client, upload(&client, &format!("{}/thumbnails", stack.base), image).await).await;
        };
        for i in 0..20 {
            one(i).await;
        }
        // What the stack does with nothing to do, per second: subtracted from the tasks' count.
        let idle_started = (redis_commands(&url).await, redis_cpu_ms(&url).await, Instant::now());
        tokio::time::sleep(Duration::from_secs(5)).await;
        let idle_seconds = idle_started.2.elapsed().as_secs_f64();
        let idle_per_second = (redis_commands(&url).await - idle_started.0 - 1.0) / idle_seconds;
        let idle_cpu_per_second = (redis_cpu_ms(&url).await - idle_started.1) / idle_seconds;
        // The calls per command are counted as differences: `CONFIG RESETSTAT` would also free Redis's
        // per-command latency histograms (`latency-tracking`, on by default), each allocated again at its
        // command's next call, which the memory read below would count as over a kilobyte a task.
        let calls_before: std::collections::HashMap<String, f64> =
            redis_command_calls(&url).await.into_iter().collect();
        let (commands_before, memory_before, clients_before, cpu_before) = (
            redis_commands(&url).await,
            redis_memory(&url).await,
            redis_client_memory(&url).await,
            redis_cpu_ms(&url).await,
        );
        let started = Instant::now();
        for i in 0..tasks {
            one(i).await;
        }
        let elapsed = started.elapsed().as_secs_f64();
        let commands = redis_commands(&url).await - commands_before - idle_per_second * elapsed;
        let cpu_ms = redis_cpu_ms(&url).await - cpu_before - idle_cpu_per_second * elapsed;
        let (memory_after, clients_after) = (redis_memory(&url).await, redis_client_memory(&url).await);
        // The connections' buffers are not the tasks' (Redis shrinks them once a client idles): they are counted
        // apart, and the memory per task is what the data grew by.
        let clients = clients_after - clients_before;
        let memory = memory_after - memory_before - clients;
        let mut calls: Vec<(String, f64)> = redis_command_calls(&url)
            .await
            .into_iter()
            .map(|(name, count)| {
                let before = calls_before.get(&name).copied().unwrap_or(0.0);
                (name, count - before)
            })
            .collect();
        calls.sort_by(|a, b| b.1.total_cmp(&a.1));
        // Where the memory is, by kind of key (the name under the prefix, up to its first `:`).
        let mut kinds: std::collections::BTreeMap<String, (usize, u64)> = Default::default();
        for (key, bytes) in services::bytes_by_key(&stack.settings.redis).await.expect("MEMORY USAGE") {
            let name = key.strip_prefix(&stack.settings.redis.key_prefix).unwrap_or(&key);
            let kind = kinds.entry(name.split(':').next().unwrap_or(name).to_owned()).or_default();
            *kind = (kind.0 + 1, kind.1 + bytes);
        }
        stack.stop().await;
        let (per_task, bytes, cpu_per_task) = (commands / tasks as f64, memory / tasks as f64, cpu_ms / tasks as f64);
        let verdict = |value: f64, goal: f64| if value <= goal { "met" } else { "NOT met" };
        println!(
            "\nRedis per task, on a Redis of its own: {tasks} tasks one at a time (upload, one long-poll download), 1 \
             API, 1 worker, after 20 to warm up; idle traffic ({idle_per_second:.1} commands/s) subtracted."
        );
        println!("{:>22} {:>10} {:>8} {:>8}", "", "per task", "goal", "");
        println!("{:>22} {per_task:>10.1} {COMMANDS_GOAL:>8.0} {:>8}", "commands", verdict(per_task, COMMANDS_GOAL));
        println!("{:>22} {bytes:>10.0} {BYTES_GOAL:>8.0} {:>8}", "used_memory bytes", verdict(bytes, BYTES_GOAL));
        println!("{:>22} {cpu_per_task:>10.3}", "Redis CPU ms");
        println!(
            "(used_memory grew {:.0} bytes a task with the clients' buffers, which grew {clients:.0} bytes in all)",
            (memory + clients) / tasks as f64
        );
        let most: Vec<String> = calls
            .iter()
            .filter(|(name, _)| name != "info")
            .take(14)
            .map(|(name, count)| format!("{name} {:.2}", count / tasks as f64))
            .collect();
        println!("most called, per task (the idle traffic included): {}", most.join(", "));
        let total_tasks = (tasks + 20) as f64;
        let kinds: Vec<String> = kinds
            .iter()
            .map(|(kind, (keys, bytes))| format!("{kind} {:.0} ({keys} keys)", *bytes as f64 / total_tasks))
            .collect();
        println!("MEMORY USAGE per task by kind of key, over all {} tasks kept: {}", tasks + 20, kinds.join(", "));
    });
}
