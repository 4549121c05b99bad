//! Making a thumbnail: bytes in, bytes out, no I/O. Header first (refusing over-limit images before any pixel is
//! allocated), decode, resample with `fast_image_resize` (Lanczos3, alpha premultiplied), apply the EXIF orientation
//! to the small result, encode. Deterministic, so every failure here is permanent; so is the one that is not, the
//! time limit ([`Deadline`]): the same work would run as long again.

mod attention;
mod colour;
mod deadline;
mod decode;
mod encode;
#[cfg(test)]
mod fuzz;
pub mod geometry;
mod jpeg;
mod jpeg_dc;
mod jpeg_layout;
pub mod memory;
mod placeholder;
#[cfg(test)]
mod test_images;
// PSNR against a reference: for the tests and `make bench`, not the worker.
#[cfg(any(test, feature = "bench"))]
pub mod quality;
// `make bench` times the encoders alone.
#[cfg(feature = "bench")]
pub use encode::{AVIF_SPEED, encode};
mod webp;

pub use deadline::Deadline;
use fast_image_resize::{FilterType, ResizeAlg, ResizeOptions, Resizer};
use image::{DynamicImage, metadata::Orientation};
use thumbq_common::{
    image_probe::{self, Probe, ProbeError},
    task::{ImageInfo, ResizeArgs},
};

/// A finished thumbnail.
#[derive(Debug)]
pub struct Thumbnail {
    /// The encoded image.
    pub bytes: Vec<u8>,
    /// Its format, size and length.
    pub info: ImageInfo,
}

/// What making one thumbnail may cost.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Images with more pixels are refused from their header (`THUMBQ_MAX_PIXELS`).
    pub max_pixels: u64,
    /// libjpeg-turbo's cap on its intermediate buffers, in MiB (0: no cap): the backstop behind the worker's
    /// admission estimate, which it sets to the task's admitted share.
    pub decoder_memory_mib: u32,
    /// When the task must give up (`THUMBQ_TASK_TIME_LIMIT_SECS`); `None`: never.
    pub deadline: Option<Deadline>,
}

impl Limits {
    /// A pixel limit alone, for callers with no memory budget nor time limit (benchmarks, tests).
    pub const fn pixels(max_pixels: u64) -> Self {
        Self { max_pixels, decoder_memory_mib: 0, deadline: None }
    }

    /// Fails once the deadline, if any, has passed, with `made` of `of` thumbnails made.
    fn check_time(&self, made: usize, of: usize) -> Result<(), PipelineError> {
        self.deadline.map_or(Ok(()), |deadline| deadline.check(made, of))
    }
}

/// Why an image could not be made into a thumbnail.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// The header is not a usable image.
    #[error(transparent)]
    Probe(#[from] ProbeError),
    /// The image data is corrupt or truncated.
    #[error("the image cannot be decoded: {0}")]
    Decode(String),
    /// The image alone needs more memory than the worker's whole budget.
    #[error("the image needs about {needed_mib} MiB to decode, over this worker's memory budget of {budget_mib} MiB")]
    OverBudget {
        /// The estimate.
        needed_mib: u64,
        /// `THUMBQ_WORKER_MEMORY_MB`.
        budget_mib: u64,
    },
    /// Resampling or encoding failed.
    #[error("the thumbnail cannot be made: {0}")]
    Encode(String),
    /// The task ran past its time limit and gave up between two steps.
    #[error(
        "time limit: the task ran over this worker's time limit of {} s with {made} of {of} thumbnail(s) made; \
         ask for fewer or smaller sizes, a lower quality, or a faster format than avif",
        limit.as_secs_f64()
    )]
    TimeLimit {
        /// `THUMBQ_TASK_TIME_LIMIT_SECS`.
        limit: std::time::Duration,
        /// Thumbnails finished before it gave up.
        made: usize,
        /// Thumbnails asked for.
        of: usize,
    },
}

