//! Colour: images tagged with a wide-gamut ICC profile come out in sRGB, near an independent reference conversion.

use image::ImageFormat;
use thumbq_common::fixtures::WideGamut;

use crate::support::spawn_app;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_display_p3_photo_and_an_adobe_rgb_png_become_srgb_thumbnails() {
    let app = spawn_app().await;
    for (space, format) in [(WideGamut::DisplayP3, ImageFormat::Jpeg), (WideGamut::AdobeRgb, ImageFormat::Png)] {
        let colour = [200, 100, 50];
        let upload = space.tagged_image(format, colour, 320, 240);
        let accepted = app.upload_ok(upload, "width=32&height=24&format=png").await;
        let thumbnail = app.download_image(&accepted.name).await.to_rgb8();
        let got = thumbnail.get_pixel(16, 12).0;
        let expected = space.to_srgb(colour);
        let off = got.iter().zip(expected).map(|(a, b)| a.abs_diff(b)).max().unwrap();
        assert!(off <= 4, "{space:?}: {got:?}, reference {expected:?}");
        assert!(got.iter().zip(colour).any(|(a, b)| a.abs_diff(b) > 8), "{space:?}: the profile was not dropped");
    }
    app.stop().await;
}
