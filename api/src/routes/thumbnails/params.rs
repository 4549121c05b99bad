//! The query parameters of an upload, and the task they ask for: one thumbnail, or renditions, with an optional
//! completion webhook. Every combination that means nothing is a 400 that says why.

use chrono::Utc;
use serde::Deserialize;
use thumbq_common::{
    address_guard::{self as guard, Purpose},
    settings::WebhookSettings,
    task::{
        Fit, Focus, FormatChoice, MAX_RENDITIONS, OutputFormat, RenditionSpec, ResizeArgs, SourceFormat, TaskEnvelope,
        TaskId, check_work,
    },
};
use utoipa::IntoParams;

use crate::error::{ApiError, ErrorCode, in_range};

/// Optional query parameters of an upload.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct UploadParams {
    /// Thumbnail width in pixels, 1..=2048; default 100.
    #[param(minimum = 1, maximum = 2048, example = 100)]
    pub width: Option<u32>,
    /// Thumbnail height in pixels, 1..=2048; default 100.
    #[param(minimum = 1, maximum = 2048, example = 100)]
    pub height: Option<u32>,
    /// `cover` (default: scale and centre-crop to exactly width×height), `contain` (fit inside, keep the aspect
    /// ratio) or `fill` (stretch to exactly width×height).
    #[param(inline)]
    pub fit: Option<Fit>,
    /// `png`, `jpeg`, `webp`, `avif` or `gif`; or `auto`: AVIF, WebP and a fallback (JPEG, or PNG where the
    /// source may have transparency) from one decode, the thumbnail's URL serving the best the client's `Accept`
    /// allows and each variant having its own. Default: the source's format when it is JPEG, PNG, WebP or AVIF,
    /// `jpeg` for HEIC and video posters, else `png`; with `animated=true`, `gif` for a GIF and `webp` otherwise.
    #[param(inline)]
    pub format: Option<FormatChoice>,
    /// Quality of a lossy output, 1..=100: JPEG (default 85) and lossy WebP (default 80). PNG and lossless WebP
    /// have no quality: giving one is a 400.
    #[param(minimum = 1, maximum = 100, example = 80)]
    pub quality: Option<u8>,
    /// WebP only: `true` for lossless WebP (larger: for graphics and screenshots); default `false`, lossy.
    pub lossless: Option<bool>,
    /// `true`: when an earlier successful task of the same API key had the same original (SHA-256) and the same
    /// parameters, its thumbnails are copied as this task's (done at once, `SUCCESS` in the `202`, the record's
    /// `deduplicated_from` naming it) instead of decoding again. Default: `THUMBQ_DEDUPE`. Not with `callback_url`.
    pub dedupe: Option<bool>,
    /// `true`: an animated GIF, WebP or AVIF keeps its frames, delays and loop count, as animated WebP or GIF (the only
    /// formats it may be asked in; renditions in other formats get the first frame); a still source gives a still
    /// image. Default `false`: the first frame. Bounded by `THUMBQ_MAX_ANIMATION_PIXELS` (frames × pixels).
    pub animated: Option<bool>,
    /// Renditions by preset name, comma-separated (`THUMBQ_PRESETS`; by default `thumb` 160x160 cover, `small`
    /// 320x320, `medium` 640x640 and `large` 1280x1280 contain): one task makes them all from one decode, each its
    /// own file `<uuid>-<name>.<ext>`. The upload's `fit`, `format`, `quality`, `lossless` and `focus` fill in
    /// what a preset leaves open (`quality` for lossy renditions, `focus` for cover ones); `width` and `height`
    /// are refused.
    #[param(example = "small,large")]
    pub preset: Option<String>,
    /// Ad-hoc renditions, `<width>x<height>` comma-separated, each named by its size; may join `preset`, at most 8
    /// renditions in all.
    #[param(pattern = r"^[0-9]+x[0-9]+(,[0-9]+x[0-9]+)*$", example = "100x100,640x480")]
    pub sizes: Option<String>,
    /// `cover` only: `x,y`, the point the crop is centred on (as near as the edges allow), in fractions of the
    /// image's width and height as displayed, e.g. `0.8,0.3`; or `auto`: where an attention measure (detail,
    /// saturated colour, skin tones) finds the subject. Default: the centre.
    #[param(pattern = r"^(auto|[01]?(\.[0-9]+)?,[01]?(\.[0-9]+)?)$", example = "0.8,0.3")]
    pub focus: Option<String>,
    /// `false`: the original is deleted as soon as the task succeeds; default: kept (`THUMBQ_KEEP_ORIGINALS`), so
    /// that `POST /tasks/{id}/renditions` can make more thumbnails from it until the task's record expires.
    pub keep_original: Option<bool>,
    /// An http(s) URL the task's record is POSTed to when it ends (SUCCESS, FAILURE or REVOKED), signed in the
    /// `Thumbq-Signature` header (`t=…,v1=…`: HMAC-SHA256 of `<t>.<body>` with the service's webhook secret), with
    /// `<task id>:<event>:<replays>` as `Idempotency-Key`. Retried with backoff; never to loopback, private, link-local or metadata
    /// addresses, nor any other special-purpose range of the IANA registries, unless the service allows them. Needs
    /// `THUMBQ_WEBHOOK_SECRET` on the service.
    #[param(example = "https://hooks.example.com/thumbq", max_length = 2048)]
    pub callback_url: Option<String>,
}

