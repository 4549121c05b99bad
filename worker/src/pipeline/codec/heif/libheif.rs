//! A HEIF or AVIF file opened by libheif over the upload's bytes in memory. Written against libheif 1.15's C API by
//! hand: the maintained binding (libheif-sys 5, under libheif-rs) requires libheif 1.17 or newer and Debian 12 ships
//! 1.15.1; its other road, `embedded-libheif`, compiles libheif's C++ with cmake in every cold build (minutes on two
//! cores) and still links Debian's HEVC and AV1 decoders. The surface used is fourteen functions, all present since
//! libheif 1.12. Each `unsafe` block says why it holds.
#![allow(unsafe_code)]

use std::ffi::{CStr, c_char, c_int, c_void};

/// libheif's `heif_context`, opaque.
#[repr(C)]
struct RawContext {
    _private: [u8; 0],
}

/// libheif's `heif_image_handle`, opaque.
#[repr(C)]
struct RawHandle {
    _private: [u8; 0],
}

/// libheif's `heif_image`, opaque.
#[repr(C)]
struct RawImage {
    _private: [u8; 0],
}

/// libheif's `heif_error`, returned by value.
#[derive(Clone, Copy)]
#[repr(C)]
struct HeifError {
    code: c_int,
    subcode: c_int,
    message: *const c_char,
}

/// The head of libheif's `heif_decoding_options` up to the version 2 fields it is asked for; the struct is always
/// allocated by libheif (`heif_decoding_options_alloc`), so its later fields need not be declared.
#[repr(C)]
struct DecodingOptions {
    version: u8,
    ignore_transformations: u8,
    start_progress: *mut c_void,
    on_progress: *mut c_void,
    end_progress: *mut c_void,
    progress_user_data: *mut c_void,
    convert_hdr_to_8bit: u8,
}

const COLORSPACE_RGB: c_int = 1;
const CHROMA_INTERLEAVED_RGB: c_int = 10;
const CHROMA_INTERLEAVED_RGBA: c_int = 11;
const CHANNEL_INTERLEAVED: c_int = 10;
/// `heif_color_profile_type_prof` and `_rICC`: an ICC profile (the other kind, `nclx`, is a set of code points).
const PROFILE_ICC: [u32; 2] = [u32::from_be_bytes(*b"prof"), u32::from_be_bytes(*b"rICC")];

#[link(name = "heif")]
unsafe extern "C" {
    fn heif_context_alloc() -> *mut RawContext;
    fn heif_context_free(ctx: *mut RawContext);
    fn heif_context_read_from_memory_without_copy(
        ctx: *mut RawContext,
        mem: *const c_void,
        size: usize,
        options: *const c_void,
    ) -> HeifError;
    fn heif_context_set_maximum_image_size_limit(ctx: *mut RawContext, maximum_width: c_int);
    fn heif_context_get_primary_image_handle(ctx: *mut RawContext, handle: *mut *mut RawHandle) -> HeifError;
    fn heif_image_handle_release(handle: *const RawHandle);
    fn heif_image_handle_get_number_of_thumbnails(handle: *const RawHandle) -> c_int;
    fn heif_image_handle_get_list_of_thumbnail_IDs(handle: *const RawHandle, ids: *mut u32, count: c_int) -> c_int;
    fn heif_image_handle_get_thumbnail(handle: *const RawHandle, id: u32, out: *mut *mut RawHandle) -> HeifError;
    fn heif_image_handle_get_width(handle: *const RawHandle) -> c_int;
    fn heif_image_handle_get_height(handle: *const RawHandle) -> c_int;
    fn heif_image_handle_has_alpha_channel(handle: *const RawHandle) -> c_int;
    fn heif_image_handle_get_luma_bits_per_pixel(handle: *const RawHandle) -> c_int;
    fn heif_image_handle_get_color_profile_type(handle: *const RawHandle) -> u32;
    fn heif_image_handle_get_raw_color_profile_size(handle: *const RawHandle) -> usize;
    fn heif_image_handle_get_raw_color_profile(handle: *const RawHandle, out: *mut c_void) -> HeifError;
    fn heif_decoding_options_alloc() -> *mut DecodingOptions;
    fn heif_decoding_options_free(options: *mut DecodingOptions);
    fn heif_decode_image(
        handle: *const RawHandle,
        out: *mut *mut RawImage,
        colorspace: c_int,
        chroma: c_int,
        options: *const DecodingOptions,
    ) -> HeifError;
    fn heif_image_release(image: *const RawImage);
    fn heif_image_get_width(image: *const RawImage, channel: c_int) -> c_int;
    fn heif_image_get_height(image: *const RawImage, channel: c_int) -> c_int;
    fn heif_image_get_plane_readonly(image: *const RawImage, channel: c_int, stride: *mut c_int) -> *const u8;
}

