//! The SVG codec: drawn at the size asked for, and nothing outside the document reached. Files and a listening
//! loopback server are offered to it; neither is read, while the same picture inside a `data:` URL is drawn.

use std::{io::ErrorKind, net::TcpListener};

use base64::Engine;
use image::ImageFormat;
use thumbq_common::{
    fixtures::encode,
    image_probe::{self, Probe},
};

use super::*;

/// A red 64x64 PNG: what every `href` below points at.
fn red_png() -> Vec<u8> {
    encode(&DynamicImage::ImageRgb8(image::RgbImage::from_pixel(64, 64, image::Rgb([255, 0, 0]))), ImageFormat::Png)
}

fn probe(svg: &str) -> Probe {
    image_probe::probe(svg.as_bytes(), u64::MAX).expect("an SVG")
}

fn draw(svg: &str, reduction: f64) -> Result<RgbaImage, PipelineError> {
    let request = Request { reduction, memory_mib: 0, icc: None };
    Svg.decode(svg.as_bytes(), &probe(svg), request).map(DynamicImage::into_rgba8)
}

/// How many pixels are mostly red.
fn red(image: &RgbaImage) -> usize {
    image.pixels().filter(|p| p[0] > 200 && p[1] < 60 && p[3] > 200).count()
}

/// An SVG of 20x10 units: a green background with an `<image>` of `href` over its left half.
fn with_image(href: &str) -> String {
    format!(
        "<svg xmlns='http://www.w3.org/2000/svg' xmlns:xlink='http://www.w3.org/1999/xlink' viewBox='0 0 20 10'>\
         <rect width='20' height='10' fill='#0a0'/><image x='0' y='0' width='10' height='10' xlink:href='{href}'/></svg>"
    )
}

#[test]
fn an_icon_is_drawn_sharp_at_the_size_asked_for() {
    let svg =
        "<svg xmlns='http://www.w3.org/2000/svg' width='16' height='8'><rect width='8' height='8' fill='red'/></svg>";
    assert_eq!(probe(svg), Probe { format: SourceFormat::Svg, width: 2048, height: 1024 });
    let drawn = draw(svg, 2048.0 / 400.0).unwrap();
    assert_eq!(drawn.dimensions(), (400, 200));
    // The left half is red to its edge and the right half transparent: drawn at this size, not scaled up.
    assert_eq!(red(&drawn), 200 * 200);
    assert_eq!(drawn.get_pixel(200, 100)[3], 0);
}

#[test]
fn an_image_inside_the_document_is_drawn() {
    let data = base64::engine::general_purpose::STANDARD.encode(red_png());
    let drawn = draw(&with_image(&format!("data:image/png;base64,{data}")), 2048.0 / 200.0).unwrap();
    assert!(red(&drawn) > 90 * 95, "the data: URL's picture fills the left half: {}", red(&drawn));
}

#[test]
fn no_file_is_read_and_no_server_is_asked() {
    let folder = tempfile::tempdir().unwrap();
    let file = folder.path().join("red.png");
    std::fs::write(&file, red_png()).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let url = format!("http://{}/red.png", listener.local_addr().unwrap());
    let nested = base64::engine::general_purpose::STANDARD.encode(with_image(&format!("file://{}", file.display())));
    let hrefs = [
        format!("file://{}", file.display()),
        file.display().to_string(),
        "red.png".to_owned(),
        url,
        format!("data:image/svg+xml;base64,{nested}"),
    ];
    for href in hrefs {
        let drawn = draw(&with_image(&href), 2048.0 / 200.0).unwrap();
        assert_eq!(red(&drawn), 0, "{href} was drawn");
    }
    // Drawing is synchronous: a request would have been made by now.
    match listener.accept() {
        Err(e) if e.kind() == ErrorKind::WouldBlock => {}
        other => panic!("the loopback server was asked: {other:?}"),
    }
}

#[test]
fn entities_and_oversized_documents_are_refused() {
    let mut laughs = String::from("<?xml version='1.0'?>\n<!DOCTYPE svg [\n<!ENTITY lol 'lol'>\n");
    for i in 1..10 {
        let previous = if i == 1 { "lol".to_owned() } else { format!("lol{}", i - 1) };
        laughs.push_str(&format!("<!ENTITY lol{i} '{}'>\n", format!("&{previous};").repeat(10)));
    }
    laughs.push_str("]>\n<svg xmlns='http://www.w3.org/2000/svg'><text>&lol9;</text></svg>");
    let refused = draw(&laughs, 20.0).unwrap_err();
    assert!(refused.to_string().contains("entities"), "{refused}");

    let many = format!("<svg xmlns='http://www.w3.org/2000/svg'>{}</svg>", "<g/>".repeat(MAX_NODES as usize + 1));
    assert!(draw(&many, 20.0).is_err(), "over the node limit");
}
