//! A RabbitMQ node of a test's own, on spare ports with its data in a temporary folder, for the tests that restart
//! the broker. Restarting the shared broker instead would break every other test's connections (and the stack of a
//! user who runs `make test` beside `make start`).

use std::{
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::Mutex,
    time::Duration,
};

use crate::support::DEADLINE;

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
        let dir = tempfile::tempdir().expect("a temporary directory");
        let unique = uuid::Uuid::new_v4().simple().to_string();
        let node = format!("thumbq-test-{}@localhost", &unique[..12]);
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
        let deadline = tokio::time::Instant::now() + DEADLINE;
        while self.server.lock().expect("server lock").try_wait().expect("the server's status").is_none() {
            assert!(tokio::time::Instant::now() < deadline, "RabbitMQ node {} did not exit", self.node);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        *self.server.lock().expect("server lock") = spawn_server(&self.env);
        self.await_startup().await;
    }
    /// Waits until the node has booted and its AMQP port accepts connections.
    async fn await_startup(&self) {
        let deadline = tokio::time::Instant::now() + DEADLINE;
        loop {
            // `await_startup` fails at once while the VM is not yet registered with epmd.
            let booted = self.ctl(&["await_startup", "--timeout", "5"]).await;
            let listening = tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await.is_ok();
            if booted.is_ok() && listening {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "RabbitMQ node {} did not start within {DEADLINE:?}: {booted:?}; logs in {}",
                self.node,
                self.dir.path().join("log").display()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Runs `rabbitmqctl -n <node> <args>`; its output when it fails.
    async fn ctl(&self, args: &[&str]) -> Result<(), String> {
        let output = tokio::process::Command::from(self.ctl_command(args)).output().await.map_err(|e| e.to_string())?;
        match output.status.success() {
            true => Ok(()),
            false => Err(String::from_utf8_lossy(&output.stderr).into_owned()),
        }
    }

    /// `rabbitmqctl -n <node> <args>`, sharing the node's home (so its Erlang cookie).
    fn ctl_command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(Path::new(SCRIPTS).join("rabbitmqctl"));
        command.envs(node_env(self.dir.path(), &self.node)).args(["-n", &self.node]).args(args);
        command
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
