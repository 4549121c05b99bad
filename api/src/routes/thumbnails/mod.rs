//! `POST /thumbnails` (upload and queue, here), `GET /thumbnails/{name}` (download, status, long poll: `download`)
//! and `DELETE /thumbnails/{name}` (erasure: `delete`).

pub mod delete;
pub mod download;

use axum::{
    Json, Router,
    extract::State,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use chrono::Utc;
use serde::{Deserialize, Serialize};
use thumbq_common::{
    access::Scope,
    image_probe,
    task::{
        Fit, Focus, MAX_RENDITIONS, OutputFormat, Rendition, RenditionSpec, ResizeArgs, SourceFormat, TaskEnvelope,
        TaskId, TaskRecord, TaskStatus, ThumbnailName,
    },
};
use tracing::{Instrument, info, info_span, warn};
use utoipa::{IntoParams, ToSchema};

use crate::{
    access::Caller,
    error::{ApiError, ErrorBody, in_range, store_unavailable},
    extract::Query,
    state::AppState,
    upload::Upload,
};

/// Longest long poll in seconds.
pub const MAX_WAIT_SECS: u64 = 30;
/// Thumbnails never change once made: caches may keep them for a year.
pub const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// The routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/thumbnails", post(create_thumbnail))
        .route("/thumbnails/{name}", get(download::get_thumbnail).delete(delete::delete_thumbnail))
}

/// A thumbnail name from a path, or the `400` that says what one looks like.
pub fn parse_name(name: &str) -> Result<ThumbnailName, ApiError> {
    name.parse().map_err(|()| {
        ApiError::BadRequest("not a thumbnail name: expected <uuid>.<png|jpg|webp> or <uuid>-<rendition>.<ext>".into())
    })
}

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
    /// `png`, `jpeg` or `webp`; default: the source's format when it is one of those, else `png`.
    #[param(inline)]
    pub format: Option<OutputFormat>,
    /// Quality of a lossy output, 1..=100: JPEG (default 85) and lossy WebP (default 80). PNG and lossless WebP
    /// have no quality: giving one is a 400.
    #[param(minimum = 1, maximum = 100, example = 80)]
    pub quality: Option<u8>,
    /// WebP only: `true` for lossless WebP (larger: for graphics and screenshots); default `false`, lossy.
    pub lossless: Option<bool>,
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
}

impl Asked {
    /// The checked arguments, or what makes no sense.
    fn check(self) -> Result<ResizeArgs, ApiError> {
        let Self { width, height, fit, format, quality, lossless, focus, auto_focus } = self;
        if lossless && format != OutputFormat::Webp {
            return Err(ApiError::BadRequest(format!("lossless applies to webp only, not to {}", format.name())));
        }
        let quality = quality.map(|q| in_range("quality", q, 1..=100)).transpose()?;
        if quality.is_some() && (format == OutputFormat::Png || lossless) {
            return Err(ApiError::BadRequest(
                "quality applies to lossy outputs only: jpeg, or webp without lossless".into(),
            ));
        }
        if (focus.is_some() || auto_focus) && fit != Fit::Cover {
            return Err(ApiError::BadRequest("focus applies to fit=cover only".into()));
        }
        let width = in_range("width", width, 1..=ResizeArgs::MAX_SIDE)?;
        let height = in_range("height", height, 1..=ResizeArgs::MAX_SIDE)?;
        Ok(ResizeArgs { quality, lossless, focus, auto_focus, ..ResizeArgs::new(width, height, fit, format) })
    }
}

