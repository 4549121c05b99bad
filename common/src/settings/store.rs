//! The file store: where originals and thumbnails live (a folder or an object store, with the cloud tools' own
//! credentials), its time bound, presigned download redirects and the thumbnails' lifetime.

use std::{path::PathBuf, time::Duration};

use super::{
    SettingsError,
    env::{Env, Out},
    var::{Described, Refused, Var},
};

static URL: Var<StoreLocation> = Var::new(
    "THUMBQ_STORE_URL",
    "data/store",
    "Where originals and thumbnails live: a path or `file:///abs/path` (one machine, or a shared mount), `s3://bucket/prefix` (S3 and S3-compatible servers), `gs://bucket/prefix`, `az://container/prefix` ([stores](docs/operations.md#file-stores))",
    location,
    render_location,
);
pub(super) static S3_ENDPOINT: Var<Option<String>> = Var::optional_text(
    "THUMBQ_S3_ENDPOINT",
    "Endpoint of an S3-compatible server (`http://minio.internal:9000`); requests are then path-style and plain `http` is allowed",
);
static TIMEOUT: Var<Duration> = Var::millis(
    "THUMBQ_STORE_TIMEOUT_MS",
    "10000",
    "Bound on each object-store call, the client's own retries included",
);
static DOWNLOAD_REDIRECT: Var<bool> = Var::flag(
    "THUMBQ_DOWNLOAD_REDIRECT",
    "0",
    "`1`: `GET /thumbnails/{name}` answers `302` to a presigned object-store URL, so the store (or a CDN) serves the bytes; object stores only",
);
static DOWNLOAD_REDIRECT_TTL: Var<Duration> =
    Var::secs("THUMBQ_DOWNLOAD_REDIRECT_TTL_SECS", "300", "How long a presigned download URL works");
static THUMBNAIL_TTL: Var<Option<Duration>> = Var::new(
    "THUMBQ_THUMBNAIL_TTL_SECS",
    "0",
    "Thumbnails older than this are deleted by the workers' sweep, and successful tasks' records expire with them",
    |s| Ok(Some(super::var::parse::<u64>(s)?).filter(|secs| *secs > 0).map(Duration::from_secs)),
    |ttl| ttl.map_or(0, |ttl| ttl.as_secs()).to_string(),
);

static KEEP_ORIGINALS: Var<bool> = Var::flag(
    "THUMBQ_KEEP_ORIGINALS",
    "1",
    "`1`: an original is kept after its task succeeds (`keep_original=false` on an upload says otherwise), for `POST /tasks/{id}/renditions`, as long as its task's record (`THUMBQ_RESULT_TTL_SECS`); `0`: deleted at once",
);

static DEDUPE: Var<bool> = Var::flag(
    "THUMBQ_DEDUPE",
    "0",
    "`1`: every upload is `dedupe=true`: an original (by SHA-256) with parameters of an earlier successful task of the same key gets copies of its thumbnails, without decoding again",
);

/// The variables of this module.
pub(super) static VARS: &[&dyn Described] = &[
    &URL,
    &S3_ENDPOINT,
    &TIMEOUT,
    &DOWNLOAD_REDIRECT,
    &DOWNLOAD_REDIRECT_TTL,
    &THUMBNAIL_TTL,
    &KEEP_ORIGINALS,
    &DEDUPE,
];

/// File store settings.
#[derive(Clone, Debug, PartialEq)]
pub struct StoreSettings {
    /// `THUMBQ_STORE_URL`, default `data/store`: where originals and thumbnails live (see [`StoreLocation`]).
    pub location: StoreLocation,
    /// `THUMBQ_STORE_TIMEOUT_MS`, default `10000`: bound on each request to an object store (its own retries of
    /// a failed request included); a store that does not answer in time fails the attempt, which is retried later.
    pub timeout: Duration,
    /// `THUMBQ_DOWNLOAD_REDIRECT`, default `0`: with `1`, `GET /thumbnails/{name}` answers `302` to a presigned URL
    /// of the object store, valid for `THUMBQ_DOWNLOAD_REDIRECT_TTL_SECS` (default `300`), so the store (or a CDN
    /// in front of it) serves the bytes. Needs an object store.
    pub download_redirect: Option<Duration>,
    /// `THUMBQ_THUMBNAIL_TTL_SECS`, default `0` (keep forever): thumbnails older than this are deleted by the
    /// workers' sweep, and the records of successful tasks expire with them.
    pub thumbnail_ttl: Option<Duration>,
    /// `THUMBQ_KEEP_ORIGINALS`, default `1`: an upload's original is kept after its task succeeds (unless it says
    /// `keep_original=false`), so that `POST /tasks/{id}/renditions` can make more from it; the sweep deletes it
    /// once its task's record has expired.
    pub keep_originals: bool,
    /// `THUMBQ_DEDUPE`, default `0`: with `1` every upload asks `dedupe=true`.
    pub dedupe: bool,
}

/// Where the store keeps its objects.
#[derive(Clone, Debug, PartialEq)]
pub enum StoreLocation {
    /// `file:///abs/path` or a plain path: `originals/` and `thumbnails/` folders under it; only for processes that
    /// share the folder (one machine, or a network file system).
    Local(PathBuf),
    /// `s3://bucket/prefix`, `gs://bucket/prefix`, `az://container/prefix`: an object store shared by any number
    /// of machines.
    Object(ObjectLocation),
}

/// An object store's address and credentials.
#[derive(Clone, PartialEq)]
pub struct ObjectLocation {
    /// The store's URL, `s3://bucket/prefix` and the like.
    pub url: String,
    /// `THUMBQ_S3_ENDPOINT`, default none (AWS itself): the endpoint of an S3-compatible server such as
    /// `http://127.0.0.1:9000`; requests are then path-style, and plain `http` is allowed.
    pub endpoint: Option<String>,
    /// The cloud tools' own variables that were set ([`CLOUD_VARIABLES`]), lower-cased as object_store names them.
    pub options: Vec<(String, String)>,
}

