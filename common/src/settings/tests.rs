//! Tests of the settings as a whole: defaults, the rules across concerns, the descriptions against README.md and
//! `.env.example`, and the round trip through `Settings::to_env`.

use std::time::Duration;

use super::*;

#[test]
fn defaults_work_on_one_machine() {
    let s = Settings::default();
    assert_eq!(s.amqp.queue, "thumbq.resize");
    assert_eq!(s.http.bind.to_string(), "127.0.0.1:8000");
    assert_eq!(s.limits.max_pixels, 50_000_000);
    assert_eq!(s.redis.result_ttl, Duration::from_secs(86_400));
    assert!(s.worker.concurrency >= 1);
    assert_eq!(s.access.auth, AuthMode::Off, "a loopback bind needs no key");
}

#[test]
fn auto_auth_wants_keys_on_any_address_but_loopback() {
    let auth = |bind: &str, mode: Option<&str>| {
        let lookup = |var: &str| match var {
            "THUMBQ_BIND" => Some(bind.to_owned()),
            "THUMBQ_AUTH" => mode.map(str::to_owned),
            _ => None,
        };
        Settings::from_lookup(lookup).map(|s| s.access.auth)
    };
    assert_eq!(auth("0.0.0.0:8000", None).unwrap(), AuthMode::Keys);
    assert_eq!(auth("[::1]:8000", None).unwrap(), AuthMode::Off);
    assert_eq!(auth("0.0.0.0:8000", Some("off")).unwrap(), AuthMode::Off);
    assert_eq!(auth("127.0.0.1:8000", Some("keys")).unwrap(), AuthMode::Keys);
    assert_eq!(auth("127.0.0.1:8000", Some("maybe")).unwrap_err().var, "THUMBQ_AUTH");
}

#[test]
fn signed_urls_need_a_long_key_that_never_shows_in_debug_output() {
    let with = |key: &str| {
        let key = key.to_owned();
        Settings::from_lookup(move |var| match var {
            "THUMBQ_SIGNED_URLS" => Some("1".into()),
            "THUMBQ_URL_SIGNING_KEY" => Some(key.clone()),
            _ => None,
        })
    };
    assert_eq!(with("short").unwrap_err().var, "THUMBQ_URL_SIGNING_KEY");
    let settings = with("0123456789abcdef0123456789abcdef").unwrap();
    assert!(settings.access.signed_urls.is_some());
    assert!(!format!("{settings:?}").contains("0123456789abcdef"), "the key is redacted");
}

#[test]
fn the_store_url_picks_the_backend_and_cloud_credentials_never_show_in_debug_output() {
    let with = |vars: &'static [(&'static str, &'static str)]| {
        Settings::from_lookup(|var| vars.iter().find(|(name, _)| *name == var).map(|(_, v)| (*v).to_owned()))
            .map(|s| s.store)
    };
    assert_eq!(with(&[]).unwrap().location, StoreLocation::Local("data/store".into()));
    let file = with(&[("THUMBQ_STORE_URL", "file:///srv/thumbq")]).unwrap();
    assert_eq!(file.location, StoreLocation::Local("/srv/thumbq".into()));
    assert_eq!(with(&[("THUMBQ_STORE_URL", "file://relative")]).unwrap_err().var, "THUMBQ_STORE_URL");
    assert_eq!(with(&[("THUMBQ_STORE_URL", "ftp://host/x")]).unwrap_err().var, "THUMBQ_STORE_URL");
    assert_eq!(with(&[("THUMBQ_STORE_URL", "s3://")]).unwrap_err().var, "THUMBQ_STORE_URL");
    let s3 = with(&[
        ("THUMBQ_STORE_URL", "s3://bucket/thumbq"),
        ("THUMBQ_S3_ENDPOINT", "http://127.0.0.1:9000"),
        ("AWS_SECRET_ACCESS_KEY", "very-secret-value"),
        ("THUMBQ_DOWNLOAD_REDIRECT", "1"),
    ])
    .unwrap();
    let StoreLocation::Object(object) = &s3.location else { panic!("an object store: {s3:?}") };
    assert_eq!(object.endpoint.as_deref(), Some("http://127.0.0.1:9000"));
    assert_eq!(object.options, [("aws_secret_access_key".to_owned(), "very-secret-value".to_owned())]);
    assert_eq!(s3.download_redirect, Some(Duration::from_secs(300)));
    assert!(!format!("{s3:?}").contains("very-secret-value"), "credentials are redacted");
    let redirect_without_object_store = with(&[("THUMBQ_DOWNLOAD_REDIRECT", "1")]).unwrap_err();
    assert_eq!(redirect_without_object_store.var, "THUMBQ_DOWNLOAD_REDIRECT");
}

