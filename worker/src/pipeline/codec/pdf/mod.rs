//! PDF: the first page, drawn at the size the thumbnail needs by hayro (a PDF renderer in Rust) in a renderer process
//! of the worker's own ([`renderer`]: warm, capped in memory, killed past its time). Its `refine` asks the page's
//! real size and turn, which the API's probe only guesses from the first media box.
//!
//! hayro rather than poppler: poppler is GPL, so thumbq (MIT or Apache-2.0) can only run its tools as processes,
//! two a page, which cost 7 to 11 times libvips's in-process render (`make bench`, pipeline table); hayro links,
//! forbids unsafe code, and draws the pdf.js and PDFBox test suites' documents. It runs no JavaScript, follows no
//! link or action, reads no other file and fetches nothing; only the first page is read.

use image::DynamicImage;
use thumbq_common::{
    image_probe::{Probe, svg::at_side},
    task::SourceFormat,
};

use super::{Codec, Header, PipelineError, Request, drawn_size};

mod draw;
pub mod renderer;

/// Renders the first page of a PDF.
pub struct Pdf;

/// What the worker counts for a render beside its pixels: the renderer process's memory for a typical page (it may
/// take up to its cap, 1 GiB, for a heavy one).
const RENDERER_BYTES: u64 = 128 << 20;

impl Codec for Pdf {
    fn refine(&self, bytes: &[u8], probe: Probe) -> Result<Probe, PipelineError> {
        let (width, height) = renderer::page_size(bytes).map_err(PipelineError::Decode)?;
        let (width, height) = at_side(f64::from(width), f64::from(height));
        Ok(Probe { width, height, ..probe })
    }

    fn header(&self, _bytes: &[u8], _format: SourceFormat) -> Header {
        // Drawn in sRGB, turned as the page says.
        Header::upright_srgb()
    }

    fn may_have_alpha(&self) -> bool {
        false
    }

    fn decode_peak(&self, bytes: &[u8], probe: &Probe, reduction: f64) -> u64 {
        let (width, height) = drawn_size(probe, reduction);
        let side = u64::from(width.max(height));
        // The page as it arrives (3 bytes a pixel), the document's copy in the pipe, and the renderer.
        side * side * 3 + bytes.len() as u64 + RENDERER_BYTES
    }

    fn decode(&self, bytes: &[u8], probe: &Probe, request: Request<'_>) -> Result<DynamicImage, PipelineError> {
        let (width, height) = drawn_size(probe, request.reduction);
        let page = renderer::page(bytes, width.max(height)).map_err(PipelineError::Decode)?;
        Ok(DynamicImage::ImageRgb8(page))
    }
}

#[cfg(test)]
mod tests;
