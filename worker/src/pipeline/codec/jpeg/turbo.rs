//! JPEG decoded by libjpeg-turbo at a DCT-reduced scale, through its TurboJPEG 3 API. The `turbojpeg` crate's
//! `Decompressor` keeps its handle private, so it cannot set `TJPARAM_MAXMEMORY`: libjpeg-turbo's own cap on the
//! buffers a progressive JPEG needs (the whole image's coefficients). That cap is the backstop behind the worker's
//! admission estimate (`plan/memory.rs`): a file the estimate got wrong fails instead of taking the worker's memory. The
//! `turbojpeg` crate still writes the thumbnails and reads headers; only this decode goes to the C API.
#![allow(unsafe_code)]

use std::ffi::{CStr, c_int};

use image::{DynamicImage, GrayImage, RgbImage};
use turbojpeg::{ScalingFactor, raw};

use crate::pipeline::{PipelineError, colour::CmykToSrgb};

/// What a decode may cost.
#[derive(Debug, Clone, Copy)]
pub struct DecodeLimits {
    /// The most scans a progressive JPEG may have.
    pub max_scans: u32,
    /// The most memory libjpeg-turbo may give its intermediate buffers, in MiB (0: no cap).
    pub max_memory_mib: u32,
}

/// One TurboJPEG decompressor, destroyed on drop.
struct Handle(raw::tjhandle);

impl Handle {
    fn decompressor() -> Result<Self, PipelineError> {
        // SAFETY: tj3Init has no preconditions; a null result is handled below and never used.
        let handle = Self(unsafe { raw::tj3Init(raw::TJINIT_TJINIT_DECOMPRESS as c_int) });
        if handle.0.is_null() { Err(PipelineError::Decode("libjpeg-turbo could not start".into())) } else { Ok(handle) }
    }

    /// Turns a TurboJPEG status into a result carrying libjpeg-turbo's message.
    fn check(&self, status: c_int) -> Result<(), PipelineError> {
        if status == 0 {
            return Ok(());
        }
        // SAFETY: the handle is live; tj3GetErrorStr returns a NUL-terminated string owned by the handle, copied
        // here before any other call can change it.
        let message = unsafe { CStr::from_ptr(raw::tj3GetErrorStr(self.0)) };
        Err(PipelineError::Decode(message.to_string_lossy().into_owned()))
    }

    /// As [`check`](Self::check), but a warning is not a failure: libjpeg-turbo has decoded the image and says
    /// something was off ("extraneous bytes before marker", a bad ICC marker), where browsers and libjpeg-based
    /// tools show the image. A truncated file is refused before decoding (`layout::read`), not here.
    fn check_tolerant(&self, status: c_int) -> Result<(), PipelineError> {
        // SAFETY: the handle is live; tj3GetErrorCode only reads its state.
        if status != 0 && unsafe { raw::tj3GetErrorCode(self.0) } == raw::TJERR_TJERR_WARNING as c_int {
            return Ok(());
        }
        self.check(status)
    }

    fn set(&mut self, param: raw::TJPARAM, value: u32) -> Result<(), PipelineError> {
        let value = c_int::try_from(value).unwrap_or(c_int::MAX);
        // SAFETY: the handle is live; tj3Set validates the parameter and the value.
        self.check(unsafe { raw::tj3Set(self.0, param as c_int, value) })
    }

    fn get(&self, param: raw::TJPARAM) -> c_int {
        // SAFETY: the handle is live; an unknown parameter returns -1.
        unsafe { raw::tj3Get(self.0, param as c_int) }
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        // SAFETY: the handle came from tj3Init and is destroyed once, here.
        unsafe { raw::tj3Destroy(self.0) };
    }
}

/// How to turn a CMYK JPEG's inks into sRGB: its profile's conversion, and whether the inks are stored inverted.
pub type Cmyk<'a> = (&'a CmykToSrgb, bool);