#[test]
fn a_cluster_is_a_comma_separated_list_of_amqp_urls() {
    let amqp = |url: &str| {
        let url = url.to_owned();
        Settings::from_lookup(move |var| (var == "THUMBQ_AMQP_URL").then(|| url.clone())).map(|s| s.amqp)
    };
    let cluster = amqp("amqp://a:5672/%2f, amqp://b:5672/%2f,amqps://c:5671/%2f,").unwrap();
    assert_eq!(cluster.nodes(), ["amqp://a:5672/%2f", "amqp://b:5672/%2f", "amqps://c:5671/%2f"]);
    assert_eq!(amqp(" , ").unwrap_err().var, "THUMBQ_AMQP_URL");
    assert_eq!(amqp("amqp://a:5672/%2f,redis://b").unwrap_err().var, "THUMBQ_AMQP_URL");
}

#[test]
fn bad_values_name_their_variable() {
    let err = Settings::from_lookup(|v| (v == "THUMBQ_MAX_PIXELS").then(|| "many".to_owned())).unwrap_err();
    assert_eq!(err.var, "THUMBQ_MAX_PIXELS");
    let err = Settings::from_lookup(|v| (v == "THUMBQ_WORKER_CONCURRENCY").then(|| "0".to_owned())).unwrap_err();
    assert!(err.to_string().contains("THUMBQ_WORKER_CONCURRENCY"), "{err}");
}

