//! What a client of the API does in a test: uploads (one, raw, or a batch from concurrent clients), `GET`s,
//! long polls for thumbnails and reads task records, each asserting what any test expects of the answer.

use std::{sync::Mutex, time::Duration};

use thumbq_api::routes::thumbnails::Accepted;
use thumbq_common::{TaskId, TaskRecord, TaskStatus, task::ThumbnailName};

use crate::support::{
    TestApp,
    wait::{DEADLINE, Wait},
};

impl TestApp {
    /// Uploads `bytes` as multipart field `image` with the query string `query` (without `?`).
    pub async fn upload(&self, bytes: Vec<u8>, query: &str) -> reqwest::Response {
        self.upload_field("image", bytes, query).await
    }

    /// Uploads `bytes` as the multipart field `field`.
    pub async fn upload_field(&self, field: &str, bytes: Vec<u8>, query: &str) -> reqwest::Response {
        let part = reqwest::multipart::Part::bytes(bytes).file_name("upload.png");
        let form = reqwest::multipart::Form::new().part(field.to_owned(), part);
        self.client
            .post(format!("{}/thumbnails?{query}", self.base))
            .multipart(form)
            .send()
            .await
            .expect("the API answers")
    }

    /// Uploads `bytes` as the raw body with `content_type`.
    pub async fn upload_raw(&self, bytes: Vec<u8>, content_type: &str, query: &str) -> reqwest::Response {
        self.client
            .post(format!("{}/thumbnails?{query}", self.base))
            .header("content-type", content_type)
            .body(bytes)
            .send()
            .await
            .expect("the API answers")
    }

    /// Imports: `POST /thumbnails` with `body` as JSON.
    pub async fn import(&self, body: serde_json::Value, query: &str) -> reqwest::Response {
        let url = format!("{}/thumbnails?{query}", self.base);
        self.client.post(url).json(&body).send().await.expect("the API answers")
    }

    /// Imports and asserts `202 Accepted`.
    pub async fn import_ok(&self, body: serde_json::Value, query: &str) -> Accepted {
        let response = self.import(body, query).await;
        let status = response.status();
        let text = response.text().await.expect("a body");
        assert_eq!(status, 202, "import refused: {text}");
        serde_json::from_str(&text).expect("an Accepted body")
    }

    /// Uploads and asserts `202 Accepted`.
    pub async fn upload_ok(&self, bytes: Vec<u8>, query: &str) -> Accepted {
        let response = self.upload(bytes, query).await;
        let status = response.status();
        let text = response.text().await.expect("a body");
        assert_eq!(status, 202, "upload refused: {text}");
        serde_json::from_str(&text).expect("an Accepted body")
    }

    /// Uploads every image from `clients` concurrent clients, retrying `503`s as a client honouring `Retry-After`
    /// would (quickly, here); returns the accepted tasks.
    pub async fn upload_batch(&self, images: Vec<Vec<u8>>, clients: usize) -> Vec<Accepted> {
        let (queue, url) = (Mutex::new(images), format!("{}/thumbnails", self.base));
        let uploader = async || {
            let mut accepted = Vec::new();
            loop {
                // Take the next image and release the lock before any await.
                let next = queue.lock().expect("queue lock").pop();
                let Some(image) = next else { break accepted };
                accepted.push(upload_until_accepted(&self.client, &url, image).await);
            }
        };
        // Concurrent on this task: the API serves each connection on a task of its own anyway.
        futures_util::future::join_all((0..clients).map(|_| uploader())).await.into_iter().flatten().collect()
    }

    /// The promise: every accepted task ends in SUCCESS or FAILURE within the deadline, and every SUCCESS has its
    /// thumbnail in the store, decodable, at the requested size. Returns the number of successes.
    pub async fn assert_all_finished(&self, accepted: &[Accepted]) -> usize {
        let mut successes = 0;
        for task in accepted {
            let response = self.wait_for_thumbnail(&task.name).await;
            // A stored thumbnail is served before its SUCCESS is recorded (that write may be waiting out an outage).
            let record = Wait::new(format!("task {} is recorded as finished", task.id))
                .every(Duration::from_millis(50))
                .until_ok(async || {
                    let record = self.task(task.id).await;
                    if record.status.is_terminal() { Ok(record) } else { Err(record.status) }
                })
                .await;
            if record.status == TaskStatus::Success {
                assert_eq!(response.status(), 200);
                let name: ThumbnailName = task.name.parse().expect("a thumbnail name");
                let stored = self.store.get_thumbnail(&name).await.expect("the store answers");
                let image = image::load_from_memory(&stored.expect("the thumbnail is stored"))
                    .expect("the stored thumbnail decodes");
                assert_eq!((image.width(), image.height()), (record.args.width, record.args.height));
                successes += 1;
            }
        }
        successes
    }

    /// `GET <path>`.
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(format!("{}{path}", self.base)).send().await.expect("the API answers")
    }

    /// Long-polls a thumbnail until its task finishes (or the deadline passes) and returns the answer.
    pub async fn wait_for_thumbnail(&self, name: &str) -> reqwest::Response {
        let response = self.get(&format!("/thumbnails/{name}?wait={}", DEADLINE.as_secs())).await;
        assert_ne!(response.status(), 202, "task behind {name} did not finish within {DEADLINE:?}");
        response
    }

    /// Downloads a finished thumbnail and decodes it.
    pub async fn download_image(&self, name: &str) -> image::DynamicImage {
        let response = self.wait_for_thumbnail(name).await;
        assert_eq!(response.status(), 200, "{}", response.text().await.unwrap_or_default());
        let bytes = response.bytes().await.expect("thumbnail bytes");
        thumbq_worker::pipeline::quality::decode(&bytes)
    }

    /// `GET /tasks/{id}`, asserting 200.
    pub async fn task(&self, id: TaskId) -> TaskRecord {
        let response = self.get(&format!("/tasks/{id}")).await;
        assert_eq!(response.status(), 200);
        response.json().await.expect("a task record")
    }
}

/// Uploads `image` to `url` until it is accepted, retrying `503`s; any other answer fails the test.
async fn upload_until_accepted(client: &reqwest::Client, url: &str, image: Vec<u8>) -> Accepted {
    let attempt = async || {
        let form = reqwest::multipart::Form::new().part("image", reqwest::multipart::Part::bytes(image.clone()));
        match client.post(url).multipart(form).send().await {
            Ok(r) if r.status() == 202 => Ok(r.json::<Accepted>().await.expect("Accepted")),
            Ok(r) if r.status() == 503 => Err(r.text().await.unwrap_or_default()),
            Ok(r) => panic!("upload answered {}: {}", r.status(), r.text().await.unwrap_or_default()),
            Err(e) => panic!("upload failed: {e}"),
        }
    };
    Wait::new("an upload is accepted, not answered 503").every(Duration::from_millis(100)).until_ok(attempt).await
}
