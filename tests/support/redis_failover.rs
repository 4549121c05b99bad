//! Redis with failover, of a test's own: a primary, a replica and three sentinels on spare ports of loopback, each
//! with its own folder; stopped on drop. The test kills the primary; the sentinels promote the replica.

use std::time::Duration;

use crate::support::{
    broker_node::spare_ports,
    daemon::Daemon,
    services::{ask_node, node_info},
    wait::Wait,
};

/// A running primary, replica and three sentinels.
pub struct RedisFailover {
    /// The name the sentinels monitor the primary under.
    pub master_name: String,
    /// The sentinels' `host:port`.
    pub sentinels: Vec<String>,
    /// The primary's port.
    pub primary_port: u16,
    primary: Daemon,
    _replica: Daemon,
    _sentinels: Vec<Daemon>,
    _dir: tempfile::TempDir,
}

impl RedisFailover {
    /// Starts everything and waits until the replica is in sync and every sentinel knows the replica and the
    /// other sentinels (without that a failover cannot happen).
    pub async fn start() -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let [primary_port, replica_port, s1, s2, s3] = spare_ports();
        let unique = uuid::Uuid::new_v4().simple().to_string();
        let master_name = format!("thumbq-test-{}", &unique[..12]);
        let server = |port: u16, extra: &[&str]| {
            let folder = dir.path().join(port.to_string());
            std::fs::create_dir(&folder).expect("a data folder");
            let (port, folder) = (port.to_string(), folder.display().to_string());
            let mut args =
                vec!["--port", &port, "--bind", "127.0.0.1", "--dir", &folder, "--save", "", "--appendonly", "no"];
            args.extend(extra);
            Daemon::spawn("redis-server", &args)
        };
        let primary = server(primary_port, &[]);
        let replica = server(replica_port, &["--replicaof", "127.0.0.1", &primary_port.to_string()]);
        let sentinels: Vec<Daemon> = [s1, s2, s3]
            .iter()
            .map(|port| {
                // A sentinel rewrites its configuration file: each has its own.
                let config = dir.path().join(format!("sentinel-{port}.conf"));
                std::fs::write(
                    &config,
                    format!(
                        "port {port}\nbind 127.0.0.1\ndir {}\nsentinel monitor {master_name} 127.0.0.1 {primary_port} 2\n\
                         sentinel down-after-milliseconds {master_name} 1500\nsentinel failover-timeout {master_name} 10000\n",
                        dir.path().display()
                    ),
                )
                .expect("a sentinel configuration");
                Daemon::spawn("redis-server", &[&config.display().to_string(), "--sentinel"])
            })
            .collect();
        let failover = Self {
            master_name,
            sentinels: [s1, s2, s3].iter().map(|port| format!("127.0.0.1:{port}")).collect(),
            primary_port,
            primary,
            _replica: replica,
            _sentinels: sentinels,
            _dir: dir,
        };
        failover.until_ready(replica_port).await;
        failover
    }

    async fn until_ready(&self, replica_port: u16) {
        let ready = async || {
            let synced =
                node_info(replica_port, "replication").await.is_some_and(|i| i.contains("master_link_status:up"));
            let mut sentinels_ready = true;
            for address in &self.sentinels {
                let port = address.rsplit_once(':').and_then(|(_, p)| p.parse().ok()).expect("a port");
                let master = sentinel(port, "master", &self.master_name).await.unwrap_or_default();
                // `num-slaves` and `num-other-sentinels` in the reply to `SENTINEL MASTER`.
                let field = |name: &str| {
                    let at = master.iter().position(|f| f == name)?;
                    master.get(at + 1)?.parse::<u32>().ok()
                };
                sentinels_ready &= field("num-slaves") == Some(1) && field("num-other-sentinels") == Some(2);
            }
            synced && sentinels_ready
        };
        Wait::new("Redis with sentinels comes up").every(Duration::from_millis(100)).until(ready).await;
    }

    /// Kills the current primary with SIGKILL.
    pub fn kill_primary(&self) {
        self.primary.kill();
    }

    /// The port of the primary the sentinels name now.
    pub async fn primary_now(&self) -> Option<u16> {
        let port = self.sentinels[0].rsplit_once(':').and_then(|(_, p)| p.parse::<u16>().ok())?;
        let (_, port): (String, String) =
            ask_node(port, redis::cmd("SENTINEL").arg("get-master-addr-by-name").arg(&self.master_name)).await?;
        port.parse().ok()
    }
}

/// `SENTINEL <command> <name>` on the sentinel on `port`, as a flat list of strings.
async fn sentinel(port: u16, command: &str, name: &str) -> Option<Vec<String>> {
    ask_node(port, redis::cmd("SENTINEL").arg(command).arg(name)).await
}
