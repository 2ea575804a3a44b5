//! The render cache: what an app rendered to, keyed by the Git content the render read, so
//! that a scan whose Git content did not change renders nothing.
//!
//! An entry is found in two steps. The *identity* names what was asked (renderer, path,
//! options, engine versions, cluster capabilities for Helm); an identity has one entry per
//! content it was rendered from. The *content key* hashes the Git object ids of every path
//! the render read (files and directories, so an added file changes it too). Which paths a
//! render reads is only known after it ran, so each entry keeps its list of inputs and a
//! lookup recomputes the content key of that list at the current commit.
//!
//! Renders holding Secret values are never stored: Secret values do not sit in a file in
//! clear, not even in a cache.

use super::Rendered;
use crate::config::RenderCacheConfig;
use crate::model::{Origin, Resource};
use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS renders (
    identity TEXT NOT NULL,
    content_key TEXT NOT NULL,
    inputs TEXT NOT NULL,
    objects BLOB NOT NULL,
    size INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    used_at INTEGER NOT NULL,
    PRIMARY KEY (identity, content_key)
);
CREATE INDEX IF NOT EXISTS renders_used_at ON renders (used_at);
";

/// Hits and misses of one scan.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    pub hits: usize,
    pub misses: usize,
}

/// A SQLite file of rendered apps, shared by every scan that uses the same cache directory.
pub struct RenderCache {
    conn: Mutex<Connection>,
    limits: RenderCacheConfig,
    hits: AtomicUsize,
    misses: AtomicUsize,
}

/// One stored object: the body and where in Git it came from (the audit trail needs it).
#[derive(Serialize, Deserialize)]
struct StoredObject {
    body: serde_json::Value,
    file: Option<String>,
    line: Option<usize>,
}

#[derive(Serialize, Deserialize)]
struct StoredRender {
    objects: Vec<StoredObject>,
    inputs: Vec<String>,
    warnings: Vec<String>,
}

impl RenderCache {
    /// Opens (or creates) the cache file.
    pub fn open(path: &Path, limits: &RenderCacheConfig) -> Result<RenderCache, String> {
        let fail = |e: &dyn std::fmt::Display| format!("render cache {}: {e}", path.display());
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| fail(&e))?;
        }
        let conn = Connection::open(path).map_err(|e| fail(&e))?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(|e| fail(&e))?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(|e| fail(&e))?;
        // A cache may lose its last writes in a power cut (they are rendered again), but
        // not be corrupted: with WAL, NORMAL keeps it consistent without a sync per hit.
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(|e| fail(&e))?;
        conn.execute_batch(SCHEMA).map_err(|e| fail(&e))?;
        Ok(RenderCache {
            conn: Mutex::new(conn),
            limits: limits.clone(),
            hits: AtomicUsize::new(0),
            misses: AtomicUsize::new(0),
        })
    }

    /// Counts since the cache was opened.
    pub fn stats(&self) -> CacheStats {
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
        }
    }

    /// The render stored for `identity` whose inputs still have the same Git content;
    /// `content_key` computes the key of a list of inputs at the current commit (`None` when
    /// it cannot, which is a miss).
    pub fn lookup(
        &self,
        identity: &str,
        content_key: &dyn Fn(&[String]) -> Option<String>,
    ) -> Option<Rendered> {
        let found = self.find(identity, content_key);
        match &found {
            Some(_) => self.hits.fetch_add(1, Ordering::Relaxed),
            None => self.misses.fetch_add(1, Ordering::Relaxed),
        };
        found
    }

    fn find(
        &self,
        identity: &str,
        content_key: &dyn Fn(&[String]) -> Option<String>,
    ) -> Option<Rendered> {
        let candidates: Vec<(String, String)> = {
            let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
            let mut statement = conn
                .prepare_cached(
                    "SELECT content_key, inputs FROM renders WHERE identity = ?1
                     ORDER BY used_at DESC",
                )
                .ok()?;
            let rows = statement
                .query_map([identity], |row| Ok((row.get(0)?, row.get(1)?)))
                .ok()?;
            rows.filter_map(Result::ok).collect()
        };
        // Entries of one identity usually share their inputs: hash each list once.
        let mut computed: Vec<(&str, Option<String>)> = Vec::new();
        let key = candidates.iter().find_map(|(stored_key, inputs)| {
            let current = match computed.iter().find(|(i, _)| *i == inputs.as_str()) {
                Some((_, key)) => key.clone(),
                None => {
                    let list: Vec<String> = serde_json::from_str(inputs).ok()?;
                    let key = content_key(&list);
                    computed.push((inputs, key.clone()));
                    key
                }
            };
            (current.as_deref() == Some(stored_key.as_str())).then(|| stored_key.clone())
        })?;
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let blob: Vec<u8> = conn
            .query_row(
                "SELECT objects FROM renders WHERE identity = ?1 AND content_key = ?2",
                params![identity, key],
                |row| row.get(0),
            )
            .optional()
            .ok()??;
        let _ = conn.execute(
            "UPDATE renders SET used_at = ?3 WHERE identity = ?1 AND content_key = ?2",
            params![identity, key, unix_now()],
        );
        decode(&blob)
    }

    /// Stores a fresh render under its identity and content key. Renders holding Secret
    /// values are not stored. A cache that cannot be written only costs a render next time.
    pub fn store(&self, identity: &str, content_key: &str, rendered: &Rendered) {
        if rendered.objects.iter().any(holds_secret_values) {
            return;
        }
        let Some(blob) = encode(rendered) else {
            return;
        };
        let Ok(inputs) = serde_json::to_string(&rendered.inputs) else {
            return;
        };
        let now = unix_now();
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(e) = conn.execute(
            "INSERT OR REPLACE INTO renders
             (identity, content_key, inputs, objects, size, created_at, used_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
            params![identity, content_key, inputs, blob, blob.len() as i64, now],
        ) {
            tracing::warn!("render cache: cannot store a render: {e}");
        }
    }

    /// Drops entries unused for longer than the age limit, then the least recently used
    /// ones until the cache fits its size limit.
    pub fn evict(&self) {
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let oldest = unix_now() - (self.limits.max_age_days as i64) * 86_400;
        let limit = (self.limits.max_size_mb as i64) * 1024 * 1024;
        let result = conn
            .execute("DELETE FROM renders WHERE used_at < ?1", [oldest])
            .and_then(|_| {
                conn.execute(
                    "DELETE FROM renders WHERE rowid IN (
                        SELECT rowid FROM (
                            SELECT rowid, SUM(size) OVER (ORDER BY used_at DESC, rowid DESC)
                                AS running
                            FROM renders
                        ) WHERE running > ?1
                    )",
                    [limit],
                )
            });
        if let Err(e) = result {
            tracing::warn!("render cache: eviction failed: {e}");
        }
    }
}

