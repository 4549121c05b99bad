//! RabbitMQ nodes of a test's own, on spare ports with their data in temporary folders, for the tests that restart
//! or kill the broker: one node, or a cluster of three. Restarting the shared broker instead would break every other
//! test's connections (and the stack of a user who runs `make test` beside `make start`).

use std::{
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::Mutex,
    time::Duration,
};

use crate::support::wait::{Wait, eventually};

/// How long a node may take to boot: three booting at once beside the other tests on two cores take a while, and
/// the boot is not what any test is about.
const BOOT_DEADLINE: Duration = Duration::from_secs(90);

/// Where Debian's `rabbitmq-server` package keeps the scripts that run as the calling user (the `/usr/sbin` wrappers
/// switch to the `rabbitmq` user, whose Erlang cookie this node does not share).
const SCRIPTS: &str = "/usr/lib/rabbitmq/bin";

/// A running private RabbitMQ node; stopped and deleted on drop.
pub struct BrokerNode {
    /// `name@localhost`.
    node: String,
    /// The AMQP port.
    port: u16,
    /// `HOME` (its Erlang cookie), data, logs and config of the node.
    dir: tempfile::TempDir,
    /// The running `rabbitmq-server` (the script execs the Erlang VM).
    server: Mutex<Child>,
    /// Everything `rabbitmq-server` is started with, for restarts.
    env: Vec<(&'static str, PathBuf)>,
}

impl BrokerNode {
    /// Starts a node and waits until it accepts AMQP connections.
    pub async fn start() -> Self {
        let unique = uuid::Uuid::new_v4().simple().to_string();
        Self::start_named(&format!("thumbq-test-{}@localhost", &unique[..12]), None).await
    }

    /// Starts the node `node`, with the Erlang cookie `cookie` when it is to join others.
    async fn start_named(node: &str, cookie: Option<&str>) -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        if let Some(cookie) = cookie {
            use std::os::unix::fs::PermissionsExt;
            let file = dir.path().join(".erlang.cookie");
            std::fs::write(&file, cookie).expect("a cookie file");
            // Erlang refuses a cookie file others can read.
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o400)).expect("cookie permissions");
        }
        let node = node.to_owned();
        let [port, dist_port] = spare_ports();
        std::fs::write(dir.path().join("enabled_plugins"), "[].").expect("a plugins file");
        let path = |name: &str| dir.path().join(name);
        let mut env = node_env(dir.path(), &node).to_vec();
        env.extend([
            ("RABBITMQ_NODE_IP_ADDRESS", PathBuf::from("127.0.0.1")),
            ("RABBITMQ_NODE_PORT", PathBuf::from(port.to_string())),
            ("RABBITMQ_DIST_PORT", PathBuf::from(dist_port.to_string())),
            ("RABBITMQ_MNESIA_BASE", path("mnesia")),
            ("RABBITMQ_LOG_BASE", path("log")),
            ("RABBITMQ_PID_FILE", path("rabbitmq.pid")),
            ("RABBITMQ_ENABLED_PLUGINS_FILE", path("enabled_plugins")),
            // Nothing from /etc/rabbitmq: these files do not exist, so the node runs on its defaults.
            ("RABBITMQ_CONFIG_FILE", path("rabbitmq")),
            ("RABBITMQ_ADVANCED_CONFIG_FILE", path("advanced.config")),
            ("RABBITMQ_CONF_ENV_FILE", path("rabbitmq-env.conf")),
        ]);
        let server = Mutex::new(spawn_server(&env));
        let broker = Self { node, port, dir, server, env };
        broker.await_startup().await;
        broker
    }

    /// The AMQP URL of this node.
    pub fn url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.port)
    }

    /// Stops the node (every connection is closed, the Erlang VM exits) and starts it again on the same data, as
    /// `systemctl restart rabbitmq-server` does.
    pub async fn restart(&self) {
        self.ctl(&["stop"]).await.expect("rabbitmqctl stop");
        // `rabbitmqctl stop` returns once the node is going down; the VM exits a moment later.
        let exited =
            async || self.server.lock().expect("server lock").try_wait().expect("the server's status").is_some();
        eventually(&format!("RabbitMQ node {} exits", self.node), exited).await;
        *self.server.lock().expect("server lock") = spawn_server(&self.env);
        self.await_startup().await;
    }
    /// Waits until the node has booted and its AMQP port accepts connections.
    async fn await_startup(&self) {
        let what = format!("RabbitMQ node {} starts (logs in {})", self.node, self.dir.path().join("log").display());
        Wait::new(what)
            .within(BOOT_DEADLINE)
            .every(Duration::from_millis(200))
            .until_ok(async || {
                // `await_startup` fails at once while the VM is not yet registered with epmd.
                self.ctl(&["await_startup", "--timeout", "5"]).await?;
                tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await.map(drop).map_err(|e| e.to_string())
            })
            .await;
    }

    /// Runs `rabbitmqctl -n <node> <args>`: its output, or its error output when it fails.
    async fn ctl(&self, args: &[&str]) -> Result<String, String> {
        let output = tokio::process::Command::from(self.ctl_command(args)).output().await.map_err(|e| e.to_string())?;
        match output.status.success() {
            true => Ok(String::from_utf8_lossy(&output.stdout).into_owned()),
            false => Err(String::from_utf8_lossy(&output.stderr).into_owned()),
        }
    }

    /// Kills the node's Erlang VM with SIGKILL: no goodbye to clients or to the other nodes. The VM is a child of
    /// the `rabbitmq-server` script, not the script itself: its pid is in the node's pid file.
    pub fn kill(&self) {
        let pid_file = self.dir.path().join("rabbitmq.pid");
        let pid = std::fs::read_to_string(&pid_file).expect("the node's pid file");
        let killed = Command::new("kill").args(["-KILL", pid.trim()]).status().expect("kill runs");
        assert!(killed.success(), "kill -KILL {pid}");
        // The script exits once its VM has.
        let _ = self.server.lock().expect("server lock").wait();
    }

    /// `rabbitmqctl -n <node> <args>`, sharing the node's home (so its Erlang cookie).
    fn ctl_command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(Path::new(SCRIPTS).join("rabbitmqctl"));
        command.envs(node_env(self.dir.path(), &self.node)).args(["-n", &self.node]).args(args);
        command
    }
}

