//! The evidence database: every scan, its sources and commits, clusters, findings and errors,
//! in one SQLite file that auditors can query directly (schema in the README).
//!
//! A scan is written in one transaction, so a scan that is killed leaves no trace but the
//! scans before it.

mod schema;
mod ticks;

pub use ticks::{Coverage, Delivery, Gap, NoRun, Outcome as TickOutcome, Tick, Trigger};

use crate::model::{
    ClusterResult, CommitInfo, CommitRef, ExpiredWaiverNote, Finding, HealAction, Origin,
    PolicyResult, PolicyRule, ResourceKey, ScanError, ScanResult, SourceResult, Stage, Status,
    Summary, TrailCommit,
};
use rusqlite::{params, Connection, OptionalExtension};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database {path}: {source}")]
    Sqlite {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("database {path}: {message}")]
    Other { path: PathBuf, message: String },
}

pub struct Store {
    conn: Connection,
    path: PathBuf,
}

/// A line of `plumbline history`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ScanRow {
    pub scan_id: i64,
    pub started_at: String,
    pub finished_at: String,
    pub summary: Summary,
    pub exit_code: i32,
    pub filters: String,
}

/// Everything about a scan that is stored but not part of its JSON result.
pub struct ScanRecord<'a> {
    pub result: &'a ScanResult,
    pub config_digest: &'a str,
    pub filters: &'a str,
    pub exit_code: i32,
    pub apps: &'a [AppRecord],
}

/// One attempt to deliver a scan's alert on one channel.
#[derive(Debug, Clone)]
pub struct NotificationRecord {
    pub channel: String,
    pub ok: bool,
    pub attempts: u32,
    pub error: Option<String>,
    pub headline: String,
    pub sent_at: String,
}

/// How each policy fared over the scans of a period, by policy id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PolicyPeriod {
    /// Scans of the period that evaluated the policy (recorded it in their catalog).
    pub evaluated: BTreeMap<String, usize>,
    /// Scans of the period with at least one unwaived violation of the policy.
    pub violated: BTreeMap<String, usize>,
}

/// One app of a scan, as planned and rendered.
#[derive(Debug, Clone)]
pub struct AppRecord {
    pub app: String,
    pub cluster: String,
    pub source: String,
    pub path: String,
    pub commit: Option<String>,
    pub status: String,
    pub objects: usize,
}

