//! Schema and forward migrations, versioned by `PRAGMA user_version`.

use rusqlite::Connection;

/// Each entry migrates from version `index` to `index + 1`. Never edit a released entry: add
/// a new one.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE scans (
    id INTEGER PRIMARY KEY,
    started_at TEXT NOT NULL,
    finished_at TEXT NOT NULL,
    plumbline_version TEXT NOT NULL,
    config_digest TEXT NOT NULL,
    filters TEXT NOT NULL,
    exit_code INTEGER NOT NULL,
    summary TEXT NOT NULL,
    row_hash TEXT
);
CREATE TABLE scan_sources (
    scan_id INTEGER NOT NULL REFERENCES scans(id),
    name TEXT NOT NULL,
    revision TEXT NOT NULL,
    commit_sha TEXT
);
CREATE TABLE scan_clusters (
    scan_id INTEGER NOT NULL REFERENCES scans(id),
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    error TEXT
);
CREATE TABLE scan_apps (
    scan_id INTEGER NOT NULL REFERENCES scans(id),
    app TEXT NOT NULL,
    cluster TEXT NOT NULL,
    source TEXT NOT NULL,
    path TEXT NOT NULL,
    commit_sha TEXT,
    status TEXT NOT NULL,
    objects INTEGER NOT NULL
);
CREATE TABLE commits (
    source TEXT NOT NULL,
    sha TEXT NOT NULL,
    author TEXT NOT NULL,
    author_time TEXT NOT NULL,
    committer TEXT NOT NULL,
    committer_time TEXT NOT NULL,
    message TEXT NOT NULL,
    files TEXT NOT NULL,
    PRIMARY KEY (source, sha)
);
CREATE TABLE app_commits (
    scan_id INTEGER NOT NULL REFERENCES scans(id),
    app TEXT NOT NULL,
    source TEXT NOT NULL,
    sha TEXT NOT NULL
);
CREATE TABLE findings (
    id INTEGER PRIMARY KEY,
    scan_id INTEGER NOT NULL REFERENCES scans(id),
    app TEXT NOT NULL,
    cluster TEXT NOT NULL,
    api_group TEXT NOT NULL,
    version TEXT NOT NULL,
    kind TEXT NOT NULL,
    namespace TEXT,
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    changes TEXT NOT NULL,
    managers TEXT NOT NULL,
    last_commit_sha TEXT,
    last_commit_author TEXT,
    last_commit_time TEXT,
    last_commit_message TEXT,
    reason TEXT,
    origin_file TEXT,
    origin_line INTEGER,
    patch TEXT,
    diff TEXT
);
CREATE TABLE policy_results (
    id INTEGER PRIMARY KEY,
    scan_id INTEGER NOT NULL REFERENCES scans(id),
    policy TEXT NOT NULL,
    severity TEXT NOT NULL,
    app TEXT,
    cluster TEXT NOT NULL,
    kind TEXT NOT NULL,
    namespace TEXT,
    name TEXT NOT NULL,
    state TEXT NOT NULL,
    message TEXT NOT NULL,
    waived INTEGER NOT NULL
);
CREATE TABLE errors (
    id INTEGER PRIMARY KEY,
    scan_id INTEGER NOT NULL REFERENCES scans(id),
    cluster TEXT,
    app TEXT,
    stage TEXT NOT NULL,
    message TEXT NOT NULL
);
CREATE INDEX findings_scan ON findings(scan_id, status);
CREATE INDEX findings_object ON findings(cluster, api_group, kind, namespace, name);
CREATE INDEX app_commits_scan ON app_commits(scan_id);
"#,
    r#"
CREATE TABLE notifications (
    id INTEGER PRIMARY KEY,
    scan_id INTEGER NOT NULL REFERENCES scans(id),
    channel TEXT NOT NULL,
    ok INTEGER NOT NULL,
    attempts INTEGER NOT NULL,
    error TEXT,
    headline TEXT NOT NULL,
    sent_at TEXT NOT NULL
);
CREATE TABLE alert_state (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"#,
    r#"
CREATE TABLE ticks (
    id INTEGER PRIMARY KEY,
    trigger TEXT NOT NULL,
    scheduled_at TEXT,
    outcome TEXT NOT NULL,
    started_at TEXT,
    finished_at TEXT,
    scan_id INTEGER REFERENCES scans(id),
    reason TEXT
);
CREATE INDEX ticks_scheduled ON ticks(trigger, scheduled_at);
"#,
    r#"
CREATE TABLE scan_policies (
    scan_id INTEGER NOT NULL REFERENCES scans(id),
    policy TEXT NOT NULL,
    title TEXT NOT NULL,
    severity TEXT NOT NULL,
    pack TEXT NOT NULL,
    controls TEXT NOT NULL
);
CREATE TABLE expired_waivers (
    scan_id INTEGER NOT NULL REFERENCES scans(id),
    policy TEXT NOT NULL,
    kind TEXT,
    namespace TEXT,
    name TEXT,
    reason TEXT NOT NULL,
    approved_by TEXT NOT NULL,
    expires TEXT NOT NULL,
    would_cover INTEGER NOT NULL
);
CREATE INDEX scan_policies_scan ON scan_policies(scan_id);
CREATE TABLE heal_actions (
    id INTEGER PRIMARY KEY,
    scan_id INTEGER NOT NULL REFERENCES scans(id),
    app TEXT NOT NULL,
    cluster TEXT NOT NULL,
    api_group TEXT NOT NULL,
    version TEXT NOT NULL,
    kind TEXT NOT NULL,
    namespace TEXT,
    name TEXT NOT NULL,
    action TEXT NOT NULL,
    status TEXT NOT NULL,
    reason TEXT,
    patch TEXT,
    dry_run INTEGER NOT NULL,
    at TEXT NOT NULL
);
CREATE INDEX heal_actions_scan ON heal_actions(scan_id);
"#,
    r#"
ALTER TABLE findings ADD COLUMN secret_digest TEXT;
CREATE INDEX policy_results_scan ON policy_results(scan_id);
"#,
];

pub fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    let version: i64 = conn.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(version.max(0) as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (index + 1) as i64)?;
        tx.commit()?;
    }
    Ok(())
}
