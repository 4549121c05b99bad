//! An animated WebP's frames, composited on its canvas by libwebp's `WebPAnimDecoder`. Not the `image` crate's
//! WebP animation reader: the fuzzer found a 331-byte file (a 40x30 canvas whose VP8 frame header claims more) for
//! which it allocated 40 MB; libwebp's demuxer checks every frame against the canvas before decoding it.
#![allow(unsafe_code)]

use std::{marker::PhantomData, mem::MaybeUninit};

use image::RgbaImage;
use libwebp_sys::{
    WEBP_CSP_MODE, WebPAnimDecoder, WebPAnimDecoderDelete, WebPAnimDecoderGetInfo, WebPAnimDecoderGetNext,
    WebPAnimDecoderHasMoreFrames, WebPAnimDecoderNew, WebPAnimDecoderOptions, WebPAnimDecoderOptionsInit, WebPAnimInfo,
    WebPData,
};

use crate::pipeline::PipelineError;

/// The frames of an animated WebP, each the whole canvas in straight RGBA with how long it shows (ms).
pub struct Frames<'a> {
    decoder: *mut WebPAnimDecoder,
    width: u32,
    height: u32,
    /// The end of the previous frame: libwebp gives each frame's end time.
    shown_until: i32,
    /// The decoder reads the bytes it was made from until it is deleted.
    _bytes: PhantomData<&'a [u8]>,
}

/// Opens the animation in `bytes`, single-threaded (the worker runs tasks side by side).
pub fn frames(bytes: &[u8]) -> Result<Frames<'_>, PipelineError> {
    let failed = |what: &str| PipelineError::Decode(format!("animated WebP: {what}"));
    let mut options = MaybeUninit::<WebPAnimDecoderOptions>::zeroed();
    // SAFETY: fills every field of the options it is given (zeroed before, so none is read uninitialised anyway).
    if unsafe { WebPAnimDecoderOptionsInit(options.as_mut_ptr()) } == 0 {
        return Err(failed("libwebp ABI mismatch"));
    }
    // SAFETY: initialised just above.
    let mut options = unsafe { options.assume_init() };
    options.color_mode = WEBP_CSP_MODE::MODE_RGBA;
    options.use_threads = 0;
    let data = WebPData { bytes: bytes.as_ptr(), size: bytes.len() };
    // SAFETY: `data` points at `bytes`, which outlive the decoder (the `Frames` borrows them); the decoder is
    // deleted by its drop, on every path.
    let decoder = unsafe { WebPAnimDecoderNew(&raw const data, &raw const options) };
    if decoder.is_null() {
        return Err(failed("its structure is invalid"));
    }
    let mut frames = Frames { decoder, width: 0, height: 0, shown_until: 0, _bytes: PhantomData };
    let mut info = WebPAnimInfo::default();
    // SAFETY: the decoder is valid; `info` is a plain struct libwebp fills.
    if unsafe { WebPAnimDecoderGetInfo(decoder, &raw mut info) } == 0 {
        return Err(failed("its header is invalid"));
    }
    (frames.width, frames.height) = (info.canvas_width, info.canvas_height);
    Ok(frames)
}

impl Iterator for Frames<'_> {
    type Item = Result<(RgbaImage, u32), PipelineError>;

    fn next(&mut self) -> Option<Self::Item> {
        // SAFETY: the decoder is valid until drop.
        if unsafe { WebPAnimDecoderHasMoreFrames(self.decoder) } == 0 {
            return None;
        }
        let (mut canvas, mut timestamp): (*mut u8, i32) = (std::ptr::null_mut(), 0);
        // SAFETY: the decoder is valid; libwebp points `canvas` at its own canvas buffer (width × height × 4 bytes,
        // valid until the next call on the decoder) and sets the frame's end time.
        if unsafe { WebPAnimDecoderGetNext(self.decoder, &raw mut canvas, &raw mut timestamp) } == 0 || canvas.is_null()
        {
            return Some(Err(PipelineError::Decode("animated WebP: a frame cannot be decoded".into())));
        }
        let length = self.width as usize * self.height as usize * 4;
        // SAFETY: as above: `length` bytes at `canvas`, copied out before the decoder is called again.
        let pixels = unsafe { std::slice::from_raw_parts(canvas, length) }.to_vec();
        let delay = u32::try_from(timestamp.saturating_sub(self.shown_until)).unwrap_or(0);
        self.shown_until = timestamp;
        let image = RgbaImage::from_raw(self.width, self.height, pixels)
            .ok_or_else(|| PipelineError::Decode("animated WebP: a canvas of the wrong size".into()));
        Some(image.map(|image| (image, delay)))
    }
}

impl Drop for Frames<'_> {
    fn drop(&mut self) {
        // SAFETY: made by `WebPAnimDecoderNew`, deleted once.
        unsafe { WebPAnimDecoderDelete(self.decoder) };
    }
}