impl Store {
    /// Opens (creating and migrating as needed) the database at `path`.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| StoreError::Other {
                path: path.to_path_buf(),
                message: format!("cannot create directory {}: {e}", parent.display()),
            })?;
        }
        let wrap = |source| StoreError::Sqlite {
            path: path.to_path_buf(),
            source,
        };
        let mut conn = Connection::open(path).map_err(wrap)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(wrap)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(wrap)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(wrap)?;
        schema::migrate(&mut conn).map_err(wrap)?;
        Ok(Store {
            conn,
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self, source: rusqlite::Error) -> StoreError {
        StoreError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }

    /// The commit of `source` recorded by the newest scan that fetched it.
    pub fn previous_commit(&self, source: &str) -> Result<Option<String>, StoreError> {
        self.conn
            .query_row(
                "SELECT commit_sha FROM scan_sources WHERE name = ?1 AND commit_sha IS NOT NULL
                 ORDER BY scan_id DESC LIMIT 1",
                params![source],
                |row| row.get(0),
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    /// Writes a whole scan in one transaction and returns its id; the result's `scan_id` is
    /// ignored and the stored row hash covers the result with the assigned id.
    pub fn save(&mut self, record: &ScanRecord) -> Result<(i64, String), StoreError> {
        let path = self.path.clone();
        let wrap = |source| StoreError::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(wrap)?;
        let result = record.result;
        let summary = serde_json::to_string(&result.summary).unwrap_or_default();
        tx.execute(
            "INSERT INTO scans (started_at, finished_at, plumbline_version, config_digest, filters, exit_code, summary)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                result.started_at,
                result.finished_at,
                env!("CARGO_PKG_VERSION"),
                record.config_digest,
                record.filters,
                record.exit_code,
                summary
            ],
        )
        .map_err(wrap)?;
        let scan_id = tx.last_insert_rowid();
        for source in &result.sources {
            tx.execute(
                "INSERT INTO scan_sources (scan_id, name, revision, commit_sha) VALUES (?1, ?2, ?3, ?4)",
                params![scan_id, source.name, source.revision, source.commit],
            )
            .map_err(wrap)?;
        }
        for cluster in &result.clusters {
            tx.execute(
                "INSERT INTO scan_clusters (scan_id, name, status, error) VALUES (?1, ?2, ?3, ?4)",
                params![scan_id, cluster.name, cluster.status, cluster.error],
            )
            .map_err(wrap)?;
        }
        for app in record.apps {
            tx.execute(
                "INSERT INTO scan_apps (scan_id, app, cluster, source, path, commit_sha, status, objects)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    scan_id,
                    app.app,
                    app.cluster,
                    app.source,
                    app.path,
                    app.commit,
                    app.status,
                    app.objects as i64
                ],
            )
            .map_err(wrap)?;
        }
        for trail in &result.commits {
            let c = &trail.commit;
            tx.execute(
                "INSERT OR IGNORE INTO commits (source, sha, author, author_time, committer, committer_time, message, files)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    trail.source,
                    c.sha,
                    c.author,
                    c.time,
                    c.committer,
                    c.committer_time,
                    c.message,
                    serde_json::to_string(&c.files).unwrap_or_default()
                ],
            )
            .map_err(wrap)?;
            for app in &trail.apps {
                tx.execute(
                    "INSERT INTO app_commits (scan_id, app, source, sha) VALUES (?1, ?2, ?3, ?4)",
                    params![scan_id, app, trail.source, c.sha],
                )
                .map_err(wrap)?;
            }
        }
        {
            let mut insert = tx
                .prepare(
                    "INSERT INTO findings (scan_id, app, cluster, api_group, version, kind, namespace, name, status,
                     changes, managers, last_commit_sha, last_commit_author, last_commit_time, last_commit_message,
                     reason, origin_file, origin_line, patch, diff, secret_digest)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21)",
                )
                .map_err(wrap)?;
            for f in &result.findings {
                let commit = f.last_commit.as_ref();
                insert
                    .execute(params![
                        scan_id,
                        f.app,
                        f.cluster,
                        f.group,
                        f.version,
                        f.kind,
                        f.namespace,
                        f.name,
                        f.status.as_str(),
                        serde_json::to_string(&f.changes).unwrap_or_default(),
                        serde_json::to_string(&f.managers).unwrap_or_default(),
                        commit.map(|c| c.sha.clone()),
                        commit.map(|c| c.author.clone()),
                        commit.map(|c| c.time.clone()),
                        commit.map(|c| c.message.clone()),
                        f.reason,
                        f.origin.as_ref().map(|o| o.file.clone()),
                        f.origin.as_ref().map(|o| o.line as i64),
                        f.patch.as_ref().map(|p| p.to_string()),
                        f.diff,
                        f.secret_digest
                    ])
                    .map_err(wrap)?;
            }
        }
        for p in &result.policy_results {
            tx.execute(
                "INSERT INTO policy_results (scan_id, policy, severity, app, cluster, kind, namespace, name, state, message, waived)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                params![scan_id, p.policy, p.severity, p.app, p.cluster, p.kind, p.namespace, p.name, p.state, p.message, p.waived],
            )
            .map_err(wrap)?;
        }
        for rule in &result.policies {
            tx.execute(
                "INSERT INTO scan_policies (scan_id, policy, title, severity, pack, controls)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    scan_id,
                    rule.id,
                    rule.title,
                    rule.severity,
                    rule.pack,
                    rule.controls.to_string()
                ],
            )
            .map_err(wrap)?;
        }
        for w in &result.expired_waivers {
            tx.execute(
                "INSERT INTO expired_waivers (scan_id, policy, kind, namespace, name, reason, approved_by, expires, would_cover)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![scan_id, w.policy, w.kind, w.namespace, w.name, w.reason, w.approved_by, w.expires, w.would_cover as i64],
            )
            .map_err(wrap)?;
        }
        for e in &result.errors {
            tx.execute(
                "INSERT INTO errors (scan_id, cluster, app, stage, message) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![scan_id, e.cluster, e.app, e.stage.as_str(), e.message],
            )
            .map_err(wrap)?;
        }
        let mut stored = result.clone();
        stored.scan_id = scan_id;
        let hash = row_hash(&stored);
        tx.execute(
            "UPDATE scans SET row_hash = ?1 WHERE id = ?2",
            params![hash, scan_id],
        )
        .map_err(wrap)?;
        tx.commit().map_err(wrap)?;
        Ok((scan_id, hash))
    }

    pub fn latest_scan_id(&self) -> Result<Option<i64>, StoreError> {
        self.conn
            .query_row("SELECT MAX(id) FROM scans", [], |row| row.get(0))
            .map_err(|e| self.err(e))
    }

    /// The stored scans, newest first.
    pub fn history(&self, limit: usize) -> Result<Vec<ScanRow>, StoreError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT id, started_at, finished_at, summary, exit_code, filters FROM scans ORDER BY id DESC LIMIT ?1",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params![limit as i64], |row| {
                let summary: String = row.get(3)?;
                Ok(ScanRow {
                    scan_id: row.get(0)?,
                    started_at: row.get(1)?,
                    finished_at: row.get(2)?,
                    summary: serde_json::from_str(&summary).unwrap_or_default(),
                    exit_code: row.get(4)?,
                    filters: row.get(5)?,
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(|e| self.err(e))
    }

    /// A value of the alert state (`baseline`, `pending:<channel>`), as the notify stage
    /// stored it.
    pub fn alert_state(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.conn
            .query_row(
                "SELECT value FROM alert_state WHERE key = ?1",
                params![key],
                |row| row.get(0),
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    /// Records the notification attempts of a scan and the alert state that goes with them,
    /// in one transaction: `None` removes a key.
    pub fn record_notifications(
        &mut self,
        scan_id: i64,
        attempts: &[NotificationRecord],
        state: &[(String, Option<String>)],
    ) -> Result<(), StoreError> {
        let path = self.path.clone();
        let wrap = |source| StoreError::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(wrap)?;
        for a in attempts {
            tx.execute(
                "INSERT INTO notifications (scan_id, channel, ok, attempts, error, headline, sent_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![scan_id, a.channel, a.ok, a.attempts, a.error, a.headline, a.sent_at],
            )
            .map_err(wrap)?;
        }
        for (key, value) in state {
            match value {
                Some(value) => tx.execute(
                    "INSERT INTO alert_state (key, value) VALUES (?1, ?2)
                     ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                    params![key, value],
                ),
                None => tx.execute("DELETE FROM alert_state WHERE key = ?1", params![key]),
            }
            .map_err(wrap)?;
        }
        tx.commit().map_err(wrap)
    }

    /// The configuration digest and row hash recorded with a scan.
    pub fn scan_meta(&self, scan_id: i64) -> Result<Option<(String, String)>, StoreError> {
        self.conn
            .query_row(
                "SELECT config_digest, COALESCE(row_hash, '') FROM scans WHERE id = ?1",
                params![scan_id],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    /// Rebuilds the result of a stored scan from its tables.
    pub fn load(&self, scan_id: i64) -> Result<Option<ScanResult>, StoreError> {
        let head = self
            .conn
            .query_row(
                "SELECT started_at, finished_at, summary FROM scans WHERE id = ?1",
                params![scan_id],
                |row| {
                    Ok((
                        row.get::<_, String>(0)?,
                        row.get::<_, String>(1)?,
                        row.get::<_, String>(2)?,
                    ))
                },
            )
            .optional()
            .map_err(|e| self.err(e))?;
        let Some((started_at, finished_at, summary)) = head else {
            return Ok(None);
        };
        let sources = self.scan_rows(
            "SELECT name, revision, commit_sha FROM scan_sources WHERE scan_id = ?1 ORDER BY rowid",
            scan_id,
            |row| {
                Ok(SourceResult {
                    name: row.get(0)?,
                    revision: row.get(1)?,
                    commit: row.get(2)?,
                })
            },
        )?;
        let clusters = self.scan_rows(
            "SELECT name, status, error FROM scan_clusters WHERE scan_id = ?1 ORDER BY rowid",
            scan_id,
            |row| {
                Ok(ClusterResult {
                    name: row.get(0)?,
                    status: row.get(1)?,
                    error: row.get(2)?,
                })
            },
        )?;
        let findings = self.scan_rows(
            "SELECT app, cluster, api_group, version, kind, namespace, name, status, changes,
                 managers, last_commit_sha, last_commit_author, last_commit_time,
                 last_commit_message, reason, origin_file, origin_line, patch, diff,
                 secret_digest FROM findings WHERE scan_id = ?1 ORDER BY id",
            scan_id,
            |row| {
                let status: String = row.get(7)?;
                let changes: String = row.get(8)?;
                let managers: String = row.get(9)?;
                let sha: Option<String> = row.get(10)?;
                let origin_file: Option<String> = row.get(15)?;
                let origin_line: Option<i64> = row.get(16)?;
                let patch: Option<String> = row.get(17)?;
                Ok(Finding {
                    app: row.get(0)?,
                    cluster: row.get(1)?,
                    group: row.get(2)?,
                    version: row.get(3)?,
                    kind: row.get(4)?,
                    namespace: row.get(5)?,
                    name: row.get(6)?,
                    status: Status::parse(&status).unwrap_or(Status::Modified),
                    changes: serde_json::from_str(&changes).unwrap_or_default(),
                    managers: serde_json::from_str(&managers).unwrap_or_default(),
                    last_commit: match sha {
                        Some(sha) => Some(CommitRef {
                            sha,
                            author: row.get::<_, Option<String>>(11)?.unwrap_or_default(),
                            time: row.get::<_, Option<String>>(12)?.unwrap_or_default(),
                            message: row.get::<_, Option<String>>(13)?.unwrap_or_default(),
                        }),
                        None => None,
                    },
                    reason: row.get(14)?,
                    origin: origin_file.map(|file| Origin {
                        file,
                        line: origin_line.unwrap_or(0).max(0) as usize,
                    }),
                    patch: patch.and_then(|p| serde_json::from_str(&p).ok()),
                    diff: row.get(18)?,
                    secret_digest: row.get(19)?,
                })
            },
        )?;
        let policy_results = self.scan_rows(
            "SELECT policy, severity, app, cluster, kind, namespace, name, state, message, waived
                 FROM policy_results WHERE scan_id = ?1 ORDER BY id",
            scan_id,
            |row| {
                Ok(PolicyResult {
                    policy: row.get(0)?,
                    severity: row.get(1)?,
                    app: row.get(2)?,
                    cluster: row.get(3)?,
                    kind: row.get(4)?,
                    namespace: row.get(5)?,
                    name: row.get(6)?,
                    state: row.get(7)?,
                    message: row.get(8)?,
                    waived: row.get(9)?,
                })
            },
        )?;
        let errors = self.scan_rows(
            "SELECT cluster, app, stage, message FROM errors WHERE scan_id = ?1 ORDER BY id",
            scan_id,
            |row| {
                let stage: String = row.get(2)?;
                Ok(ScanError {
                    cluster: row.get(0)?,
                    app: row.get(1)?,
                    stage: parse_stage(&stage),
                    message: row.get(3)?,
                })
            },
        )?;
        let commits = self.trail(scan_id)?;
        let heal_actions = self.heal_actions(scan_id)?;
        let policies = self.scan_rows(
            "SELECT policy, title, severity, pack, controls FROM scan_policies
                 WHERE scan_id = ?1 ORDER BY rowid",
            scan_id,
            |row| {
                let controls: String = row.get(4)?;
                Ok(PolicyRule {
                    id: row.get(0)?,
                    title: row.get(1)?,
                    severity: row.get(2)?,
                    pack: row.get(3)?,
                    controls: serde_json::from_str(&controls).unwrap_or_default(),
                })
            },
        )?;
        let expired_waivers = self.scan_rows(
            "SELECT policy, kind, namespace, name, reason, approved_by, expires, would_cover
                 FROM expired_waivers WHERE scan_id = ?1 ORDER BY rowid",
            scan_id,
            |row| {
                Ok(ExpiredWaiverNote {
                    policy: row.get(0)?,
                    kind: row.get(1)?,
                    namespace: row.get(2)?,
                    name: row.get(3)?,
                    reason: row.get(4)?,
                    approved_by: row.get(5)?,
                    expires: row.get(6)?,
                    would_cover: row.get::<_, i64>(7)?.max(0) as usize,
                })
            },
        )?;
        Ok(Some(ScanResult {
            scan_id,
            started_at,
            finished_at,
            sources,
            clusters,
            summary: serde_json::from_str(&summary).unwrap_or_default(),
            findings,
            policy_results,
            errors,
            commits,
            expired_waivers,
            policies,
            heal_actions,
        }))
    }

    /// The self-heal actions recorded against a scan, in the order they were taken.
    fn heal_actions(&self, scan_id: i64) -> Result<Vec<HealAction>, StoreError> {
        self.scan_rows(
            "SELECT app, cluster, api_group, version, kind, namespace, name, action, status,
                        reason, patch, dry_run, at
                 FROM heal_actions WHERE scan_id = ?1 ORDER BY id",
            scan_id,
            |row| {
                let patch: Option<String> = row.get(10)?;
                Ok(HealAction {
                    app: row.get(0)?,
                    cluster: row.get(1)?,
                    group: row.get(2)?,
                    version: row.get(3)?,
                    kind: row.get(4)?,
                    namespace: row.get(5)?,
                    name: row.get(6)?,
                    action: row.get(7)?,
                    status: row.get(8)?,
                    reason: row.get(9)?,
                    patch: patch.and_then(|p| serde_json::from_str(&p).ok()),
                    dry_run: row.get(11)?,
                    at: row.get(12)?,
                })
            },
        )
    }

    /// Records self-heal actions against the scan they acted on and recomputes its row
    /// hash in the same transaction, so the hash keeps matching the scan's JSON report,
    /// which lists the actions.
    pub fn record_heal(&mut self, scan_id: i64, actions: &[HealAction]) -> Result<(), StoreError> {
        self.conn
            .execute_batch("BEGIN IMMEDIATE")
            .map_err(|e| self.err(e))?;
        let written = self.write_heal(scan_id, actions);
        let outcome =
            written.and_then(|()| self.conn.execute_batch("COMMIT").map_err(|e| self.err(e)));
        if outcome.is_err() {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
        outcome
    }

    fn write_heal(&self, scan_id: i64, actions: &[HealAction]) -> Result<(), StoreError> {
        let e = |source| self.err(source);
        for a in actions {
            let patch = a.patch.as_ref().map(Value::to_string);
            self.conn
                .execute(
                    "INSERT INTO heal_actions (scan_id, app, cluster, api_group, version, kind,
                        namespace, name, action, status, reason, patch, dry_run, at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
                    params![
                        scan_id,
                        a.app,
                        a.cluster,
                        a.group,
                        a.version,
                        a.kind,
                        a.namespace,
                        a.name,
                        a.action,
                        a.status,
                        a.reason,
                        patch,
                        a.dry_run,
                        a.at
                    ],
                )
                .map_err(e)?;
        }
        let result = self.load(scan_id)?.ok_or_else(|| StoreError::Other {
            path: self.path.clone(),
            message: format!("no scan {scan_id} to record heal actions against"),
        })?;
        self.conn
            .execute(
                "UPDATE scans SET row_hash = ?1 WHERE id = ?2",
                params![row_hash(&result), scan_id],
            )
            .map_err(e)?;
        Ok(())
    }

    /// When each drift finding was first seen without an in-sync verdict since: the start
    /// of the earliest scan in its current run of drift, by app and resource.
    pub fn drift_open_since(
        &self,
        findings: &[&Finding],
    ) -> Result<HashMap<(String, ResourceKey), String>, StoreError> {
        let e = |err: rusqlite::Error| self.err(err);
        let mut statement = self
            .conn
            .prepare_cached(
                "SELECT MIN(s.started_at) FROM findings f JOIN scans s ON s.id = f.scan_id
                 WHERE f.app = ?1 AND f.cluster = ?2 AND f.api_group = ?3 AND f.kind = ?4
                   AND f.namespace IS ?5 AND f.name = ?6
                   AND f.status IN ('modified', 'missing', 'orphaned')
                   AND f.scan_id > COALESCE((
                     SELECT MAX(g.scan_id) FROM findings g
                     WHERE g.app = ?1 AND g.cluster = ?2 AND g.api_group = ?3 AND g.kind = ?4
                       AND g.namespace IS ?5 AND g.name = ?6
                       AND g.status IN ('in_sync', 'ignored')), 0)",
            )
            .map_err(e)?;
        let mut since = HashMap::new();
        for f in findings {
            let first: Option<String> = statement
                .query_row(
                    params![f.app, f.cluster, f.group, f.kind, f.namespace, f.name],
                    |row| row.get(0),
                )
                .map_err(e)?;
            if let Some(first) = first {
                since.insert((f.app.clone(), f.key()), first);
            }
        }
        Ok(since)
    }

    /// The rows a query over one scan (`?1` = the scan id) returns, each mapped by `map`.
    fn scan_rows<T>(
        &self,
        sql: &str,
        scan_id: i64,
        map: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Vec<T>, StoreError> {
        let e = |source| self.err(source);
        let mut statement = self.conn.prepare(sql).map_err(e)?;
        let rows = statement.query_map(params![scan_id], map).map_err(e)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(e)
    }

    fn trail(&self, scan_id: i64) -> Result<Vec<TrailCommit>, StoreError> {
        self.trail_between(scan_id, scan_id)
    }

    /// The commits recorded by the scans `first..=last`: the audit trail of a period.
    pub fn trail_between(&self, first: i64, last: i64) -> Result<Vec<TrailCommit>, StoreError> {
        let e = |err| self.err(err);
        let mut stmt = self
            .conn
            .prepare(
                "SELECT c.source, c.sha, c.author, c.author_time, c.committer, c.committer_time, c.message, c.files,
                        group_concat(a.app, char(10))
                 FROM app_commits a JOIN commits c ON c.source = a.source AND c.sha = a.sha
                 WHERE a.scan_id BETWEEN ?1 AND ?2
                 GROUP BY c.source, c.sha
                 ORDER BY c.committer_time DESC, c.sha",
            )
            .map_err(e)?;
        let rows = stmt
            .query_map(params![first, last], |row| {
                let files: String = row.get(7)?;
                let apps: Option<String> = row.get(8)?;
                let mut apps: Vec<String> = apps
                    .unwrap_or_default()
                    .split('\n')
                    .filter(|a| !a.is_empty())
                    .map(str::to_string)
                    .collect();
                apps.sort();
                apps.dedup();
                Ok(TrailCommit {
                    source: row.get(0)?,
                    commit: CommitInfo {
                        sha: row.get(1)?,
                        author: row.get(2)?,
                        time: row.get(3)?,
                        committer: row.get(4)?,
                        committer_time: row.get(5)?,
                        message: row.get(6)?,
                        files: serde_json::from_str(&files).unwrap_or_default(),
                    },
                    apps,
                })
            })
            .map_err(e)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(e)
    }

    /// Per policy, how many of the scans `first..=last` evaluated it and how many found an
    /// unwaived violation of it: whether a control held over a report's period.
    pub fn policy_period(&self, first: i64, last: i64) -> Result<PolicyPeriod, StoreError> {
        let e = |err| self.err(err);
        let count = |sql: &str| -> Result<BTreeMap<String, usize>, StoreError> {
            let mut stmt = self.conn.prepare(sql).map_err(e)?;
            let rows = stmt
                .query_map(params![first, last], |row| {
                    Ok((
                        row.get::<_, String>(0)?,
                        row.get::<_, i64>(1)?.max(0) as usize,
                    ))
                })
                .map_err(e)?;
            rows.collect::<Result<_, _>>().map_err(e)
        };
        Ok(PolicyPeriod {
            evaluated: count(
                "SELECT policy, COUNT(DISTINCT scan_id) FROM scan_policies
                 WHERE scan_id BETWEEN ?1 AND ?2 GROUP BY policy",
            )?,
            violated: count(
                "SELECT policy, COUNT(DISTINCT scan_id) FROM policy_results
                 WHERE scan_id BETWEEN ?1 AND ?2 AND waived = 0 GROUP BY policy",
            )?,
        })
    }
}

fn parse_stage(stage: &str) -> Stage {
    match stage {
        "config" => Stage::Config,
        "source" => Stage::Source,
        "render" => Stage::Render,
        "live" => Stage::Live,
        "diff" => Stage::Diff,
        "policy" => Stage::Policy,
        "store" => Stage::Store,
        _ => Stage::Notify,
    }
}

/// SHA-256 of the scan result exactly as `report --format json --include-in-sync` prints
/// it: recorded with the scan, so anyone can check a report against the database.
pub fn row_hash(result: &ScanResult) -> String {
    let json = crate::report::json::render(result, true);
    hex::encode(Sha256::digest(json.as_bytes()))
}