impl UploadParams {
    /// The task these parameters ask for, on an image whose format the probe read as `source`: one thumbnail, or
    /// with `preset`/`sizes` one rendition each.
    fn envelope(&self, source: SourceFormat, presets: &[RenditionSpec]) -> Result<TaskEnvelope, ApiError> {
        let (id, now) = (TaskId::new(), Utc::now());
        let specs = self.renditions(presets)?;
        if specs.is_empty() {
            return Ok(TaskEnvelope::new(id, self.args(source)?, now));
        }
        if self.width.is_some() || self.height.is_some() {
            return Err(ApiError::BadRequest(
                "width and height size the single thumbnail: with preset or sizes, the sizes come from those".into(),
            ));
        }
        let renditions = specs
            .iter()
            .map(|spec| {
                let args = self.rendition_args(spec, source).map_err(|e| match e {
                    ApiError::BadRequest(reason) => ApiError::BadRequest(format!("rendition {}: {reason}", spec.name)),
                    other => other,
                })?;
                Ok((spec.name.clone(), args))
            })
            .collect::<Result<Vec<_>, ApiError>>()?;
        // The upload's own options fill in where they mean something; one that fits no rendition is a mistake.
        let unused = |what: &str| ApiError::BadRequest(format!("{what} applies to none of the renditions asked for"));
        let used = |test: fn(&ResizeArgs) -> bool| renditions.iter().any(|(_, args)| test(args));
        if self.quality.is_some() && !used(|a| a.format != OutputFormat::Png && !a.lossless) {
            return Err(unused("quality"));
        }
        if self.focus.is_some() && !used(|a| a.fit == Fit::Cover) {
            return Err(unused("focus"));
        }
        if self.lossless == Some(true) && !used(|a| a.lossless) {
            return Err(unused("lossless"));
        }
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
                ApiError::BadRequest(format!("no preset named {name:?}; this service has: {}", known.join(", ")))
            })?;
            specs.push(preset.clone());
        }
        for size in list(&self.sizes) {
            specs.push(RenditionSpec::size(&size).map_err(ApiError::BadRequest)?);
        }
        if specs.len() > MAX_RENDITIONS {
            return Err(ApiError::BadRequest(format!("at most {MAX_RENDITIONS} renditions per upload")));
        }
        if let Some(twice) = specs.iter().enumerate().find(|(i, s)| specs[..*i].iter().any(|o| o.name == s.name)) {
            return Err(ApiError::BadRequest(format!("rendition {} is asked for twice", twice.1.name)));
        }
        Ok(specs)
    }

    /// The options of a single thumbnail.
    fn args(&self, source: SourceFormat) -> Result<ResizeArgs, ApiError> {
        let auto_focus = self.focus.as_deref() == Some("auto");
        Asked {
            width: self.width.unwrap_or(100),
            height: self.height.unwrap_or(100),
            fit: self.fit.unwrap_or_default(),
            format: self.format.unwrap_or_else(|| OutputFormat::default_for(source)),
            quality: self.quality,
            lossless: self.lossless.unwrap_or(false),
            focus: self.focus.as_deref().filter(|_| !auto_focus).map(parse_focus).transpose()?,
            auto_focus,
        }
        .check()
    }

    /// The options of one rendition: the preset's own, then the upload's where they mean something.
    fn rendition_args(&self, spec: &RenditionSpec, source: SourceFormat) -> Result<ResizeArgs, ApiError> {
        let fit = spec.fit.or(self.fit).unwrap_or_default();
        let format = spec.format.or(self.format).unwrap_or_else(|| OutputFormat::default_for(source));
        let lossless = spec.lossless || (self.lossless == Some(true) && format == OutputFormat::Webp);
        let lossy = format != OutputFormat::Png && !lossless;
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
        }
        .check()
    }
}

/// `x,y` with each in 0..=1.
fn parse_focus(text: &str) -> Result<Focus, ApiError> {
    let invalid =
        || ApiError::BadRequest(format!("focus must be auto, or x,y with each between 0 and 1, got {text:?}"));
    let (x, y) = text.split_once(',').ok_or_else(invalid)?;
    let fraction = |v: &str| v.trim().parse::<f32>().ok().filter(|v| (0.0..=1.0).contains(v)).ok_or_else(invalid);
    Ok(Focus { x: fraction(x)?, y: fraction(y)? })
}

