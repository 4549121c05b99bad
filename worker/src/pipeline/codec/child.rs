//! Decoders that run as child processes (FFmpeg's tools; the PDF renderer limits itself): each under kernel limits set between fork and
//! exec, [`CPU_SECONDS`] of CPU (then the kernel kills it) and [`ADDRESS_SPACE`] bytes of memory (its allocations
//! fail past it), so a file built to exhaust a decoder costs one failed task, never the worker.
#![allow(unsafe_code)]

use std::{
    io::{Read, Write},
    os::unix::process::CommandExt,
    process::{Command, Stdio},
};

/// CPU seconds a decoder process may use.
pub const CPU_SECONDS: u64 = 20;
/// Bytes of address space a decoder process may map (its code and libraries take about 100 MB of it).
pub const ADDRESS_SPACE: u64 = 1 << 30;

/// Caps the calling process's address space at [`ADDRESS_SPACE`]: for a child that limits itself once started, as
/// the PDF renderer does before it reads a document.
pub fn limit_own_address_space() -> std::io::Result<()> {
    set_limit(libc::RLIMIT_AS, ADDRESS_SPACE)
}

/// The largest peak resident memory of this process's ended and reaped children, in KiB.
pub fn largest_child_peak_kib() -> u64 {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage fills the struct it is given, which is zeroed and of the right type.
    if unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, usage.as_mut_ptr()) } != 0 {
        return 0;
    }
    // SAFETY: zeroed is a valid rusage, and getrusage succeeded.
    u64::try_from(unsafe { usage.assume_init() }.ru_maxrss).unwrap_or(0)
}

/// Sets one kernel limit on the calling process. Async-signal-safe (one system call), so fit for between fork and exec.
fn set_limit(resource: libc::__rlimit_resource_t, limit: u64) -> std::io::Result<()> {
    let limit = libc::rlimit { rlim_cur: limit, rlim_max: limit };
    // SAFETY: setrlimit reads the struct it is given and touches nothing else.
    if unsafe { libc::setrlimit(resource, &limit) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Runs `program` with `args`, `input` on its standard input (none: an empty one), under the limits; its standard
/// output, or its first line of complaint.
pub fn run(program: &str, args: &[&str], input: Option<&[u8]>) -> Result<Vec<u8>, String> {
    run_capped(program, args, input, usize::MAX)
}

/// [`run`], killing the process once its standard output passes `max_output` bytes: the limits bound the child's
/// memory, this bounds what the worker holds of its output.
pub fn run_capped(program: &str, args: &[&str], input: Option<&[u8]>, max_output: usize) -> Result<Vec<u8>, String> {
    let mut command = Command::new(program);
    command.args(args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    // SAFETY: between fork and exec only async-signal-safe calls are allowed; the closure makes two setrlimit calls
    // with constant limits and nothing else.
    unsafe {
        command.pre_exec(|| {
            set_limit(libc::RLIMIT_CPU, CPU_SECONDS)?;
            set_limit(libc::RLIMIT_AS, ADDRESS_SPACE)
        });
    }
    let mut child = command.spawn().map_err(|e| format!("{program} cannot start: {e}"))?;
    let (mut stdin, stdout, stderr) =
        (child.stdin.take().expect("piped"), child.stdout.take().expect("piped"), child.stderr.take().expect("piped"));
    // The input is written while the output and messages are read, so no pipe fills up and stops the other.
    let (stdout, stderr) = std::thread::scope(|scope| {
        scope.spawn(move || stdin.write_all(input.unwrap_or_default()));
        let messages = scope.spawn(move || {
            let mut kept = Vec::new();
            let mut stderr = stderr;
            let _ = (&mut stderr).take(64 << 10).read_to_end(&mut kept);
            let _ = std::io::copy(&mut stderr, &mut std::io::sink());
            kept
        });
        let mut output = Vec::new();
        let read =
            stdout.take(u64::try_from(max_output).unwrap_or(u64::MAX).saturating_add(1)).read_to_end(&mut output);
        if read.is_err() || output.len() > max_output {
            // Past the cap (or unreadable): stop it, which also ends its messages.
            let _ = child.kill();
        }
        (output, messages.join().unwrap_or_default())
    });
    let status = child.wait().map_err(|e| format!("{program} failed: {e}"))?;
    if stdout.len() > max_output {
        return Err(format!("{program} wrote more than the {max_output} bytes expected"));
    }
    if !status.success() {
        let message = String::from_utf8_lossy(&stderr);
        let reason = message.lines().find(|l| !l.trim().is_empty()).unwrap_or("no message");
        return Err(match status.code() {
            Some(code) => format!("{program} could not read the file ({code}): {reason}"),
            None => format!("{program} was stopped past its CPU or memory limit: {reason}"),
        });
    }
    Ok(stdout)
}
