//! The daemon's coverage evidence: one row per scheduled tick (and per run asked for through
//! the API), so an auditor can see that monitoring ran when it should have, and every gap.

use super::{Store, StoreError};
use rusqlite::params;

/// What became of a tick. `Running` is only seen while a run is under way, or after the
/// process died during one and before the next daemon start marks it failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Running,
    Ran,
    Skipped,
    Failed,
    Missed,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Running => "running",
            Outcome::Ran => "ran",
            Outcome::Skipped => "skipped",
            Outcome::Failed => "failed",
            Outcome::Missed => "missed",
        }
    }

    fn parse(text: &str) -> Outcome {
        match text {
            "running" => Outcome::Running,
            "ran" => Outcome::Ran,
            "skipped" => Outcome::Skipped,
            "missed" => Outcome::Missed,
            _ => Outcome::Failed,
        }
    }
}

/// Why a run was started: the cron schedule, or `POST /scan`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    Schedule,
    Api,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Schedule => "schedule",
            Trigger::Api => "api",
        }
    }
}

/// A row of the `ticks` table.
#[derive(Debug, Clone, PartialEq)]
pub struct Tick {
    pub id: i64,
    pub trigger: String,
    pub scheduled_at: Option<String>,
    pub outcome: Outcome,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub scan_id: Option<i64>,
    pub reason: Option<String>,
}

/// A tick that did not lead to a run, recorded as it is decided.
#[derive(Debug, Clone)]
pub struct NoRun {
    pub scheduled_at: String,
    pub outcome: Outcome,
    pub reason: String,
}

/// How much of a period the schedule covered: the scheduled ticks in it, and the gaps
/// (skipped, failed and missed ticks) with consecutive alike ones merged.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Coverage {
    pub expected: usize,
    pub executed: usize,
    pub gaps: Vec<Gap>,
}

/// A run of consecutive scheduled ticks that did not execute, for the same reason.
#[derive(Debug, Clone, PartialEq)]
pub struct Gap {
    pub outcome: &'static str,
    pub first: String,
    pub last: String,
    pub ticks: usize,
    pub reason: String,
}

/// One delivery attempt of a scan's alert, as the metrics count them.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    pub channel: String,
    pub ok: bool,
    pub attempts: u32,
}