/// The multipart form of an upload (documentation only; the extractor is [`Upload`]).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct UploadForm {
    /// The image file: JPEG, PNG, WebP, GIF (first frame), BMP or TIFF. The format is read from the bytes.
    #[schema(format = Binary, value_type = String, min_length = 1)]
    image: Vec<u8>,
}

/// Image bytes in a request or response body (documentation only).
#[derive(ToSchema)]
#[schema(value_type = String, format = Binary)]
#[allow(dead_code)]
pub struct ImageBytes(Vec<u8>);

/// The answer to an accepted upload.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Accepted {
    /// The task's id.
    pub id: TaskId,
    /// The thumbnail's name, `<uuid>.<ext>`.
    #[schema(example = "6f1c1c9e-2f4b-4f7e-9d43-3c2a4f0e8b11.jpg")]
    pub name: String,
    /// Always `PENDING`.
    pub status: TaskStatus,
    /// Absolute URL of the thumbnail: poll it, or long-poll it with `&wait=30` (`?wait=30` when it is not signed).
    /// With signed URLs on it carries `expires` and `sig`.
    #[schema(example = "http://127.0.0.1:8000/thumbnails/6f1c1c9e-2f4b-4f7e-9d43-3c2a4f0e8b11.jpg")]
    pub url: String,
    /// Absolute URL of the task's record.
    #[schema(example = "http://127.0.0.1:8000/tasks/6f1c1c9e-2f4b-4f7e-9d43-3c2a4f0e8b11")]
    pub status_url: String,
    /// With `preset` or `sizes`: each rendition with its file's name and URL (`name` and `url` above are the
    /// first rendition's).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub renditions: Vec<Rendition>,
}

/// Upload an image and queue its thumbnail.
///
/// Answers `202` once the original is stored, the task is recorded as PENDING and RabbitMQ has confirmed the
/// persistent task message; if any of those fails, `503` with nothing left behind.
#[utoipa::path(
    post,
    path = "/thumbnails",
    tag = "thumbnails",
    security(("api_key" = ["upload"])),
    params(UploadParams),
    request_body(
        description = "The image, as multipart field `image` or as the raw body with an image/* content type.",
        content(
            (UploadForm = "multipart/form-data"),
            (ImageBytes = "image/*"),
        ),
    ),
    responses(
        (status = 202, description = "Accepted and queued", body = Accepted,
            headers(("Location" = String, description = "Path of the thumbnail, `/thumbnails/{name}`"))),
        (status = 400, description = "Missing `image` field, empty upload or bad parameter", body = ErrorBody,
            example = json!({"error": "missing multipart field `image` (found field(s) file)"})),
        (status = 413, description = "Upload over the size limit (answered from `Content-Length` alone when it says so)",
            body = ErrorBody, example = json!({"error": "the upload is larger than the limit of 26214400 bytes"})),
        (status = 415, description = "Not an image, or an unsupported format", body = ErrorBody,
            example = json!({"error": "the upload is not an image (its first bytes match no known image format)"})),
        (status = 422, description = "Unreadable header, or more pixels than the limit", body = ErrorBody,
            example = json!({"error": "the image is 100000x100000 pixels, over the limit of 50000000 pixels"})),
        (status = 503, description = "RabbitMQ, Redis or the file store is unavailable, the work queue is full \
            (`THUMBQ_MAX_QUEUE_DEPTH`), or too many uploads are being read (`THUMBQ_UPLOAD_MEMORY_MB`); nothing is kept; \
            retry after `Retry-After`", body = ErrorBody,
            headers(("Retry-After" = u32, description = "Seconds to wait")),
            example = json!({"error": "rabbitmq is unavailable; try again shortly"})),
    )
)]
pub async fn create_thumbnail(
    State(state): State<AppState>,
    caller: Caller,
    Query(params): Query<UploadParams>,
    Upload { bytes, reservation }: Upload,
) -> Result<Response, ApiError> {
    caller.require(Scope::Upload)?;
    let quota = caller.quota_bytes;
    // Header parsing inflates compressed metadata: CPU work, kept off the async executor.
    let (header, max_pixels) = (bytes.clone(), state.settings.limits.max_pixels);
    let probe = tokio::task::spawn_blocking(move || image_probe::probe(&header, max_pixels))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))??;
    let envelope = params.envelope(probe.format, &state.settings.presets)?;
    let record = TaskRecord { owner: caller.key, ..TaskRecord::pending(&envelope, Some(probe.info(bytes.len()))) };
    let span = info_span!("task", task_id = %envelope.id);
    // Run the accept sequence as its own task: a client that hangs up half-way must not leave half a task behind.
    // The probe's handle on the bytes is gone: the buffer moves into a Vec without a copy.
    let bytes = Vec::from(bytes);
    let accepted =
        tokio::spawn(accept(state.clone(), envelope.clone(), record, bytes, reservation, quota).instrument(span))
            .await
            .map_err(|e| ApiError::Internal(e.to_string()))?;
    accepted?;

    let name = envelope.thumbnail_name().to_string();
    let base = &state.settings.http.public_url;
    let body = Accepted {
        id: envelope.id,
        status: TaskStatus::Pending,
        url: state.thumbnail_url(&name),
        status_url: format!("{base}/tasks/{}", envelope.id),
        name,
        renditions: state.present(TaskRecord::pending(&envelope, None)).renditions,
    };
    // The path (and signature) of the thumbnail's URL.
    let location = body.url.strip_prefix(base.as_str()).unwrap_or(&body.url);
    let location = HeaderValue::from_str(location).map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok((StatusCode::ACCEPTED, [(header::LOCATION, location)], Json(body)).into_response())
}