/// How an image will be decoded for a thumbnail: in which orientation the box is planned, and how many times smaller
/// than full size the decode may be.
#[derive(Clone, Copy)]
struct DecodePlan {
    orientation: Orientation,
    /// The box (width, height) in the source's stored orientation.
    stored_box: (u32, u32),
    /// The cover crop's focus in the source's stored orientation, as fractions of its sides.
    focus: (f64, f64),
    /// The full-size plan, which fixes the thumbnail's size.
    full: geometry::Plan,
    /// How many times smaller than full size the decoded image may be (≥ 1).
    reduction: f64,
}

impl DecodePlan {
    fn new(orientation: Orientation, probe: &Probe, args: &ResizeArgs) -> Self {
        // Plan in the source's stored orientation and rotate the small result: for a quarter turn the box turns
        // too, and the focus (given in the image as displayed) is mapped back to where it is stored.
        let turns = matches!(
            orientation,
            Orientation::Rotate90 | Orientation::Rotate270 | Orientation::Rotate90FlipH | Orientation::Rotate270FlipH
        );
        let stored_box = if turns { (args.height, args.width) } else { (args.width, args.height) };
        // Decode no larger than needed: keep at least twice the output's pixels along each side of the crop, so
        // the Lanczos filter still has real detail to work with.
        let focus =
            args.focus.map_or(geometry::CENTRE, |f| stored_point(orientation, (f64::from(f.x), f64::from(f.y))));
        let full = geometry::plan_at(probe.width, probe.height, stored_box.0, stored_box.1, args.fit, focus);
        let reduction =
            (full.crop_width / f64::from(2 * full.width)).min(full.crop_height / f64::from(2 * full.height));
        Self { orientation, stored_box, focus, full, reduction: reduction.max(1.0) }
    }

    /// One plan per output, and the reduction the decode may use: the one the most demanding output allows.
    fn all(orientation: Orientation, probe: &Probe, outputs: &[ResizeArgs]) -> (Vec<Self>, f64) {
        let plans: Vec<Self> = outputs.iter().map(|args| Self::new(orientation, probe, args)).collect();
        let reduction = plans.iter().map(|p| p.reduction).fold(f64::INFINITY, f64::min);
        (plans, if reduction.is_finite() { reduction } else { 1.0 })
    }
}

/// Where the point `displayed` (fractions of the displayed image's sides) lies in the image as stored, before
/// `orientation` is applied: the inverse of what `apply_orientation` does to the pixels.
fn stored_point(orientation: Orientation, (x, y): (f64, f64)) -> (f64, f64) {
    match orientation {
        Orientation::NoTransforms => (x, y),
        Orientation::FlipHorizontal => (1.0 - x, y),
        Orientation::FlipVertical => (x, 1.0 - y),
        Orientation::Rotate180 => (1.0 - x, 1.0 - y),
        Orientation::Rotate90 => (y, 1.0 - x),
        Orientation::Rotate270 => (1.0 - y, x),
        Orientation::Rotate90FlipH => (y, x),
        Orientation::Rotate270FlipH => (1.0 - y, 1.0 - x),
    }
}

/// The most memory making these thumbnails will need, in bytes, estimated from the header alone (see [`memory`]):
/// the decode, every encoded output kept until stored, and the largest output's resampling and encoding buffers.
pub fn estimate_peak(bytes: &[u8], outputs: &[ResizeArgs], max_pixels: u64) -> Result<u64, PipelineError> {
    let probe = image_probe::probe(bytes, max_pixels)?;
    image_probe::without_panics(|| {
        let (plans, reduction) = DecodePlan::all(decode::header(bytes, probe.format).orientation, &probe, outputs);
        let sizes = plans.iter().map(|p| u64::from(p.full.width) * u64::from(p.full.height) * 4);
        let (sum, largest) = sizes.fold((0, 0), |(sum, largest), size| (sum + size, largest.max(size)));
        let encoder = plans.iter().zip(outputs).map(|(p, args)| memory::encoder_peak(args.format, &p.full));
        memory::decode_peak(bytes, &probe, reduction)
            + sum
            + 2 * largest
            + encoder.max().unwrap_or(0)
            + bytes.len() as u64
    })
    .map_err(PipelineError::Decode)
}

