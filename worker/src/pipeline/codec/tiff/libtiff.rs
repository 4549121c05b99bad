//! A TIFF opened by libtiff over the upload's bytes in memory: its errors kept for the task's message, its
//! allocations capped, its warnings silent. Written against libtiff 4.5's C API by hand: no maintained crate binds
//! libtiff (the `tiff` crate is a separate pure-Rust decoder, the one that refuses the layouts this module is for),
//! and the surface used is a dozen functions. Each `unsafe` block says why it holds.
#![allow(unsafe_code)]

use std::ffi::{CStr, c_char, c_int, c_void};

/// libtiff's `TIFF`, opaque.
#[repr(C)]
struct RawTiff {
    _private: [u8; 0],
}

/// libtiff's `TIFFOpenOptions`, opaque.
#[repr(C)]
struct OpenOptions {
    _private: [u8; 0],
}

/// `va_list` as a parameter: a pointer on x86-64 (an array that decays) and on AArch64 (a struct passed by
/// reference), only ever passed on to `vsnprintf`.
type VaList = *mut c_void;
type ReadWriteProc = unsafe extern "C" fn(*mut c_void, *mut c_void, isize) -> isize;
type SeekProc = unsafe extern "C" fn(*mut c_void, u64, c_int) -> u64;
type CloseProc = unsafe extern "C" fn(*mut c_void) -> c_int;
type SizeProc = unsafe extern "C" fn(*mut c_void) -> u64;
type MapProc = unsafe extern "C" fn(*mut c_void, *mut *mut c_void, *mut u64) -> c_int;
type UnmapProc = unsafe extern "C" fn(*mut c_void, *mut c_void, u64);
type HandlerProc = unsafe extern "C" fn(*mut RawTiff, *mut c_void, *const c_char, *const c_char, VaList) -> c_int;

#[link(name = "tiff")]
unsafe extern "C" {
    fn TIFFOpenOptionsAlloc() -> *mut OpenOptions;
    fn TIFFOpenOptionsFree(opts: *mut OpenOptions);
    fn TIFFOpenOptionsSetMaxSingleMemAlloc(opts: *mut OpenOptions, max: isize);
    fn TIFFOpenOptionsSetErrorHandlerExtR(opts: *mut OpenOptions, handler: HandlerProc, data: *mut c_void);
    fn TIFFOpenOptionsSetWarningHandlerExtR(opts: *mut OpenOptions, handler: HandlerProc, data: *mut c_void);
    #[allow(clippy::too_many_arguments)]
    fn TIFFClientOpenExt(
        name: *const c_char,
        mode: *const c_char,
        client: *mut c_void,
        read: ReadWriteProc,
        write: ReadWriteProc,
        seek: SeekProc,
        close: CloseProc,
        size: SizeProc,
        map: MapProc,
        unmap: UnmapProc,
        opts: *mut OpenOptions,
    ) -> *mut RawTiff;
    fn TIFFClose(tif: *mut RawTiff);
    fn TIFFGetField(tif: *mut RawTiff, tag: u32, ...) -> c_int;
    fn TIFFGetFieldDefaulted(tif: *mut RawTiff, tag: u32, ...) -> c_int;
    fn TIFFRGBAImageOK(tif: *mut RawTiff, message: *mut c_char) -> c_int;
    fn TIFFReadRGBAImageOriented(
        tif: *mut RawTiff,
        w: u32,
        h: u32,
        raster: *mut u32,
        orient: c_int,
        stop: c_int,
    ) -> c_int;
    fn TIFFIsTiled(tif: *mut RawTiff) -> c_int;
    fn TIFFStripSize64(tif: *mut RawTiff) -> u64;
    fn TIFFScanlineSize64(tif: *mut RawTiff) -> u64;
    fn TIFFReadScanline(tif: *mut RawTiff, buffer: *mut c_void, row: u32, sample: u16) -> c_int;
    fn TIFFTileSize64(tif: *mut RawTiff) -> u64;
}

unsafe extern "C" {
    fn vsnprintf(buffer: *mut c_char, size: usize, format: *const c_char, args: VaList) -> c_int;
}

