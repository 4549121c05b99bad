//! `format=auto`: a thumbnail named without its format (`<uuid>` or `<uuid>-<rendition>`) is served in the best
//! format the client's `Accept` names, AVIF before WebP, else the fallback (JPEG or PNG), which every client takes.
//! Only an explicit `image/avif` or `image/webp` counts: `*/*` and `image/*` are what clients send that decode
//! neither (curl, old browsers), as image CDNs read them too.

use axum::http::{HeaderMap, header};
use thumbq_common::task::{NegotiatedName, OutputFormat, ResizeArgs, ThumbnailName};
use tracing::warn;

use crate::{
    error::{ApiError, ErrorCode, store_unavailable},
    state::AppState,
};

/// The file `name` stands for, for a client that sent `headers`: among the files its task made under that name, the
/// best one the client accepts. Without the task's record (expired, lost, or Redis down) the file store says which
/// formats exist.
pub async fn resolve(state: &AppState, name: &NegotiatedName, headers: &HeaderMap) -> Result<ThumbnailName, ApiError> {
    let not_found = || ApiError::NotFound(ErrorCode::ThumbnailNotFound, format!("no thumbnail named {name}"));
    let record = match state.states.get(name.id).await {
        Ok(record) => record,
        Err(e) => {
            warn!(error = %e, "redis unreadable; negotiating from the file store alone");
            None
        }
    };
    if let Some(record) = record {
        // The task's files under this name: the fallback first, then its variants.
        let made: Vec<OutputFormat> =
            record.files().into_iter().filter(|file| file.negotiated() == *name).map(|file| file.format).collect();
        let fallback = *made.first().ok_or_else(not_found)?;
        let best = ResizeArgs::AUTO_FORMATS.into_iter().find(|f| made.contains(f) && accepts(headers, *f));
        return Ok(name.in_format(best.unwrap_or(fallback)));
    }
    let preferred = ResizeArgs::AUTO_FORMATS.into_iter().filter(|f| accepts(headers, *f));
    let others = [OutputFormat::Jpeg, OutputFormat::Png, OutputFormat::Gif, OutputFormat::Webp, OutputFormat::Avif];
    for format in preferred.chain(others) {
        let file = name.in_format(format);
        if state.store.get_thumbnail(&file).await.map_err(|e| store_unavailable(&e))?.is_some() {
            return Ok(file);
        }
    }
    Err(not_found())
}

/// Whether `Accept` names `format`'s media type with a quality above zero.
fn accepts(headers: &HeaderMap, format: OutputFormat) -> bool {
    let items = headers.get_all(header::ACCEPT).into_iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(','));
    items.into_iter().any(|item| {
        let mut parts = item.split(';');
        let media = parts.next().unwrap_or_default().trim();
        let quality = parts.find_map(|p| p.trim().strip_prefix("q=")).and_then(|q| q.trim().parse::<f32>().ok());
        media.eq_ignore_ascii_case(format.content_type()) && quality.unwrap_or(1.0) > 0.0
    })
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn accept(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn only_an_explicit_media_type_with_a_quality_above_zero_counts() {
        let chrome = accept("image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8");
        assert!(accepts(&chrome, OutputFormat::Avif) && accepts(&chrome, OutputFormat::Webp));
        let safari_14 = accept("image/webp,image/png,image/svg+xml,image/*;q=0.8,video/*;q=0.8,*/*;q=0.5");
        assert!(!accepts(&safari_14, OutputFormat::Avif) && accepts(&safari_14, OutputFormat::Webp));
        assert!(!accepts(&accept("*/*"), OutputFormat::Webp), "curl's");
        assert!(!accepts(&accept("image/*"), OutputFormat::Avif));
        assert!(!accepts(&accept("image/avif;q=0, image/webp"), OutputFormat::Avif), "refused explicitly");
        assert!(accepts(&accept("IMAGE/AVIF ; q=0.5"), OutputFormat::Avif));
        assert!(!accepts(&HeaderMap::new(), OutputFormat::Avif));
    }
}
