//! A typed client of thumbq's HTTP API (uploads, thumbnails, jobs), and the `thumbq` command line over it (`cli`).
//!
//! Every call is bounded in time. `429` and `503` are retried after the answer's `Retry-After` (a few times), as the
//! API asks; every other refusal comes back as [`ClientError::Refused`] with the API's code and message. Uploads
//! carry an `Idempotency-Key` when given one, so a retry (or a re-run after a crash) never makes a second task.

pub mod cli;

use std::time::Duration;

use reqwest::{StatusCode, header};
use serde::de::DeserializeOwned;
use thumbq_common::{
    job::{Job, JobId, JobSpec},
    task::Accepted,
};

/// Times a call is tried when the API answers `429` or `503`.
const ATTEMPTS: u32 = 6;

/// The longest wait between two of them, whatever `Retry-After` says.
const LONGEST_WAIT: Duration = Duration::from_secs(30);

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The API refused the request: its status, code and message.
    #[error("{status} {code}: {message}")]
    Refused {
        /// The HTTP status.
        status: u16,
        /// The API's stable error code.
        code: String,
        /// Its message.
        message: String,
    },
    /// The API could not be reached, or did not answer in time.
    #[error("the API could not be reached: {0}")]
    Unreachable(#[from] reqwest::Error),
}

/// A client of one thumbq API.
#[derive(Clone, Debug)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    key: Option<String>,
}

impl Client {
    /// A client of the API at `base` (`http://127.0.0.1:8000`), with an API key when keys are on.
    pub fn new(base: &str, key: Option<String>) -> Self {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(120))
            .build()
            .expect("the HTTP client builds");
        Self { http, base: base.trim_end_matches('/').to_owned(), key }
    }

    /// Uploads `bytes` (as the multipart field `image`, named `file_name`) with the upload parameters `query`.
    pub async fn upload(
        &self,
        bytes: Vec<u8>,
        file_name: &str,
        query: &str,
        idempotency_key: Option<&str>,
    ) -> Result<Accepted, ClientError> {
        let url = format!("{}/thumbnails?{query}", self.base);
        self.send(|http| {
            let part = reqwest::multipart::Part::bytes(bytes.clone()).file_name(file_name.to_owned());
            let request = http.post(&url).multipart(reqwest::multipart::Form::new().part("image", part));
            match idempotency_key {
                Some(key) => request.header("Idempotency-Key", key),
                None => request,
            }
        })
        .await
    }

    /// The thumbnail at `url` (an `Accepted`'s), waiting for it with long polls: its bytes once made.
    pub async fn thumbnail(&self, url: &str) -> Result<Vec<u8>, ClientError> {
        let separator = if url.contains('?') { '&' } else { '?' };
        let url = format!("{url}{separator}wait=30");
        loop {
            let response = self.authorised(self.http.get(&url)).send().await?;
            match response.status() {
                StatusCode::OK => return Ok(response.bytes().await?.to_vec()),
                // Not made yet: the long poll ran out; ask again.
                StatusCode::ACCEPTED => continue,
                _ => return Err(refusal(response).await),
            }
        }
    }

    /// Starts a job over `spec` with the upload parameters `query`.
    pub async fn create_job(&self, spec: &JobSpec, query: &str) -> Result<Job, ClientError> {
        let url = format!("{}/jobs?{query}", self.base);
        self.send(|http| http.post(&url).json(spec)).await
    }

    /// A job as it is now.
    pub async fn job(&self, id: JobId) -> Result<Job, ClientError> {
        let url = format!("{}/jobs/{id}", self.base);
        self.send(|http| http.get(&url)).await
    }

    /// The newest jobs.
    pub async fn jobs(&self) -> Result<Vec<Job>, ClientError> {
        let url = format!("{}/jobs?limit=100", self.base);
        self.send(|http| http.get(&url)).await
    }

    /// `pause`, `resume` or `retry-failed` (POST), or `cancel` (DELETE) a job: the job after it.
    pub async fn job_action(&self, id: JobId, action: &str) -> Result<Job, ClientError> {
        let url = format!("{}/jobs/{id}", self.base);
        self.send(|http| match action {
            "cancel" => http.delete(&url),
            action => http.post(format!("{url}/{action}")),
        })
        .await
    }

    /// Sends the request `build` makes, again after `Retry-After` while the API answers `429` or `503`; the answer's
    /// JSON body once it succeeds.
    async fn send<T: DeserializeOwned>(
        &self,
        build: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder,
    ) -> Result<T, ClientError> {
        let mut attempt = 1;
        loop {
            let response = self.authorised(build(&self.http)).send().await?;
            let status = response.status();
            if status.is_success() {
                return Ok(response.json().await?);
            }
            let busy = matches!(status, StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE);
            if !busy || attempt == ATTEMPTS {
                return Err(refusal(response).await);
            }
            let wait = retry_after(&response).unwrap_or(Duration::from_secs(1)).min(LONGEST_WAIT);
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }

    fn authorised(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.key {
            Some(key) => request.bearer_auth(key),
            None => request,
        }
    }
}

/// The wait an answer asks for, in seconds.
fn retry_after(response: &reqwest::Response) -> Option<Duration> {
    let seconds = response.headers().get(header::RETRY_AFTER)?.to_str().ok()?.trim().parse().ok()?;
    Some(Duration::from_secs(seconds))
}

/// An error answer as a [`ClientError`]: the API's code and message from its JSON body.
async fn refusal(response: reqwest::Response) -> ClientError {
    let status = response.status().as_u16();
    let body: serde_json::Value = response.json().await.unwrap_or_default();
    let text = |field: &str| body[field].as_str().unwrap_or_default().to_owned();
    // A failed thumbnail answers its task's error: `{"status": "FAILURE", "error": {"code", "kind"}}`.
    let code = match body["error"]["code"].as_str() {
        Some(code) => code.to_owned(),
        None => text("code"),
    };
    let message = body["error"].as_str().map_or_else(|| format!("the task failed ({code})"), str::to_owned);
    ClientError::Refused { status, code, message }
}
