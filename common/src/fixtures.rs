//! Test images made in code, for the workspace's tests (feature `fixtures`): real encodings of a patterned image,
//! and headers that lie.

use std::io::Cursor;

use image::{DynamicImage, ImageEncoder, ImageFormat, Rgb, RgbImage, Rgba, RgbaImage, codecs::jpeg::JpegEncoder};

/// A `width`×`height` image with a gradient and a diagonal, encoded as `format` by the `image` crate's encoders.
pub fn sample_image(format: ImageFormat, width: u32, height: u32) -> Vec<u8> {
    let rgb = RgbImage::from_fn(width, height, |x, y| {
        let on_diagonal = x.abs_diff(y * width / height.max(1)) < 2;
        if on_diagonal { Rgb([255, 255, 255]) } else { Rgb([(x * 255 / width) as u8, (y * 255 / height) as u8, 96]) }
    });
    encode(&DynamicImage::ImageRgb8(rgb), format)
}

/// A `width`×`height` [`sample_image`] JPEG cut off halfway, as an interrupted upload arrives: its header reads, its
/// end-of-image marker is missing, so making a thumbnail of it must fail.
pub fn truncated_jpeg(width: u32, height: u32) -> Vec<u8> {
    let mut jpeg = sample_image(ImageFormat::Jpeg, width, height);
    jpeg.truncate(jpeg.len() / 2);
    jpeg
}

/// A half-transparent RGBA PNG, for alpha handling.
pub fn transparent_png(width: u32, height: u32) -> Vec<u8> {
    let rgba = RgbaImage::from_fn(width, height, |x, _| Rgba([200, 30, 30, if x < width / 2 { 0 } else { 255 }]));
    encode(&DynamicImage::ImageRgba8(rgba), ImageFormat::Png)
}

/// A JPEG stored `width`×`height`, left half red and right half blue, whose EXIF orientation tag is `orientation`
/// (6: display rotated 90° clockwise).
pub fn oriented_jpeg(width: u32, height: u32, orientation: u16) -> Vec<u8> {
    let rgb = RgbImage::from_fn(width, height, |x, _| if x < width / 2 { Rgb([220, 0, 0]) } else { Rgb([0, 0, 220]) });
    // A big-endian TIFF header and one IFD holding the Orientation tag (0x0112, SHORT, 1 value).
    let mut exif = b"MM\0\x2a\0\0\0\x08".to_vec();
    exif.extend(1u16.to_be_bytes());
    exif.extend(0x0112u16.to_be_bytes());
    exif.extend(3u16.to_be_bytes());
    exif.extend(1u32.to_be_bytes());
    exif.extend(orientation.to_be_bytes());
    exif.extend([0, 0, 0, 0, 0, 0]);
    let mut out = Vec::new();
    let mut encoder = JpegEncoder::new_with_quality(&mut out, 95);
    encoder.set_exif_metadata(exif).expect("JPEG takes EXIF");
    encoder.write_image(rgb.as_raw(), width, height, image::ExtendedColorType::Rgb8).expect("fixture encodes");
    out
}

/// A wide-gamut colour space the tests tag images with, and the reference conversion of its colours to sRGB.
#[derive(Clone, Copy, Debug)]
pub enum WideGamut {
    /// Display P3 (phones' cameras): P3 primaries, D65, the sRGB tone curve.
    DisplayP3,
    /// Adobe RGB (1998) (cameras): wider greens, D65, gamma 563/256.
    AdobeRgb,
}

impl WideGamut {
    /// Its ICC profile, as moxcms writes it.
    pub fn icc(self) -> Vec<u8> {
        let profile = match self {
            Self::DisplayP3 => moxcms::ColorProfile::new_display_p3(),
            Self::AdobeRgb => moxcms::ColorProfile::new_adobe_rgb(),
        };
        profile.encode().expect("the profile encodes")
    }