/// Makes the thumbnail `args` asks for from the encoded image `bytes`, within `limits`.
pub fn make_thumbnail(bytes: &[u8], args: &ResizeArgs, limits: Limits) -> Result<Thumbnail, PipelineError> {
    let mut thumbnails = make_thumbnails(bytes, std::slice::from_ref(args), limits)?;
    Ok(thumbnails.remove(0))
}

/// Makes one thumbnail per entry of `outputs` (renditions) from one decode of `bytes`, at the scale the most
/// demanding one needs. Only the first carries a ThumbHash: they all show the same image. A panic in a decoder is
/// a decode error of this image (permanent), not a crash of the task.
pub fn make_thumbnails(bytes: &[u8], outputs: &[ResizeArgs], limits: Limits) -> Result<Vec<Thumbnail>, PipelineError> {
    image_probe::without_panics(|| make(bytes, outputs, limits)).map_err(PipelineError::Decode)?
}

fn make(bytes: &[u8], outputs: &[ResizeArgs], limits: Limits) -> Result<Vec<Thumbnail>, PipelineError> {
    let probe = image_probe::probe(bytes, limits.max_pixels)?;
    let header = decode::header(bytes, probe.format);
    let (plans, reduction) = DecodePlan::all(header.orientation, &probe, outputs);
    let to_srgb = colour::ToSrgb::new(header.icc.as_deref());
    let decoded = decode::decode(bytes, &probe, reduction, limits.decoder_memory_mib, header.icc.as_deref())?;
    let of = outputs.len();
    limits.check_time(0, of)?;
    let mut source = Some(decoded);
    let mut thumbnails = Vec::with_capacity(of);
    for (i, (args, plan)) in outputs.iter().zip(plans).enumerate() {
        if i > 0 {
            // Not after the last encode: by then the work is done, and giving it up would waste it.
            limits.check_time(i, of)?;
        }
        let mut small = resample(source.as_ref().expect("kept until the last resample"), args, plan)?;
        limits.check_time(i, of)?;
        if let Some(to_srgb) = &to_srgb {
            small = to_srgb.apply(small);
        }
        if i + 1 == outputs.len() {
            // Free the decoded image before the last encode: it is most of the task's memory.
            source = None;
        }
        thumbnails.push(finish(small, args, i == 0)?);
    }
    drop(source);
    Ok(thumbnails)
}

/// Resamples one output from the decoded `source` and turns it to the EXIF orientation.
fn resample(source: &DynamicImage, args: &ResizeArgs, plan: DecodePlan) -> Result<DynamicImage, PipelineError> {
    let DecodePlan { orientation, stored_box: (box_w, box_h), focus, full, .. } = plan;
    // The crop comes from the decoded pixels, the output size from the original: a scaled decode rounds its sides,
    // which must not change the thumbnail's size.
    let focus = if args.auto_focus && args.fit == thumbq_common::task::Fit::Cover {
        // Scored on the decoded pixels, in the stored orientation the plan uses.
        let centred = geometry::plan(source.width(), source.height(), box_w, box_h, args.fit);
        attention::focus(source, centred.crop_width, centred.crop_height)
    } else {
        focus
    };
    let plan = geometry::Plan {
        width: full.width,
        height: full.height,
        ..geometry::plan_at(source.width(), source.height(), box_w, box_h, args.fit, focus)
    };

    let mut small = DynamicImage::new(plan.width, plan.height, source.color());
    let options = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Lanczos3)).crop(
        plan.left,
        plan.top,
        plan.crop_width,
        plan.crop_height,
    );
    Resizer::new().resize(source, &mut small, &options).map_err(|e| PipelineError::Encode(e.to_string()))?;
    small.apply_orientation(orientation);
    Ok(small)
}