/// Decodes a JPEG at `scale` (the lossless process always decodes at full size); `None` for colour spaces it
/// leaves to `image`: CMYK and YCCK, unless `cmyk` says how to convert them (an embedded CMYK profile).
pub fn decode_scaled(
    bytes: &[u8],
    scale: ScalingFactor,
    limits: DecodeLimits,
    cmyk: Option<Cmyk<'_>>,
) -> Result<Option<DynamicImage>, PipelineError> {
    let mut handle = Handle::decompressor()?;
    handle.set(raw::TJPARAM_TJPARAM_SCANLIMIT, limits.max_scans)?;
    handle.set(raw::TJPARAM_TJPARAM_MAXMEMORY, limits.max_memory_mib)?;
    // SAFETY: `bytes` is a valid slice for the duration of the call (its length as the binding's size_t);
    // libjpeg-turbo only reads it.
    handle.check_tolerant(unsafe { raw::tj3DecompressHeader(handle.0, bytes.as_ptr(), bytes.len() as u64) })?;
    let (format, channels) = match handle.get(raw::TJPARAM_TJPARAM_COLORSPACE) as raw::TJCS {
        raw::TJCS_TJCS_GRAY => (raw::TJPF_TJPF_GRAY, 1),
        raw::TJCS_TJCS_YCbCr | raw::TJCS_TJCS_RGB => (raw::TJPF_TJPF_RGB, 3),
        raw::TJCS_TJCS_CMYK | raw::TJCS_TJCS_YCCK if cmyk.is_some() => (raw::TJPF_TJPF_CMYK, 4),
        _ => return Ok(None),
    };
    let lossless = handle.get(raw::TJPARAM_TJPARAM_LOSSLESS) != 0;
    let scale = if lossless { ScalingFactor::ONE } else { scale };
    let factor = raw::tjscalingfactor { num: scale.num() as c_int, denom: scale.denom() as c_int };
    // SAFETY: the handle is live and `factor` is one of libjpeg-turbo's supported factors (1/8 to 1).
    handle.check(unsafe { raw::tj3SetScalingFactor(handle.0, factor) })?;
    let side = |param| usize::try_from(handle.get(param)).map(|full| scale.scale(full));
    let (Ok(width), Ok(height)) = (side(raw::TJPARAM_TJPARAM_JPEGWIDTH), side(raw::TJPARAM_TJPARAM_JPEGHEIGHT)) else {
        return Err(PipelineError::Decode("the JPEG header has no size".into()));
    };
    let pitch = width * channels;
    let mut pixels = vec![0u8; pitch * height];
    let pitch_c = c_int::try_from(pitch).map_err(|_| PipelineError::Decode("image too large".into()))?;
    // SAFETY: `pixels` holds `pitch * height` bytes, exactly what a `width × height` image of `format` at `pitch`
    // needs after scaling (libjpeg-turbo computes the same scaled size); `bytes` is only read.
    handle.check_tolerant(unsafe {
        raw::tj3Decompress8(handle.0, bytes.as_ptr(), bytes.len() as u64, pixels.as_mut_ptr(), pitch_c, format as c_int)
    })?;
    let (Ok(width), Ok(height)) = (u32::try_from(width), u32::try_from(height)) else {
        return Err(PipelineError::Decode("image too large".into()));
    };
    let built = match (channels, cmyk) {
        (1, _) => GrayImage::from_raw(width, height, pixels).map(DynamicImage::ImageLuma8),
        (4, Some((to_srgb, inverted))) => to_srgb.apply(pixels, inverted, width, height).map(DynamicImage::ImageRgb8),
        _ => RgbImage::from_raw(width, height, pixels).map(DynamicImage::ImageRgb8),
    };
    built.map(Some).ok_or_else(|| PipelineError::Decode("decoded buffer has the wrong size".into()))
}

/// A progressive JPEG with a restart marker every `restart_blocks` MCUs, for tests: the `turbojpeg` crate's
/// compressor cannot ask for restart markers.
#[cfg(test)]
pub fn progressive_with_restarts(rgb: &RgbImage, subsamp: turbojpeg::Subsamp, restart_blocks: u32) -> Vec<u8> {
    // SAFETY: tj3Init has no preconditions.
    let mut handle = Handle(unsafe { raw::tj3Init(raw::TJINIT_TJINIT_COMPRESS as c_int) });
    assert!(!handle.0.is_null());
    handle.set(raw::TJPARAM_TJPARAM_QUALITY, 90).expect("quality");
    handle.set(raw::TJPARAM_TJPARAM_SUBSAMP, subsamp as u32).expect("subsampling");
    handle.set(raw::TJPARAM_TJPARAM_PROGRESSIVE, 1).expect("progressive");
    handle.set(raw::TJPARAM_TJPARAM_RESTARTBLOCKS, restart_blocks).expect("restarts");
    let (width, height) = (rgb.width() as c_int, rgb.height() as c_int);
    let (mut out, mut size) = (std::ptr::null_mut(), 0);
    // SAFETY: `rgb` holds width × height RGB pixels at pitch width × 3; libjpeg-turbo allocates `out` (freed below
    // with tj3Free after the copy).
    handle
        .check(unsafe {
            raw::tj3Compress8(
                handle.0,
                rgb.as_raw().as_ptr(),
                width,
                width * 3,
                height,
                raw::TJPF_TJPF_RGB as c_int,
                &raw mut out,
                &raw mut size,
            )
        })
        .expect("compresses");
    // SAFETY: `out` holds `size` bytes written by libjpeg-turbo.
    let bytes = unsafe { std::slice::from_raw_parts(out, size as usize) }.to_vec();
    // SAFETY: `out` was allocated by libjpeg-turbo and is not used after this.
    unsafe { raw::tj3Free(out.cast()) };
    bytes
}
