//! A PDF's first page through hayro: its size as shown (crop box, turned as `/Rotate` says) and its drawing on white
//! at a given longer side. This is what the renderer process runs ([`super::renderer`]); nothing here reaches outside
//! the document: hayro reads no file, fetches nothing and runs no JavaScript, and its fonts and character maps are
//! built in.

use std::panic::{AssertUnwindSafe, catch_unwind};

use hayro::{
    RenderCache, RenderSettings,
    hayro_interpret::InterpreterSettings,
    hayro_syntax::{LoadPdfError, Pdf},
    vello_cpu::color::palette::css::WHITE,
};
use image::RgbImage;

/// The longest side the renderer draws: hayro's pixmaps are at most `u16::MAX` a side, and no thumbnail needs more.
pub const MAX_SIDE: u32 = 8192;

/// The first page's width and height in points, turned as it is shown.
pub fn page_size(document: &[u8]) -> Result<(f32, f32), String> {
    guarded(|| {
        let pdf = open(document)?;
        let page = pdf.pages().first().ok_or("the PDF has no page")?;
        let (width, height) = page.render_dimensions();
        if !(width.is_finite() && height.is_finite() && width >= 1.0 && height >= 1.0) {
            return Err(format!("the first page is {width}x{height} points"));
        }
        Ok((width, height))
    })
}

/// The first page drawn on white, its longer side `side` pixels.
pub fn page(document: &[u8], side: u32) -> Result<RgbImage, String> {
    if !(1..=MAX_SIDE).contains(&side) {
        return Err(format!("a page is drawn 1 to {MAX_SIDE} pixels a side, not {side}"));
    }
    guarded(|| {
        let pdf = open(document)?;
        let page = pdf.pages().first().ok_or("the PDF has no page")?;
        let (width, height) = page.render_dimensions();
        let scale = side as f32 / width.max(height);
        // Sizes rounded here, not floored by hayro, so the page has the size the plan computed.
        let pixels = |points: f32| ((points * scale).round() as u16).clamp(1, side as u16);
        let settings = RenderSettings {
            x_scale: scale,
            y_scale: scale,
            width: Some(pixels(width)),
            height: Some(pixels(height)),
            bg_color: WHITE,
        };
        let pixmap = hayro::render(page, &RenderCache::new(), &InterpreterSettings::default(), &settings);
        let (width, height) = (u32::from(pixmap.width()), u32::from(pixmap.height()));
        // Drawn over opaque white, every pixel is opaque: premultiplied and plain RGB are the same.
        let rgb = pixmap.data().iter().flat_map(|p| [p.r, p.g, p.b]).collect();
        RgbImage::from_raw(width, height, rgb).ok_or_else(|| "hayro's page has the wrong size".to_owned())
    })
}

fn open(document: &[u8]) -> Result<Pdf, String> {
    Pdf::new(document.to_vec()).map_err(|e| match e {
        LoadPdfError::Decryption(e) => format!("the PDF is encrypted and cannot be opened without a password: {e:?}"),
        LoadPdfError::Invalid => "the PDF cannot be read".to_owned(),
    })
}

/// `work`, with a panic in hayro turned into an error: a document it cannot handle fails its task and nothing more.
fn guarded<T>(work: impl FnOnce() -> Result<T, String>) -> Result<T, String> {
    catch_unwind(AssertUnwindSafe(work)).unwrap_or_else(|panic| {
        let message = panic.downcast_ref::<&str>().copied().or(panic.downcast_ref::<String>().map(String::as_str));
        Err(format!("the PDF renderer failed on this document: {}", message.unwrap_or("no message")))
    })
}
