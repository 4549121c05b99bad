//! The PDF renderer process: the worker's own binary run as `thumbq-worker render-pdf`, kept warm and asked page after
//! page over its standard input and output.
//!
//! A process because nothing inside one can stop a document built to exhaust its renderer: a page may take minutes to
//! draw, or ask for gigabytes, and a thread cannot be stopped from outside. The renderer caps its own address space
//! at 1 GiB ([`limit_own_address_space`]) before it reads a document (an allocation past it ends that process, not the worker), and
//! every question has [`TIME_LIMIT`] of wall-clock time, after which the worker kills the process; the next question
//! starts a fresh one. Warm, because starting a process per page (poppler's tools, before) cost 7 times libvips's
//! whole in-process render. A renderer answers at most [`USES`] questions, so what a long life leaks stays bounded.
//!
//! The protocol is hand-written: a handful of fixed fields (below), for which a serialisation crate would be more
//! code than it saves. Little-endian throughout.
//! - On start, the renderer writes [`HELLO`]; anything else is not thumbq's renderer (a wrong program).
//! - A question: `u8` kind (1 size, 2 page), `u32` longer side (pages only, 0 for sizes), `u64` length, the document.
//! - An answer: `u8` 0 and the answer (a size: two `f32`s, points; a page: `u32` width, `u32` height, the RGB
//!   pixels), or `u8` 1, `u32` length and a UTF-8 message saying why the document was refused.

use std::{
    io::{self, BufReader, Read, Write},
    path::{Path, PathBuf},
    process::{Child, ChildStdin, ChildStdout, Command, Stdio},
    sync::{
        Arc, Mutex, OnceLock,
        atomic::{AtomicBool, Ordering},
        mpsc,
    },
    time::Duration,
};

use image::RgbImage;

use super::{
    super::child::{CPU_SECONDS, limit_own_address_space},
    draw,
};

/// What a renderer writes first.
const HELLO: &[u8] = b"thumbq-pdf-renderer 1\n";
/// The subcommand of the worker's binary that runs a renderer.
pub const SUBCOMMAND: &str = "render-pdf";
/// Wall-clock time for one question (as much as poppler's processes had of CPU).
pub const TIME_LIMIT: Duration = Duration::from_secs(CPU_SECONDS);
/// Questions a renderer answers before it is replaced.
const USES: u32 = 256;
/// Renderers kept waiting for work (one per concurrent PDF is enough; more would only hold memory).
const IDLE: usize = 4;
/// The longest refusal message, in bytes.
const MESSAGE: u32 = 4 << 10;

/// A question about a document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Question {
    /// The first page's size in points, turned as shown.
    Size,
    /// The first page drawn with this longer side.
    Page(u32),
}

/// What the renderer answered.
#[derive(Debug)]
enum Answer {
    Size(f32, f32),
    Page(RgbImage),
}

/// The renderers [`page_size`] and [`page`] ask: from the program [`use_program`] names, else the running binary
/// itself (which is `thumbq-worker`).
static SHARED: OnceLock<Renderers> = OnceLock::new();

/// Runs the shared renderers from `program` (a binary whose `render-pdf` subcommand is [`serve`]) instead of this
/// process's own binary: for a harness that runs the worker inside another binary (the end-to-end tests, the bench).
/// Only before the first PDF; later calls change nothing.
pub fn use_program(program: PathBuf) {
    let _ = SHARED.set(Renderers::new(Some(program), TIME_LIMIT));
}

/// The first page's width and height in points, turned as it is shown.
pub fn page_size(document: &[u8]) -> Result<(f32, f32), String> {
    // The library's own unit tests (the fuzzer among them) have no worker binary to start, so they draw here; the
    // process, its limits and its kill are tested with a binary (`tests/pdf_renderer.rs`).
    if cfg!(test) {
        return draw::page_size(document);
    }
    shared().page_size(document)
}

/// The first page drawn on white, its longer side `side` pixels.
pub fn page(document: &[u8], side: u32) -> Result<RgbImage, String> {
    if cfg!(test) {
        return draw::page(document, side);
    }
    shared().page(document, side)
}

/// Stops the shared renderers waiting for work: at the worker's shutdown, rather than leaving them to see their
/// input close.
pub fn stop_waiting() {
    if let Some(shared) = SHARED.get() {
        shared.lock().clear();
    }
}

/// The largest peak resident memory of this process's ended and reaped children, in KiB (`getrusage`): the bench
/// adds it to its own.
pub fn largest_child_peak_kib() -> u64 {
    super::super::child::largest_child_peak_kib()
}

fn shared() -> &'static Renderers {
    SHARED.get_or_init(|| Renderers::new(None, TIME_LIMIT))
}

/// Renderer processes of one program, started when none is waiting, kept while they are healthy.
pub struct Renderers {
    program: Option<PathBuf>,
    time_limit: Duration,
    waiting: Mutex<Vec<Renderer>>,
}