impl Store {
    /// Records the start of a run and returns its tick id.
    pub fn begin_tick(
        &self,
        trigger: Trigger,
        scheduled_at: Option<&str>,
        started_at: &str,
    ) -> Result<i64, StoreError> {
        self.conn
            .execute(
                "INSERT INTO ticks (trigger, scheduled_at, outcome, started_at) VALUES (?1, ?2, ?3, ?4)",
                params![trigger.as_str(), scheduled_at, Outcome::Running.as_str(), started_at],
            )
            .map_err(|e| self.err(e))?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Records how a run ended. Only a tick still running changes, so the first word on a
    /// run (its own end, or its abandonment at shutdown) is the one kept.
    pub fn finish_tick(
        &self,
        id: i64,
        outcome: Outcome,
        finished_at: &str,
        scan_id: Option<i64>,
        reason: Option<&str>,
    ) -> Result<(), StoreError> {
        self.conn
            .execute(
                "UPDATE ticks SET outcome = ?1, finished_at = ?2, scan_id = ?3, reason = ?4
                 WHERE id = ?5 AND outcome = 'running'",
                params![outcome.as_str(), finished_at, scan_id, reason, id],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Records scheduled ticks that did not run (skipped or missed), in one transaction.
    pub fn record_no_runs(&mut self, ticks: &[NoRun]) -> Result<(), StoreError> {
        let path = self.path.clone();
        let wrap = |source| StoreError::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(wrap)?;
        {
            let mut insert = tx
                .prepare(
                    "INSERT INTO ticks (trigger, scheduled_at, outcome, reason) VALUES ('schedule', ?1, ?2, ?3)",
                )
                .map_err(wrap)?;
            for tick in ticks {
                insert
                    .execute(params![
                        tick.scheduled_at,
                        tick.outcome.as_str(),
                        tick.reason
                    ])
                    .map_err(wrap)?;
            }
        }
        tx.commit().map_err(wrap)
    }

    /// Marks the runs that a previous process left running (it was killed during them) as
    /// failed, and returns how many there were.
    pub fn fail_interrupted_ticks(&self, reason: &str) -> Result<usize, StoreError> {
        self.conn
            .execute(
                "UPDATE ticks SET outcome = 'failed', reason = ?1 WHERE outcome = 'running'",
                params![reason],
            )
            .map_err(|e| self.err(e))
    }

    /// The scheduled time of the newest scheduled tick, whatever became of it.
    pub fn last_scheduled_tick(&self) -> Result<Option<String>, StoreError> {
        self.conn
            .query_row(
                "SELECT MAX(scheduled_at) FROM ticks WHERE trigger = 'schedule'",
                [],
                |row| row.get(0),
            )
            .map_err(|e| self.err(e))
    }

    /// The newest ticks, newest first.
    #[cfg(test)]
    fn ticks(&self, limit: usize) -> Result<Vec<Tick>, StoreError> {
        let e = |err| self.err(err);
        self.conn
            .prepare(
                "SELECT id, trigger, scheduled_at, outcome, started_at, finished_at, scan_id, reason
                 FROM ticks ORDER BY id DESC LIMIT ?1",
            )
            .map_err(e)?
            .query_map(params![limit as i64], tick_row)
            .map_err(e)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(e)
    }

    /// Where the period of a report starts: the scheduled time of the tick that ran the
    /// scan, or the scan's start when it was not run by the schedule.
    pub fn period_from(&self, scan_id: i64) -> Result<Option<String>, StoreError> {
        self.conn
            .query_row(
                "SELECT MIN(t) FROM (SELECT started_at AS t FROM scans WHERE id = ?1
                 UNION ALL SELECT scheduled_at FROM ticks WHERE scan_id = ?1 AND scheduled_at IS NOT NULL)",
                params![scan_id],
                |row| row.get(0),
            )
            .map_err(|e| self.err(e))
    }

    /// How the schedule was kept between two times (inclusive): every scheduled tick, and
    /// the ticks that did not execute, merged into gaps.
    pub fn coverage(&self, from: &str, to: &str) -> Result<Coverage, StoreError> {
        let e = |err| self.err(err);
        let ticks = self
            .conn
            .prepare(
                "SELECT id, trigger, scheduled_at, outcome, started_at, finished_at, scan_id, reason
                 FROM ticks WHERE trigger = 'schedule' AND scheduled_at BETWEEN ?1 AND ?2
                 ORDER BY scheduled_at, id",
            )
            .map_err(e)?
            .query_map(params![from, to], tick_row)
            .map_err(e)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(e)?;
        let mut coverage = Coverage {
            expected: ticks.len(),
            ..Coverage::default()
        };
        let mut open = false;
        for tick in ticks {
            if matches!(tick.outcome, Outcome::Ran | Outcome::Running) {
                coverage.executed += 1;
                open = false;
                continue;
            }
            let at = tick.scheduled_at.unwrap_or_default();
            let reason = tick.reason.unwrap_or_default();
            let outcome = tick.outcome.as_str();
            match coverage.gaps.last_mut() {
                Some(gap) if open && gap.outcome == outcome && gap.reason == reason => {
                    gap.last = at;
                    gap.ticks += 1;
                }
                _ => coverage.gaps.push(Gap {
                    outcome,
                    first: at.clone(),
                    last: at,
                    ticks: 1,
                    reason,
                }),
            }
            open = true;
        }
        Ok(coverage)
    }

    /// The alert deliveries recorded for a scan.
    pub fn deliveries(&self, scan_id: i64) -> Result<Vec<Delivery>, StoreError> {
        let e = |err| self.err(err);
        self.conn
            .prepare(
                "SELECT channel, ok, attempts FROM notifications WHERE scan_id = ?1 ORDER BY id",
            )
            .map_err(e)?
            .query_map(params![scan_id], |row| {
                Ok(Delivery {
                    channel: row.get(0)?,
                    ok: row.get(1)?,
                    attempts: row.get(2)?,
                })
            })
            .map_err(e)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(e)
    }
}

fn tick_row(row: &rusqlite::Row) -> rusqlite::Result<Tick> {
    let outcome: String = row.get(3)?;
    Ok(Tick {
        id: row.get(0)?,
        trigger: row.get(1)?,
        scheduled_at: row.get(2)?,
        outcome: Outcome::parse(&outcome),
        started_at: row.get(4)?,
        finished_at: row.get(5)?,
        scan_id: row.get(6)?,
        reason: row.get(7)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("p.db")).expect("open");
        (dir, store)
    }

    #[test]
    fn runs_are_begun_and_finished_once() {
        let (_dir, store) = store();
        let id = store
            .begin_tick(
                Trigger::Schedule,
                Some("2026-01-01T00:00:00Z"),
                "2026-01-01T00:00:00Z",
            )
            .expect("begin");
        store
            .finish_tick(id, Outcome::Ran, "2026-01-01T00:00:03Z", None, None)
            .expect("finish");
        // A late abandonment does not overwrite the run's own end.
        store
            .finish_tick(
                id,
                Outcome::Failed,
                "2026-01-01T00:00:04Z",
                None,
                Some("abandoned"),
            )
            .expect("finish again");
        let ticks = store.ticks(10).expect("ticks");
        assert_eq!(ticks.len(), 1);
        assert_eq!(ticks[0].outcome, Outcome::Ran);
        assert_eq!(
            ticks[0].finished_at.as_deref(),
            Some("2026-01-01T00:00:03Z")
        );
    }

    #[test]
    fn interrupted_runs_are_failed_on_the_next_start() {
        let (_dir, store) = store();
        store
            .begin_tick(Trigger::Api, None, "2026-01-01T00:00:00Z")
            .expect("begin");
        assert_eq!(
            store.fail_interrupted_ticks("interrupted").expect("fail"),
            1
        );
        let ticks = store.ticks(10).expect("ticks");
        assert_eq!(ticks[0].outcome, Outcome::Failed);
        assert_eq!(ticks[0].reason.as_deref(), Some("interrupted"));
    }

    #[test]
    fn coverage_merges_consecutive_gaps() {
        let (_dir, mut store) = store();
        let at = |s: u32| format!("2026-01-01T00:00:{s:02}Z");
        let ran = |store: &Store, s: u32| {
            let id = store
                .begin_tick(Trigger::Schedule, Some(&at(s)), &at(s))
                .expect("begin");
            store
                .finish_tick(id, Outcome::Ran, &at(s), None, None)
                .expect("finish");
        };
        ran(&store, 0);
        let missed = |s: u32| NoRun {
            scheduled_at: at(s),
            outcome: Outcome::Missed,
            reason: "the daemon was not running".into(),
        };
        store
            .record_no_runs(&[missed(10), missed(20), missed(30)])
            .expect("missed");
        ran(&store, 40);
        store
            .record_no_runs(&[NoRun {
                scheduled_at: at(50),
                outcome: Outcome::Skipped,
                reason: "a scan was still running".into(),
            }])
            .expect("skipped");
        store
            .begin_tick(Trigger::Api, None, &at(55))
            .expect("api runs are not scheduled ticks");

        let coverage = store.coverage(&at(0), &at(59)).expect("coverage");
        assert_eq!((coverage.expected, coverage.executed), (6, 2));
        assert_eq!(
            coverage.gaps,
            vec![
                Gap {
                    outcome: "missed",
                    first: at(10),
                    last: at(30),
                    ticks: 3,
                    reason: "the daemon was not running".into()
                },
                Gap {
                    outcome: "skipped",
                    first: at(50),
                    last: at(50),
                    ticks: 1,
                    reason: "a scan was still running".into()
                },
            ]
        );
        assert_eq!(store.last_scheduled_tick().expect("last"), Some(at(50)));
        assert_eq!(
            store.coverage(&at(31), &at(45)).expect("coverage").gaps,
            vec![]
        );
    }
}
