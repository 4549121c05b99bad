//! Limits on what the API accepts (body size, pixels, upload memory, a task's work) and the named presets an
//! upload may ask for.

use super::{
    SettingsError,
    env::{Env, Out},
    var::{Described, Refused, Var},
};
use crate::task::{Fit, RenditionSpec};

static MAX_UPLOAD_BYTES: Var<usize> = Var::positive("THUMBQ_MAX_UPLOAD_BYTES", "26214400", "Larger uploads get `413`");
static MAX_PIXELS: Var<u64> = Var::positive(
    "THUMBQ_MAX_PIXELS",
    "50000000",
    "Images with more pixels (width × height, read from the header) get `422`",
);
static MAX_ANIMATION_PIXELS: Var<u64> = Var::positive(
    "THUMBQ_MAX_ANIMATION_PIXELS",
    "100000000",
    "`animated=true`: an animation whose frames × width × height is larger fails with `too_many_pixels` (its structure is read before any frame is decoded)",
);
static UPLOAD_MEMORY_MB: Var<u32> = Var::positive(
    "THUMBQ_UPLOAD_MEMORY_MB",
    "256",
    "Memory for uploads being read. Uploads stream to the store; each reserves twice its first MiB (the header is probed there), a whole upload only when its header is not in that MiB (TIFF) or the store is S3 (one PUT from memory); waits up to 10 s for room, then `503`",
);
/// Its default is [`DEFAULT_MAX_TASK_WORK_MS`](crate::task::DEFAULT_MAX_TASK_WORK_MS) (a test keeps them equal).
static MAX_TASK_WORK_MS: Var<u64> = Var::positive(
    "THUMBQ_MAX_TASK_WORK_MS",
    "10000",
    "Uploads whose thumbnails would take longer to make (estimated from their sizes, formats and qualities, in ms of one core) get `400`: one 2048x2048 AVIF fits, eight do not ([performance](docs/performance.md#what-a-tasks-work-costs))",
);
/// Unlike other variables, an empty value is a value here: no presets.
pub(super) static PRESETS: Var<Vec<RenditionSpec>> = Var {
    empty_is_value: true,
    ..Var::new(
        "THUMBQ_PRESETS",
        crate::task::DEFAULT_PRESETS,
        "Renditions an upload names with `?preset=`: `name=<width>x<height>[:option]...`, options a fit, a format (`png`, `jpeg`, `webp`, `avif`), `q1`..`q100`, `lossless`, `auto` (attention crop); empty: none",
        |s| crate::task::parse_presets(s).map_err(Refused::new),
        render_presets,
    )
};

/// The variables of this module.
pub(super) static VARS: &[&dyn Described] =
    &[&MAX_UPLOAD_BYTES, &MAX_PIXELS, &MAX_ANIMATION_PIXELS, &UPLOAD_MEMORY_MB, &MAX_TASK_WORK_MS, &PRESETS];

/// Limits on uploads.
#[derive(Clone, Debug, PartialEq)]
pub struct LimitSettings {
    /// `THUMBQ_MAX_UPLOAD_BYTES`, default `26214400` (25 MiB): larger request bodies are answered 413.
    pub max_upload_bytes: usize,
    /// `THUMBQ_MAX_PIXELS`, default `50000000`: images whose width × height is larger are refused (422).
    pub max_pixels: u64,
    /// `THUMBQ_MAX_ANIMATION_PIXELS`, default `100000000`: an animation to be kept (`animated=true`) whose frames ×
    /// width × height is larger fails (`too_many_pixels`) before its first frame is decoded.
    pub max_animation_pixels: u64,
    /// `THUMBQ_UPLOAD_MEMORY_MB`, default `256`: bytes of uploads the API holds at once (a streamed upload holds
    /// its first MiB; one read whole, or kept for an S3 PUT, all of it); an upload waits for room (up to 10 s, then
    /// `503`), so a burst of large uploads cannot exhaust its memory.
    pub upload_memory_mb: u32,
    /// `THUMBQ_MAX_TASK_WORK_MS`, default `10000`: an upload whose thumbnails would take longer to make, in
    /// milliseconds of one core as [`estimate_ms`](crate::task::estimate_ms) estimates them from their sizes,
    /// formats and qualities, is refused (400).
    pub max_task_work_ms: u64,
}

impl LimitSettings {
    pub(super) fn read(env: &Env<'_>) -> Result<Self, SettingsError> {
        Ok(Self {
            max_upload_bytes: env.get(&MAX_UPLOAD_BYTES)?,
            max_pixels: env.get(&MAX_PIXELS)?,
            max_animation_pixels: env.get(&MAX_ANIMATION_PIXELS)?,
            upload_memory_mb: env.get(&UPLOAD_MEMORY_MB)?,
            max_task_work_ms: env.get(&MAX_TASK_WORK_MS)?,
        })
    }

    pub(super) fn write(&self, out: &mut Out) {
        out.put(&MAX_UPLOAD_BYTES, &self.max_upload_bytes);
        out.put(&MAX_PIXELS, &self.max_pixels);
        out.put(&MAX_ANIMATION_PIXELS, &self.max_animation_pixels);
        out.put(&UPLOAD_MEMORY_MB, &self.upload_memory_mb);
        out.put(&MAX_TASK_WORK_MS, &self.max_task_work_ms);
    }
}

/// Presets as `THUMBQ_PRESETS` writes them, which [`parse_presets`](crate::task::parse_presets) reads back as the
/// same.
#[allow(clippy::ptr_arg)] // a renderer takes `&T`, and `T` is the `Vec` the settings hold
fn render_presets(presets: &Vec<RenditionSpec>) -> String {
    let entries = presets.iter().map(|spec| {
        let mut entry = format!("{}={}x{}", spec.name, spec.width, spec.height);
        let fit = spec.fit.map(|fit| match fit {
            Fit::Cover => "cover",
            Fit::Contain => "contain",
            Fit::Fill => "fill",
        });
        let quality = spec.quality.map(|q| format!("q{q}"));
        let options = [fit, spec.format.map(|f| f.name()), quality.as_deref()]
            .into_iter()
            .chain([spec.lossless.then_some("lossless"), spec.auto_focus.then_some("auto")]);
        for option in options.flatten() {
            entry.push(':');
            entry.push_str(option);
        }
        entry
    });
    entries.collect::<Vec<_>>().join(",")
}

#[cfg(test)]
mod tests {
    use crate::Settings;

    #[test]
    fn an_empty_presets_variable_means_no_presets_and_an_unset_one_the_defaults() {
        let presets = |value: Option<&str>| {
            Settings::from_lookup(|var| (var == "THUMBQ_PRESETS").then_some(value).flatten().map(str::to_owned))
                .unwrap()
                .presets
        };
        assert_eq!(presets(Some("")), vec![]);
        assert_eq!(presets(None), crate::task::parse_presets(crate::task::DEFAULT_PRESETS).unwrap());
        assert_eq!(presets(Some("a=10x20:webp")).len(), 1);
    }

    #[test]
    fn the_task_work_default_is_the_one_the_task_module_names() {
        assert_eq!(Settings::default().limits.max_task_work_ms, crate::task::DEFAULT_MAX_TASK_WORK_MS);
    }
}