impl Renderers {
    /// Renderers from `program` (none: the running binary), each question given `time_limit`.
    pub fn new(program: Option<PathBuf>, time_limit: Duration) -> Self {
        Self { program, time_limit, waiting: Mutex::new(Vec::new()) }
    }

    /// [`page_size`], asked of these renderers.
    pub fn page_size(&self, document: &[u8]) -> Result<(f32, f32), String> {
        match self.ask(document, Question::Size)? {
            Answer::Size(width, height) => Ok((width, height)),
            Answer::Page(_) => Err("the PDF renderer answered a page to a question of size".to_owned()),
        }
    }

    /// [`page`], asked of these renderers.
    pub fn page(&self, document: &[u8], side: u32) -> Result<RgbImage, String> {
        match self.ask(document, Question::Page(side))? {
            Answer::Page(page) => Ok(page),
            Answer::Size(..) => Err("the PDF renderer answered a size to a question of a page".to_owned()),
        }
    }

    /// The process ids of the renderers waiting for work.
    pub fn waiting(&self) -> Vec<u32> {
        self.lock().iter().map(|r| r.child.lock().unwrap_or_else(|e| e.into_inner()).id()).collect()
    }

    /// Asks a renderer about `document`: one waiting, or a new one.
    fn ask(&self, document: &[u8], question: Question) -> Result<Answer, String> {
        let waiting = self.lock().pop();
        let mut renderer = match waiting {
            Some(renderer) => renderer,
            None => Renderer::start(self.program.as_deref(), self.time_limit)?,
        };
        let answer = renderer.ask(document, question)?;
        renderer.uses += 1;
        if renderer.uses < USES {
            let mut waiting = self.lock();
            if waiting.len() < IDLE {
                waiting.push(renderer);
            }
        }
        answer
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Renderer>> {
        self.waiting.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// One renderer process. Dropped, it is killed and reaped; a healthy one waits in its [`Renderers`] instead.
struct Renderer {
    child: Arc<Mutex<Child>>,
    input: ChildStdin,
    output: BufReader<ChildStdout>,
    time_limit: Duration,
    uses: u32,
}

impl Renderer {
    fn start(program: Option<&Path>, time_limit: Duration) -> Result<Self, String> {
        let program = match program {
            Some(program) => program.to_owned(),
            None => std::env::current_exe().map_err(|e| format!("the PDF renderer cannot be found: {e}"))?,
        };
        let mut child = Command::new(&program)
            .arg(SUBCOMMAND)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("the PDF renderer ({}) cannot start: {e}", program.display()))?;
        let (input, output) = (child.stdin.take().expect("piped"), child.stdout.take().expect("piped"));
        let child = Arc::new(Mutex::new(child));
        let mut renderer = Self { child, input, output: BufReader::new(output), time_limit, uses: 0 };
        let mut hello = vec![0; HELLO.len()];
        // The handshake has the full limit whatever the questions get: a cold start under load can be slow.
        renderer.within(TIME_LIMIT.max(time_limit), |r| r.output.read_exact(&mut hello)).map_err(|e| {
            format!("the PDF renderer did not start ({} {SUBCOMMAND} is not thumbq's renderer): {e}", program.display())
        })?;
        if hello != HELLO {
            let said = String::from_utf8_lossy(&hello);
            return Err(format!(
                "the PDF renderer did not start ({} {SUBCOMMAND} is not thumbq's renderer: it said {said:?})",
                program.display()
            ));
        }
        Ok(renderer)
    }

    /// The renderer's answer: the outer error is the process failing (it is then dropped), the inner one the
    /// document refused (the process stays good).
    fn ask(&mut self, document: &[u8], question: Question) -> Result<Result<Answer, String>, String> {
        self.within(self.time_limit, |r| {
            let (kind, side) = match question {
                Question::Size => (1u8, 0),
                Question::Page(side) => (2, side),
            };
            r.input.write_all(&[kind])?;
            r.input.write_all(&side.to_le_bytes())?;
            r.input.write_all(&(document.len() as u64).to_le_bytes())?;
            r.input.write_all(document)?;
            r.input.flush()?;
            read_answer(&mut r.output, question)
        })
        .map_err(|e| format!("the PDF renderer stopped on this document ({}): {e}", self.ending()))
    }

    /// How the process ended, once it has (a signal is most often its memory cap: an allocation past it aborts).
    fn ending(&self) -> String {
        let mut child = self.child.lock().unwrap_or_else(|e| e.into_inner());
        // Still running after a broken answer: it is of no more use (and waiting on it would wait forever).
        if let Ok(None) = child.try_wait() {
            let _ = child.kill();
        }
        match child.wait() {
            Ok(status) => status.to_string(),
            Err(e) => format!("its state is unknown: {e}"),
        }
    }

    /// `work`, killing the process if it takes longer than `limit` (which makes `work`'s reads fail).
    fn within<T>(&mut self, limit: Duration, work: impl FnOnce(&mut Self) -> io::Result<T>) -> io::Result<T> {
        let (done, finished) = mpsc::channel::<()>();
        let (child, killed) = (Arc::clone(&self.child), Arc::new(AtomicBool::new(false)));
        let flag = Arc::clone(&killed);
        let watchdog = std::thread::spawn(move || {
            if finished.recv_timeout(limit) == Err(mpsc::RecvTimeoutError::Timeout) {
                flag.store(true, Ordering::SeqCst);
                let _ = child.lock().unwrap_or_else(|e| e.into_inner()).kill();
            }
        });
        let result = work(self);
        drop(done);
        let _ = watchdog.join();
        if killed.load(Ordering::SeqCst) {
            return Err(io::Error::other(format!("killed past its limit of {limit:?}")));
        }
        result
    }
}

impl Drop for Renderer {
    fn drop(&mut self) {
        let mut child = self.child.lock().unwrap_or_else(|e| e.into_inner());
        let _ = child.kill();
        let _ = child.wait();
    }
}

fn read_answer(output: &mut impl Read, question: Question) -> io::Result<Result<Answer, String>> {
    match read_u8(output)? {
        0 => {}
        1 => {
            let length = read_u32(output)?;
            if length > MESSAGE {
                return Err(io::Error::other(format!("a message of {length} bytes")));
            }
            let mut message = vec![0; length as usize];
            output.read_exact(&mut message)?;
            return Ok(Err(String::from_utf8_lossy(&message).into_owned()));
        }
        other => return Err(io::Error::other(format!("an answer of unknown kind {other}"))),
    }
    Ok(Ok(match question {
        Question::Size => Answer::Size(f32::from_bits(read_u32(output)?), f32::from_bits(read_u32(output)?)),
        Question::Page(side) => {
            let (width, height) = (read_u32(output)?, read_u32(output)?);
            // Never more than was asked for: the worker's memory estimate counts this page.
            if width.max(height) > side || width == 0 || height == 0 {
                return Err(io::Error::other(format!("a {width}x{height} page for a side of {side}")));
            }
            let mut pixels = vec![0; width as usize * height as usize * 3];
            output.read_exact(&mut pixels)?;
            Answer::Page(RgbImage::from_raw(width, height, pixels).expect("sized above"))
        }
    }))
}

/// The renderer's side (`thumbq-worker render-pdf`): caps its memory, then answers questions from its standard input
/// until it closes.
pub fn serve() -> io::Result<()> {
    limit_own_address_space()?;
    let (mut input, mut output) = (io::stdin().lock(), io::BufWriter::new(io::stdout().lock()));
    output.write_all(HELLO)?;
    output.flush()?;
    loop {
        let kind = match read_u8(&mut input) {
            Ok(kind) => kind,
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e),
        };
        let side = read_u32(&mut input)?;
        let length = read_u64(&mut input)?;
        let mut document = Vec::new();
        (&mut input).take(length).read_to_end(&mut document)?;
        let question = match kind {
            1 => Ok(Question::Size),
            2 => Ok(Question::Page(side)),
            other => Err(format!("a question of unknown kind {other}")),
        };
        match question.and_then(|question| answer(&document, question)) {
            Ok(Answer::Size(width, height)) => {
                output.write_all(&[0])?;
                output.write_all(&width.to_bits().to_le_bytes())?;
                output.write_all(&height.to_bits().to_le_bytes())?;
            }
            Ok(Answer::Page(page)) => {
                output.write_all(&[0])?;
                output.write_all(&page.width().to_le_bytes())?;
                output.write_all(&page.height().to_le_bytes())?;
                output.write_all(page.as_raw())?;
            }
            Err(mut message) => {
                message.truncate(message.floor_char_boundary(MESSAGE as usize));
                output.write_all(&[1])?;
                output.write_all(&(message.len() as u32).to_le_bytes())?;
                output.write_all(message.as_bytes())?;
            }
        }
        output.flush()?;
    }
}

/// The answer to `question`, drawn in this process.
fn answer(document: &[u8], question: Question) -> Result<Answer, String> {
    match question {
        Question::Size => draw::page_size(document).map(|(width, height)| Answer::Size(width, height)),
        Question::Page(side) => draw::page(document, side).map(Answer::Page),
    }
}

fn read_u8(input: &mut impl Read) -> io::Result<u8> {
    let mut byte = [0];
    input.read_exact(&mut byte)?;
    Ok(byte[0])
}

fn read_u32(input: &mut impl Read) -> io::Result<u32> {
    let mut bytes = [0; 4];
    input.read_exact(&mut bytes)?;
    Ok(u32::from_le_bytes(bytes))
}

fn read_u64(input: &mut impl Read) -> io::Result<u64> {
    let mut bytes = [0; 8];
    input.read_exact(&mut bytes)?;
    Ok(u64::from_le_bytes(bytes))
}