const TAG_IMAGE_WIDTH: u32 = 256;
const TAG_IMAGE_LENGTH: u32 = 257;
const TAG_ORIENTATION: u32 = 274;
const TAG_EXTRA_SAMPLES: u32 = 338;
const TAG_ICC_PROFILE: u32 = 34675;

/// What libtiff's callbacks see: the bytes with a read position, and the first error libtiff reported.
struct Client<'a> {
    bytes: &'a [u8],
    position: u64,
    error: Option<String>,
}

/// An open TIFF, closed on drop.
pub struct Tiff<'a> {
    raw: *mut RawTiff,
    // A raw pointer (from a box, freed on drop) rather than a box: libtiff's callbacks write through it while a
    // method of this handle runs, so no Rust reference to it may be live then.
    client: *mut Client<'a>,
}

impl<'a> Tiff<'a> {
    /// Opens `bytes`, reading its first directory; libtiff allocates at most `max_alloc` bytes at once (0: no
    /// cap). `Err` holds libtiff's reason.
    pub fn open(bytes: &'a [u8], max_alloc: u64) -> Result<Self, String> {
        let client = Box::into_raw(Box::new(Client { bytes, position: 0, error: None }));
        let data = client.cast::<c_void>();
        // SAFETY: the options are allocated, set and freed here; libtiff copies what it needs into the handle at
        // open. The callbacks get `data`, the client, which lives until the handle is dropped (or just below when
        // the open fails). Mode "rm": read-only, no memory mapping, so every read goes through `read` and stays
        // within the slice.
        let raw = unsafe {
            let opts = TIFFOpenOptionsAlloc();
            if opts.is_null() {
                return Err("libtiff could not allocate its options".into());
            }
            TIFFOpenOptionsSetMaxSingleMemAlloc(opts, isize::try_from(max_alloc).unwrap_or(isize::MAX));
            TIFFOpenOptionsSetErrorHandlerExtR(opts, on_error, data);
            TIFFOpenOptionsSetWarningHandlerExtR(opts, on_warning, data);
            let raw = TIFFClientOpenExt(
                c"upload".as_ptr(),
                c"rm".as_ptr(),
                data,
                read,
                write,
                seek,
                close,
                size,
                map,
                unmap,
                opts,
            );
            TIFFOpenOptionsFree(opts);
            raw
        };
        if raw.is_null() {
            // SAFETY: from `Box::into_raw` above; libtiff has no handle that could still use it.
            let client = unsafe { Box::from_raw(client) };
            return Err(client.error.unwrap_or_else(|| "libtiff could not open it".into()));
        }
        Ok(Self { raw, client })
    }

    /// The first error libtiff reported, or `fallback`.
    pub fn error(&mut self, fallback: &str) -> String {
        // SAFETY: the client is live while the handle is; no libtiff call is running (this takes `&mut self`).
        unsafe { (*self.client).error.take() }.unwrap_or_else(|| fallback.to_owned())
    }

    /// Width and height of the first directory.
    pub fn size(&self) -> Option<(u32, u32)> {
        let (mut width, mut height) = (0u32, 0u32);
        // SAFETY: the handle is open; both tags are LONG, written through the `u32` pointers given.
        let found = unsafe {
            TIFFGetField(self.raw, TAG_IMAGE_WIDTH, &raw mut width) == 1
                && TIFFGetField(self.raw, TAG_IMAGE_LENGTH, &raw mut height) == 1
        };
        (found && width > 0 && height > 0).then_some((width, height))
    }

    /// The embedded ICC profile, if any.
    pub fn icc(&self) -> Option<Vec<u8>> {
        let (mut len, mut data) = (0u32, std::ptr::null::<u8>());
        // SAFETY: the handle is open; the ICC profile tag is read as a count and a pointer to bytes libtiff owns,
        // copied out before the handle can close.
        unsafe {
            if TIFFGetField(self.raw, TAG_ICC_PROFILE, &raw mut len, &raw mut data) != 1 || data.is_null() {
                return None;
            }
            Some(std::slice::from_raw_parts(data, len as usize).to_vec())
        }
    }

