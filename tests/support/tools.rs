//! The command-line tools some tests run (validators, promtool), installed under `.run/tools` by
//! `deploy/native/test-tools.sh`, which `make test` runs first.

use std::{
    io::Write,
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
};

/// The repository's root.
pub fn root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

/// A program under `.run/tools`; fails the test, saying how to install it, when it is missing.
pub fn tool(path: &str) -> PathBuf {
    let tool = root().join(".run/tools").join(path);
    assert!(tool.exists(), "{} is missing: run deploy/native/test-tools.sh (`make test` does)", tool.display());
    tool
}

/// Runs `command`, failing the test with its output unless it succeeds.
pub fn succeeds(command: &mut Command) -> Output {
    let output = command.output().unwrap_or_else(|e| panic!("{command:?} does not run: {e}"));
    assert!(output.status.success(), "{command:?} failed:\n{}", text(&output));
    output
}

/// Runs `command` with `input` on its stdin.
pub fn piped(command: &mut Command, input: &str) -> Output {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{command:?} does not run: {e}"));
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

/// A finished command's stdout then stderr, as text.
pub fn text(output: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}