/// Stores the original, records PENDING and publishes the task, undoing the earlier steps if a later one fails.
/// The upload's memory `_reservation` is released when the original is stored (or refused). With a `quota`, the
/// original's bytes count against the uploading key's storage quota until the task finishes or is deleted.
async fn accept(
    state: AppState,
    envelope: TaskEnvelope,
    record: TaskRecord,
    bytes: Vec<u8>,
    _reservation: tokio::sync::OwnedSemaphorePermit,
    quota: Option<u64>,
) -> Result<(), ApiError> {
    let id = envelope.id;
    if let (Some(owner), Some(quota)) = (record.owner.as_deref(), quota) {
        let size = bytes.len() as u64;
        if let Err(used) = state.states.reserve_quota(owner, id, size, quota).await? {
            return Err(ApiError::OverQuota(format!(
                "the key {owner:?} has {used} bytes of originals in tasks not yet finished; {size} more would pass \
                 its quota of {quota} bytes: retry when some have finished"
            )));
        }
    }
    let queued = async {
        state.store.put_original(id, bytes).await.map_err(|e| store_unavailable(&e))?;
        state.states.create(&record).await?;
        state.publisher.get().await?.publish_task(&envelope).await?;
        Ok::<_, ApiError>(())
    };
    if let Err(e) = queued.await {
        // Withdraw: the client is told 503 and must find nothing half-done (the quota's share is released with the
        // record). A worker that still receives the message (confirm lost, message kept) finds no record and drops
        // it.
        if let Err(cleanup) = state.states.delete(&record).await {
            warn!(error = %cleanup, "could not withdraw the task record");
        }
        if let Err(cleanup) = state.store.delete_original(id).await {
            warn!(error = %cleanup, "could not withdraw the original");
        }
        return Err(e);
    }
    thumbq_common::telemetry_metrics::task_published(&state.settings.amqp.queue);
    info!(width = envelope.args.width, height = envelope.args.height, "task queued");
    Ok(())
}
