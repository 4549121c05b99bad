//! The OpenAPI document, served at `/openapi.json` and browsed with the vendored Swagger UI at `/docs`.

use utoipa::OpenApi;

use crate::{error::ErrorBody, routes};

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
        routes::thumbnails::get_thumbnail,
        routes::tasks::get_task,
        routes::tasks::list_tasks,
        routes::workers::list_workers,
        routes::stats::get_stats,
        routes::dashboard::get_dashboard,
        routes::health::health,
        routes::health::ready,
        routes::metrics::get_metrics,
    ),
    components(schemas(ErrorBody)),
    tags(
        (name = "thumbnails", description = "Upload images and download thumbnails"),
        (name = "tasks", description = "Task records"),
        (name = "workers", description = "Live workers"),
        (name = "health", description = "Liveness and readiness probes"),
    )
)]
pub struct ApiDoc;