/// `error` as a result, with libheif's message.
fn check(error: HeifError) -> Result<(), String> {
    if error.code == 0 {
        return Ok(());
    }
    // SAFETY: libheif's messages are static NUL-terminated strings (or null).
    let message = (!error.message.is_null()).then(|| unsafe { CStr::from_ptr(error.message) }.to_string_lossy());
    Err(message.map_or_else(|| format!("libheif error {}.{}", error.code, error.subcode), |m| m.into_owned()))
}

/// A libheif context over an upload's bytes, freed when dropped.
struct Context(*mut RawContext);

impl Drop for Context {
    fn drop(&mut self) {
        // SAFETY: allocated by libheif and freed once, after every handle into it (declared before it in `Primary`).
        unsafe { heif_context_free(self.0) }
    }
}

/// The primary image of a HEIF file, borrowed from the bytes it was opened over.
pub struct Primary<'a> {
    // Dropped before the context it points into.
    picture: Picture<'a>,
    _context: Context,
    _bytes: std::marker::PhantomData<&'a [u8]>,
}

/// One image item of an opened file (the primary image or one of its thumbnails), released when dropped.
pub struct Picture<'a> {
    handle: *mut RawHandle,
    _file: std::marker::PhantomData<&'a ()>,
}

// SAFETY: a libheif context and its handles may be used from any one thread at a time (libheif keeps no thread
// state); a `Primary` and its pictures are only ever used by the thread that holds them.
unsafe impl Send for Primary<'_> {}

impl<'a> Primary<'a> {
    /// Parses `bytes` and finds the primary image; no pixel is decoded. Images wider or taller than `max_side` are
    /// refused by libheif itself.
    pub fn open(bytes: &'a [u8], max_side: u32) -> Result<Self, String> {
        // SAFETY: alloc returns a fresh context or null; the bytes outlive the context (the lifetime on `Primary`).
        let context = Context(unsafe { heif_context_alloc() });
        if context.0.is_null() {
            return Err("libheif could not allocate a context".into());
        }
        let mut handle = std::ptr::null_mut();
        // SAFETY: a live context, and a pointer and length from one slice; null reading options are documented.
        unsafe {
            heif_context_set_maximum_image_size_limit(context.0, c_int::try_from(max_side).unwrap_or(c_int::MAX));
            let (data, len) = (bytes.as_ptr().cast(), bytes.len());
            check(heif_context_read_from_memory_without_copy(context.0, data, len, std::ptr::null()))?;
            check(heif_context_get_primary_image_handle(context.0, &raw mut handle))?;
        }
        let picture = Picture { handle, _file: std::marker::PhantomData };
        Ok(Self { picture, _context: context, _bytes: std::marker::PhantomData })
    }

    /// The primary image itself.
    pub fn picture(&self) -> &Picture<'a> {
        &self.picture
    }

    /// Its ICC profile, if it has one.
    pub fn icc(&self) -> Option<Vec<u8>> {
        let handle = self.picture.handle;
        // SAFETY: a live handle; the buffer is sized by libheif's own count before it is filled.
        unsafe {
            if !PROFILE_ICC.contains(&heif_image_handle_get_color_profile_type(handle)) {
                return None;
            }
            let mut icc = vec![0u8; heif_image_handle_get_raw_color_profile_size(handle)];
            check(heif_image_handle_get_raw_color_profile(handle, icc.as_mut_ptr().cast())).ok()?;
            (!icc.is_empty()).then_some(icc)
        }
    }

    /// Its thumbnail items (phones write one of about 320 pixels), smallest first.
    pub fn thumbnails(&self) -> Vec<Picture<'_>> {
        let handle = self.picture.handle;
        // SAFETY: a live handle; the id list is sized by libheif's own count, and each thumbnail handle it gives is
        // owned by the returned picture.
        let mut thumbnails: Vec<Picture<'_>> = unsafe {
            let count = heif_image_handle_get_number_of_thumbnails(handle).clamp(0, 64);
            let mut ids = vec![0u32; count as usize];
            let filled = heif_image_handle_get_list_of_thumbnail_IDs(handle, ids.as_mut_ptr(), count).clamp(0, count);
            ids.truncate(filled as usize);
            ids.into_iter()
                .filter_map(|id| {
                    let mut thumbnail = std::ptr::null_mut();
                    check(heif_image_handle_get_thumbnail(handle, id, &raw mut thumbnail)).ok()?;
                    Some(Picture { handle: thumbnail, _file: std::marker::PhantomData })
                })
                .collect()
        };
        thumbnails.sort_by_key(|t| t.size().0);
        thumbnails
    }
}

