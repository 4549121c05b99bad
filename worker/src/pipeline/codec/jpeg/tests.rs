//! The JPEG codec's decode paths: the lighter file at 1/8, the scan limit, broken headers, the memory cap.

use thumbq_common::{image_probe, task::SourceFormat};
use turbojpeg::Subsamp;

use super::*;
use crate::pipeline::test_images::progressive_jpeg;

/// The codec's decode, as the pipeline asks for it.
fn decode(
    bytes: &[u8],
    probe: &Probe,
    reduction: f64,
    memory_mib: u32,
    icc: Option<&[u8]>,
) -> Result<DynamicImage, PipelineError> {
    Jpeg.decode(bytes, probe, Request { reduction, memory_mib, icc })
}

/// libjpeg-turbo's decode of the whole file, with no cap on its memory.
fn whole_file_decode(bytes: &[u8], reduction: f64) -> DynamicImage {
    let limits = DecodeLimits { max_scans: MAX_SCANS, max_memory_mib: 0 };
    turbo::decode_scaled(bytes, jpeg_scale(reduction), limits, None).expect("decodes").expect("YCbCr")
}

fn jpeg_probe(bytes: &[u8]) -> Probe {
    image_probe::probe(bytes, u64::MAX).expect("a readable JPEG header")
}

#[test]
fn a_progressive_jpeg_at_one_eighth_decodes_to_the_same_pixels_without_its_ac_scans() {
    // 1703x1301 at 4:4:4 has 34,793 blocks a component: more than one end-of-band run can cover.
    for (subsamp, width, height) in
        [(Subsamp::None, 1703, 1301), (Subsamp::Sub2x2, 803, 611), (Subsamp::Sub2x1, 803, 611)]
    {
        let jpeg = progressive_jpeg(width, height, subsamp);
        let lighter = layout::read(&jpeg).and_then(|layout| layout.for_one_eighth(&jpeg)).expect("AC scans to drop");
        assert!(lighter.len() * 3 < jpeg.len(), "{subsamp:?}: {} of {} bytes kept", lighter.len(), jpeg.len());

        // The path a progressive JPEG takes when the DC-only decoder declines it (`dc`).
        let fast = whole_file_decode(&lighter, 8.0);
        let whole_file = whole_file_decode(&jpeg, 8.0);
        let expected = (width.div_ceil(8) as u32, height.div_ceil(8) as u32);
        assert_eq!((fast.width(), fast.height()), expected, "{subsamp:?}");
        assert!(fast.as_bytes() == whole_file.as_bytes(), "{subsamp:?}: pixels differ");
    }
}

#[test]
fn a_jpeg_with_too_many_scans_is_refused_and_one_with_a_few_more_is_not() {
    let jpeg = progressive_jpeg(64, 48, Subsamp::Sub2x2);
    let padded = |extra| layout::with_empty_scans(&jpeg, extra).expect("a complete JPEG");
    let image = decode(&padded(20), &jpeg_probe(&padded(20)), 1.0, 0, None).expect("30 scans decode");
    assert_eq!((image.width(), image.height()), (64, 48));
    let err = decode(&padded(MAX_SCANS as usize), &jpeg_probe(&padded(MAX_SCANS as usize)), 1.0, 0, None).unwrap_err();
    assert!(matches!(&err, PipelineError::Decode(message) if message.contains("scan")), "{err}");
}

#[test]
fn a_progressive_jpeg_with_a_broken_frame_header_is_a_decode_error() {
    let mut jpeg = progressive_jpeg(320, 240, Subsamp::Sub2x2);
    let frame = jpeg.windows(2).position(|w| w == [0xFF, 0xC2]).expect("an SOF2 marker");
    jpeg[frame + 11] = 0; // the first component's sampling factors
    // The probe (zune-jpeg) refuses this header too; the decoder must not rely on that.
    let probe = Probe { format: SourceFormat::Jpeg, width: 320, height: 240 };
    let err = decode(&jpeg, &probe, 8.0, 0, None).unwrap_err();
    assert!(matches!(err, PipelineError::Decode(_)), "{err}");
}

#[test]
fn a_progressive_jpeg_above_one_eighth_keeps_its_ac_scans() {
    let jpeg = progressive_jpeg(320, 240, Subsamp::Sub2x2);
    let lighter = layout::read(&jpeg).and_then(|layout| layout.for_one_eighth(&jpeg)).expect("AC scans to drop");
    let image = decode(&jpeg, &jpeg_probe(&jpeg), 4.0, 0, None).expect("decodes");
    let whole_file = whole_file_decode(&jpeg, 4.0);
    let blurred = whole_file_decode(&lighter, 4.0);
    assert_eq!((image.width(), image.height()), (80, 60));
    assert!(image.as_bytes() == whole_file.as_bytes(), "decoded from every scan");
    assert!(image.as_bytes() != blurred.as_bytes(), "at 1/4 the AC coefficients count");
}

#[test]
fn libjpeg_turbo_refuses_a_progressive_jpeg_whose_coefficients_exceed_its_memory_cap() {
    // 2000×1500 at 4:4:4: 18 MB of coefficients, whatever the output scale.
    let jpeg = progressive_jpeg(2000, 1500, Subsamp::None);
    let err = decode(&jpeg, &jpeg_probe(&jpeg), 4.0, 8, None).unwrap_err();
    assert!(matches!(&err, PipelineError::Decode(message) if message.contains("Memory limit")), "{err}");
    let image = decode(&jpeg, &jpeg_probe(&jpeg), 4.0, 24, None).expect("decodes within 24 MiB");
    assert_eq!((image.width(), image.height()), (500, 375));
}
