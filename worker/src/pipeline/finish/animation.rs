//! Encoding an animation: animated WebP by libwebp's `WebPAnimEncoder` (which the `image` crate does not bind: it
//! writes still WebP only), GIF by the `image` crate's encoder. Frames come resampled, oriented and in sRGB.
#![allow(unsafe_code)]

use std::{ffi::CStr, mem::MaybeUninit};

use image::{
    Delay, Frame, RgbaImage,
    codecs::gif::{GifEncoder, Repeat},
};
use libwebp_sys::{
    WEBP_ENCODER_ABI_VERSION, WEBP_MUX_ABI_VERSION, WebPAnimEncoder, WebPAnimEncoderAdd, WebPAnimEncoderAssemble,
    WebPAnimEncoderDelete, WebPAnimEncoderGetError, WebPAnimEncoderNewInternal, WebPAnimEncoderOptions,
    WebPAnimEncoderOptionsInitInternal, WebPConfig, WebPConfigInitInternal, WebPData, WebPDataClear, WebPPicture,
    WebPPictureFree, WebPPictureImportRGBA, WebPPictureInitInternal, WebPPreset,
};
use thumbq_common::task::{OutputFormat, ResizeArgs};

use crate::pipeline::PipelineError;

/// One frame of an animation and how long it shows, in milliseconds.
pub type AnimationFrame = (RgbaImage, u32);

/// The shortest delay browsers honour: a GIF frame of 10 ms or less shows for 100 ms in every browser (a legacy of
/// GIFs written with no delay), so an animation moved to WebP keeps the speed it was seen at.
const SHORTEST_DELAY_MS: u32 = 10;
const BROWSERS_DELAY_MS: u32 = 100;

/// Encodes `frames` as `args.format` (WebP or GIF), playing `plays` times (0: for ever).
pub fn encode(frames: &[AnimationFrame], args: &ResizeArgs, plays: u16) -> Result<Vec<u8>, PipelineError> {
    match args.format {
        OutputFormat::Webp => webp(frames, args, plays),
        OutputFormat::Gif => gif(frames, plays),
        other => Err(PipelineError::Encode(format!("{} cannot hold an animation", other.name()))),
    }
}

/// GIF by the `image` crate: a palette per frame by NeuQuant at speed 10 (of 1..30, the `gif` crate's advised
/// balance), delays in hundredths of a second as GIF stores them.
fn gif(frames: &[AnimationFrame], plays: u16) -> Result<Vec<u8>, PipelineError> {
    let failed = |e: image::ImageError| PipelineError::Encode(format!("GIF: {e}"));
    let mut out = Vec::new();
    {
        let mut encoder = GifEncoder::new_with_speed(&mut out, 10);
        // GIF's loop extension counts repeats after the first play; no extension plays once.
        match plays {
            0 => encoder.set_repeat(Repeat::Infinite).map_err(failed)?,
            1 => {}
            n => encoder.set_repeat(Repeat::Finite(n - 1)).map_err(failed)?,
        }
        for (image, delay_ms) in frames {
            // GIF counts hundredths of a second: rounded, and at least 2 where the source's delay was a real one
            // (a 16 ms frame as 1 would show for 100 ms, as browsers show delays of 10 ms or less).
            let hundredths = if *delay_ms > SHORTEST_DELAY_MS { ((delay_ms + 5) / 10).max(2) } else { delay_ms / 10 };
            let delay = Delay::from_numer_denom_ms(hundredths * 10, 1);
            encoder.encode_frame(Frame::from_parts(image.clone(), 0, 0, delay)).map_err(failed)?;
        }
    }
    Ok(out)
}