/// The options of one output before they are checked: what the request or a preset asked for.
struct Asked {
    width: u32,
    height: u32,
    fit: Fit,
    format: OutputFormat,
    quality: Option<u8>,
    lossless: bool,
    focus: Option<Focus>,
    auto_focus: bool,
    animated: bool,
    auto: bool,
}

impl Asked {
    /// The checked arguments, or what makes no sense.
    fn check(self) -> Result<ResizeArgs, ApiError> {
        let Self { width, height, fit, format, quality, lossless, focus, auto_focus, animated, auto } = self;
        if auto && (animated || lossless) {
            return Err(ApiError::BadRequest(
                ErrorCode::InvalidParameter,
                "format=auto makes lossy still images (AVIF, WebP, and JPEG or PNG): animated and lossless need \
                 format=webp"
                    .into(),
            ));
        }
        if animated && !format.can_animate() {
            return Err(ApiError::BadRequest(
                ErrorCode::InvalidParameter,
                format!("animated output is made as webp or gif, not {}", format.name()),
            ));
        }
        if lossless && format != OutputFormat::Webp {
            return Err(ApiError::BadRequest(
                ErrorCode::InvalidParameter,
                format!("lossless applies to webp only, not to {}", format.name()),
            ));
        }
        let quality = quality.map(|q| in_range("quality", q, 1..=100)).transpose()?;
        // With `format=auto` a quality is for the AVIF and WebP variants even where the fallback is PNG.
        if quality.is_some() && ((!format.is_lossy() && !auto) || lossless) {
            return Err(ApiError::BadRequest(
                ErrorCode::InvalidParameter,
                "quality applies to lossy outputs only: jpeg, avif, or webp without lossless".into(),
            ));
        }
        if (focus.is_some() || auto_focus) && fit != Fit::Cover {
            return Err(ApiError::BadRequest(ErrorCode::InvalidParameter, "focus applies to fit=cover only".into()));
        }
        let width = in_range("width", width, 1..=ResizeArgs::MAX_SIDE)?;
        let height = in_range("height", height, 1..=ResizeArgs::MAX_SIDE)?;
        let args = ResizeArgs::new(width, height, fit, format);
        Ok(ResizeArgs { quality, lossless, focus, auto_focus, animated, auto, ..args })
    }
}