    /// `rgb` of this space in sRGB, computed from the spaces' published definitions (tone curves and the
    /// linear-light matrix between their primaries, both D65), independently of any colour engine; out-of-gamut
    /// values are clipped.
    pub fn to_srgb(self, rgb: [u8; 3]) -> [u8; 3] {
        let srgb_decode = |v: f64| if v <= 0.04045 { v / 12.92 } else { ((v + 0.055) / 1.055).powf(2.4) };
        let srgb_encode = |v: f64| if v <= 0.003_130_8 { v * 12.92 } else { 1.055 * v.powf(1.0 / 2.4) - 0.055 };
        let (decode, matrix): (&dyn Fn(f64) -> f64, [[f64; 3]; 3]) = match self {
            Self::DisplayP3 => (
                &srgb_decode,
                [[1.224_940, -0.224_940, 0.0], [-0.042_057, 1.042_057, 0.0], [-0.019_638, -0.078_636, 1.098_274]],
            ),
            Self::AdobeRgb => (
                &|v: f64| v.powf(563.0 / 256.0),
                [[1.398_356, -0.398_356, 0.0], [0.0, 1.0, 0.0], [0.0, -0.042_929, 1.042_929]],
            ),
        };
        let linear = rgb.map(|c| decode(f64::from(c) / 255.0));
        let mut out = [0u8; 3];
        for (channel, row) in out.iter_mut().zip(matrix) {
            let value: f64 = row.iter().zip(linear).map(|(m, c)| m * c).sum();
            *channel = (srgb_encode(value.clamp(0.0, 1.0)) * 255.0).round() as u8;
        }
        out
    }

    /// A flat `rgb` image of this space, tagged with its profile, as a JPEG (quality 100) or a PNG.
    pub fn tagged_image(self, format: ImageFormat, rgb: [u8; 3], width: u32, height: u32) -> Vec<u8> {
        let image = RgbImage::from_pixel(width, height, Rgb(rgb));
        let mut out = Vec::new();
        match format {
            ImageFormat::Jpeg => {
                let mut encoder = JpegEncoder::new_with_quality(&mut out, 100);
                encoder.set_icc_profile(self.icc()).expect("JPEG takes a profile");
                encoder.write_image(image.as_raw(), width, height, image::ExtendedColorType::Rgb8)
            }
            _ => {
                let mut encoder = image::codecs::png::PngEncoder::new(&mut out);
                encoder.set_icc_profile(self.icc()).expect("PNG takes a profile");
                encoder.write_image(image.as_raw(), width, height, image::ExtendedColorType::Rgb8)
            }
        }
        .expect("fixture encodes");
        out
    }
}

/// Encodes `image` as `format`.
pub fn encode(image: &DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut out = Vec::new();
    image.write_to(&mut Cursor::new(&mut out), format).expect("fixture images encode");
    out
}

/// A PNG with a valid IHDR chunk claiming `width`×`height` and an empty IDAT: a decompression bomb's header, with no
/// pixel data behind it.
pub fn png_header(width: u32, height: u32) -> Vec<u8> {
    let mut ihdr = width.to_be_bytes().to_vec();
    ihdr.extend(height.to_be_bytes());
    ihdr.extend([8, 2, 0, 0, 0]);
    png_chunks(&[(b"IHDR", &ihdr), (b"IDAT", &[]), (b"IEND", &[])])
}

/// A 1×1 PNG whose `iCCP` chunk inflates to `inflated` bytes: a small upload that costs a naive header reader
/// `inflated` bytes of memory. The zlib stream is written in chunks, so making it costs little memory.
pub fn png_with_icc_bomb(inflated: usize) -> Vec<u8> {
    use std::io::Write;
    let mut icc = b"bomb\0\0".to_vec(); // profile name, NUL, compression method 0
    let mut zlib = flate2::write::ZlibEncoder::new(&mut icc, flate2::Compression::best());
    let zeros = vec![0u8; 1 << 20];
    for start in (0..inflated).step_by(zeros.len()) {
        zlib.write_all(&zeros[..zeros.len().min(inflated - start)]).expect("in memory");
    }
    zlib.finish().expect("in memory");
    let mut idat = Vec::new();
    let mut pixel = flate2::write::ZlibEncoder::new(&mut idat, flate2::Compression::default());
    pixel.write_all(&[0, 200, 100, 50]).expect("in memory"); // filter byte, then one RGB pixel
    pixel.finish().expect("in memory");
    let ihdr = [0, 0, 0, 1, 0, 0, 0, 1, 8, 2, 0, 0, 0];
    png_chunks(&[(b"IHDR", &ihdr), (b"iCCP", &icc), (b"IDAT", &idat), (b"IEND", &[])])
}

