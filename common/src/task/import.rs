//! Where an imported task's original comes from (`POST /thumbnails` with a JSON body): a URL a worker fetches, or
//! a key under the import store (`THUMBQ_IMPORT_URL`). No bytes pass through the API: the worker reads them, stores
//! them as the task's original, and goes on as for an upload.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Longest key accepted, in bytes (S3's own limit).
pub const MAX_KEY_BYTES: usize = 1024;

/// The body of an import: exactly one of `source` and `key`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Import {
    /// An `http` or `https` URL, fetched by a worker through the address guard (no private or internal address
    /// unless `THUMBQ_FETCH_ALLOW_PRIVATE=1`, at most 3 redirects, each checked again).
    #[schema(example = "https://images.example.com/photos/a.jpg")]
    Source(String),
    /// An object's key under `THUMBQ_IMPORT_URL`, relative to its prefix: no leading `/`, no `.` or `..` segment.
    #[schema(example = "photos/2024/a.jpg")]
    Key(String),
}

impl Import {
    /// What the import names, for logs and messages.
    pub fn target(&self) -> &str {
        match self {
            Self::Source(url) => url,
            Self::Key(key) => key,
        }
    }
}

/// Checks that `key` names an object under the import store's prefix and nothing outside it: 1 to
/// [`MAX_KEY_BYTES`] bytes, relative, `/`-separated segments none of which is empty, `.` or `..`, and no backslash
/// or control character (a backslash is a separator to some stores and to Windows folders).
pub fn check_key(key: &str) -> Result<(), String> {
    if key.is_empty() || key.len() > MAX_KEY_BYTES {
        return Err(format!("a key is 1 to {MAX_KEY_BYTES} bytes"));
    }
    if key.starts_with('/') {
        return Err("a key is relative to the import store's prefix: it cannot start with /".into());
    }
    if key.chars().any(|c| c == '\\' || c.is_control()) {
        return Err("a key has no backslash and no control character".into());
    }
    if key.split('/').any(|segment| matches!(segment, "" | "." | "..")) {
        return Err("a key's segments cannot be empty, . or ..: it must stay under the import store's prefix".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_stays_under_the_prefix() {
        for good in ["a.jpg", "photos/2024/a.jpg", "é/ü b.png", "x..y/.hidden", &"k".repeat(MAX_KEY_BYTES)] {
            assert_eq!(check_key(good), Ok(()), "{good}");
        }
        let bad = [
            "",
            "/etc/passwd",
            "../secret.jpg",
            "photos/../../secret.jpg",
            "photos/./a.jpg",
            "photos//a.jpg",
            "photos/",
            ".",
            "..",
            "photos\\..\\a.jpg",
            "a\u{0}.jpg",
            "a\n.jpg",
        ];
        for key in bad {
            assert!(check_key(key).is_err(), "{key:?} was accepted");
        }
        assert!(check_key(&"k".repeat(MAX_KEY_BYTES + 1)).is_err());
    }

    #[test]
    fn an_import_is_one_field_named_for_what_it_is() {
        let source: Import = serde_json::from_str(r#"{"source": "https://a.example/b.jpg"}"#).unwrap();
        assert_eq!(source, Import::Source("https://a.example/b.jpg".into()));
        assert_eq!(serde_json::to_string(&Import::Key("a/b.jpg".into())).unwrap(), r#"{"key":"a/b.jpg"}"#);
        for bad in [r#"{}"#, r#"{"source": "x", "key": "y"}"#, r#"{"url": "x"}"#, r#"{"key": 3}"#, "[]"] {
            assert!(serde_json::from_str::<Import>(bad).is_err(), "{bad} was read");
        }
    }
}
