//! `Idempotency-Key` on `POST /thumbnails` and `POST /jobs`: a client that retries an upload, an import or a job (a mobile client on a bad network, a
//! script re-run after a crash) with the same key gets the first request's `202` again and makes no second task,
//! also while the first is still being stored; the same key on a different request (another query or other bytes)
//! is a `422` (`idempotency_mismatch`). Keys belong to the API key that sent them (all anonymous callers share one
//! space with keys off) and are kept 24 hours (`thumbq_common::state_store::idempotency`).
//!
//! A request is its route, its query string and its body's SHA-256: the first request's body is hashed as it
//! streams to the store, a retry's as it is read and dropped (a JSON body is hashed whole). What the first request
//! answered is kept as it was sent, so any route's `202` can be replayed.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    Json,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use futures_util::TryStreamExt;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use thumbq_common::state_store::idempotency::PENDING;

use crate::{
    caller::Caller,
    error::{ApiError, ErrorCode},
    state::AppState,
    upload::Upload,
};

/// The request header.
pub const HEADER: &str = "idempotency-key";

/// How long a retry waits for the first request with its key to be stored before it is told to come back.
const WAIT_FOR_FIRST: Duration = Duration::from_secs(30);

/// A request's idempotency key, and whose it is.
pub struct Key {
    owner: String,
    key: String,
}

/// What the first request with a key made, kept for its retries.
#[derive(Serialize, Deserialize)]
struct Outcome {
    /// The request: `<SHA-256 of the route and query>:<SHA-256 of the body>`.
    fingerprint: String,
    /// Its `Location`.
    location: String,
    /// Its `202` body.
    body: serde_json::Value,
}

/// A SHA-256 fed as the body streams, shared with the stream that feeds it.
pub type BodyDigest = Arc<Mutex<Sha256>>;

impl Key {
    /// The request's key, if it sent one: 1 to 255 visible ASCII characters, else a `400`.
    pub fn of(headers: &HeaderMap, caller: &Caller) -> Result<Option<Self>, ApiError> {
        let Some(value) = headers.get(HEADER) else { return Ok(None) };
        let key =
            value.to_str().ok().filter(|k| (1..=255).contains(&k.len()) && k.bytes().all(|b| b.is_ascii_graphic()));
        let key = key.ok_or_else(|| {
            ApiError::BadRequest(
                ErrorCode::InvalidParameter,
                "Idempotency-Key must be 1 to 255 visible ASCII characters (a UUID, say)".into(),
            )
        })?;
        Ok(Some(Self { owner: caller.key.clone().unwrap_or_default(), key: key.to_owned() }))
    }

    /// Takes the key for this request, the first (`None`); or, when an earlier request has it, waits until that one
    /// is stored and gives what it made, to replay.
    pub async fn first_or_stored(&self, state: &AppState) -> Result<Option<Stored>, ApiError> {
        let deadline = tokio::time::Instant::now() + WAIT_FOR_FIRST;
        let stored = loop {
            if state.states.claim_idempotency_key(&self.owner, &self.key).await? {
                return Ok(None);
            }
            match state.states.idempotency_key(&self.owner, &self.key).await? {
                Some(value) if value != PENDING => break value,
                // Released by a failed first request (claimed again next turn), or still being stored.
                _ if tokio::time::Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(50)).await,
                _ => {
                    return Err(ApiError::Conflict(
                        ErrorCode::IdempotencyInProgress,
                        "the first request with this Idempotency-Key is still being stored: retry later".into(),
                    ));
                }
            }
        };
        let outcome: Outcome = serde_json::from_str(&stored).map_err(|e| ApiError::Internal(e.to_string()))?;
        Ok(Some(Stored(outcome)))
    }

    /// Keeps what the first request made for its retries, or releases the key when it failed (a retry then makes
    /// the task); passes the result on.
    pub async fn settle<T: Serialize>(
        &self,
        state: &AppState,
        request: &str,
        digest: &BodyDigest,
        made: Result<(T, String), ApiError>,
    ) -> Result<(T, String), ApiError> {
        match made {
            Ok((body, location)) => {
                let json = serde_json::to_value(&body).map_err(|e| ApiError::Internal(e.to_string()))?;
                let outcome = Outcome { fingerprint: fingerprint(request, digest), location, body: json };
                let value = serde_json::to_string(&outcome).map_err(|e| ApiError::Internal(e.to_string()))?;
                state.states.complete_idempotency_key(&self.owner, &self.key, &value).await?;
                Ok((body, outcome.location))
            }
            Err(e) => {
                if let Err(release) = state.states.release_idempotency_key(&self.owner, &self.key).await {
                    tracing::warn!(error = %release, "could not release an idempotency key; it expires in 24 h");
                }
                Err(e)
            }
        }
    }
}

/// What the first request with a key made, for a retry to be answered with.
pub struct Stored(Outcome);

impl Stored {
    /// The first request's `202` again, if this one (its route and query, `request`, and its body's `digest`) is
    /// the same request.
    pub fn replay(self, request: &str, digest: &BodyDigest) -> Result<Response, ApiError> {
        if self.0.fingerprint != fingerprint(request, digest) {
            return Err(ApiError::Unprocessable(
                ErrorCode::IdempotencyMismatch,
                "this Idempotency-Key was used for another request (other parameters, another image or another \
                 import): use a new key for a new request"
                    .into(),
            ));
        }
        answer(self.0.body, &self.0.location)
    }
}

/// The SHA-256 of an upload's body, read to its end and dropped (a retry's, to compare with the first's).
pub async fn digest_of(upload: Upload) -> Result<BodyDigest, ApiError> {
    let digest: BodyDigest = Arc::default();
    let (chunks, _reservation) = upload.into_chunks(Vec::new());
    chunks
        .try_for_each(|chunk| {
            digest.lock().expect("not poisoned").update(&chunk);
            std::future::ready(Ok(()))
        })
        .await
        .map_err(|e| crate::upload::refusal(e).unwrap_or_else(|e| ApiError::Internal(e.to_string())))?;
    Ok(digest)
}

/// The SHA-256 of a body already whole (an import's JSON).
pub fn digest_of_bytes(body: &[u8]) -> BodyDigest {
    Arc::new(Mutex::new(Sha256::new_with_prefix(body)))
}

/// A request's fingerprint: its route and query's, and its body's SHA-256.
fn fingerprint(request: &str, body: &BodyDigest) -> String {
    let body = body.lock().expect("not poisoned").clone().finalize();
    format!("{:x}:{body:x}", Sha256::digest(request.as_bytes()))
}

/// A `202`: its body, and the path of what it made in `Location`.
pub fn answer<T: Serialize>(body: T, location: &str) -> Result<Response, ApiError> {
    let location = HeaderValue::from_str(location).map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok((StatusCode::ACCEPTED, [(header::LOCATION, location)], Json(body)).into_response())
}
