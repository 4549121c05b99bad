//! A server process a test starts (moto, Redis, Sentinel) that cannot outlive the test process: it runs under a
//! shell that waits on its stdin, and when the test process ends, however it ends, the pipe closes and the shell
//! stops the server.

use std::{
    ffi::OsStr,
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
};

/// A running server; stopped on drop.
pub struct Daemon {
    shell: Child,
    /// The server's own pid (not the shell's).
    pub pid: u32,
}

impl Daemon {
    /// Starts `program` with `args`, its output discarded.
    pub fn spawn(program: impl AsRef<OsStr>, args: &[&str]) -> Self {
        let script = r#""$@" >/dev/null 2>&1 & echo $!; cat >/dev/null; kill $! 2>/dev/null"#;
        let mut shell = Command::new("sh")
            .args(["-c", script, "sh"])
            .arg(program.as_ref())
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("sh starts {:?}: {e}", program.as_ref()));
        let mut line = String::new();
        BufReader::new(shell.stdout.take().expect("the shell's stdout")).read_line(&mut line).expect("a pid line");
        let pid = line.trim().parse().unwrap_or_else(|_| panic!("a pid, got {line:?}"));
        Self { shell, pid }
    }

    /// Kills the server with SIGKILL: no clean-up, no goodbye to its clients.
    pub fn kill(&self) {
        let status = Command::new("kill").args(["-KILL", &self.pid.to_string()]).status().expect("kill runs");
        assert!(status.success(), "kill -KILL {}", self.pid);
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        drop(self.shell.stdin.take());
        let _ = self.shell.wait();
    }
}
