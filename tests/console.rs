//! What the operator's console shows and does, through the public API: every state a task entered, the actions
//! taken on it, and the last hour's history kept in Redis (so every API process, and a reloaded page, sees it); the
//! dead-letter actions, which never bring back an erased or cancelled task.

use chrono::{Duration, Utc};
use image::ImageFormat;
use thumbq_common::{
    TaskStatus,
    fixtures::{sample_image, truncated_jpeg},
};

use crate::{
    support::{receiver::Receiver, spawn_api, spawn_api_configured, watcher::statuses},
    webhooks::{webhook_settled, webhooks_on},
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_list_every_state_and_action_and_the_hour_history_counts_each_outcome() {
    let app = spawn_api().await;
    let good = app.upload_ok(sample_image(ImageFormat::Png, 64, 48), "").await;
    let broken = app.upload_ok(truncated_jpeg(200, 100), "").await;
    let cancelled = app.upload_ok(sample_image(ImageFormat::Png, 32, 32), "").await;
    let response = app.client.delete(format!("{}/tasks/{}", app.base, cancelled.id)).send().await.unwrap();
    assert_eq!(response.status(), 200);
    // A second cancel answers the same record and records nothing more.
    app.client.delete(format!("{}/tasks/{}", app.base, cancelled.id)).send().await.unwrap();
    app.start_worker().await;
    assert_eq!(app.wait_for_thumbnail(&good.name).await.status(), 200);
    assert_eq!(app.wait_for_thumbnail(&broken.name).await.status(), 422);

    let good = app.task(good.id).await;
    assert_eq!(statuses(&good.history), [TaskStatus::Pending, TaskStatus::Started, TaskStatus::Success]);
    assert_eq!(good.history.iter().map(|c| c.attempt).collect::<Vec<_>>(), [0, 1, 1]);
    assert_eq!(good.history[1].worker.as_deref(), Some(app.settings.worker.id.as_str()));
    assert!(good.history.windows(2).all(|w| w[0].at <= w[1].at), "{:?}", good.history);
    // Redis's clock stamps the history, the worker's the record's times: the same machine here.
    let skew = (good.history[2].at - good.finished_at.unwrap()).num_milliseconds().abs();
    assert!(skew < 1000, "SUCCESS entered {skew} ms away from finished_at");
    let broken = app.task(broken.id).await;
    assert_eq!(statuses(&broken.history), [TaskStatus::Pending, TaskStatus::Started, TaskStatus::Failure]);
    assert_eq!(broken.history[2].error, broken.error, "the failure's error is in its entry");
    let cancelled = app.task(cancelled.id).await;
    assert_eq!(statuses(&cancelled.history), [TaskStatus::Pending, TaskStatus::Revoked]);
    assert_eq!(cancelled.actions.iter().map(|a| a.action.as_str()).collect::<Vec<_>>(), ["cancelled"]);
    assert!(good.actions.is_empty());

    // Each process adds its counts to the history at most once a second: wait for all three.
    let counted = async || {
        let history: serde_json::Value = app.get("/stats/history").await.json().await.unwrap();
        let buckets = history["buckets"].as_array().unwrap().clone();
        let total = |field: &str| buckets.iter().map(|b| b[field].as_u64().unwrap()).sum::<u64>();
        total("success") + total("failure") + total("revoked") == 3
    };
    crate::support::eventually("the history counts the three tasks", counted).await;
    let history: serde_json::Value = app.get("/stats/history").await.json().await.unwrap();
    assert_eq!(history["bucket_seconds"], 10);
    let buckets = history["buckets"].as_array().unwrap();
    assert_eq!(buckets.len(), 360, "an hour of 10-second buckets");
    let start = |b: &serde_json::Value| b["start"].as_str().unwrap().parse::<chrono::DateTime<Utc>>().unwrap();
    assert!(buckets.windows(2).all(|w| start(&w[1]) - start(&w[0]) == Duration::seconds(10)));
    let last = start(buckets.last().unwrap());
    assert!(Utc::now() - last < Duration::seconds(11) && last <= Utc::now(), "the last bucket is the current one");
    let total = |field: &str| buckets.iter().map(|b| b[field].as_u64().unwrap()).sum::<u64>();
    assert_eq!((total("success"), total("failure"), total("revoked")), (1, 1, 1));
    let latencies: Vec<(f64, u64)> =
        buckets.iter().filter_map(|b| Some((b["latency_ms_mean"].as_f64()?, b["latency_ms_max"].as_u64()?))).collect();
    assert!(!latencies.is_empty() && latencies.iter().all(|(mean, max)| *mean > 0.0 && *mean <= *max as f64));
    let slowest = latencies.iter().map(|(_, max)| *max).max().unwrap();
    let waited = (good.finished_at.unwrap() - good.created_at).num_milliseconds() as u64;
    assert!(slowest >= waited, "the latency counts from the upload: {slowest} ms < {waited} ms");

    // The history lives in Redis: another process on the same prefix reads the same buckets.
    let direct = app.states.history().await.unwrap();
    assert_eq!(direct.iter().map(|b| b.success + b.failure + b.revoked).sum::<u64>(), 3);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_are_replayed_one_or_all_and_purged_and_each_record_says_so() {
    let app = spawn_api().await;
    app.start_worker().await;
    crate::support::break_folder(&app.thumbnails_dir(), true);
    let tasks: Vec<_> =
        futures_util::future::join_all((0..3).map(|i| app.upload_ok(sample_image(ImageFormat::Png, 40 + i, 30), "")))
            .await;
    app.publish_raw(b"not a task", None).await;
    crate::support::eventually("3 tasks and the poison are dead-lettered", async || {
        app.peek_dead_letters().await.len() == 4
    })
    .await;
    for task in &tasks {
        assert_eq!(app.task(task.id).await.status, TaskStatus::Failure);
    }
    crate::support::break_folder(&app.thumbnails_dir(), false);

    // One task, by id: back to PENDING with the action recorded, then made; a second replay finds no dead letter.
    let replay = |path: String| app.client.post(format!("{}{path}", app.base)).send();
    let first = replay(format!("/tasks/{}/replay", tasks[0].id)).await.unwrap();
    assert_eq!(first.status(), 200);
    let record: thumbq_common::TaskRecord = first.json().await.unwrap();
    assert_eq!(record.actions.iter().map(|a| a.action.as_str()).collect::<Vec<_>>(), ["replayed"]);
    assert_eq!(app.wait_for_thumbnail(&tasks[0].name).await.status(), 200);
    let history = statuses(&app.task(tasks[0].id).await.history);
    assert_eq!(
        &history[history.len() - 4..],
        [TaskStatus::Failure, TaskStatus::Pending, TaskStatus::Started, TaskStatus::Success]
    );
    let again = replay(format!("/tasks/{}/replay", tasks[0].id)).await.unwrap();
    assert_eq!(again.status(), 404);
    assert!(again.text().await.unwrap().contains("has no dead letter"));
    assert_eq!(replay("/tasks/not-a-task/replay".into()).await.unwrap().status(), 400);
    assert_eq!(replay("/dead-letters/replay?limit=0".into()).await.unwrap().status(), 400);

    // All, up to a limit: one more task goes back; then a purge discards the last one and the poison.
    let one: serde_json::Value = replay("/dead-letters/replay?limit=1".into()).await.unwrap().json().await.unwrap();
    assert_eq!(one["tasks"], 1, "{one}");
    let purge = app.client.delete(format!("{}/dead-letters", app.base)).send().await.unwrap();
    assert_eq!(purge.status(), 200);
    let purged: serde_json::Value = purge.json().await.unwrap();
    assert_eq!((purged["tasks"].as_u64(), purged["discarded"].as_u64()), (Some(1), Some(1)), "{purged}");
    assert!(app.peek_dead_letters().await.is_empty(), "the dead-letter queue is empty");

    let mut outcomes = Vec::new();
    for task in &tasks[1..] {
        let status = app.wait_for_thumbnail(&task.name).await.status().as_u16();
        let record = app.task(task.id).await;
        outcomes.push((record.actions.iter().map(|a| a.action.clone()).collect::<Vec<_>>(), status, record.status));
    }
    outcomes.sort_by_key(|(actions, status, _)| (actions.clone(), *status));
    assert_eq!(
        outcomes,
        [
            (vec!["purged".to_owned()], 500, TaskStatus::Failure),
            (vec!["replayed".to_owned()], 200, TaskStatus::Success)
        ]
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_keys_on_dead_letter_actions_want_an_admin_key() {
    let app = spawn_api_configured(|s| s.access.auth = thumbq_common::settings::AuthMode::Keys).await;
    for (method, path) in [
        (reqwest::Method::POST, "/dead-letters/replay".to_owned()),
        (reqwest::Method::DELETE, "/dead-letters".to_owned()),
        (reqwest::Method::POST, format!("/tasks/{}/replay", thumbq_common::TaskId::new())),
        (reqwest::Method::GET, "/stats/history".to_owned()),
    ] {
        let response = app.client.request(method.clone(), format!("{}{path}", app.base)).send().await.unwrap();
        assert_eq!(response.status(), 401, "{method} {path}");
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_skips_an_erased_task_drops_its_dead_letter_and_sends_no_webhook() {
    let receiver = Receiver::start(&[200]).await;
    let app = spawn_api_configured(|s| webhooks_on(s, true)).await;
    app.start_worker().await;
    let query = format!("callback_url={}", receiver.url);
    crate::support::break_folder(&app.thumbnails_dir(), true);
    let erased = app.upload_ok(sample_image(ImageFormat::Png, 40, 30), &query).await;
    crate::support::eventually("the task is dead-lettered", async || app.peek_dead_letters().await.len() == 1).await;
    assert_eq!(webhook_settled(&app, erased.id).await.status, TaskStatus::Failure);
    crate::support::break_folder(&app.thumbnails_dir(), false);
    let response = app.client.delete(format!("{}/thumbnails/{}", app.base, erased.name)).send().await.unwrap();
    assert_eq!(response.status(), 204);

    let replay = app.client.post(format!("{}/dead-letters/replay", app.base)).send().await.unwrap();
    assert_eq!(replay.status(), 200);
    let done: serde_json::Value = replay.json().await.unwrap();
    assert_eq!(done, serde_json::json!({"tasks": 0, "kept": 0, "discarded": 0, "skipped": 1}));
    assert!(app.peek_dead_letters().await.is_empty(), "the dead letter is dropped");
    assert_eq!(app.get(&format!("/tasks/{}", erased.id)).await.status(), 404, "no record comes back");
    let listed = app.get("/tasks").await.json::<thumbq_api::routes::tasks::TaskPage>().await.unwrap().tasks;
    assert!(listed.is_empty(), "{listed:?}");
    assert!(!app.states.exists(erased.id).await.unwrap());

    // A later task's webhook arrives after anything the replay could have set off: the erased task sent only the
    // webhook of its failure, before it was erased.
    let later = app.upload_ok(sample_image(ImageFormat::Png, 32, 32), &query).await;
    webhook_settled(&app, later.id).await;
    let sent: Vec<String> = receiver.received().iter().map(|r| r.json()["id"].as_str().unwrap().to_owned()).collect();
    assert_eq!(sent, [erased.id.to_string(), later.id.to_string()]);
    assert_eq!(app.get(&format!("/tasks/{}", erased.id)).await.status(), 404);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_cancelled_after_it_was_dead_lettered_stays_revoked_when_replayed() {
    let receiver = Receiver::start(&[200]).await;
    let app = spawn_api_configured(|s| webhooks_on(s, true)).await;
    let query = format!("callback_url={}", receiver.url);
    let one = app.upload_ok(sample_image(ImageFormat::Png, 40, 30), &query).await;
    let all = app.upload_ok(sample_image(ImageFormat::Png, 41, 30), &query).await;
    // Dead-lettered unfinished, as at the delivery limit; then cancelled.
    assert_eq!(app.dead_letter_work_queue().await, 2);
    for task in [&one, &all] {
        let response = app.client.delete(format!("{}/tasks/{}", app.base, task.id)).send().await.unwrap();
        assert_eq!(response.status(), 200);
    }
    app.start_worker().await;

    let by_id = app.client.post(format!("{}/tasks/{}/replay", app.base, one.id)).send().await.unwrap();
    assert_eq!(by_id.status(), 409);
    let body: serde_json::Value = by_id.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("cancelled"), "{body}");
    let replay = app.client.post(format!("{}/dead-letters/replay", app.base)).send().await.unwrap();
    let done: serde_json::Value = replay.json().await.unwrap();
    assert_eq!(done, serde_json::json!({"tasks": 0, "kept": 0, "discarded": 0, "skipped": 1}));
    assert!(app.peek_dead_letters().await.is_empty(), "both dead letters are dropped");
    for task in [&one, &all] {
        let record = app.task(task.id).await;
        assert_eq!(record.status, TaskStatus::Revoked);
        assert_eq!(record.actions.iter().map(|a| a.action.as_str()).collect::<Vec<_>>(), ["cancelled"]);
        assert_eq!(statuses(&record.history), [TaskStatus::Pending, TaskStatus::Revoked]);
    }

    // A later task's webhook arrives after anything the replays could have set off: the cancelled ones sent none.
    let later = app.upload_ok(sample_image(ImageFormat::Png, 32, 32), &query).await;
    webhook_settled(&app, later.id).await;
    let sent: Vec<String> = receiver.received().iter().map(|r| r.json()["id"].as_str().unwrap().to_owned()).collect();
    assert_eq!(sent, [later.id.to_string()]);
    assert_eq!(app.task(one.id).await.status, TaskStatus::Revoked);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purging_dead_letters_refuses_an_unknown_parameter_and_purges_nothing() {
    let app = spawn_api().await;
    app.upload_ok(sample_image(ImageFormat::Png, 40, 30), "").await;
    assert_eq!(app.dead_letter_work_queue().await, 1);
    let response = app.client.delete(format!("{}/dead-letters?x=1", app.base)).send().await.unwrap();
    assert_eq!(response.status(), 400);
    let body: serde_json::Value = response.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains('x'), "{body}");
    assert_eq!(app.peek_dead_letters().await.len(), 1, "nothing purged");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_are_listed_page_by_page_and_listing_takes_none_of_them() {
    let app = spawn_api().await;
    app.start_worker().await;
    crate::support::break_folder(&app.thumbnails_dir(), true);
    let mut ids = Vec::new();
    for side in [30, 31, 32] {
        ids.push(app.upload_ok(sample_image(ImageFormat::Png, side, side), "").await.id);
    }
    crate::support::eventually("three dead letters", async || app.peek_dead_letters().await.len() == 3).await;

    let page = async |query: &str| -> serde_json::Value {
        let response = app.get(&format!("/dead-letters{query}")).await;
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    };
    let first = page("?limit=2").await;
    assert_eq!(first["next_offset"], 2, "{first}");
    let second = page("?limit=2&offset=2").await;
    assert!(second["next_offset"].is_null(), "{second}");
    let listed: Vec<serde_json::Value> =
        [&first, &second].iter().flat_map(|p| p["dead_letters"].as_array().unwrap().clone()).collect();
    let mut listed_ids: Vec<String> = listed.iter().map(|d| d["task_id"].as_str().unwrap().to_owned()).collect();
    let mut expected: Vec<String> = ids.iter().map(ToString::to_string).collect();
    listed_ids.sort();
    expected.sort();
    assert_eq!(listed_ids, expected, "every dead letter once, across the pages");
    for letter in &listed {
        assert_eq!(letter["reason"], "retries_exhausted", "{letter}");
        assert_eq!(letter["error_code"], "store_failed", "the task record's code: {letter}");
        let error = letter["error"].as_str().unwrap_or_default();
        assert!(error.contains("file store") && !error.contains('/'), "a safe message, no server path: {error}");
    }
    assert_eq!(app.peek_dead_letters().await.len(), 3, "listing took none of them");
    let again = page("?limit=2").await;
    assert_eq!(again["dead_letters"], first["dead_letters"], "and left them in their order");

    let unknown = app.get("/dead-letters?x=1").await;
    assert_eq!(unknown.status(), 400);
    assert_eq!(unknown.json::<serde_json::Value>().await.unwrap()["code"], "unknown_parameter");
    crate::support::break_folder(&app.thumbnails_dir(), false);
    app.stop().await;
}