    /// A SHORT tag's first value, or libtiff's default for it (`None` for a tag without a default, left out).
    pub fn short(&self, tag: u32) -> Option<u16> {
        let mut value = 0u16;
        // SAFETY: the handle is open; the tags asked for are SHORTs (BitsPerSample, SamplesPerPixel, SampleFormat,
        // PlanarConfiguration, Photometric, Orientation), written through the `u16` pointer.
        (unsafe { TIFFGetFieldDefaulted(self.raw, tag, &raw mut value) } == 1).then_some(value)
    }

    /// The meaning of the first extra sample (ExtraSamples: 0 unspecified, 1 premultiplied alpha, 2 straight
    /// alpha); `None` without extra samples.
    pub fn extra_sample(&self) -> Option<u16> {
        let (mut count, mut values) = (0u16, std::ptr::null::<u16>());
        // SAFETY: the handle is open; ExtraSamples is read as a count and a pointer to SHORTs libtiff owns, of
        // which the first is read when there is one.
        unsafe {
            if TIFFGetField(self.raw, TAG_EXTRA_SAMPLES, &raw mut count, &raw mut values) != 1 || values.is_null() {
                return None;
            }
            (count > 0).then(|| *values)
        }
    }

    /// Whether the image is stored in tiles rather than strips.
    pub fn is_tiled(&self) -> bool {
        // SAFETY: the handle is open.
        unsafe { TIFFIsTiled(self.raw) != 0 }
    }

    /// The bytes one decoded row (of one plane, when planar) takes.
    pub fn scanline_size(&self) -> u64 {
        // SAFETY: the handle is open; this computes from its directory.
        unsafe { TIFFScanlineSize64(self.raw) }
    }

    /// Reads row `row` of plane `sample` into `buffer`, decompressed, samples in the machine's byte order.
    pub fn read_scanline(&mut self, buffer: &mut [u8], row: u32, sample: u16) -> Result<(), String> {
        if (buffer.len() as u64) < self.scanline_size() {
            return Err("the row buffer is too small".into());
        }
        // SAFETY: the handle is open and striped (callers check); the buffer holds a whole scanline (checked).
        let done = unsafe { TIFFReadScanline(self.raw, buffer.as_mut_ptr().cast(), row, sample) };
        if done == 1 { Ok(()) } else { Err(self.error("libtiff could not read a row")) }
    }

    /// The bytes one strip or tile takes decoded: libtiff's working buffer while it reads.
    pub fn chunk_size(&self) -> u64 {
        // SAFETY: the handle is open; these only compute from its directory.
        unsafe { if TIFFIsTiled(self.raw) != 0 { TIFFTileSize64(self.raw) } else { TIFFStripSize64(self.raw) } }
    }

    /// Whether libtiff's RGBA reader takes this layout; `Err` with its reason if not (floating-point samples).
    pub fn rgba_ok(&self) -> Result<(), String> {
        let mut message = [0 as c_char; 1024];
        // SAFETY: the handle is open and the buffer is the 1024 bytes TIFFRGBAImageOK writes its reason into.
        if unsafe { TIFFRGBAImageOK(self.raw, message.as_mut_ptr()) } == 1 {
            return Ok(());
        }
        // SAFETY: libtiff wrote a NUL-terminated string within the buffer (or nothing: still zeroes).
        Err(unsafe { CStr::from_ptr(message.as_ptr()) }.to_string_lossy().into_owned())
    }

    /// Reads the whole image as RGBA into `raster` (`width × height` pixels, 4-byte aligned), rows in the order
    /// the file stores them: the file's orientation is asked for, so libtiff flips nothing and the pipeline turns
    /// the image once, as for every format. Pixels come out premultiplied by alpha, as libtiff's reader makes them.
    pub fn read_rgba(&mut self, width: u32, height: u32, raster: &mut [u8]) -> Result<(), String> {
        let needed = u64::from(width) * u64::from(height) * 4;
        if raster.len() as u64 != needed || raster.as_ptr().align_offset(4) != 0 {
            return Err("the raster does not fit the image".into());
        }
        let mut orientation = 1u16;
        // SAFETY: the handle is open; the orientation tag is a SHORT, written through the `u16` pointer (with its
        // default when absent). The raster holds width × height `u32`s and is aligned for them (checked above).
        let done = unsafe {
            TIFFGetFieldDefaulted(self.raw, TAG_ORIENTATION, &raw mut orientation);
            TIFFReadRGBAImageOriented(self.raw, width, height, raster.as_mut_ptr().cast(), c_int::from(orientation), 1)
        };
        if done == 1 { Ok(()) } else { Err(self.error("libtiff could not read the pixels")) }
    }
}

