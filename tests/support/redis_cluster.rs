//! A Redis Cluster of a test's own: three primaries and three replicas (Debian's `redis-server` in cluster mode) on
//! spare ports of loopback, each with its own folder; stopped on drop. The test may kill the primary of a key.

use std::time::Duration;

use thumbq_common::settings::RedisSettings;

use crate::support::{
    broker_node::spare_ports,
    daemon::Daemon,
    services::{ask_node, node_info, redis_connection},
    wait::Wait,
};

/// Six running nodes, joined.
pub struct RedisCluster {
    /// Every node's `host:port`, the seeds `THUMBQ_REDIS_CLUSTER` takes.
    pub nodes: Vec<String>,
    servers: Vec<(u16, Daemon)>,
    _dir: tempfile::TempDir,
}

impl RedisCluster {
    /// Starts six nodes, makes them a cluster of three primaries with a replica each, and waits until every node
    /// sees every other, every slot is served, and every replica is in sync (a primary killed before its replica
    /// synced is never failed over).
    pub async fn start() -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        // A client port and a cluster-bus port each (the bus's default, port + 10,000, may not be free).
        let ports: [u16; 12] = spare_ports();
        let servers = ports
            .chunks(2)
            .map(|pair| {
                let (port, bus) = (pair[0], pair[1]);
                let folder = dir.path().join(port.to_string());
                std::fs::create_dir(&folder).expect("a data folder");
                let (port_arg, bus_arg, folder) = (port.to_string(), bus.to_string(), folder.display().to_string());
                let args = [
                    "--port",
                    &port_arg,
                    "--cluster-port",
                    &bus_arg,
                    "--bind",
                    "127.0.0.1",
                    "--dir",
                    &folder,
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "nodes.conf",
                    "--cluster-node-timeout",
                    "1500",
                ];
                (port, Daemon::spawn("redis-server", &args))
            })
            .collect::<Vec<_>>();
        let nodes: Vec<String> = servers.iter().map(|(port, _)| format!("127.0.0.1:{port}")).collect();
        let cluster = Self { nodes, servers, _dir: dir };
        for (port, _) in &cluster.servers {
            Wait::new("a cluster node answers").until(async || node_info(*port, "server").await.is_some()).await;
        }
        let create = tokio::process::Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&cluster.nodes)
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .stdout(std::process::Stdio::null())
            .kill_on_drop(true)
            .status();
        let status = tokio::time::timeout(Duration::from_secs(60), create).await.expect("redis-cli in time");
        assert!(status.expect("redis-cli runs").success(), "redis-cli --cluster create");
        cluster.until_healthy(6).await;
        cluster
    }

    /// Waits until the `nodes` nodes alive see each other, the cluster is `ok`, and every replica is in sync.
    pub async fn until_healthy(&self, nodes: usize) {
        let healthy = async || {
            let mut healthy = true;
            for (port, _) in &self.servers {
                let Some(cluster) = cluster_info(*port).await else { continue }; // a killed node
                healthy &= cluster.contains("cluster_state:ok")
                    && cluster.contains(&format!("cluster_known_nodes:{}", self.servers.len()));
                let replication = node_info(*port, "replication").await.unwrap_or_default();
                if replication.contains("role:slave") {
                    healthy &= replication.contains("master_link_status:up");
                }
            }
            let alive = futures_util::future::join_all(self.servers.iter().map(|(port, _)| node_info(*port, "server")));
            healthy && alive.await.iter().flatten().count() == nodes
        };
        Wait::new("the Redis Cluster is healthy")
            .every(Duration::from_millis(100))
            .within(Duration::from_secs(60))
            .until(healthy)
            .await;
    }

    /// Settings that put thumbq's state on this cluster.
    pub fn configure(&self, redis: &mut RedisSettings) {
        redis.cluster = self.nodes.clone();
        redis.url = format!("redis://{}", self.nodes[0]); // only its password counts
    }

    /// The port of the primary that serves `key`'s slot now.
    pub async fn primary_of(&self, key: &str) -> u16 {
        let mut live = None;
        for (port, _) in &self.servers {
            if let Ok(conn) = redis_connection(&format!("redis://127.0.0.1:{port}")).await {
                live = Some(conn);
                break;
            }
        }
        let mut conn = live.expect("a node answers");
        let slot: u16 = redis::cmd("CLUSTER").arg("KEYSLOT").arg(key).query_async(&mut conn).await.expect("KEYSLOT");
        // `CLUSTER SLOTS`: [[first, last, [host, port, id, ...], replicas...], ...]
        let ranges: Vec<redis::Value> =
            redis::cmd("CLUSTER").arg("SLOTS").query_async(&mut conn).await.expect("CLUSTER SLOTS");
        let number = |value: &redis::Value| redis::from_redis_value::<u16>(value.clone()).ok();
        ranges
            .iter()
            .find_map(|range| {
                let redis::Value::Array(parts) = range else { return None };
                let (first, last) = (number(parts.first()?)?, number(parts.get(1)?)?);
                let redis::Value::Array(primary) = parts.get(2)? else { return None };
                (first..=last).contains(&slot).then(|| number(primary.get(1)?)).flatten()
            })
            .expect("the slot is served")
    }

    /// Kills the node on `port` with SIGKILL.
    pub fn kill(&self, port: u16) {
        self.servers.iter().find(|(p, _)| *p == port).expect("a node of this cluster").1.kill();
    }
}

/// `CLUSTER INFO` of the node on `port`.
async fn cluster_info(port: u16) -> Option<String> {
    ask_node(port, redis::cmd("CLUSTER").arg("INFO")).await
}