/// A PNG file made of these chunks.
fn png_chunks(chunks: &[(&[u8; 4], &[u8])]) -> Vec<u8> {
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    for (kind, data) in chunks {
        out.extend(u32::try_from(data.len()).unwrap_or(0).to_be_bytes());
        let typed: Vec<u8> = kind.iter().chain(data.iter()).copied().collect();
        out.extend(&typed);
        out.extend(crc32(&typed).to_be_bytes());
    }
    out
}

/// PNG's CRC-32 (ISO 3309), bit by bit: fixtures are tiny.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

/// Webhook URLs in the special-purpose ranges the hostile tester reached through translation forms: the guard's unit
/// test and the upload's end-to-end test refuse the same list.
pub const SPECIAL_PURPOSE_WEBHOOK_URLS: [&str; 7] = [
    "http://[64:ff9b:1::a00:1]/",                     // local-use NAT64
    "http://[::ffff:0:a9fe:a9fe]/",                   // SIIT, 169.254.169.254
    "http://[2001:0:4136:e378:8000:63bf:f5ff:fffe]/", // Teredo, client 10.0.0.1
    "http://192.88.99.1/",                            // 6to4 relay anycast
    "http://[100::1]/",                               // discard-only
    "http://[2001:2::1]/",                            // benchmarking
    "http://[2001:10::1]/",                           // ORCHID
];

/// `input` (a PNG or JPEG) encoded by Debian's `heif-enc` (libheif's encoder with x265 and libaom, which
/// `deploy/native/test-tools.sh` installs) with `args`: HEIC, or AVIF with `-A`. heif-enc 1.15 wraps every picture
/// in a one-tile grid, so each file also exercises libheif's grid assembly.
pub fn heif_enc(input: &[u8], args: &[&str]) -> Vec<u8> {
    encode_with("heif-enc", "heif", input, |source, output| {
        let mut all: Vec<std::ffi::OsString> = args.iter().map(Into::into).collect();
        all.extend(["-o".into(), output.into(), source.into()]);
        all
    })
}

/// `input` (a PNG or JPEG) encoded by Debian's `cjxl` (libjxl's encoder, libjxl-tools) with `args`: `-d 0` is
/// lossless; a JPEG is recompressed losslessly unless `-j 0` (`--lossless_jpeg=0`) says otherwise.
pub fn cjxl(input: &[u8], args: &[&str]) -> Vec<u8> {
    encode_with("cjxl", "jxl", input, |source, output| {
        let mut all: Vec<std::ffi::OsString> = vec![source.into(), output.into()];
        all.extend(args.iter().map(Into::into));
        all
    })
}

/// A video made by Debian's `ffmpeg` (`deploy/native/lib.sh` installs it for the worker) from `args`, which name
/// their own inputs (lavfi sources), written as `extension` (`mp4`, `webm`…).
pub fn ffmpeg_video(extension: &str, args: &[&str]) -> Vec<u8> {
    encode_with("ffmpeg", extension, b"", |_, output| {
        let mut all: Vec<std::ffi::OsString> = ["-v", "error", "-y"].iter().map(Into::into).collect();
        all.extend(args.iter().map(Into::into));
        all.push(output.into());
        all
    })
}