impl Picture<'_> {
    /// The width and height it is shown at (after its rotation and crop).
    pub fn size(&self) -> (u32, u32) {
        // SAFETY: a live handle.
        let (width, height) =
            unsafe { (heif_image_handle_get_width(self.handle), heif_image_handle_get_height(self.handle)) };
        (u32::try_from(width).unwrap_or(0), u32::try_from(height).unwrap_or(0))
    }

    /// Whether it carries an alpha plane.
    pub fn has_alpha(&self) -> bool {
        // SAFETY: a live handle.
        unsafe { heif_image_handle_has_alpha_channel(self.handle) != 0 }
    }

    /// Whether its samples are deeper than 8 bits (libheif answers -1 when it cannot tell: counted as deep).
    pub fn is_deep(&self) -> bool {
        // SAFETY: a live handle.
        unsafe { heif_image_handle_get_luma_bits_per_pixel(self.handle) != 8 }
    }

    /// Decodes it to 8-bit interleaved RGB, or RGBA when `alpha`, with its rotation, mirroring and crop applied
    /// (deeper samples are brought to 8 bits): the width, height and tightly packed pixels.
    pub fn decode(&self, alpha: bool) -> Result<(u32, u32, Vec<u8>), String> {
        let channels = if alpha { 4 } else { 3 };
        let chroma = if alpha { CHROMA_INTERLEAVED_RGBA } else { CHROMA_INTERLEAVED_RGB };
        let mut image: *mut RawImage = std::ptr::null_mut();
        // SAFETY: options come from libheif's allocator, which fills every field of its version (2 or later in any
        // libheif that has `convert_hdr_to_8bit`, checked before it is written) and are freed once used.
        unsafe {
            let options = heif_decoding_options_alloc();
            if !options.is_null() && (*options).version >= 2 {
                (*options).convert_hdr_to_8bit = 1;
            }
            let decoded = heif_decode_image(self.handle, &raw mut image, COLORSPACE_RGB, chroma, options);
            heif_decoding_options_free(options);
            check(decoded)?;
        }
        let image = Image(image);
        // SAFETY: a decoded image with the interleaved plane it was asked for; each of `height` rows holds `stride`
        // bytes of which the first `width * channels` are pixels.
        unsafe {
            let width = heif_image_get_width(image.0, CHANNEL_INTERLEAVED);
            let height = heif_image_get_height(image.0, CHANNEL_INTERLEAVED);
            let mut stride: c_int = 0;
            let plane = heif_image_get_plane_readonly(image.0, CHANNEL_INTERLEAVED, &raw mut stride);
            let (Ok(width), Ok(height), Ok(stride)) =
                (usize::try_from(width), usize::try_from(height), usize::try_from(stride))
            else {
                return Err("libheif gave no picture".into());
            };
            let row = width * channels;
            if plane.is_null() || stride < row {
                return Err("libheif gave no picture".into());
            }
            let mut pixels = Vec::with_capacity(row * height);
            for y in 0..height {
                pixels.extend_from_slice(std::slice::from_raw_parts(plane.add(y * stride), row));
            }
            Ok((width as u32, height as u32, pixels))
        }
    }
}

impl Drop for Picture<'_> {
    fn drop(&mut self) {
        // SAFETY: given by libheif (null when opening failed, which libheif accepts) and released once.
        unsafe { heif_image_handle_release(self.handle) }
    }
}

/// A decoded image, released when dropped.
struct Image(*mut RawImage);

impl Drop for Image {
    fn drop(&mut self) {
        // SAFETY: decoded by libheif and released once; libheif accepts null.
        unsafe { heif_image_release(self.0) }
    }
}