/// Encodes a finished output, with its ThumbHash when asked.
fn finish(small: DynamicImage, args: &ResizeArgs, thumbhash: bool) -> Result<Thumbnail, PipelineError> {
    let (width, height) = (small.width(), small.height());
    let thumbhash = thumbhash.then(|| placeholder::thumbhash(&small));
    let bytes = encode::encode(small, args)?;
    let info = ImageInfo { format: args.format.name().to_owned(), width, height, bytes: bytes.len() as u64, thumbhash };
    Ok(Thumbnail { bytes, info })
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::ImageFormat;
    use thumbq_common::{
        fixtures::{oriented_jpeg, sample_image, transparent_png},
        task::{Fit, Focus, OutputFormat},
    };
    use turbojpeg::Subsamp;

    fn args(width: u32, height: u32, fit: Fit, format: OutputFormat) -> ResizeArgs {
        ResizeArgs::new(width, height, fit, format)
    }

    fn decoded(thumbnail: &Thumbnail) -> DynamicImage {
        quality::decode(&thumbnail.bytes)
    }

    #[test]
    fn a_displayed_point_maps_back_to_where_the_image_crate_stored_it_in_every_orientation() {
        let (stored_w, stored_h, (sx, sy)) = (40u32, 20u32, (30u32, 5u32));
        for code in 1..=8 {
            let orientation = Orientation::from_exif(code).unwrap();
            let mut image = image::RgbImage::new(stored_w, stored_h);
            image.put_pixel(sx, sy, image::Rgb([255, 255, 255]));
            let mut shown = DynamicImage::ImageRgb8(image);
            shown.apply_orientation(orientation);
            let shown = shown.to_rgb8();
            let (dx, dy, _) = shown.enumerate_pixels().find(|(_, _, p)| p.0[0] == 255).unwrap();
            let fraction = |at: u32, size: u32| (f64::from(at) + 0.5) / f64::from(size);
            let displayed = (fraction(dx, shown.width()), fraction(dy, shown.height()));
            let (x, y) = stored_point(orientation, displayed);
            let expected = (fraction(sx, stored_w), fraction(sy, stored_h));
            assert!(
                (x - expected.0).abs() < 1e-9 && (y - expected.1).abs() < 1e-9,
                "{orientation:?}: {:?} vs {expected:?}",
                (x, y)
            );
        }
    }

    #[test]
    fn a_focused_cover_crop_keeps_an_off_centre_subject_that_the_centred_crop_loses() {
        // A red square near the right edge of a wide white image.
        let image = image::RgbImage::from_fn(800, 200, |x, y| {
            if (660..740).contains(&x) && (60..140).contains(&y) {
                image::Rgb([220, 0, 0])
            } else {
                image::Rgb([255, 255, 255])
            }
        });
        let bytes = thumbq_common::fixtures::encode(&DynamicImage::ImageRgb8(image), ImageFormat::Png);
        let red_share = |focus: Option<Focus>| {
            let args = ResizeArgs { focus, ..args(100, 100, Fit::Cover, OutputFormat::Png) };
            let thumbnail = decoded(&make_thumbnail(&bytes, &args, Limits::pixels(1 << 30)).unwrap()).to_rgb8();
            thumbnail.pixels().filter(|p| p.0[0] > 150 && p.0[1] < 100).count() as f64 / 10_000.0
        };
        assert_eq!(red_share(None), 0.0, "the centred crop misses the subject");
        let focused = red_share(Some(Focus { x: 0.875, y: 0.5 }));
        // The crop is 200×200 source pixels, so the 80-pixel square is 40×40 of the 100×100 thumbnail: 0.16.
        assert!((0.14..0.18).contains(&focused), "the focused crop holds the whole square: {focused}");
    }

    #[test]
    fn every_accepted_format_becomes_a_thumbnail_of_the_requested_size() {
        let formats = [
            ImageFormat::Jpeg,
            ImageFormat::Png,
            ImageFormat::WebP,
            ImageFormat::Gif,
            ImageFormat::Bmp,
            ImageFormat::Tiff,
        ];
        for format in formats {
            let source = sample_image(format, 320, 200);
            for output in OutputFormat::ALL {
                let thumb = make_thumbnail(&source, &args(100, 100, Fit::Cover, output), Limits::pixels(1 << 30))
                    .unwrap_or_else(|e| panic!("{format:?} -> {output:?}: {e}"));
                let image = decoded(&thumb);
                assert_eq!((image.width(), image.height()), (100, 100), "{format:?} -> {output:?}");
                assert_eq!(image::guess_format(&thumb.bytes).unwrap(), output.image_format());
                assert_eq!(
                    (thumb.info.width, thumb.info.height, thumb.info.bytes),
                    (100, 100, thumb.bytes.len() as u64)
                );
            }
        }
    }

    #[test]
    fn renditions_come_from_one_decode_at_the_scale_the_largest_needs() {
        let source = include_bytes!("../../../assets/example.jpg");
        let small = args(100, 100, Fit::Cover, OutputFormat::Png);
        let large = args(600, 400, Fit::Contain, OutputFormat::Png);
        let limits = Limits::pixels(1 << 30);
        let both = make_thumbnails(source, &[small, large], limits).unwrap();
        let (alone_small, alone_large) =
            (make_thumbnail(source, &small, limits).unwrap(), make_thumbnail(source, &large, limits).unwrap());
        // The largest rendition decides the decode's scale, so it is exactly what it is when made alone ...
        assert_eq!(both[1].bytes, alone_large.bytes);
        // ... and the small one, resampled from a larger decode, is at least as good as alone.
        let reference = quality::reference(source, &small);
        let psnr = |t: &Thumbnail| quality::psnr(&reference, &quality::flattened(&t.bytes));
        assert!(psnr(&both[0]) >= psnr(&alone_small) - 0.1, "{} vs {}", psnr(&both[0]), psnr(&alone_small));
        assert_eq!((both[0].info.width, both[1].info.width), (100, 600));
        assert!(both[0].info.thumbhash.is_some() && both[1].info.thumbhash.is_none(), "one placeholder per task");
        // One decode's memory and every output's, not one decode per rendition.
        let peak = estimate_peak(source, &[small, large], 1 << 30).unwrap();
        let peaks =
            estimate_peak(source, &[small], 1 << 30).unwrap() + estimate_peak(source, &[large], 1 << 30).unwrap();
        assert!(peak < peaks, "{peak} vs {peaks}");
    }

    #[test]
    fn an_avif_output_counts_its_encoders_memory() {
        let source = include_bytes!("../../../assets/example.jpg");
        let jpeg = args(1280, 1280, Fit::Contain, OutputFormat::Jpeg);
        let avif = ResizeArgs { format: OutputFormat::Avif, ..jpeg };
        let peak = |args: ResizeArgs| estimate_peak(source, &[args], 1 << 30).unwrap();
        // rav1e took 37 MB more than libjpeg-turbo for this 1280x800 output (peak resident, `make bench` probe).
        assert!(peak(avif) >= peak(jpeg) + (37 << 20), "{} vs {}", peak(avif), peak(jpeg));
    }

    #[test]
    fn fit_modes_give_their_sizes() {
        let source = sample_image(ImageFormat::Png, 400, 100);
        let size = |fit| {
            let image = decoded(
                &make_thumbnail(&source, &args(100, 100, fit, OutputFormat::Png), Limits::pixels(1 << 30)).unwrap(),
            );
            (image.width(), image.height())
        };
        assert_eq!(size(Fit::Cover), (100, 100));
        assert_eq!(size(Fit::Contain), (100, 25));
        assert_eq!(size(Fit::Fill), (100, 100));
    }

    #[test]
    fn transparency_is_kept_in_png_and_flattened_in_jpeg() {
        let source = transparent_png(64, 64);
        let png = decoded(
            &make_thumbnail(&source, &args(32, 32, Fit::Fill, OutputFormat::Png), Limits::pixels(1 << 30)).unwrap(),
        );
        assert!(png.color().has_alpha());
        assert_eq!(png.to_rgba8().get_pixel(2, 16).0[3], 0, "the transparent half stays transparent");
        let jpeg = decoded(
            &make_thumbnail(&source, &args(32, 32, Fit::Fill, OutputFormat::Jpeg), Limits::pixels(1 << 30)).unwrap(),
        );
        let [r, g, b] = jpeg.to_rgb8().get_pixel(2, 16).0;
        assert!(r > 240 && g > 240 && b > 240, "transparent pixels are laid over white, got {r},{g},{b}");
    }

    #[test]
    fn exif_orientation_is_applied_and_the_box_turns_with_it() {
        // Stored 200x100, tagged "rotate 90° clockwise": shown 100x200 with the red half on top.
        let source = oriented_jpeg(200, 100, 6);
        let contain = decoded(
            &make_thumbnail(&source, &args(100, 100, Fit::Contain, OutputFormat::Png), Limits::pixels(1 << 30))
                .unwrap(),
        );
        assert_eq!((contain.width(), contain.height()), (50, 100));
        let [r, _, b] = contain.to_rgb8().get_pixel(25, 10).0;
        assert!(r > 150 && b < 80, "top is red, got {r},{b}");
        let [r, _, b] = contain.to_rgb8().get_pixel(25, 90).0;
        assert!(b > 150 && r < 80, "bottom is blue, got {r},{b}");
        let cover = decoded(
            &make_thumbnail(&source, &args(60, 30, Fit::Cover, OutputFormat::Png), Limits::pixels(1 << 30)).unwrap(),
        );
        assert_eq!((cover.width(), cover.height()), (60, 30), "cover gives the box asked for, in display orientation");
    }

    #[test]
    fn a_truncated_jpeg_is_a_decode_error() {
        let source = sample_image(ImageFormat::Jpeg, 640, 480);
        let truncated = &source[..source.len() / 2];
        let err = make_thumbnail(truncated, &args(100, 100, Fit::Cover, OutputFormat::Png), Limits::pixels(1 << 30))
            .unwrap_err();
        assert!(matches!(err, PipelineError::Decode(_)), "{err}");
    }

    #[test]
    fn an_image_over_the_pixel_limit_is_refused_before_decoding() {
        let source = sample_image(ImageFormat::Png, 100, 100);
        let err =
            make_thumbnail(&source, &args(10, 10, Fit::Cover, OutputFormat::Png), Limits::pixels(9_999)).unwrap_err();
        assert!(matches!(err, PipelineError::Probe(ProbeError::TooLarge { .. })), "{err}");
    }

    #[test]
    fn the_admission_estimate_leaves_libjpeg_turbo_room_to_decode() {
        // The estimate is the decoder's memory cap in the worker: it must never refuse a good file.
        for (width, height, subsamp) in
            [(1999, 1001, Subsamp::None), (1001, 1999, Subsamp::Sub2x2), (1203, 777, Subsamp::Sub2x1)]
        {
            let source = test_images::progressive_jpeg(width, height, subsamp);
            for side in [100, 400, 1000] {
                let args = args(side, side, Fit::Cover, OutputFormat::Jpeg);
                let mib = estimate_peak(&source, std::slice::from_ref(&args), 1 << 30).unwrap().div_ceil(1 << 20);
                let limits = Limits { decoder_memory_mib: u32::try_from(mib).unwrap(), ..Limits::pixels(1 << 30) };
                make_thumbnail(&source, &args, limits)
                    .unwrap_or_else(|e| panic!("{width}x{height} {subsamp:?} for {side}: {mib} MiB: {e}"));
            }
        }
    }
}