impl Drop for Tiff<'_> {
    fn drop(&mut self) {
        // SAFETY: the handle was opened and is closed once; the client, from `Box::into_raw`, is freed after it.
        unsafe {
            TIFFClose(self.raw);
            drop(Box::from_raw(self.client));
        }
    }
}

/// The client behind libtiff's `thandle_t`.
///
/// # Safety
/// `data` is the pointer `Tiff::open` handed libtiff, to a live `Client`, used by one thread at a time.
unsafe fn client<'a>(data: *mut c_void) -> &'a mut Client<'a> {
    // SAFETY: as the function's contract says.
    unsafe { &mut *data.cast::<Client<'a>>() }
}

unsafe extern "C" fn read(data: *mut c_void, buffer: *mut c_void, len: isize) -> isize {
    // SAFETY: libtiff passes back the client pointer it was given.
    let client = unsafe { client(data) };
    let start = usize::try_from(client.position).unwrap_or(usize::MAX).min(client.bytes.len());
    let n = usize::try_from(len).unwrap_or(0).min(client.bytes.len() - start);
    // SAFETY: libtiff's buffer has room for `len` ≥ `n` bytes; the source range is within the slice.
    unsafe { std::ptr::copy_nonoverlapping(client.bytes.as_ptr().add(start), buffer.cast::<u8>(), n) };
    client.position = (start + n) as u64;
    n as isize
}

unsafe extern "C" fn write(_: *mut c_void, _: *mut c_void, _: isize) -> isize {
    -1
}

unsafe extern "C" fn seek(data: *mut c_void, offset: u64, whence: c_int) -> u64 {
    // SAFETY: libtiff passes back the client pointer it was given.
    let client = unsafe { client(data) };
    let base = match whence {
        libc::SEEK_SET => 0,
        libc::SEEK_CUR => client.position,
        libc::SEEK_END => client.bytes.len() as u64,
        _ => return u64::MAX,
    };
    // libtiff passes negative offsets as their two's complement.
    client.position = base.wrapping_add(offset);
    client.position
}

unsafe extern "C" fn close(_: *mut c_void) -> c_int {
    0
}

unsafe extern "C" fn size(data: *mut c_void) -> u64 {
    // SAFETY: libtiff passes back the client pointer it was given.
    unsafe { client(data) }.bytes.len() as u64
}

unsafe extern "C" fn map(_: *mut c_void, _: *mut *mut c_void, _: *mut u64) -> c_int {
    0
}

unsafe extern "C" fn unmap(_: *mut c_void, _: *mut c_void, _: u64) {}

/// Keeps libtiff's first error (later ones follow from it) and stops it printing to stderr.
unsafe extern "C" fn on_error(
    _: *mut RawTiff,
    data: *mut c_void,
    _module: *const c_char,
    format: *const c_char,
    args: VaList,
) -> c_int {
    // SAFETY: `data` is the client pointer given with the handler.
    let client = unsafe { client(data) };
    if client.error.is_none() {
        let mut message = [0 as c_char; 256];
        // SAFETY: libtiff's format and arguments are passed on unchanged; vsnprintf writes at most 256 bytes,
        // NUL-terminated.
        unsafe {
            vsnprintf(message.as_mut_ptr(), message.len(), format, args);
            client.error = Some(CStr::from_ptr(message.as_ptr()).to_string_lossy().into_owned());
        }
    }
    1
}

/// Warnings are libtiff's notes on files it reads anyway (unknown tags, odd values): not the task's concern.
unsafe extern "C" fn on_warning(
    _: *mut RawTiff,
    _: *mut c_void,
    _: *const c_char,
    _: *const c_char,
    _: VaList,
) -> c_int {
    1
}