/// Three RabbitMQ nodes of a test's own joined in one cluster; stopped and deleted on drop.
pub struct BrokerCluster {
    /// The nodes; the first is the one the others joined.
    pub nodes: Vec<BrokerNode>,
}

impl BrokerCluster {
    /// Starts three nodes sharing one Erlang cookie, joins the second and third to the first, and waits until all
    /// three accept AMQP connections.
    pub async fn start() -> Self {
        let unique = uuid::Uuid::new_v4().simple().to_string();
        let [one, two, three] = [1, 2, 3].map(|i| format!("thumbq-test-{}-{i}@localhost", &unique[..12]));
        let cookie = Some(unique.as_str());
        let (a, b, c) = tokio::join!(
            BrokerNode::start_named(&one, cookie),
            BrokerNode::start_named(&two, cookie),
            BrokerNode::start_named(&three, cookie),
        );
        for node in [&b, &c] {
            for args in [&["stop_app"][..], &["join_cluster", &a.node], &["start_app"]] {
                node.ctl(args).await.unwrap_or_else(|e| panic!("rabbitmqctl -n {} {args:?}: {e}", node.node));
            }
            node.await_startup().await;
        }
        Self { nodes: vec![a, b, c] }
    }

    /// `THUMBQ_AMQP_URL` for the cluster: every node's URL, comma-separated.
    pub fn url(&self) -> String {
        self.nodes.iter().map(BrokerNode::url).collect::<Vec<_>>().join(",")
    }

    /// Which node leads the quorum queue `queue`, asked of `asked` (any live node).
    pub async fn leader_of(&self, queue: &str, asked: usize) -> usize {
        let listing = self.nodes[asked]
            .ctl(&["list_queues", "name", "leader", "members", "--quiet", "--no-table-headers"])
            .await
            .expect("rabbitmqctl list_queues");
        let line = listing.lines().find(|line| line.split_whitespace().next() == Some(queue));
        let leader = line.and_then(|l| l.split_whitespace().nth(1)).unwrap_or_else(|| panic!("{queue} in {listing}"));
        self.nodes.iter().position(|n| n.node == leader).unwrap_or_else(|| panic!("{leader} is not a test node"))
    }

    /// The members of the quorum queue `queue` (their count), asked of `asked`.
    pub async fn members_of(&self, queue: &str, asked: usize) -> usize {
        let listing = self.nodes[asked]
            .ctl(&["list_queues", "name", "members", "--quiet", "--no-table-headers"])
            .await
            .expect("rabbitmqctl list_queues");
        let line = listing.lines().find(|line| line.split_whitespace().next() == Some(queue)).unwrap_or_default();
        line.matches("@localhost").count()
    }

    /// The client connections' names on node `index`.
    pub async fn connections_on(&self, index: usize) -> String {
        self.nodes[index]
            .ctl(&["list_connections", "client_properties", "--quiet", "--no-table-headers"])
            .await
            .expect("rabbitmqctl list_connections")
    }
}

impl Drop for BrokerNode {
    fn drop(&mut self) {
        let stopped =
            self.ctl_command(&["stop"]).stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success());
        let Ok(server) = self.server.get_mut() else { return };
        if !stopped {
            let _ = server.kill();
        }
        let _ = server.wait();
    }
}

/// Starts `rabbitmq-server` with `env`.
fn spawn_server(env: &[(&'static str, PathBuf)]) -> Child {
    Command::new(Path::new(SCRIPTS).join("rabbitmq-server"))
        .envs(env.iter().cloned())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("rabbitmq-server starts (Debian package rabbitmq-server)")
}

/// What the node and the CLI share: the home with the Erlang cookie, and the node's name.
fn node_env(dir: &Path, node: &str) -> [(&'static str, PathBuf); 2] {
    [("HOME", dir.to_path_buf()), ("RABBITMQ_NODENAME", PathBuf::from(node))]
}

/// `N` different TCP ports nothing listens on right now.
pub fn spare_ports<const N: usize>() -> [u16; N] {
    let listeners: [TcpListener; N] = std::array::from_fn(|_| TcpListener::bind("127.0.0.1:0").expect("a free port"));
    listeners.map(|l| l.local_addr().expect("a bound address").port())
}