/// Hashes the parts of an identity or a content key, each length-prefixed so that no two
/// different lists hash alike.
pub fn digest<'a>(parts: impl IntoIterator<Item = &'a str>) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update((part.len() as u64).to_le_bytes());
        hasher.update(part.as_bytes());
    }
    hex::encode(hasher.finalize())
}

/// A Secret whose manifest carries values (`data` or `stringData`).
fn holds_secret_values(object: &Resource) -> bool {
    object.key.group.is_empty()
        && object.key.kind == "Secret"
        && ["data", "stringData"].iter().any(|field| {
            object
                .body
                .get(field)
                .is_some_and(|v| v.as_object().is_none_or(|m| !m.is_empty()))
        })
}

fn encode(rendered: &Rendered) -> Option<Vec<u8>> {
    let stored = StoredRender {
        objects: rendered
            .objects
            .iter()
            .map(|o| StoredObject {
                body: o.body.clone(),
                file: o.origin.as_ref().map(|origin| origin.file.clone()),
                line: o.origin.as_ref().map(|origin| origin.line),
            })
            .collect(),
        inputs: rendered.inputs.clone(),
        warnings: rendered.warnings.clone(),
    };
    let json = serde_json::to_vec(&stored).ok()?;
    let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(&json).ok()?;
    encoder.finish().ok()
}

fn decode(blob: &[u8]) -> Option<Rendered> {
    let mut json = Vec::new();
    flate2::read::ZlibDecoder::new(blob)
        .read_to_end(&mut json)
        .ok()?;
    let stored: StoredRender = serde_json::from_slice(&json).ok()?;
    let mut objects = Vec::with_capacity(stored.objects.len());
    for object in stored.objects {
        let mut resource = Resource::from_value(object.body).ok()?;
        resource.origin = match (object.file, object.line) {
            (Some(file), Some(line)) => Some(Origin { file, line }),
            _ => None,
        };
        objects.push(resource);
    }
    Some(Rendered {
        objects,
        inputs: stored.inputs,
        warnings: stored.warnings,
    })
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}
