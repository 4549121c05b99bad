//! The video codec, on clips FFmpeg makes from colour sources: the poster is the keyframe after the first second
//! (or a short clip's first frame), turned and sized as the file says, and a file that is not the video it claims
//! (a playlist, a concat list) reaches nothing.

use std::{io::ErrorKind, net::TcpListener};

use thumbq_common::{
    fixtures::ffmpeg_video,
    image_probe::{self, Probe},
};

use super::*;

/// Red for a second, then blue for two, 160x120, a keyframe every 5 frames at 25 per second.
fn red_then_blue(extension: &str, codec: &[&str], extra: &[&str]) -> Vec<u8> {
    let mut args = vec!["-f", "lavfi", "-i", "color=c=red:s=160x120:d=1:r=25", "-f", "lavfi"];
    args.extend(["-i", "color=c=blue:s=160x120:d=2:r=25", "-filter_complex", "[0][1]concat=n=2:v=1,format=yuv420p"]);
    args.extend(codec);
    args.extend(["-g", "5"]);
    args.extend(extra);
    ffmpeg_video(extension, &args)
}

/// `mp4` shown turned a quarter: FFmpeg 5.1 writes no rotation, so its video track header's display matrix becomes
/// that of a quarter turn (in place; the box keeps its size).
fn turned_a_quarter(mut mp4: Vec<u8>) -> Vec<u8> {
    let tkhd = mp4.windows(4).position(|w| w == b"tkhd").expect("a track header") + 4;
    let matrix = tkhd + if mp4[tkhd] == 1 { 52 } else { 40 };
    for (i, value) in [0u32, 1 << 16, 0, 0xFFFF_0000, 0].into_iter().enumerate() {
        mp4[matrix + i * 4..matrix + i * 4 + 4].copy_from_slice(&value.to_be_bytes());
    }
    mp4
}

fn poster(bytes: &[u8], reduction: f64) -> Result<image::RgbImage, PipelineError> {
    let probe = Video.refine(bytes, image_probe::probe(bytes, u64::MAX).expect("a video"))?;
    let request = Request { reduction, memory_mib: 0, icc: None };
    Video.decode(bytes, &probe, request).map(DynamicImage::into_rgb8)
}

fn is_blue(pixel: &image::Rgb<u8>) -> bool {
    pixel[2] > 200 && pixel[0] < 60
}

#[test]
fn the_poster_is_the_keyframe_after_the_first_second() {
    for (extension, codec) in [("mp4", ["-c:v", "libx264"]), ("webm", ["-c:v", "libvpx"])] {
        let video = red_then_blue(extension, &codec, &[]);
        let probe = image_probe::probe(&video, u64::MAX).unwrap();
        let refined = Video.refine(&video, probe).unwrap();
        assert_eq!((refined.width, refined.height), (160, 120), "{extension}");
        let frame = poster(&video, 2.0).unwrap();
        assert_eq!(frame.dimensions(), (80, 60), "{extension}: scaled by FFmpeg");
        assert!(is_blue(frame.get_pixel(40, 30)), "{extension}: {:?}", frame.get_pixel(40, 30));
    }
}

#[test]
fn a_short_clip_gives_its_first_frame_and_a_turned_one_is_turned() {
    let short = ffmpeg_video(
        "mp4",
        &["-f", "lavfi", "-i", "color=c=red:s=64x48:d=0.4", "-c:v", "libx264", "-pix_fmt", "yuv420p"],
    );
    let frame = poster(&short, 1.0).unwrap();
    assert!(frame.get_pixel(32, 24)[0] > 200, "{:?}", frame.get_pixel(32, 24));

    let turned = turned_a_quarter(red_then_blue("mp4", &["-c:v", "libx264"], &[]));
    let refined = Video.refine(&turned, image_probe::probe(&turned, u64::MAX).unwrap()).unwrap();
    assert_eq!((refined.width, refined.height), (120, 160));
    assert_eq!(poster(&turned, 1.0).unwrap().dimensions(), (120, 160));
}

#[test]
fn playlists_and_concat_lists_reach_nothing() {
    let folder = tempfile::tempdir().unwrap();
    let real = folder.path().join("real.mp4");
    std::fs::write(&real, red_then_blue("mp4", &["-c:v", "libx264"], &[])).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let address = listener.local_addr().unwrap();
    // Each dressed as an MP4 (an `ftyp` box first), so it passes the sniff and reaches FFmpeg.
    let ftyp = b"\0\0\0\x14ftypisom\0\0\0\0isom".to_vec();
    let bodies = [
        format!("#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2,\nhttp://{address}/segment.ts\n#EXT-X-ENDLIST\n"),
        format!("#EXTM3U\n#EXTINF:2,\n{}\n#EXT-X-ENDLIST\n", real.display()),
        format!("ffconcat version 1.0\nfile '{}'\n", real.display()),
    ];
    for body in bodies {
        let upload = [&ftyp[..], body.as_bytes()].concat();
        let probe = Probe { format: SourceFormat::Mp4, width: 160, height: 120 };
        assert!(Video.refine(&upload, probe).is_err(), "{body}");
        let request = Request { reduction: 1.0, memory_mib: 0, icc: None };
        assert!(Video.decode(&upload, &probe, request).is_err(), "a frame from {body}");
        let as_webm = Probe { format: SourceFormat::Webm, ..probe };
        assert!(Video.decode(body.as_bytes(), &as_webm, request).is_err(), "a frame from {body} as Matroska");
    }
    match listener.accept() {
        Err(e) if e.kind() == ErrorKind::WouldBlock => {}
        other => panic!("the loopback server was asked: {other:?}"),
    }
}
