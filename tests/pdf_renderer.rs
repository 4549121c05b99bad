//! The PDF renderer process (`thumbq-worker render-pdf`, here the test worker binary): kept warm between
//! documents, killed past its time limit, ended by its memory cap rather than ending the worker, and refused when the
//! program is not the renderer. Each test has renderers of its own, so none sees another's processes.

use std::{fmt::Write as _, path::PathBuf, time::Duration};

use image::ImageFormat;
use thumbq_common::fixtures::{pdf, sample_image};
use thumbq_worker::pipeline::pdf_renderer::{Renderers, TIME_LIMIT};

fn renderers(time_limit: Duration) -> Renderers {
    Renderers::new(Some(env!("CARGO_BIN_EXE_thumbq-test-worker").into()), time_limit)
}

/// A 300×200-point page, its left half red.
fn simple_page() -> Vec<u8> {
    pdf(300, 200, "1 0 0 rg 0 0 150 200 re f", "")
}

fn is_running(pid: u32) -> bool {
    // A killed renderer is reaped at once, so its /proc entry is gone (not a zombie's).
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

#[test]
fn one_renderer_answers_document_after_document() {
    let renderers = renderers(TIME_LIMIT);
    let document = simple_page();
    assert_eq!(renderers.page_size(&document).unwrap(), (300.0, 200.0));
    let [pid] = renderers.waiting()[..] else { panic!("one renderer waits: {:?}", renderers.waiting()) };
    for _ in 0..3 {
        let page = renderers.page(&document, 150).unwrap();
        assert_eq!(page.dimensions(), (150, 100));
        assert_eq!(page.get_pixel(10, 50).0, [255, 0, 0]);
        assert_eq!(page.get_pixel(140, 50).0, [255, 255, 255], "paper is white");
    }
    assert_eq!(renderers.waiting(), [pid], "the same process drew every page");

    // A refused document is an answer, not a failure: the renderer stays.
    let error = renderers.page_size(b"%PDF-1.4\n%%EOF").unwrap_err();
    assert!(error.contains("cannot be read"), "{error}");
    assert_eq!(renderers.waiting(), [pid]);
    drop(renderers);
    assert!(!is_running(pid), "a dropped renderer is ended");
}

#[test]
fn a_page_past_the_time_limit_is_killed_and_the_next_one_gets_a_fresh_renderer() {
    let limit = Duration::from_millis(300);
    let renderers = renderers(limit);
    renderers.page_size(&simple_page()).unwrap();
    let [first] = renderers.waiting()[..] else { panic!("one renderer waits") };

    // 20,000 overlapping triangles take seconds to draw at 2,000 pixels.
    let mut content = String::new();
    let mut seed = 1u32;
    let mut next = || {
        seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        seed >> 23
    };
    for _ in 0..20_000 {
        let (r, g, b) = (next() % 2, next() % 2, next() % 2);
        let [x1, y1, x2, y2, x3, y3] =
            [next() % 600, next() % 850, next() % 600, next() % 850, next() % 600, next() % 850];
        writeln!(content, "{r} {g} {b} rg {x1} {y1} m {x2} {y2} l {x3} {y3} l f").unwrap();
    }
    let slow = pdf(595, 842, &content, "");
    let started = std::time::Instant::now();
    let error = renderers.page(&slow, 2000).unwrap_err();
    assert!(error.contains("killed past its limit of 300ms"), "{error}");
    assert!(started.elapsed() < limit * 10, "the kill came after {:?}", started.elapsed());
    assert!(!is_running(first), "the slow renderer is gone");
    assert!(renderers.waiting().is_empty());

    let page = renderers.page(&simple_page(), 30).unwrap();
    assert_eq!(page.dimensions(), (30, 20));
    let [second] = renderers.waiting()[..] else { panic!("one renderer waits") };
    assert_ne!(second, first);
}

#[test]
fn a_document_past_the_memory_cap_ends_its_renderer_not_the_worker() {
    // A 16×16 JPEG whose frame header claims 30,000×30,000: decoding it would take 2.7 GB.
    let mut jpeg = sample_image(ImageFormat::Jpeg, 16, 16);
    let sof = jpeg.windows(2).position(|w| w == [0xFF, 0xC0]).expect("a baseline frame header");
    jpeg[sof + 5..sof + 9].copy_from_slice(&[0x75, 0x30, 0x75, 0x30]);
    let hex: String = jpeg.iter().map(|b| format!("{b:02x}")).collect();
    let content = format!("q 300 0 0 200 0 0 cm BI /W 30000 /H 30000 /CS /RGB /BPC 8 /F [/AHx /DCT] ID {hex}> EI Q");
    let bomb = pdf(300, 200, &content, "");

    let renderers = renderers(TIME_LIMIT);
    renderers.page_size(&bomb).unwrap();
    let [pid] = renderers.waiting()[..] else { panic!("one renderer waits") };
    let started = std::time::Instant::now();
    let error = renderers.page(&bomb, 300).unwrap_err();
    assert!(error.contains("stopped on this document (signal"), "{error}");
    assert!(started.elapsed() < TIME_LIMIT, "the cap, not the clock, ended it");
    assert!(!is_running(pid));
    // This process is whole, and the next document is drawn.
    assert_eq!(renderers.page(&simple_page(), 30).unwrap().dimensions(), (30, 20));
}

#[test]
fn a_program_that_is_not_the_renderer_is_refused_clearly() {
    for program in ["/bin/echo", "/bin/true"] {
        let error = Renderers::new(Some(program.into()), TIME_LIMIT).page_size(&simple_page()).unwrap_err();
        assert!(error.contains(&format!("{program} render-pdf is not thumbq's renderer")), "{error}");
    }
    let missing = PathBuf::from("/nonexistent/thumbq-worker");
    let error = Renderers::new(Some(missing), TIME_LIMIT).page_size(&simple_page()).unwrap_err();
    assert!(error.contains("cannot start"), "{error}");
}
