//! Step 1, probe: what the source is (format and size, from `thumbq_common::image_probe`, which refuses an image
//! over the pixel limit before any pixel is allocated), which codec decodes it, and what its header says
//! (orientation, ICC profile).

use image::DynamicImage;
use thumbq_common::image_probe::{self, Probe};

use super::{
    PipelineError,
    codec::{self, Codec, Header, Request},
};

/// An encoded source image, probed, with its codec and header.
pub struct Source<'a> {
    /// The encoded image.
    pub bytes: &'a [u8],
    /// Its format and size.
    pub probe: Probe,
    /// What decodes it.
    pub codec: &'static dyn Codec,
    /// Its orientation and ICC profile.
    pub header: Header,
}

impl<'a> Source<'a> {
    /// Probes `bytes`, refusing images over `max_pixels`, and reads their header.
    pub fn read(bytes: &'a [u8], max_pixels: u64) -> Result<Self, PipelineError> {
        Self::new(bytes, image_probe::probe(bytes, max_pixels)?)
    }

    /// The image `probe` found in `bytes`, its size made exact and its header read by its codec (a decoder: a panic
    /// there is the caller's to catch, as with the decode itself).
    pub fn new(bytes: &'a [u8], probe: Probe) -> Result<Self, PipelineError> {
        let codec = codec::for_format(probe.format);
        let probe = codec.refine(bytes, probe)?;
        let header = codec.header(bytes, probe.format);
        Ok(Self { bytes, probe, codec, header })
    }

    /// Decodes it as `request` asks, with its codec.
    pub fn decode(&self, request: Request<'_>) -> Result<DynamicImage, PipelineError> {
        self.codec.decode(self.bytes, &self.probe, request)
    }
}
