//! What the bench reads about the processes it runs: CPU time and peak memory from `/proc`, the process behind a
//! listening port, Redis's command counts and memory, and the S3 server's request log.

use std::process::Command;

use thumbq_common::settings::RedisSettings;

use crate::services;

/// Commands Redis has processed since it started.
pub async fn redis_commands(url: &str) -> f64 {
    redis_info(url, "stats", "total_commands_processed").await
}

/// Bytes of memory Redis holds for its data (`used_memory`): meaningful on a Redis nothing else uses.
pub async fn redis_memory(url: &str) -> f64 {
    redis_info(url, "memory", "used_memory").await
}

/// CPU milliseconds Redis has used since it started (`used_cpu_user` + `used_cpu_sys`, its main thread and any
/// other).
pub async fn redis_cpu_ms(url: &str) -> f64 {
    (redis_info(url, "cpu", "used_cpu_user").await + redis_info(url, "cpu", "used_cpu_sys").await) * 1000.0
}

/// Of [`redis_memory`], what the clients' connections hold (`mem_clients_normal`: query and output buffers), which
/// grows and shrinks with traffic, not with the data kept.
pub async fn redis_client_memory(url: &str) -> f64 {
    redis_info(url, "memory", "mem_clients_normal").await
}

/// Calls of each command since the statistics were reset (`INFO commandstats`), most called first.
pub async fn redis_command_calls(url: &str) -> Vec<(String, f64)> {
    let info = redis_section(url, "commandstats").await;
    let mut calls: Vec<(String, f64)> = info
        .lines()
        .filter_map(|l| {
            let (name, rest) = l.strip_prefix("cmdstat_")?.split_once(':')?;
            let count = rest.split(',').find_map(|f| f.strip_prefix("calls="))?.parse().ok()?;
            Some((name.to_owned(), count))
        })
        .collect();
    calls.sort_by(|a, b| b.1.total_cmp(&a.1));
    calls
}

/// The Redis nodes behind `redis`, as URLs: the primaries (the URL's node, or each primary of a Redis Cluster) and
/// their replicas (from each primary's `INFO replication`), so that their costs are told apart.
pub async fn redis_nodes(redis: &RedisSettings) -> (Vec<String>, Vec<String>) {
    let candidates: Vec<String> = match redis.cluster.as_slice() {
        [] => vec![redis.url.clone()],
        nodes => nodes.iter().map(|node| format!("redis://{node}")).collect(),
    };
    let (mut primaries, mut replicas) = (Vec::new(), Vec::new());
    for url in candidates {
        let replication = redis_section(&url, "replication").await;
        if !replication.contains("role:master") {
            continue;
        }
        // `slave0:ip=127.0.0.1,port=6382,state=online,...`
        replicas.extend(replication.lines().filter(|l| l.starts_with("slave")).filter_map(|l| {
            let field = |name: &str| l.split([':', ',']).find_map(|f| f.strip_prefix(name));
            Some(format!("redis://{}:{}", field("ip=")?, field("port=")?))
        }));
        primaries.push(url);
    }
    replicas.sort();
    replicas.dedup();
    (primaries, replicas)
}

/// A number in a section of Redis's `INFO`; 0 when it cannot be read.
async fn redis_info(url: &str, section: &str, field: &str) -> f64 {
    redis_section(url, section)
        .await
        .lines()
        .find_map(|l| l.strip_prefix(field).and_then(|rest| rest.strip_prefix(':')))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

/// A section of Redis's `INFO`; empty when it cannot be read.
async fn redis_section(url: &str, section: &str) -> String {
    async {
        let mut conn = services::redis_connection(url).await.ok()?;
        redis::cmd("INFO").arg(section).query_async(&mut conn).await.ok()
    }
    .await
    .unwrap_or_default()
}

/// Requests in the S3 server's log (`THUMBQ_BENCH_S3_LOG`), if one is named.
pub fn s3_requests() -> Option<f64> {
    let log = std::fs::read_to_string(std::env::var("THUMBQ_BENCH_S3_LOG").ok()?).ok()?;
    Some(log.lines().filter(|l| l.contains(" HTTP/1.1\" ")).count() as f64)
}

/// CPU time (user + system) of a process so far, in ms.
pub fn cpu_ms(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces): utime and stime are the 12th and 13th.
    let fields: Vec<&str> = stat.rsplit_once(')').map_or(vec![], |(_, rest)| rest.split_whitespace().collect());
    let ticks: f64 = fields.get(11..13).map_or(0.0, |f| f.iter().filter_map(|v| v.parse::<f64>().ok()).sum());
    ticks * 10.0 // USER_HZ is 100 on Linux
}

/// The pid of the process listening on the port of `url` (the broker or Redis the settings name), from `ss`.
pub fn listener_pid(url: &str) -> Option<u32> {
    let port = services::address_of(url).port();
    let out = Command::new("ss").args(["-Htlnp", &format!("sport = :{port}")]).output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.split("pid=").nth(1)?.split(',').next()?.parse().ok()
}

/// Peak resident memory (VmHWM) of a process, in MB.
pub fn peak_mb(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0.0);
    kb / 1024.0
}