impl UploadParams {
    /// The task these parameters ask for, on an image whose format the probe read as `source`: one thumbnail, or
    /// with `preset`/`sizes` one rendition each; refused when making it (every `format=auto` variant included) is
    /// estimated to cost over `max_work_ms` (`THUMBQ_MAX_TASK_WORK_MS`).
    pub fn envelope(
        &self,
        source: Source,
        presets: &[RenditionSpec],
        max_work_ms: u64,
    ) -> Result<TaskEnvelope, ApiError> {
        let (id, now) = (TaskId::new(), Utc::now());
        let work = |outputs: &mut dyn Iterator<Item = &ResizeArgs>| {
            let variants: Vec<ResizeArgs> = outputs.flat_map(ResizeArgs::variants).collect();
            check_work(&variants, max_work_ms).map_err(|e| ApiError::BadRequest(ErrorCode::TooMuchWork, e.to_string()))
        };
        let specs = self.renditions(presets)?;
        if specs.is_empty() {
            let args = self.args(source)?;
            work(&mut std::iter::once(&args))?;
            return Ok(TaskEnvelope::new(id, args, now));
        }
        if self.width.is_some() || self.height.is_some() {
            return Err(ApiError::BadRequest(
                ErrorCode::InvalidParameter,
                "width and height size the single thumbnail: with preset or sizes, the sizes come from those".into(),
            ));
        }
        let renditions = specs
            .iter()
            .map(|spec| {
                let args = self.rendition_args(spec, source).map_err(|e| match e {
                    ApiError::BadRequest(code, reason) => {
                        ApiError::BadRequest(code, format!("rendition {}: {reason}", spec.name))
                    }
                    other => other,
                })?;
                Ok((spec.name.clone(), args))
            })
            .collect::<Result<Vec<_>, ApiError>>()?;
        // The upload's own options fill in where they mean something; one that fits no rendition is a mistake.
        let unused = |what: &str| {
            ApiError::BadRequest(
                ErrorCode::InvalidParameter,
                format!("{what} applies to none of the renditions asked for"),
            )
        };
        // One rule for every option (stumbling block 4 of issue 24): it is used by a rendition that leaves it open
        // and where it means something; a preset that fixes an option (`card=…:png:q70`) leaves it closed.
        let used = |test: fn(&ResizeArgs) -> bool| renditions.iter().any(|(_, args)| test(args));
        let open = |fixed: fn(&RenditionSpec) -> bool| specs.iter().any(|spec| !fixed(spec));
        if self.format.is_some() && !open(|s| s.format.is_some()) {
            return Err(unused("format (each fixes its own)"));
        }
        if self.fit.is_some() && !open(|s| s.fit.is_some()) {
            return Err(unused("fit (each fixes its own)"));
        }
        let lossy_and_open = specs
            .iter()
            .zip(&renditions)
            .any(|(spec, (_, a))| spec.quality.is_none() && (a.format.is_lossy() || a.auto) && !a.lossless);
        if self.quality.is_some() && !lossy_and_open {
            return Err(unused("quality"));
        }
        if self.focus.is_some() && !used(|a| a.fit == Fit::Cover) {
            return Err(unused("focus"));
        }
        if self.lossless == Some(true) && !used(|a| a.lossless) {
            return Err(unused("lossless"));
        }
        if self.animated == Some(true) && !used(|a| a.animated) {
            return Err(unused("animated (it needs a webp or gif rendition)"));
        }
        work(&mut renditions.iter().map(|(_, args)| args))?;
        Ok(TaskEnvelope::with_renditions(id, renditions, now))
    }

    /// The presets and sizes asked for, in the order given; names unique, [`MAX_RENDITIONS`] at most.
    fn renditions(&self, presets: &[RenditionSpec]) -> Result<Vec<RenditionSpec>, ApiError> {
        let list = |text: &Option<String>| -> Vec<String> {
            text.as_deref().map(|t| t.split(',').map(str::trim).map(str::to_owned).collect()).unwrap_or_default()
        };
        let mut specs: Vec<RenditionSpec> = Vec::new();
        for name in list(&self.preset) {
            let preset = presets.iter().find(|p| p.name.as_str() == name).ok_or_else(|| {
                let known: Vec<&str> = presets.iter().map(|p| p.name.as_str()).collect();
                ApiError::BadRequest(
                    ErrorCode::UnknownPreset,
                    format!("no preset named {name:?}; this service has: {}", known.join(", ")),
                )
            })?;
            specs.push(preset.clone());
        }
        for size in list(&self.sizes) {
            specs.push(RenditionSpec::size(&size).map_err(|e| ApiError::BadRequest(ErrorCode::InvalidParameter, e))?);
        }
        if specs.len() > MAX_RENDITIONS {
            return Err(ApiError::BadRequest(
                ErrorCode::TooManyRenditions,
                format!("at most {MAX_RENDITIONS} renditions per upload"),
            ));
        }
        // Sizes are named in their canonical spelling (`01x1` is `1x1`), so comparing names compares sizes.
        if let Some(twice) = specs.iter().enumerate().find(|(i, s)| specs[..*i].iter().any(|o| o.name == s.name)) {
            return Err(ApiError::BadRequest(
                ErrorCode::DuplicateRendition,
                format!("rendition {} is asked for twice", twice.1.name),
            ));
        }
        Ok(specs)
    }