/// Animated WebP by libwebp, lossy at `args.quality()` or lossless as asked; the encoder itself finds what changed
/// between frames and stores sub-rectangles.
fn webp(frames: &[AnimationFrame], args: &ResizeArgs, plays: u16) -> Result<Vec<u8>, PipelineError> {
    let failed = |what: &str| PipelineError::Encode(format!("animated WebP: {what}"));
    let (first, _) = frames.first().ok_or_else(|| failed("no frames"))?;
    let too_large = || failed("the image is too large");
    let width = i32::try_from(first.width()).map_err(|_| too_large())?;
    let height = i32::try_from(first.height()).map_err(|_| too_large())?;
    let mut options = MaybeUninit::<WebPAnimEncoderOptions>::zeroed();
    // SAFETY: initialises every field of the options (zeroed before, so none is read uninitialised either way).
    if unsafe { WebPAnimEncoderOptionsInitInternal(options.as_mut_ptr(), WEBP_MUX_ABI_VERSION as i32) } == 0 {
        return Err(failed("libwebp ABI mismatch"));
    }
    // SAFETY: initialised just above.
    let mut options = unsafe { options.assume_init() };
    options.anim_params.loop_count = i32::from(plays);
    let mut config = MaybeUninit::<WebPConfig>::zeroed();
    // SAFETY: as for the options: fills the config it is given.
    let preset = WebPPreset::WEBP_PRESET_DEFAULT;
    let quality = f32::from(args.quality());
    if unsafe { WebPConfigInitInternal(config.as_mut_ptr(), preset, quality, WEBP_ENCODER_ABI_VERSION as i32) } == 0 {
        return Err(failed("libwebp ABI mismatch"));
    }
    // SAFETY: initialised just above.
    let mut config = unsafe { config.assume_init() };
    config.lossless = i32::from(args.lossless);
    // SAFETY: the options are initialised; the encoder is freed by `Encoder`'s drop, on every path.
    let encoder =
        Encoder(unsafe { WebPAnimEncoderNewInternal(width, height, &raw const options, WEBP_MUX_ABI_VERSION as i32) });
    if encoder.0.is_null() {
        return Err(failed("the encoder could not be made"));
    }
    let mut timestamp: i32 = 0;
    for (image, delay_ms) in frames {
        if (image.width(), image.height()) != (first.width(), first.height()) {
            return Err(failed("frames of different sizes"));
        }
        let mut picture = MaybeUninit::<WebPPicture>::zeroed();
        // SAFETY: fills the picture it is given.
        if unsafe { WebPPictureInitInternal(picture.as_mut_ptr(), WEBP_ENCODER_ABI_VERSION as i32) } == 0 {
            return Err(failed("libwebp ABI mismatch"));
        }
        // SAFETY: initialised just above.
        let mut picture = unsafe { picture.assume_init() };
        picture.use_argb = 1;
        picture.width = width;
        picture.height = height;
        // SAFETY: `image` holds `height` rows of `width * 4` bytes, alive for the call; libwebp copies them into the
        // picture's own buffer, which the encoder reads in `Add` and `WebPPictureFree` releases.
        let imported = unsafe { WebPPictureImportRGBA(&raw mut picture, image.as_raw().as_ptr(), width * 4) } != 0;
        // SAFETY: the encoder and config are valid; the picture was imported (checked before it is read).
        let added =
            imported && unsafe { WebPAnimEncoderAdd(encoder.0, &raw mut picture, timestamp, &raw const config) } != 0;
        // SAFETY: frees the picture's buffer, once, whether or not it was added.
        unsafe { WebPPictureFree(&raw mut picture) };
        if !added {
            return Err(failed(&encoder.error()));
        }
        let shown = if *delay_ms <= SHORTEST_DELAY_MS { BROWSERS_DELAY_MS } else { *delay_ms };
        timestamp = timestamp.saturating_add(i32::try_from(shown).unwrap_or(i32::MAX));
    }
    // SAFETY: a null frame ends the animation at `timestamp` (the last frame's end).
    if unsafe { WebPAnimEncoderAdd(encoder.0, std::ptr::null_mut(), timestamp, std::ptr::null()) } == 0 {
        return Err(failed(&encoder.error()));
    }
    let mut data = WebPData::default();
    // SAFETY: the encoder holds every frame; libwebp allocates `data`, which is copied out and freed once below.
    if unsafe { WebPAnimEncoderAssemble(encoder.0, &raw mut data) } == 0 {
        return Err(failed(&encoder.error()));
    }
    // SAFETY: libwebp wrote `data.size` bytes at `data.bytes` (checked not null before it is read).
    let bytes = (!data.bytes.is_null()).then(|| unsafe { std::slice::from_raw_parts(data.bytes, data.size) }.to_vec());
    // SAFETY: `data` came from the encoder and is freed once.
    unsafe { WebPDataClear(&mut data) };
    bytes.ok_or_else(|| failed("no output"))
}

/// A `WebPAnimEncoder`, deleted when dropped.
struct Encoder(*mut WebPAnimEncoder);

impl Encoder {
    /// The encoder's last error message.
    fn error(&self) -> String {
        // SAFETY: the encoder is valid; libwebp returns a static or encoder-owned C string, copied out here.
        let message = unsafe { WebPAnimEncoderGetError(self.0) };
        if message.is_null() {
            return "failed".into();
        }
        // SAFETY: a NUL-terminated string owned by the encoder, alive until the next call on it.
        unsafe { CStr::from_ptr(message) }.to_string_lossy().into_owned()
    }
}

impl Drop for Encoder {
    fn drop(&mut self) {
        // SAFETY: made by `WebPAnimEncoderNewInternal` and deleted once (a null one is a no-op for libwebp).
        unsafe { WebPAnimEncoderDelete(self.0) };
    }
}