/// Every `THUMBQ_…` name written in this module's sources: all must be described variables, so that none is
/// read around the descriptions.
fn names_in_sources() -> Vec<String> {
    let source = [
        include_str!("mod.rs"),
        include_str!("access.rs"),
        include_str!("amqp.rs"),
        include_str!("http.rs"),
        include_str!("limits.rs"),
        include_str!("log.rs"),
        include_str!("redis.rs"),
        include_str!("retry.rs"),
        include_str!("store.rs"),
        include_str!("telemetry.rs"),
        include_str!("webhook.rs"),
        include_str!("worker.rs"),
    ]
    .concat();
    let mut vars: Vec<String> = source
        .split('"')
        .filter(|word| (word.starts_with("THUMBQ_") && word.len() > 7) || *word == "LOG_FORMAT")
        .filter(|word| word.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'))
        .map(str::to_owned)
        .collect();
    vars.sort();
    vars.dedup();
    vars
}

#[test]
fn every_setting_is_described_documented_and_the_example_file_parses() {
    let (readme, example) = (include_str!("../../../README.md"), include_str!("../../../.env.example"));
    let described: Vec<&str> = variables().map(|var| var.name()).collect();
    assert!(described.len() >= 60, "{described:?}");
    for name in names_in_sources() {
        assert!(described.contains(&name.as_str()), "{name} is read but not described");
    }
    for var in variables() {
        let name = var.name();
        let row = readme.lines().find(|l| l.starts_with(&format!("| `{name}` |")));
        let row = row.unwrap_or_else(|| panic!("{name} is missing from the README's table"));
        assert!(row.ends_with(&format!("| {} |", var.doc())), "the README's row of {name} says other than its doc");
        assert!(example.contains(&format!("{name}=")), "{name} is missing from .env.example");
    }
    let values: std::collections::HashMap<&str, &str> =
        example.lines().filter(|l| !l.starts_with('#')).filter_map(|l| l.split_once('=')).collect();
    let settings = Settings::from_lookup(|var| values.get(var).map(|v| (*v).to_owned())).unwrap();
    assert_eq!(settings.http.public_url, Settings::default().http.public_url);
}

/// A value other than the default for every variable, valid together.
const NOT_DEFAULTS: &[(&str, &str)] = &[
    ("THUMBQ_AMQP_URL", "amqp://u:p@mq-1:5672/%2f,amqps://u:p@mq-2:5671/%2f"),
    ("THUMBQ_QUEUE", "q.test"),
    ("THUMBQ_DELIVERY_LIMIT", "7"),
    ("THUMBQ_MAX_QUEUE_DEPTH", "0"),
    ("THUMBQ_AMQP_TIMEOUT_MS", "1234"),
    ("THUMBQ_QUORUM_GROUP_SIZE", "3"),
    ("THUMBQ_WORK_QUEUES", "4"),
    ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"),
    ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
    ("OTEL_SERVICE_NAME", "thumbq-east"),
    ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"),
    ("OTEL_TRACES_SAMPLER_ARG", "0.25"),
    ("THUMBQ_REDIS_URL", "redis://:pw@cache:6380/2"),
    ("THUMBQ_KEY_PREFIX", "t:"),
    ("THUMBQ_RESULT_TTL_SECS", "99"),
    ("THUMBQ_REDIS_TIMEOUT_MS", "321"),
    ("THUMBQ_REDIS_SENTINELS", "s-1:26379, s-2:26379"),
    ("THUMBQ_REDIS_MASTER_NAME", "main"),
    ("THUMBQ_REDIS_WAIT_MS", "400"),
    ("THUMBQ_STORE_URL", "s3://bucket/prefix"),
    ("THUMBQ_IMPORT_URL", "s3://library/photos"),
    ("THUMBQ_FETCH_ALLOW_PRIVATE", "1"),
    ("THUMBQ_FETCH_TIMEOUT_MS", "4321"),
    ("THUMBQ_JOB_WINDOW", "7"),
    ("THUMBQ_JOB_CONCURRENCY", "3"),
    ("THUMBQ_JOB_ITEM_TTL_SECS", "120"),
    ("THUMBQ_JOB_TTL_SECS", "86400"),
    ("THUMBQ_S3_ENDPOINT", "http://127.0.0.1:9000"),
    ("AWS_SECRET_ACCESS_KEY", "very-secret-value"),
    ("AWS_REGION", "eu-west-1"),
    ("THUMBQ_STORE_TIMEOUT_MS", "777"),
    ("THUMBQ_DOWNLOAD_REDIRECT", "yes"),
    ("THUMBQ_DOWNLOAD_REDIRECT_TTL_SECS", "60"),
    ("THUMBQ_THUMBNAIL_TTL_SECS", "86400"),
    ("THUMBQ_BIND", "0.0.0.0:9000"),
    ("THUMBQ_PUBLIC_URL", "https://thumbs.example.com/"),
    ("THUMBQ_REQUEST_TIMEOUT_SECS", "61"),
    ("THUMBQ_HEADER_READ_TIMEOUT_SECS", "11"),
    ("THUMBQ_IDLE_TIMEOUT_SECS", "62"),
    ("THUMBQ_MAX_CONNECTIONS", "10"),
    ("THUMBQ_MAX_CONNECTIONS_PER_CLIENT", "2"),
    ("THUMBQ_AUTH", "keys"),
    ("THUMBQ_API_KEYS_FILE", "/run/keys.json"),
    ("THUMBQ_RATE_LIMIT", "600/m"),
    ("THUMBQ_RATE_BURST", "3"),
    ("THUMBQ_ANON_RATE_LIMIT", "5/h"),
    ("THUMBQ_ANON_RATE_BURST", "4"),
    ("THUMBQ_TRUSTED_PROXIES", "10.0.0.0/8,192.0.2.7"),
    ("THUMBQ_ALLOWED_HOSTS", "*"),
    ("THUMBQ_CORS_ORIGINS", "https://app.example.com,http://localhost:3000"),
    ("THUMBQ_SIGNED_URLS", "on"),
    ("THUMBQ_URL_SIGNING_KEY", "0123456789abcdef0123456789abcdef-url"),
    ("THUMBQ_SIGNED_URL_TTL_SECS", "120"),
    ("THUMBQ_METRICS_OPEN", "true"),
    ("THUMBQ_MAX_UPLOAD_BYTES", "1000"),
    ("THUMBQ_MAX_PIXELS", "2000"),
    ("THUMBQ_KEEP_ORIGINALS", "0"),
    ("THUMBQ_DEDUPE", "1"),
    ("THUMBQ_MAX_ANIMATION_PIXELS", "20000"),
    ("THUMBQ_UPLOAD_MEMORY_MB", "3"),
    ("THUMBQ_MAX_TASK_WORK_MS", "4000"),
    ("THUMBQ_PRESETS", "a=10x20:webp:q50,b=30x40:cover:auto,c=50x50:lossless,d=8x8:contain:png"),
    ("THUMBQ_WORKER_CONCURRENCY", "333"),
    ("THUMBQ_WORKER_ID", "host-a:1"),
    ("THUMBQ_SHUTDOWN_GRACE_SECS", "0"),
    ("THUMBQ_WORKER_HEARTBEAT_SECS", "9"),
    ("THUMBQ_WORKER_MEMORY_MB", "99"),
    ("THUMBQ_TASK_TIME_LIMIT_SECS", "7"),
    ("THUMBQ_SWEEP_INTERVAL_SECS", "8"),
    ("THUMBQ_WORKER_METRICS_HOST", "::1"),
    ("THUMBQ_WORKER_METRICS_PORT", "9999"),
    ("THUMBQ_RETRY_BASE_MS", "10"),
    ("THUMBQ_RETRY_FACTOR", "3"),
    ("THUMBQ_RETRY_CAP_MS", "20"),
    ("THUMBQ_RETRY_MAX_ATTEMPTS", "9"),
    ("THUMBQ_WEBHOOK_SECRET", "0123456789abcdef0123456789abcdef-hook"),
    ("THUMBQ_WEBHOOK_ALLOW_PRIVATE", "1"),
    ("THUMBQ_WEBHOOK_MAX_ATTEMPTS", "2"),
    ("THUMBQ_WEBHOOK_TIMEOUT_MS", "50"),
    ("THUMBQ_WEBHOOK_CONCURRENCY", "3"),
    ("THUMBQ_LOG", "debug"),
    ("LOG_FORMAT", "json"),
];

fn lookup(vars: &[(String, String)]) -> impl Fn(&str) -> Option<String> {
    |var| vars.iter().find(|(name, _)| name == var).map(|(_, value)| value.clone())
}

/// Values that exclude one of [`NOT_DEFAULTS`]'s: each is tried in that one's place.
const INSTEAD: &[(&str, &str, &str)] = &[("THUMBQ_REDIS_CLUSTER", "n-1:7000, n-2:7000", "THUMBQ_REDIS_SENTINELS")];

#[test]
fn every_setting_round_trips_through_to_env_secrets_included() {
    let mut sets = vec![NOT_DEFAULTS.to_vec()];
    for (name, value, replaced) in INSTEAD {
        let mut set: Vec<(&str, &str)> = NOT_DEFAULTS.iter().filter(|(n, _)| n != replaced).copied().collect();
        set.push((name, value));
        sets.push(set);
    }
    let defaults = Settings::default().to_env();
    let mut tried = std::collections::HashSet::new();
    for set in sets {
        let given: Vec<(String, String)> = set.iter().map(|(n, v)| ((*n).to_owned(), (*v).to_owned())).collect();
        let settings = Settings::from_lookup(lookup(&given)).unwrap();
        let env = settings.to_env();
        assert_eq!(Settings::from_lookup(lookup(&env)).unwrap(), settings);
        assert!(env.contains(&("AWS_SECRET_ACCESS_KEY".into(), "very-secret-value".into())));
        for (name, _) in set {
            let value = env.iter().find(|(n, _)| n == name).map(|(_, v)| v);
            let default = defaults.iter().find(|(n, _)| n == name).map(|(_, v)| v);
            assert!(value.is_some(), "{name} is not written by to_env");
            assert_ne!(value, default, "{name} keeps its default: it is not read or not written");
            tried.insert(name);
        }
    }
    for var in variables() {
        assert!(tried.contains(var.name()), "{} is not tried with another value", var.name());
    }
    // And the defaults themselves, whose `auto`s are written as what they decided.
    assert_eq!(Settings::from_lookup(lookup(&defaults)).unwrap(), Settings::default());
}

#[test]
fn a_redis_cluster_takes_no_sentinels_and_a_prefix_without_braces() {
    let read = |vars: &[(&str, &str)]| {
        let given: Vec<(String, String)> = vars.iter().map(|(n, v)| ((*n).to_owned(), (*v).to_owned())).collect();
        Settings::from_lookup(lookup(&given)).map(|s| s.redis)
    };
    let cluster = ("THUMBQ_REDIS_CLUSTER", "n-1:7000,n-2:7000");
    assert_eq!(read(&[cluster]).unwrap().cluster, ["n-1:7000", "n-2:7000"]);
    let both = read(&[cluster, ("THUMBQ_REDIS_SENTINELS", "s:26379")]).unwrap_err();
    assert_eq!(both.var, "THUMBQ_REDIS_CLUSTER", "{both}");
    let braces = read(&[cluster, ("THUMBQ_KEY_PREFIX", "app{1}:")]).unwrap_err();
    assert_eq!(braces.var, "THUMBQ_KEY_PREFIX", "{braces}");
    assert!(read(&[("THUMBQ_KEY_PREFIX", "app{1}:")]).is_ok(), "braces are any prefix's on one Redis");
}
