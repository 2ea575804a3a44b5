//! Secret redaction: values of a Secret's `data` and `stringData` never leave the comparison.
//!
//! A drifted Secret value that changes again between scans must still read as new drift,
//! though its redacted changes look the same. So the comparison keeps a keyed hash of the
//! live values it redacts (HMAC-SHA256 with a [`HashKey`] that is never stored beside it):
//! equal values give equal digests, and a digest alone cannot be checked against guesses.

use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;
use std::io::Write;
use std::path::Path;

pub const REDACTED: &str = "<redacted>";

pub fn is_secret(group: &str, kind: &str) -> bool {
    group.is_empty() && kind == "Secret"
}

/// True when a pointer into a Secret reaches secret material.
pub fn is_secret_path(pointer: &str) -> bool {
    ["/data", "/stringData"]
        .iter()
        .any(|p| pointer == *p || pointer.starts_with(&format!("{p}/")))
}

/// Replaces a value at a secret path: maps keep their keys, every value becomes `<redacted>`.
pub fn redact_value(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.keys()
                .map(|k| (k.clone(), Value::String(REDACTED.into())))
                .collect(),
        ),
        _ => Value::String(REDACTED.into()),
    }
}

/// Redacts a whole Secret object in place (for diffs and displays), including the
/// last-applied annotation, which holds the manifest in clear.
pub fn redact_object(object: &mut Value) {
    for field in ["data", "stringData"] {
        if let Some(value) = object.get_mut(field) {
            *value = redact_value(value);
        }
    }
    if let Some(annotations) = object
        .pointer_mut("/metadata/annotations")
        .and_then(Value::as_object_mut)
    {
        if annotations.contains_key("kubectl.kubernetes.io/last-applied-configuration") {
            annotations.insert(
                "kubectl.kubernetes.io/last-applied-configuration".into(),
                Value::String(REDACTED.into()),
            );
        }
    }
}

/// The key of the Secret value digests: `PLUMBLINE_HASH_KEY` when set, else 32 random bytes
/// in a file of the cache directory created once with mode 0600. It is kept out of the
/// database, so that the digests stored there cannot be tested against guessed values.
pub struct HashKey(Vec<u8>);

impl HashKey {
    /// The environment variable that supplies the key (any non-empty value).
    pub const ENV: &'static str = "PLUMBLINE_HASH_KEY";
    /// The key file's name in the cache directory.
    pub const FILE: &'static str = "secret-digest.key";

    /// The key from the environment, else from the key file, created when missing.
    pub fn load(cache_dir: &Path) -> std::io::Result<HashKey> {
        if let Some(key) = std::env::var_os(Self::ENV).filter(|k| !k.is_empty()) {
            return Ok(HashKey(key.into_encoded_bytes()));
        }
        let path = cache_dir.join(Self::FILE);
        if !path.exists() {
            std::fs::create_dir_all(cache_dir)?;
            // Written aside, then linked into place: a link never replaces a key that a
            // concurrent scan created first, and nobody ever reads a half-written key.
            let temp = cache_dir.join(format!("{}.{}", Self::FILE, std::process::id()));
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create(true).truncate(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let written = options.open(&temp).and_then(|mut file| {
                file.write_all(&rand::random::<[u8; 32]>())?;
                file.sync_all()
            });
            let linked = written.and_then(|()| std::fs::hard_link(&temp, &path));
            let _ = std::fs::remove_file(&temp);
            match linked {
                Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => return Err(e),
                _ => {}
            }
        }
        let key = std::fs::read(&path)?;
        if key.is_empty() {
            return Err(std::io::Error::other(format!(
                "{} is empty",
                path.display()
            )));
        }
        Ok(HashKey(key))
    }

    /// The digest of the live side of a Secret's redacted changes, given as (pointer, live
    /// value) pairs: hex HMAC-SHA256 over each pointer and its value.
    pub fn digest<'a>(
        &self,
        changes: impl IntoIterator<Item = (&'a str, Option<&'a Value>)>,
    ) -> String {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC accepts keys of any length");
        for (pointer, live) in changes {
            mac.update(pointer.as_bytes());
            mac.update(b"\0");
            match live {
                Some(value) => mac.update(value.to_string().as_bytes()),
                None => mac.update(b"\0absent"),
            }
            mac.update(b"\0");
        }
        hex::encode(mac.finalize().into_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn digests_follow_the_value_and_the_key() {
        let key = HashKey(b"one".to_vec());
        let a = json!("czNjcjN0");
        let b = json!("b3RoZXI=");
        let of = |key: &HashKey, v: &Value| key.digest([("/data/password", Some(v))]);
        assert_eq!(of(&key, &a), of(&key, &a));
        assert_ne!(of(&key, &a), of(&key, &b));
        assert_ne!(of(&key, &a), of(&HashKey(b"two".to_vec()), &a));
        assert_eq!(of(&key, &a).len(), 64);
    }

    #[test]
    fn the_key_file_is_created_once_and_private() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = dir.path().join("cache");
        if std::env::var_os(HashKey::ENV).is_some() {
            return;
        }
        let first = HashKey::load(&cache).expect("created");
        let second = HashKey::load(&cache).expect("read");
        assert_eq!(first.0, second.0);
        assert_eq!(first.0.len(), 32);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(cache.join(HashKey::FILE))
                .expect("key file")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert_eq!(std::fs::read_dir(&cache).expect("cache").count(), 1);
    }
}