    /// The checked `callback_url`, if any: refused when webhooks cannot be signed or the target is not allowed.
    pub fn callback_url(&self, webhooks: &WebhookSettings) -> Result<Option<String>, ApiError> {
        let Some(url) = &self.callback_url else { return Ok(None) };
        if webhooks.secret.is_none() {
            return Err(ApiError::BadRequest(
                ErrorCode::WebhooksDisabled,
                "this service sends no webhooks: callback_url needs THUMBQ_WEBHOOK_SECRET on the server".into(),
            ));
        }
        let url = guard::check_url(url, webhooks.allow_private, Purpose::Webhook)
            .map_err(|e| ApiError::BadRequest(ErrorCode::CallbackUrlRefused, e.to_string()))?;
        Ok(Some(url.to_string()))
    }

    /// The format an output is made in when no preset fixes one: the one asked for, `format=auto`'s fallback, or
    /// the default.
    fn format(&self, source: Source) -> OutputFormat {
        match self.format {
            Some(FormatChoice::Auto) => FormatChoice::auto_fallback(source.may_have_alpha),
            Some(choice) => choice.fixed().unwrap_or(OutputFormat::Jpeg),
            None if self.animated == Some(true) => OutputFormat::default_animated_for(source.format),
            None => OutputFormat::default_for(source.format),
        }
    }

    /// The options of a single thumbnail.
    fn args(&self, source: Source) -> Result<ResizeArgs, ApiError> {
        let auto_focus = self.focus.as_deref() == Some("auto");
        Asked {
            width: self.width.unwrap_or(100),
            height: self.height.unwrap_or(100),
            fit: self.fit.unwrap_or_default(),
            format: self.format(source),
            quality: self.quality,
            lossless: self.lossless.unwrap_or(false),
            focus: self.focus.as_deref().filter(|_| !auto_focus).map(parse_focus).transpose()?,
            auto_focus,
            animated: self.animated.unwrap_or(false),
            auto: self.format == Some(FormatChoice::Auto),
        }
        .check()
    }

    /// The options of one rendition: the preset's own, then the upload's where they mean something.
    fn rendition_args(&self, spec: &RenditionSpec, source: Source) -> Result<ResizeArgs, ApiError> {
        let fit = spec.fit.or(self.fit).unwrap_or_default();
        let format = spec.format.unwrap_or_else(|| self.format(source));
        // A preset that fixes its format (`card=…:jpeg`) is made in that one.
        let auto = spec.format.is_none() && self.format == Some(FormatChoice::Auto);
        let lossless = spec.lossless || (self.lossless == Some(true) && format == OutputFormat::Webp);
        let lossy = (format.is_lossy() || auto) && !lossless;
        let cover = fit == Fit::Cover;
        let auto_focus = cover && (spec.auto_focus || self.focus.as_deref() == Some("auto"));
        let focus = self.focus.as_deref().filter(|f| cover && !auto_focus && *f != "auto").map(parse_focus);
        Asked {
            width: spec.width,
            height: spec.height,
            fit,
            format,
            quality: spec.quality.or(self.quality.filter(|_| lossy)),
            lossless,
            focus: focus.transpose()?,
            auto_focus,
            // A rendition whose preset fixes a still format (`card=…:jpeg`) gets the first frame.
            animated: self.animated == Some(true) && format.can_animate(),
            auto,
        }
        .check()
    }
}

/// What the API knows of the upload from its header: what the defaults and `format=auto`'s fallback depend on.
#[derive(Clone, Copy, Debug)]
pub struct Source {
    /// Its format.
    pub format: SourceFormat,
    /// Whether it may have transparency (`format=auto` then falls back to PNG, not JPEG).
    pub may_have_alpha: bool,
}

/// `x,y` with each in 0..=1.
fn parse_focus(text: &str) -> Result<Focus, ApiError> {
    let invalid = || {
        ApiError::BadRequest(
            ErrorCode::InvalidParameter,
            format!("focus must be auto, or x,y with each between 0 and 1, got {text:?}"),
        )
    };
    let (x, y) = text.split_once(',').ok_or_else(invalid)?;
    let fraction = |v: &str| v.trim().parse::<f32>().ok().filter(|v| (0.0..=1.0).contains(v)).ok_or_else(invalid);
    Ok(Focus { x: fraction(x)?, y: fraction(y)? })
}
