//! The PDF codec, on PDFs written by hand (drawn in this process; the renderer process is tested in
//! `tests/pdf_renderer.rs`): the first page's real size and turn, drawn at the size asked for, a link
//! to a listening loopback server never followed, and broken documents refused.

use std::{io::ErrorKind, net::TcpListener};

use thumbq_common::{
    fixtures::pdf,
    image_probe::{self, Probe},
};

use super::*;

fn probe(bytes: &[u8]) -> Probe {
    image_probe::probe(bytes, u64::MAX).expect("a PDF")
}

/// The left half of a `width`×`height`-point page in red.
fn half_red(width: u32, height: u32, extra: &str) -> Vec<u8> {
    pdf(width, height, &format!("1 0 0 rg 0 0 {} {height} re f", width / 2), extra)
}

#[test]
fn the_first_page_is_drawn_at_the_size_asked_for() {
    let document = half_red(300, 200, "");
    let refined = Pdf.refine(&document, probe(&document)).unwrap();
    assert_eq!(refined, Probe { format: SourceFormat::Pdf, width: 2048, height: 1365 });
    let request = Request { reduction: 2048.0 / 300.0, memory_mib: 0, icc: None };
    let page = Pdf.decode(&document, &refined, request).unwrap().into_rgb8();
    assert_eq!(page.dimensions(), (300, 200));
    assert_eq!(page.get_pixel(10, 100).0, [255, 0, 0]);
    assert_eq!(page.get_pixel(290, 100).0, [255, 255, 255], "paper is white");
}

#[test]
fn a_turned_page_is_sized_and_drawn_turned() {
    let document = half_red(300, 200, "/Rotate 90");
    assert_eq!(probe(&document).width, 2048, "the API's guess reads the media box only");
    let refined = Pdf.refine(&document, probe(&document)).unwrap();
    assert_eq!((refined.width, refined.height), (1365, 2048));
    let request = Request { reduction: 2048.0 / 150.0, memory_mib: 0, icc: None };
    let page = Pdf.decode(&document, &refined, request).unwrap().into_rgb8();
    assert_eq!(page.dimensions(), (100, 150));
    // Turned a quarter clockwise, the left half is on top.
    assert_eq!(page.get_pixel(50, 10).0, [255, 0, 0]);
    assert_eq!(page.get_pixel(50, 140).0, [255, 255, 255]);
}

#[test]
fn links_and_actions_are_not_followed() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    let actions = format!(
        "/AA << /O << /S /URI /URI ({url}) >> >> /Annots [<< /Type /Annot /Subtype /Link /Rect [0 0 300 200] \
         /A << /S /JavaScript /JS (app.launchURL('{url}');) >> >>]"
    );
    let document = half_red(300, 200, &actions);
    let refined = Pdf.refine(&document, probe(&document)).unwrap();
    let request = Request { reduction: 2048.0 / 100.0, memory_mib: 0, icc: None };
    assert!(Pdf.decode(&document, &refined, request).is_ok());
    match listener.accept() {
        Err(e) if e.kind() == ErrorKind::WouldBlock => {}
        other => panic!("the loopback server was asked: {other:?}"),
    }
}

#[test]
fn broken_documents_are_refused() {
    let document = half_red(300, 200, "");
    let cut = &document[..40];
    assert!(Pdf.refine(cut, probe(cut)).is_err(), "no page");
    let error = Pdf.refine(b"%PDF-1.4\n%%EOF", probe(b"%PDF-1.4\n%%EOF")).unwrap_err();
    assert!(error.to_string().contains("cannot be read"), "{error}");
}
