//! An import store (`THUMBQ_IMPORT_URL`) for a test app: a folder of the test's own, or the `library` prefix of the
//! app's S3 bucket, and putting images in it as a user's library would hold them.

use std::path::Path;

use thumbq_common::{
    Settings,
    settings::{ObjectLocation, StoreLocation},
};

use crate::support::TestApp;

/// The import store beside an app's file store: `folder` for a folder store, `s3://<its bucket>/library` for S3.
pub fn library_location(settings: &Settings, folder: &Path) -> StoreLocation {
    match &settings.store.location {
        StoreLocation::Object(store) => {
            let bucket = store.url.trim_start_matches("s3://").split('/').next().expect("a bucket");
            StoreLocation::Object(ObjectLocation { url: format!("s3://{bucket}/library"), ..store.clone() })
        }
        StoreLocation::Local(_) => StoreLocation::Local(folder.to_path_buf()),
    }
}

impl TestApp {
    /// Puts `bytes` at `key` of the app's import store.
    pub async fn put_in_library(&self, key: &str, bytes: Vec<u8>) {
        match self.settings.import.location.as_ref().expect("an import store") {
            StoreLocation::Local(dir) => {
                let path = dir.join(key);
                std::fs::create_dir_all(path.parent().expect("a folder")).expect("the folder is made");
                std::fs::write(path, bytes).expect("the file is written");
            }
            StoreLocation::Object(_) => {
                let s3 = self.s3.as_ref().expect("the app's S3 server");
                // moto needs no signature.
                let url = format!("{}/{}/library/{key}", s3.endpoint, s3.bucket);
                let response = self.client.put(url).body(bytes).send().await.expect("moto answers");
                assert!(response.status().is_success(), "moto refused the object: {}", response.status());
            }
        }
    }
}