impl std::fmt::Debug for ObjectLocation {
    /// Names the credentials given, never their values.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.options.iter().map(|(name, _)| name.as_str()).collect();
        f.debug_struct("ObjectLocation")
            .field("url", &self.url)
            .field("endpoint", &self.endpoint)
            .field("options", &names)
            .finish()
    }
}

/// The variables AWS, Google Cloud and Azure tools read, passed on to the object store as they are. Listed rather
/// than matched by prefix so that this module stays the one reader of the environment, and the README can name them.
pub const CLOUD_VARIABLES: &[&str] = &[
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ENDPOINT_URL",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
    "AWS_ROLE_SESSION_NAME",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
    "GOOGLE_SERVICE_ACCOUNT",
    "GOOGLE_SERVICE_ACCOUNT_KEY",
    "GOOGLE_APPLICATION_CREDENTIALS",
    "AZURE_STORAGE_ACCOUNT_NAME",
    "AZURE_STORAGE_ACCOUNT_KEY",
    "AZURE_STORAGE_SAS_TOKEN",
    "AZURE_STORAGE_CLIENT_ID",
    "AZURE_STORAGE_CLIENT_SECRET",
    "AZURE_STORAGE_TENANT_ID",
    "AZURE_FEDERATED_TOKEN_FILE",
];

impl StoreSettings {
    /// The folder of a local store; `None` for an object store.
    pub fn local_dir(&self) -> Option<&std::path::Path> {
        match &self.location {
            StoreLocation::Local(dir) => Some(dir),
            StoreLocation::Object(_) => None,
        }
    }

    pub(super) fn read(env: &Env<'_>) -> Result<Self, SettingsError> {
        let mut location = env.get(&URL)?;
        if let StoreLocation::Object(object) = &mut location {
            add_credentials(env, object)?;
        }
        let download_redirect = env.get(&DOWNLOAD_REDIRECT)?.then(|| env.get(&DOWNLOAD_REDIRECT_TTL)).transpose()?;
        if download_redirect.is_some() && matches!(location, StoreLocation::Local(_)) {
            return Err(env.error(
                "THUMBQ_DOWNLOAD_REDIRECT",
                "1",
                "redirects need an object store (THUMBQ_STORE_URL=s3://...)",
            ));
        }
        Ok(Self {
            location,
            timeout: env.get(&TIMEOUT)?,
            download_redirect,
            thumbnail_ttl: env.get(&THUMBNAIL_TTL)?,
            keep_originals: env.get(&KEEP_ORIGINALS)?,
            dedupe: env.get(&DEDUPE)?,
        })
    }

    pub(super) fn write(&self, out: &mut Out) {
        out.put(&URL, &self.location);
        match &self.location {
            StoreLocation::Local(_) => out.put_default(&S3_ENDPOINT),
            StoreLocation::Object(object) => {
                out.put(&S3_ENDPOINT, &object.endpoint);
                for (name, value) in &object.options {
                    out.put_foreign(&name.to_ascii_uppercase(), value);
                }
            }
        }
        out.put(&TIMEOUT, &self.timeout);
        out.put(&DOWNLOAD_REDIRECT, &self.download_redirect.is_some());
        match &self.download_redirect {
            Some(ttl) => out.put(&DOWNLOAD_REDIRECT_TTL, ttl),
            None => out.put_default(&DOWNLOAD_REDIRECT_TTL),
        }
        out.put(&THUMBNAIL_TTL, &self.thumbnail_ttl);
        out.put(&KEEP_ORIGINALS, &self.keep_originals);
        out.put(&DEDUPE, &self.dedupe);
    }
}

/// Gives an object store the cloud tools' variables that are set, and `THUMBQ_S3_ENDPOINT`.
pub(super) fn add_credentials(env: &Env<'_>, object: &mut ObjectLocation) -> Result<(), SettingsError> {
    object.options =
        CLOUD_VARIABLES.iter().filter_map(|var| Some((var.to_ascii_lowercase(), env.foreign(var)?))).collect();
    object.endpoint = env.get(&S3_ENDPOINT)?;
    Ok(())
}

/// `THUMBQ_STORE_URL` (and `THUMBQ_IMPORT_URL`): a path, `file:///abs/path`, or an object store's URL (its endpoint and credentials are
/// added by [`StoreSettings::read`]).
pub(super) fn location(url: &str) -> Result<StoreLocation, Refused> {
    match url.split_once("://") {
        None => Ok(StoreLocation::Local(PathBuf::from(url))),
        Some(("file", path)) if path.starts_with('/') => Ok(StoreLocation::Local(PathBuf::from(path))),
        Some(("file", _)) => Err(Refused::new("a file URL needs an absolute path: file:///abs/path")),
        Some(("s3" | "gs" | "az", rest)) if !rest.is_empty() && !rest.starts_with('/') => {
            Ok(StoreLocation::Object(ObjectLocation { url: url.to_owned(), endpoint: None, options: Vec::new() }))
        }
        Some(_) => Err(Refused::new(
            "expected a path, file:///path, s3://bucket[/prefix], gs://bucket[/prefix] or az://container[/prefix]",
        )),
    }
}

/// The text of a location, which [`location`] reads back as the same.
pub(super) fn render_location(location: &StoreLocation) -> String {
    match location {
        StoreLocation::Local(dir) => dir.display().to_string(),
        StoreLocation::Object(object) => object.url.clone(),
    }
}
