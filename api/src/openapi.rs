//! The OpenAPI document, served at `/openapi.json` and browsed with the vendored Swagger UI at `/docs`.
//!
//! [`document`] describes the running configuration, not every configuration: operations list the API key only when
//! keys are on, `callback_url` exists only where webhooks can be signed, and `expires`/`sig` only with signed URLs.
//! A client generated from it, or a schema-driven fuzzer, then meets the server it reads about.

use utoipa::{
    Modify, OpenApi,
    openapi::{
        Content, HttpMethod, Ref, RefOr, ResponseBuilder,
        security::{Http, HttpAuthScheme, SecurityScheme},
    },
};

use thumbq_common::{Settings, settings::AuthMode};

use crate::{error::ErrorBody, routes};

/// The name of the bearer-key scheme that protected operations list in their `security`.
pub const API_KEY: &str = "api_key";

/// thumbq's OpenAPI document.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "thumbq",
        description = "A distributed task queue that makes image thumbnails. Upload an image, get `202` with the \
                       thumbnail's URL at once, and download it when a worker has made it (long-poll with `?wait=30`).",
        license(name = "MIT OR Apache-2.0"),
    ),
    paths(
        routes::thumbnails::create_thumbnail,
        routes::thumbnails::renditions::create_renditions,
        routes::thumbnails::download::get_thumbnail,
        routes::thumbnails::delete::delete_thumbnail,
        routes::tasks::get_task,
        routes::tasks::list_tasks,
        routes::tasks::cancel_task,
        routes::jobs::create_job,
        routes::jobs::get_job,
        routes::jobs::list_jobs,
        routes::jobs::actions::pause_job,
        routes::jobs::actions::resume_job,
        routes::jobs::actions::cancel_job,
        routes::jobs::actions::retry_failed,
        routes::dead_letters::list_dead_letters,
        routes::dead_letters::replay_task,
        routes::dead_letters::replay_dead_letters,
        routes::dead_letters::purge_dead_letters,
        routes::workers::list_workers,
        routes::stats::get_stats,
        routes::stats::get_history,
        routes::dashboard::get_dashboard,
        routes::health::health,
        routes::health::ready,
        routes::metrics::get_metrics,
    ),
    components(schemas(ErrorBody)),
    modifiers(&KeyedRoutes),
    tags(
        (name = "thumbnails", description = "Upload images and download thumbnails"),
        (name = "tasks", description = "Task records"),
        (name = "jobs", description = "Bulk jobs: many imports from one request, in a lane of their own"),
        (name = "workers", description = "Live workers"),
        (name = "health", description = "Liveness and readiness probes"),
    )
)]
pub struct ApiDoc;

/// The document of an API running with `settings` (see the module's doc).
pub fn document(settings: &Settings) -> utoipa::openapi::OpenApi {
    let mut openapi = ApiDoc::openapi();
    let keys = settings.access.auth == AuthMode::Keys;
    let webhooks = settings.webhook.secret.is_some();
    let signed = settings.access.signed_urls.is_some();
    for (path, item) in &mut openapi.paths.paths {
        for operation in [&mut item.get, &mut item.post, &mut item.delete].into_iter().flatten() {
            if !keys {
                operation.security = None;
                // No key can be missing or unknown (a 403 remains: cross-site writes are refused).
                operation.responses.responses.retain(|status, _| status != "401");
            }
            let parameters = operation.parameters.get_or_insert_with(Vec::new);
            parameters.retain(|p| match p {
                RefOr::T(p) => match p.name.as_str() {
                    "callback_url" => webhooks,
                    "expires" | "sig" => signed || path != "/thumbnails/{name}",
                    _ => true,
                },
                RefOr::Ref(_) => true,
            });
            if parameters.is_empty() {
                operation.parameters = None;
            }
        }
    }
    if !keys && let Some(components) = openapi.components.as_mut() {
        components.security_schemes.remove(API_KEY);
    }
    openapi
}

/// Adds the API-key scheme, and to every operation that lists it the `401`, `403` and `429` answers, once here
/// rather than in every route's annotations.
struct KeyedRoutes;

impl Modify for KeyedRoutes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let mut bearer = Http::new(HttpAuthScheme::Bearer);
        bearer.description = Some(
            "An API key, `Authorization: Bearer <key>`, needed when `THUMBQ_AUTH` is `keys` (or `auto` on a \
             non-loopback bind). Each operation names the scope it needs."
                .into(),
        );
        components.add_security_scheme(API_KEY, SecurityScheme::Http(bearer));
        let error = |description: &str, example: &str, code: &str| {
            ResponseBuilder::new()
                .description(description)
                .content(
                    "application/json",
                    Content::builder()
                        .schema(Some(Ref::from_schema_name("ErrorBody")))
                        .example(Some(serde_json::json!({ "error": example, "code": code })))
                        .build(),
                )
                .build()
        };
        for item in openapi.paths.paths.values_mut() {
            for method in [HttpMethod::Get, HttpMethod::Post, HttpMethod::Delete] {
                let operation = match method {
                    HttpMethod::Get => item.get.as_mut(),
                    HttpMethod::Post => item.post.as_mut(),
                    _ => item.delete.as_mut(),
                };
                let Some(operation) = operation.filter(|o| o.security.is_some()) else { continue };
                let responses = &mut operation.responses.responses;
                responses.insert(
                    "401".into(),
                    error(
                        "No API key, or an unknown or revoked one (`WWW-Authenticate: Bearer`)",
                        "unknown or revoked API key",
                        "invalid_key",
                    )
                    .into(),
                );
                responses.insert(
                    "403".into(),
                    error(
                        "The key lacks the scope this needs",
                        "the key \"ci\" does not have the `admin` scope",
                        "missing_scope",
                    )
                    .into(),
                );
                responses.insert(
                    "429".into(),
                    error(
                        "Over the rate limit (see `Retry-After` and the `RateLimit-*` headers), or, for an upload, \
                         over the key's storage quota",
                        "too many requests: over the rate limit; retry in 1 s",
                        "rate_limited",
                    )
                    .into(),
                );
            }
        }
    }
}
