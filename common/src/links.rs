//! The URLs thumbq hands out: absolute, from `THUMBQ_PUBLIC_URL`, and signed when `THUMBQ_SIGNED_URLS=1`:
//! `/thumbnails/<name>?expires=<unix seconds>&sig=<signature>`, the signature being HMAC-SHA256 over
//! `<name>:<expires>` with `THUMBQ_URL_SIGNING_KEY`, base64url. Every process with the same key accepts every other's
//! URLs; changing the key invalidates all of them. The API answers with these URLs, and the worker's webhooks carry
//! the same. This is the one place outside the API that knows one of its routes (the download path
//! `/thumbnails/<name>`, served by `api/src/routes/thumbnails/`): change both together.

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};

use crate::{
    Settings, TaskRecord,
    settings::UrlSigning,
    task::{ResizeArgs, ThumbnailName, Variant},
};

/// Why a download URL's signature does not hold.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SignatureError {
    /// No `expires` or `sig`.
    #[error("this URL is not signed: ask the API for the thumbnail's URL")]
    Unsigned,
    /// The signature is not this name's and expiry's.
    #[error("the URL's signature is not valid")]
    Invalid,
    /// Past its expiry.
    #[error("the URL has expired: ask the API for a fresh one")]
    Expired,
}

/// Builds the absolute (and, when on, signed) URLs of thumbnails and task records.
#[derive(Clone, Debug)]
pub struct Links {
    public_url: String,
    signer: Option<UrlSigner>,
}

impl Links {
    /// The links these settings ask for.
    pub fn new(settings: &Settings) -> Self {
        Self {
            public_url: settings.http.public_url.clone(),
            signer: settings.access.signed_urls.clone().map(UrlSigner::new),
        }
    }

    /// The signer, when signed URLs are on.
    pub fn signer(&self) -> Option<&UrlSigner> {
        self.signer.as_ref()
    }

    /// The absolute URL of the thumbnail `name`, signed when signed URLs are on.
    pub fn thumbnail_url(&self, name: &str) -> String {
        let base = &self.public_url;
        match &self.signer {
            Some(signer) => format!("{base}/thumbnails/{name}?{}", signer.query(name, Utc::now())),
            None => format!("{base}/thumbnails/{name}"),
        }
    }

    /// A record as clients see it: with the URLs of its thumbnail and renditions; with `format=auto`, each URL
    /// the one that serves the best format the client accepts, and each variant's own.
    pub fn with_urls(&self, mut record: TaskRecord) -> TaskRecord {
        for rendition in &mut record.renditions {
            (rendition.url, rendition.variants) = self.urls_of(&rendition.file, &rendition.args);
        }
        let (url, variants) = self.urls_of(&record.name, &record.args);
        TaskRecord { url, variants, ..record }
    }

    /// The URL of the file `file` made with `args`, and with `format=auto` its variants' (the fallback, `file`,
    /// first).
    fn urls_of(&self, file: &str, args: &ResizeArgs) -> (Option<String>, Vec<Variant>) {
        let Ok(name) = file.parse::<ThumbnailName>() else { return (Some(self.thumbnail_url(file)), Vec::new()) };
        if !args.auto {
            return (Some(self.thumbnail_url(file)), Vec::new());
        }
        let variants = args.variants().into_iter().map(|variant| {
            let file = ThumbnailName { format: variant.format, ..name.clone() }.to_string();
            Variant { format: variant.format, url: self.thumbnail_url(&file), file }
        });
        (Some(self.thumbnail_url(&name.negotiated().to_string())), variants.collect())
    }
}

/// Signs and checks download URLs.
#[derive(Clone, Debug)]
pub struct UrlSigner(UrlSigning);

impl UrlSigner {
    /// A signer with these settings.
    pub fn new(settings: UrlSigning) -> Self {
        Self(settings)
    }

    fn mac(&self, name: &str, expires: i64) -> Hmac<Sha256> {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(self.0.key.expose().as_bytes()).expect("HMAC takes any key length");
        mac.update(format!("{name}:{expires}").as_bytes());
        mac
    }

    /// The query string (`expires=…&sig=…`) of a URL for `name` valid from `now` for the configured TTL.
    pub fn query(&self, name: &str, now: DateTime<Utc>) -> String {
        let expires = now.timestamp() + i64::try_from(self.0.ttl.as_secs()).unwrap_or(i64::MAX / 2);
        let sig = URL_SAFE_NO_PAD.encode(self.mac(name, expires).finalize().into_bytes());
        format!("expires={expires}&sig={sig}")
    }

    /// Ok when `expires` and `sig` are a valid, unexpired signature of `name`.
    pub fn verify(
        &self,
        name: &str,
        expires: Option<i64>,
        sig: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<(), SignatureError> {
        let (Some(expires), Some(sig)) = (expires, sig) else {
            return Err(SignatureError::Unsigned);
        };
        let signature = URL_SAFE_NO_PAD.decode(sig).unwrap_or_default();
        // `verify_slice` compares in constant time.
        if self.mac(name, expires).verify_slice(&signature).is_err() {
            return Err(SignatureError::Invalid);
        }
        if expires < now.timestamp() {
            return Err(SignatureError::Expired);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::settings::Secret;

    use super::*;

    fn signer(key: &str) -> UrlSigner {
        UrlSigner::new(UrlSigning { key: Secret::new(key.into()), ttl: Duration::from_secs(60) })
    }

    fn parts(query: &str) -> (Option<i64>, String) {
        let (expires, sig) = query.split_once('&').unwrap();
        (expires.strip_prefix("expires=").unwrap().parse().ok(), sig.strip_prefix("sig=").unwrap().to_owned())
    }

    #[test]
    fn a_signature_holds_for_its_name_until_it_expires() {
        let (signer, now) = (signer("k".repeat(32).as_str()), Utc::now());
        let (expires, sig) = parts(&signer.query("a.png", now));
        assert!(signer.verify("a.png", expires, Some(&sig), now).is_ok());
        assert!(signer.verify("b.png", expires, Some(&sig), now).is_err(), "another name");
        assert!(signer.verify("a.png", expires.map(|e| e + 1), Some(&sig), now).is_err(), "another expiry");
        let later = now + chrono::Duration::seconds(61);
        assert!(signer.verify("a.png", expires, Some(&sig), later).is_err(), "expired");
        assert!(signer.verify("a.png", None, None, now).is_err(), "unsigned");
        let other = self::signer("x".repeat(32).as_str());
        assert!(other.verify("a.png", expires, Some(&sig), now).is_err(), "another key");
    }
}