/// An animation of `frames` frames of `width`×`height` at 10 frames a second, odd frames red and even ones green
/// (so a test can tell them apart and no encoder merges two), written by FFmpeg's GIF muxer. `repeats` is its
/// loop extension (repeats after the first play; 0: for ever); `None` writes none (it plays once).
pub fn animated_gif(width: u32, height: u32, frames: u32, repeats: Option<u16>) -> Vec<u8> {
    let repeats = repeats.map_or_else(|| "-1".to_owned(), |n| n.to_string());
    ffmpeg_animation("gif", width, height, frames, &["-loop", &repeats])
}

/// The animation of [`animated_gif`], written by FFmpeg with libwebp's animation encoder, playing `plays` times (0:
/// for ever).
pub fn animated_webp(width: u32, height: u32, frames: u32, plays: u16) -> Vec<u8> {
    ffmpeg_animation("webp", width, height, frames, &["-c:v", "libwebp_anim", "-loop", &plays.to_string()])
}

/// The animation of [`animated_gif`] as an AVIF sequence, written by FFmpeg with libaom (no edit list: it plays for
/// ever).
pub fn animated_avif(width: u32, height: u32, frames: u32) -> Vec<u8> {
    ffmpeg_animation("avif", width, height, frames, &["-c:v", "libaom-av1", "-cpu-used", "8", "-pix_fmt", "yuv420p"])
}

/// The red and green animation of [`animated_gif`], encoded by FFmpeg as `extension` with `args`.
fn ffmpeg_animation(extension: &str, width: u32, height: u32, frames: u32, args: &[&str]) -> Vec<u8> {
    let source = format!("nullsrc=size={width}x{height}:rate=10,geq=r='255*mod(N,2)':g='255*(1-mod(N,2))':b=64");
    let frames = frames.to_string();
    let mut all = vec!["-f", "lavfi", "-i", &source, "-frames:v", &frames];
    all.extend(args);
    ffmpeg_video(extension, &all)
}

/// `input` encoded by the command-line encoder `program` to a file named with `extension`, given its arguments for
/// an input and an output path.
fn encode_with(
    program: &str,
    extension: &str,
    input: &[u8],
    args: impl FnOnce(&std::path::Path, &std::path::Path) -> Vec<std::ffi::OsString>,
) -> Vec<u8> {
    let dir = std::env::temp_dir().join(format!("thumbq-{program}-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir(&dir).expect("a temporary folder");
    let input_extension = if input.starts_with(b"\x89PNG") { "png" } else { "jpg" };
    let (source, output) = (dir.join(format!("in.{input_extension}")), dir.join(format!("out.{extension}")));
    std::fs::write(&source, input).expect("the input is written");
    let run = std::process::Command::new(program).args(args(&source, &output)).output();
    let encoded = std::fs::read(&output);
    let _ = std::fs::remove_dir_all(&dir);
    let run = run.unwrap_or_else(|e| panic!("{program} runs (deploy/native/test-tools.sh installs it): {e}"));
    assert!(run.status.success(), "{program} failed: {}", String::from_utf8_lossy(&run.stderr));
    encoded.unwrap_or_else(|e| panic!("{program} wrote no output: {e}"))
}

/// A one-page PDF of `width`×`height` points whose page draws `content` (a PDF content stream, such as
/// `1 0 0 rg 0 0 10 10 re f` for a red square) and whose page dictionary also holds `extra` (such as `/Rotate 90`).
pub fn pdf(width: u32, height: u32, content: &str, extra: &str) -> Vec<u8> {
    let objects = [
        "<< /Type /Catalog /Pages 2 0 R >>".to_owned(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_owned(),
        format!("<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {width} {height}] /Contents 4 0 R {extra} >>"),
        format!("<< /Length {} >>\nstream\n{content}\nendstream", content.len() + 1),
    ];
    let mut out = b"%PDF-1.4\n".to_vec();
    let mut offsets = Vec::new();
    for (i, object) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend(format!("{} 0 obj\n{object}\nendobj\n", i + 1).bytes());
    }
    let xref = out.len();
    out.extend(format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).bytes());
    for offset in offsets {
        out.extend(format!("{offset:010} 00000 n \n").bytes());
    }
    out.extend(format!("trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n", objects.len() + 1).bytes());
    out
}
