//! An S3-compatible server of a test's own: moto's server (PyPI, installed into `.run/tools/moto` by
//! `deploy/native/test-tools.sh`), on a spare port, with an empty bucket; stopped on drop.

use std::{path::PathBuf, time::Duration};

use thumbq_common::settings::ObjectLocation;

use crate::support::{broker_node::spare_ports, daemon::Daemon, wait::Wait};

/// A running moto server holding one bucket.
pub struct S3Server {
    /// `http://127.0.0.1:<port>`.
    pub endpoint: String,
    /// The test's bucket.
    pub bucket: String,
    /// moto's server; stopping it drops the bucket (moto keeps everything in memory).
    _server: Daemon,
}

/// The moto server the project's scripts install.
fn moto_server() -> PathBuf {
    std::env::var_os("THUMBQ_MOTO_SERVER")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.run/tools/moto/bin/moto_server"))
}

impl S3Server {
    /// Starts a server and creates an empty bucket in it.
    pub async fn start() -> Self {
        let binary = moto_server();
        assert!(
            binary.exists(),
            "{} is missing: run `make test` (deploy/native/test-tools.sh installs it)",
            binary.display()
        );
        let [port] = spare_ports();
        let port_text = port.to_string();
        let daemon = Daemon::spawn(&binary, &["-H", "127.0.0.1", "-p", &port_text]);
        let unique = uuid::Uuid::new_v4().simple().to_string();
        let server = Self {
            endpoint: format!("http://127.0.0.1:{port}"),
            bucket: format!("thumbq-test-{}", &unique[..12]),
            _server: daemon,
        };
        let client = reqwest::Client::new();
        // moto needs no signature: a plain PUT creates the bucket.
        let bucket = format!("{}/{}", server.endpoint, server.bucket);
        Wait::new(format!("moto starts on {port}"))
            .every(Duration::from_millis(50))
            .until_ok(async || {
                let response = client.put(&bucket).send().await?;
                assert!(response.status().is_success(), "moto refused to create the bucket: {}", response.status());
                Ok::<_, reqwest::Error>(())
            })
            .await;
        server
    }

    /// The store location of `prefix` in the test's bucket, with the credentials moto accepts.
    pub fn location(&self, prefix: &str) -> ObjectLocation {
        self.location_via(&self.endpoint, prefix)
    }

    /// The same, reached through `endpoint` (a proxy in front of this server).
    pub fn location_via(&self, endpoint: &str, prefix: &str) -> ObjectLocation {
        let options = [
            ("aws_access_key_id", "thumbq-test"),
            ("aws_secret_access_key", "thumbq-test"),
            ("aws_region", "us-east-1"),
        ];
        ObjectLocation {
            url: format!("s3://{}/{prefix}", self.bucket),
            endpoint: Some(endpoint.to_owned()),
            options: options.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
        }
    }
}
