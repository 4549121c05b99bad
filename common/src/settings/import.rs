//! Imports (`POST /thumbnails` with a JSON body): the read-only store keys are read from, and the bounds of fetching
//! a URL.

use std::time::Duration;

use super::{
    SettingsError, StoreLocation,
    env::{Env, Out},
    store::{self, S3_ENDPOINT},
    var::{Described, Var},
};

static URL: Var<Option<StoreLocation>> = Var::new(
    "THUMBQ_IMPORT_URL",
    "",
    "Where `{\"key\": …}` imports read originals, read-only: a path or `file:///abs/path`, `s3://bucket/prefix`, `gs://…`, `az://…` (the store's credentials and `THUMBQ_S3_ENDPOINT`); empty: imports by key are off",
    |text| if text.is_empty() { Ok(None) } else { store::location(text).map(Some) },
    |location| location.as_ref().map(store::render_location).unwrap_or_default(),
);
static ALLOW_PRIVATE: Var<bool> = Var::flag(
    "THUMBQ_FETCH_ALLOW_PRIVATE",
    "0",
    "`1`: `{\"source\": URL}` imports may fetch from loopback, private, link-local and metadata addresses (a server on the same machine); off, such URLs are refused before connecting",
);
static TIMEOUT: Var<Duration> = Var::millis(
    "THUMBQ_FETCH_TIMEOUT_MS",
    "30000",
    "Bound on fetching one `{\"source\": URL}` import (connect, redirects and the whole body)",
);

/// The variables of this module.
pub(super) static VARS: &[&dyn Described] = &[&URL, &ALLOW_PRIVATE, &TIMEOUT];

/// How imports read their originals.
#[derive(Clone, Debug, PartialEq)]
pub struct ImportSettings {
    /// `THUMBQ_IMPORT_URL`, default none: the store `{"key": …}` imports read from, read-only to thumbq (a folder,
    /// or an object store with the file store's credentials and endpoint). Without it an import by key is a `400`.
    pub location: Option<StoreLocation>,
    /// `THUMBQ_FETCH_ALLOW_PRIVATE`, default `0`: with `1`, `{"source": URL}` imports may fetch from loopback,
    /// private, link-local and other internal addresses (the tests' server). Off, such a URL is refused by the API
    /// (`400`) and, for a host name that resolves to one, by the worker before it connects.
    pub allow_private: bool,
    /// `THUMBQ_FETCH_TIMEOUT_MS`, default `30000`: bound on fetching one URL, redirects and body included; a
    /// fetch that runs out of time is retried like any transient failure.
    pub fetch_timeout: Duration,
}

impl ImportSettings {
    pub(super) fn read(env: &Env<'_>) -> Result<Self, SettingsError> {
        let mut location = env.get(&URL)?;
        if let Some(StoreLocation::Object(object)) = &mut location {
            store::add_credentials(env, object)?;
        }
        Ok(Self { location, allow_private: env.get(&ALLOW_PRIVATE)?, fetch_timeout: env.get(&TIMEOUT)? })
    }

    pub(super) fn write(&self, out: &mut Out) {
        out.put(&URL, &self.location);
        if let Some(StoreLocation::Object(object)) = &self.location {
            // Shared with the file store, which may have written them already.
            out.replace(&S3_ENDPOINT, &object.endpoint);
            for (name, value) in &object.options {
                out.put_foreign(&name.to_ascii_uppercase(), value);
            }
        }
        out.put(&ALLOW_PRIVATE, &self.allow_private);
        out.put(&TIMEOUT, &self.fetch_timeout);
    }
}
