//! Who may do what: API keys, their scopes and their rate limits.
//!
//! A key is `tq_` and 43 base64url characters (32 random bytes). Only its SHA-256 is stored: the keys are random
//! and long, so a fast hash is as strong as a slow one here, and checking it costs nothing per request.

use std::{fmt, str::FromStr, time::Duration};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// What a key may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Upload images (`POST /thumbnails`), and cancel or delete the tasks it uploaded.
    Upload,
    /// Read task records and list tasks.
    Read,
    /// Everything: the dashboard, metrics, workers, stats, dead letters, keys, deleting any task.
    Admin,
}

impl Scope {
    /// Every scope.
    pub const ALL: [Self; 3] = [Self::Upload, Self::Read, Self::Admin];

    /// Its name, as in `--scopes upload,read`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Upload => "upload",
            Self::Read => "read",
            Self::Admin => "admin",
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A set of scopes, written `upload,read`. `admin` implies the others.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Scopes(Vec<Scope>);

impl Scopes {
    /// Every scope: what a caller has when keys are off.
    pub fn all() -> Self {
        Self(Scope::ALL.to_vec())
    }

    /// Whether these scopes allow `scope`.
    pub fn allow(&self, scope: Scope) -> bool {
        self.0.contains(&scope) || self.0.contains(&Scope::Admin)
    }
}

impl FromStr for Scopes {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut scopes = Vec::new();
        for name in s.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            let scope = Scope::ALL
                .into_iter()
                .find(|scope| scope.name() == name)
                .ok_or_else(|| format!("unknown scope {name:?}; scopes are upload, read and admin"))?;
            if !scopes.contains(&scope) {
                scopes.push(scope);
            }
        }
        if scopes.is_empty() {
            return Err("at least one scope is needed (upload, read, admin)".into());
        }
        scopes.sort();
        Ok(Self(scopes))
    }
}

impl fmt::Display for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<_> = self.0.iter().map(|s| s.name()).collect();
        f.write_str(&names.join(","))
    }
}

/// A sustained request rate, written `10/s`, `600/m` or `1000/h`; `0` or `off` means no limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate {
    /// Requests per `per` (0: unlimited).
    pub count: u32,
    /// The period.
    pub per: Duration,
}

impl Rate {
    /// No limit.
    pub const UNLIMITED: Self = Self { count: 0, per: Duration::from_secs(1) };

    /// The time between two requests at this rate (GCRA's emission interval), in microseconds; 0 when unlimited.
    pub fn interval_us(self) -> u64 {
        if self.count == 0 { 0 } else { (self.per.as_micros() / u128::from(self.count)).max(1) as u64 }
    }
}

impl FromStr for Rate {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s == "0" || s.eq_ignore_ascii_case("off") {
            return Ok(Self::UNLIMITED);
        }
        let bad = || format!("{s:?} is not a rate such as 10/s, 600/m or 1000/h (or off)");
        let (count, unit) = s.split_once('/').ok_or_else(bad)?;
        let count: u32 = count.trim().parse().map_err(|_| bad())?;
        let per = match unit.trim() {
            "s" => Duration::from_secs(1),
            "m" => Duration::from_secs(60),
            "h" => Duration::from_secs(3600),
            _ => return Err(bad()),
        };
        Ok(Self { count, per })
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = match self.per.as_secs() {
            60 => "m",
            3600 => "h",
            _ => "s",
        };
        if self.count == 0 { f.write_str("off") } else { write!(f, "{}/{unit}", self.count) }
    }
}

/// A rate with its burst: how many requests may come at once after a quiet spell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    /// The sustained rate.
    pub rate: Rate,
    /// The burst (≥ 1).
    pub burst: u32,
}

/// A new random API key: `tq_` and 43 base64url characters.
pub fn generate_key() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the operating system's random source is available");
    format!("tq_{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// The stored form of a key: its SHA-256, in hex.
pub fn key_hash(key: &str) -> String {
    Sha256::digest(key.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// A key name: 1 to 64 letters, digits, `-`, `_` or `.`.
pub fn valid_key_name(name: &str) -> Result<&str, String> {
    let ok = (1..=64).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    if ok { Ok(name) } else { Err(format!("{name:?} is not a key name: use 1 to 64 letters, digits, '-', '_', '.'")) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_parse_and_admin_allows_everything() {
        let scopes: Scopes = "read, upload,read".parse().unwrap();
        assert_eq!(scopes.to_string(), "upload,read");
        assert!(scopes.allow(Scope::Upload) && scopes.allow(Scope::Read) && !scopes.allow(Scope::Admin));
        let admin: Scopes = "admin".parse().unwrap();
        assert!(Scope::ALL.iter().all(|s| admin.allow(*s)));
        assert!("".parse::<Scopes>().is_err());
        assert!("upload,root".parse::<Scopes>().unwrap_err().contains("root"));
    }

    #[test]
    fn rates_parse_to_their_interval() {
        assert_eq!("10/s".parse::<Rate>().unwrap().interval_us(), 100_000);
        assert_eq!("600/m".parse::<Rate>().unwrap().interval_us(), 100_000);
        assert_eq!("off".parse::<Rate>().unwrap().interval_us(), 0);
        assert_eq!("3/h".parse::<Rate>().unwrap().to_string(), "3/h");
        for bad in ["10", "10/d", "x/s", "-1/s"] {
            assert!(bad.parse::<Rate>().is_err(), "{bad}");
        }
    }

    #[test]
    fn keys_are_random_and_only_their_hash_is_kept() {
        let (a, b) = (generate_key(), generate_key());
        assert_ne!(a, b);
        assert_eq!(a.len(), 46);
        assert_eq!(key_hash(&a).len(), 64);
        assert_ne!(key_hash(&a), key_hash(&b));
        assert_eq!(key_hash("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }
}
