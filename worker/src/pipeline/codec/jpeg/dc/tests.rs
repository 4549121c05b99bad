//! The DC-only decoder against libjpeg-turbo's own 1/8 decode: pixels, restart intervals, what it declines.

use image::GenericImageView;
use turbojpeg::Subsamp;

use super::*;
use crate::pipeline::{
    codec::jpeg::turbo::{self, DecodeLimits},
    quality::psnr,
    test_images::progressive_jpeg,
};

/// libjpeg-turbo's own 1/8 decode of the whole file.
fn reference(bytes: &[u8]) -> DynamicImage {
    let limits = DecodeLimits { max_scans: 1000, max_memory_mib: 0 };
    turbo::decode_scaled(bytes, turbojpeg::ScalingFactor::ONE_EIGHTH, limits, None).unwrap().unwrap()
}

/// The largest difference of one channel between two images of one size.
fn max_difference(a: &DynamicImage, b: &DynamicImage) -> u8 {
    assert_eq!(a.dimensions(), b.dimensions());
    let (a, b) = (a.to_rgb8(), b.to_rgb8());
    a.as_raw().iter().zip(b.as_raw()).map(|(x, y)| x.abs_diff(*y)).max().unwrap_or(0)
}

#[test]
fn full_resolution_components_come_out_as_libjpeg_turbo_decodes_them() {
    // Odd sizes: partial blocks and MCUs at the right and bottom edges.
    for (subsamp, width, height) in [(Subsamp::None, 1703, 1301), (Subsamp::Gray, 999, 701)] {
        let jpeg = progressive_jpeg(width, height, subsamp);
        let ours = decode(&jpeg).expect("a progressive Huffman JPEG");
        let theirs = reference(&jpeg);
        assert_eq!(ours.color().channel_count(), theirs.color().channel_count(), "{subsamp:?}");
        // Colour conversion in floating point against libjpeg-turbo's fixed point: one level at most.
        assert!(max_difference(&ours, &theirs) <= 1, "{subsamp:?}: {}", max_difference(&ours, &theirs));
    }
}

/// The committed photo (2560×1600), as RGB pixels to compress in each layout.
fn photo() -> RgbImage {
    image::load_from_memory(include_bytes!("../../../../../../assets/example.jpg")).unwrap().to_rgb8()
}

#[test]
fn subsampled_chroma_of_a_photo_stays_close_to_libjpeg_turbos_larger_idct() {
    let photo = photo();
    for subsamp in [Subsamp::Sub2x2, Subsamp::Sub2x1, Subsamp::Sub1x2] {
        let jpeg = turbo::progressive_with_restarts(&photo, subsamp, 0);
        let (ours, theirs) = (decode(&jpeg).expect("decodes").to_rgb8(), reference(&jpeg).to_rgb8());
        let quality = psnr(&ours, &theirs);
        assert!(quality > 38.0, "{subsamp:?}: {quality:.1} dB");
    }
}

#[test]
fn restart_intervals_are_followed_in_interleaved_and_single_component_scans() {
    let photo = photo();
    for (subsamp, interval) in [(Subsamp::None, 1), (Subsamp::None, 7), (Subsamp::Sub2x2, 3)] {
        let jpeg = turbo::progressive_with_restarts(&photo, subsamp, interval);
        assert!(jpeg.windows(2).any(|w| w == [0xFF, 0xD3]), "restart markers were written");
        let (ours, theirs) = (decode(&jpeg).expect("decodes"), reference(&jpeg));
        let quality = psnr(&ours.to_rgb8(), &theirs.to_rgb8());
        assert!(quality > 38.0, "{subsamp:?} every {interval}: {quality:.1} dB");
        if subsamp == Subsamp::None {
            assert!(max_difference(&ours, &theirs) <= 1, "{subsamp:?} every {interval}");
        }
    }
}

#[test]
fn what_is_not_a_progressive_huffman_jpeg_is_left_to_libjpeg_turbo() {
    let baseline = crate::pipeline::test_images::flat_jpeg(64, 64, false, Subsamp::Sub2x2);
    assert!(decode(&baseline).is_none());
    let progressive = progressive_jpeg(64, 64, Subsamp::Sub2x2);
    // Cut inside the entropy-coded data of its first scan, or garbage: no panic, an answer or none.
    for cut in [progressive.len() / 3, 20, 2] {
        let _ = decode(&progressive[..cut]);
    }
    assert!(decode(b"\xFF\xD8\xFF\xC2\x00").is_none());
    // A frame that claims 4000x4000 over the data of 64x64 runs out of data at once: declined, not decoded
    // from zeros.
    let mut claimed = progressive;
    let frame = claimed.windows(2).position(|w| w == [0xFF, 0xC2]).expect("an SOF2 marker");
    claimed[frame + 5..frame + 9].copy_from_slice(&[0x0F, 0xA0, 0x0F, 0xA0]);
    assert!(decode(&claimed).is_none());
}
