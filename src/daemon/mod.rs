//! `plumbline daemon`: scans on the configured cron schedule (UTC), serves health, readiness
//! and metrics endpoints, and records every scheduled tick as coverage evidence.
//!
//! One scan runs at a time. A tick that comes while a scan is still running is recorded as
//! skipped; ticks that passed while the process was stopped, paused or asleep are recorded
//! as missed, never run late one after another. A shutdown (SIGTERM, SIGINT) lets the
//! running scan finish within the grace period and otherwise abandons it: its transaction
//! never commits, so the database holds the whole scan or none of it.

mod http;
mod lock;
mod metrics;

pub use metrics::Metrics;

use crate::cli::exit;
use crate::config::Config;
use crate::scan::{self, ScanOptions};
use crate::store::{NoRun, Store, TickOutcome, Trigger};
use chrono::{DateTime, Utc};
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// At most this many ticks of one gap get a row each; a longer gap (a per-second schedule
/// stopped for days) gets one more row that counts the rest.
const MAX_GAP_ROWS: usize = 10_000;
/// The scheduler looks at the wall clock at least this often while it waits, so a machine
/// that slept or a clock that jumped is noticed within this time.
const MAX_NAP: Duration = Duration::from_secs(5);
/// Why ticks passed between two daemon processes.
const NOT_RUNNING: &str = "the daemon was stopped or not running";
/// Why ticks passed while the daemon was alive but not scheduled (paused, machine asleep).
const NOT_SCHEDULED: &str =
    "the daemon was not scheduled in time (process paused, machine asleep or clock changed)";

/// Runs the daemon until SIGTERM or SIGINT; returns the process exit code.
pub fn run(config: &Config, listen: Option<&str>) -> anyhow::Result<i32> {
    let Some(expression) = &config.schedule else {
        eprintln!(
            "error: {}: `daemon` needs a `schedule:` (a cron expression with seconds, e.g. \"0 */15 * * * *\")",
            config.file.display()
        );
        return Ok(exit::USAGE);
    };
    let schedule = match cron::Schedule::from_str(expression) {
        Ok(schedule) => schedule,
        Err(e) => {
            eprintln!("error: schedule: invalid cron expression {expression:?}: {e}");
            return Ok(exit::USAGE);
        }
    };
    let listen = listen.unwrap_or(&config.daemon.listen);
    let Ok(address) = listen.parse::<SocketAddr>() else {
        eprintln!("error: --listen: {listen:?} is not a socket address (e.g. 127.0.0.1:9464)");
        return Ok(exit::USAGE);
    };
    let lock = match lock::acquire(&config.database) {
        Ok(lock) => lock,
        Err(message) => {
            eprintln!("error: {message}");
            return Ok(exit::USAGE);
        }
    };
    let mut store = Store::open(&config.database)?;
    let metrics = Metrics::new();
    let interrupted =
        store.fail_interrupted_ticks("interrupted: the daemon stopped during the run")?;
    if interrupted > 0 {
        tracing::warn!(
            "{interrupted} run(s) of an earlier daemon were interrupted; recorded as failed"
        );
    }
    let started = Utc::now();
    if let Some(last) = store.last_scheduled_tick()?.and_then(|t| parse_time(&t)) {
        let missed = missed_ticks(&schedule, last, started, NOT_RUNNING);
        if !missed.is_empty() {
            tracing::warn!(
                "{} scheduled tick(s) passed while the daemon was not running; recorded as missed",
                missed.len()
            );
            store.record_no_runs(&missed)?;
            for _ in &missed {
                metrics.tick(Trigger::Schedule.as_str(), TickOutcome::Missed.as_str());
            }
        }
    }
    if let Some(id) = store.latest_scan_id()? {
        if let Some(result) = store.load(id)? {
            metrics.scan_recorded(&result, &[]);
        }
    }
    let token = match &config.daemon.api_token_env {
        None => ApiToken::NotConfigured,
        Some(name) => match std::env::var(name) {
            Ok(token) if !token.is_empty() => ApiToken::Token(token),
            _ => {
                tracing::warn!("POST /scan is refused: the environment variable {name} (daemon.api_token_env) is not set");
                ApiToken::Unset(name.clone())
            }
        },
    };
    let (finished, _) = watch::channel(0u64);
    let daemon = Arc::new(Daemon {
        config: config.clone(),
        schedule,
        store: Mutex::new(store),
        store_error: Mutex::new(None),
        metrics,
        grace: Duration::from_secs(config.daemon.grace_seconds),
        token,
        started,
        runs: Mutex::new(Runs::default()),
        finished,
        stopping: AtomicBool::new(false),
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let code = runtime.block_on(serve(daemon, address))?;
    // A scan abandoned at shutdown dies with the process; its transaction never commits.
    runtime.shutdown_background();
    drop(lock);
    Ok(code)
}

/// The bearer token `POST /scan` wants, as far as the configuration and environment say.
enum ApiToken {
    NotConfigured,
    Unset(String),
    Token(String),
}

/// The run under way, and when the last one started (for readiness).
#[derive(Default)]
struct Runs {
    current: Option<CurrentRun>,
    last_started: Option<DateTime<Utc>>,
    /// Runs started so far; a run's number lets `POST /scan?wait=true` find its end.
    count: u64,
    /// The last finished run: (its number, its scan id or why it failed), for `POST /scan?wait=true`.
    last_outcome: Option<(u64, Result<i64, String>)>,
}

struct CurrentRun {
    number: u64,
    tick: Option<i64>,
    trigger: Trigger,
    started: DateTime<Utc>,
}

/// What the scheduler, the runner threads and the HTTP handlers share.
struct Daemon {
    config: Config,
    schedule: cron::Schedule,
    /// The daemon's own connection, for ticks and reads; each scan opens its own.
    store: Mutex<Store>,
    /// The last failure to write a tick, cleared by the next success (for readiness).
    store_error: Mutex<Option<String>>,
    metrics: Metrics,
    grace: Duration,
    token: ApiToken,
    started: DateTime<Utc>,
    runs: Mutex<Runs>,
    /// Bumped when a run finishes, to wake whoever waits for one.
    finished: watch::Sender<u64>,
    stopping: AtomicBool,
}

/// Why a run could not start.
enum Refused {
    Busy(String),
    Stopping,
}

impl Daemon {
    /// Starts a scan on a thread of its own (scans are synchronous and block), unless one is
    /// running. Returns the run's number.
    fn start(
        self: &Arc<Self>,
        trigger: Trigger,
        scheduled: Option<DateTime<Utc>>,
    ) -> Result<u64, Refused> {
        if self.stopping.load(Ordering::SeqCst) {
            return Err(Refused::Stopping);
        }
        let number = {
            let mut runs = lock(&self.runs);
            if let Some(current) = &runs.current {
                return Err(Refused::Busy(format!(
                    "a scan started by the {} at {} was still running",
                    match current.trigger {
                        Trigger::Schedule => "schedule",
                        Trigger::Api => "API",
                    },
                    timestamp(&current.started)
                )));
            }
            let now = Utc::now();
            runs.count += 1;
            runs.last_started = Some(now);
            runs.current = Some(CurrentRun {
                number: runs.count,
                tick: None,
                trigger,
                started: now,
            });
            runs.count
        };
        let daemon = Arc::clone(self);
        let spawned = std::thread::Builder::new()
            .name(format!("scan-{number}"))
            .spawn(move || daemon.execute(number, trigger, scheduled));
        if let Err(e) = spawned {
            tracing::error!("cannot start a scan thread: {e}");
            lock(&self.runs).current = None;
            return Err(Refused::Busy(format!("cannot start a scan thread: {e}")));
        }
        Ok(number)
    }

    /// One run: its tick, the scan, the metrics, and the word to whoever waits.
    fn execute(&self, number: u64, trigger: Trigger, scheduled: Option<DateTime<Utc>>) {
        let started = Utc::now();
        let scheduled_at = scheduled.map(|t| timestamp(&t));
        let tick = self.write_tick(|store| {
            store.begin_tick(trigger, scheduled_at.as_deref(), &timestamp(&started))
        });
        if let Some(current) = lock(&self.runs).current.as_mut() {
            current.tick = tick;
        }
        match &scheduled_at {
            Some(at) => tracing::info!("run {number}: scan for the tick of {at}"),
            None => tracing::info!("run {number}: scan asked for through the API"),
        }
        self.metrics.scan_started();
        let clock = Instant::now();
        let options = ScanOptions {
            apps: Vec::new(),
            clusters: Vec::new(),
            progress: false,
            record: true,
            self_heal_only: false,
        };
        // A panic in one scan must not leave the daemon believing a scan still runs.
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            scan::run(&self.config, &options)
        }));
        self.metrics.scan_ended(clock.elapsed().as_secs_f64());
        let (result, outcome, reason) = match outcome {
            Ok(Ok(done)) => {
                let result = &done.result;
                let deliveries = lock(&self.store)
                    .deliveries(result.scan_id)
                    .unwrap_or_default();
                self.metrics.scan_recorded(result, &deliveries);
                let s = &result.summary;
                tracing::info!(
                    "run {number}: scan {} recorded: {} resources, {} modified, {} missing, {} orphaned, {} errors",
                    result.scan_id, s.resources, s.modified, s.missing, s.orphaned, s.errors
                );
                // Self-heal of the opted-in apps, on the comparison this scan just made.
                if !done.heal_inputs.is_empty() {
                    let healed = crate::heal::run(&self.config, &done, false);
                    let s = &healed.summary;
                    tracing::info!(
                        "run {number}: self-heal: {} applied, {} failed, {} skipped",
                        s.applied,
                        s.failed,
                        s.skipped
                    );
                }
                let reason = (!result.errors.is_empty())
                    .then(|| format!("the scan ran with {} error(s)", result.errors.len()));
                (Ok(result.scan_id), TickOutcome::Ran, reason)
            }
            Ok(Err(e)) => {
                tracing::error!("run {number}: scan failed: {e}");
                (Err(e.to_string()), TickOutcome::Failed, Some(e.to_string()))
            }
            Err(_) => {
                let message = "the scan panicked".to_string();
                tracing::error!("run {number}: {message}");
                (Err(message.clone()), TickOutcome::Failed, Some(message))
            }
        };
        if let Some(id) = tick {
            let scan_id = result.as_ref().ok().copied();
            self.write_tick(|store| {
                store.finish_tick(
                    id,
                    outcome,
                    &timestamp(&Utc::now()),
                    scan_id,
                    reason.as_deref(),
                )
            });
        }
        self.metrics.tick(trigger.as_str(), outcome.as_str());
        {
            let mut runs = lock(&self.runs);
            runs.current = None;
            runs.last_outcome = Some((number, result));
        }
        self.finished.send_modify(|n| *n = number);
    }

    /// Writes to the database, remembering a failure for `/readyz` instead of stopping.
    fn write_tick<T>(
        &self,
        write: impl FnOnce(&mut Store) -> Result<T, crate::store::StoreError>,
    ) -> Option<T> {
        let written = write(&mut lock(&self.store));
        let mut error = lock(&self.store_error);
        match written {
            Ok(value) => {
                *error = None;
                Some(value)
            }
            Err(e) => {
                tracing::error!("cannot record a tick: {e}");
                *error = Some(e.to_string());
                None
            }
        }
    }

    /// Records scheduled ticks that did not run.
    fn no_runs(&self, ticks: &[NoRun]) {
        if ticks.is_empty() {
            return;
        }
        for tick in ticks {
            tracing::warn!(
                "tick of {} {}: {}",
                tick.scheduled_at,
                tick.outcome.as_str(),
                tick.reason
            );
            self.metrics
                .tick(Trigger::Schedule.as_str(), tick.outcome.as_str());
        }
        self.write_tick(|store| store.record_no_runs(ticks));
    }

    /// Why the daemon is not ready, if it is not: the database cannot be written, or the
    /// schedule let two ticks and the grace period pass without starting a run.
    fn unready(&self) -> Option<String> {
        if self.stopping.load(Ordering::SeqCst) {
            return Some("shutting down".into());
        }
        let database = &self.config.database;
        if let Err(e) = std::fs::OpenOptions::new().append(true).open(database) {
            return Some(format!(
                "database {} is not writable: {e}",
                database.display()
            ));
        }
        if let Some(e) = lock(&self.store_error).clone() {
            return Some(format!("the last database write failed: {e}"));
        }
        let since = lock(&self.runs).last_started.unwrap_or(self.started);
        overdue(&self.schedule, since, Utc::now(), self.grace)
    }

    fn await_idle(&self) -> impl std::future::Future<Output = ()> + '_ {
        let mut finished = self.finished.subscribe();
        async move {
            let _ = finished
                .wait_for(|_| lock(&self.runs).current.is_none())
                .await;
        }
    }
}

/// Why the schedule is overdue, when two ticks and the grace period have passed since the
/// last run started: a daemon that hangs in a scan, or stopped scheduling, is not ready.
fn overdue(
    schedule: &cron::Schedule,
    since: DateTime<Utc>,
    now: DateTime<Utc>,
    grace: Duration,
) -> Option<String> {
    let mut due = schedule.after(&since);
    let (_, second) = (due.next()?, due.next()?);
    let grace = chrono::Duration::from_std(grace).unwrap_or_default();
    (now > second + grace).then(|| {
        format!(
            "overdue: no run has started since {} although the schedule called for runs up to {}",
            timestamp(&since),
            timestamp(&second)
        )
    })
}

/// Serves the endpoints and runs the scheduler until a signal, then shuts down.
async fn serve(daemon: Arc<Daemon>, address: SocketAddr) -> anyhow::Result<i32> {
    let listener = match tokio::net::TcpListener::bind(address).await {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("error: cannot listen on {address}: {e}");
            return Ok(exit::USAGE);
        }
    };
    let bound = listener.local_addr()?;
    tracing::info!(
        "daemon: listening on http://{bound} (/healthz, /readyz, /metrics, /scans/latest, POST /scan); schedule {:?} (UTC); database {}",
        daemon.schedule.source(),
        daemon.config.database.display()
    );
    let (stop_http, http_stopped) = watch::channel(false);
    let server = tokio::spawn({
        let router = http::router(Arc::clone(&daemon));
        let mut stop = http_stopped.clone();
        async move {
            let shutdown = async move {
                let _ = stop.wait_for(|stop| *stop).await;
            };
            axum::serve(listener, router)
                .with_graceful_shutdown(shutdown)
                .await
        }
    });
    let (stop_scheduler, scheduler_stopped) = watch::channel(false);
    let scheduler = tokio::spawn(scheduler(
        Arc::clone(&daemon),
        daemon.started,
        scheduler_stopped,
    ));

    let mut signals = Signals::new()?;
    let signal = signals.next().await;
    tracing::info!("{signal}: shutting down");
    daemon.stopping.store(true, Ordering::SeqCst);
    let _ = stop_scheduler.send(true);
    let _ = scheduler.await;
    let running = lock(&daemon.runs).current.as_ref().map(|c| c.number);
    if let Some(number) = running {
        tracing::info!(
            "waiting up to {} s for run {number} to finish",
            daemon.grace.as_secs()
        );
        let finished = tokio::select! {
            () = daemon.await_idle() => true,
            () = tokio::time::sleep(daemon.grace) => false,
            again = signals.next() => {
                tracing::info!("{again} again: not waiting for the scan");
                false
            }
        };
        if !finished {
            abandon(&daemon);
        }
    }
    let _ = stop_http.send(true);
    if let Ok(Err(e)) = tokio::time::timeout(Duration::from_secs(2), server)
        .await
        .unwrap_or(Ok(Ok(())))
    {
        tracing::warn!("HTTP server: {e}");
    }
    Ok(exit::OK)
}

/// Records the running scan as abandoned. The process exits right after, which kills the
/// scan mid-way: SQLite discards its uncommitted transaction, so no partial scan remains.
fn abandon(daemon: &Daemon) {
    let tick = lock(&daemon.runs).current.as_ref().and_then(|c| c.tick);
    let reason = format!(
        "abandoned at shutdown: the scan did not finish within the grace period of {} s",
        daemon.grace.as_secs()
    );
    tracing::warn!("{reason}");
    if let Some(id) = tick {
        daemon.write_tick(|store| {
            store.finish_tick(
                id,
                TickOutcome::Failed,
                &timestamp(&Utc::now()),
                None,
                Some(&reason),
            )
        });
    }
}

/// Waits for each tick of the schedule after `from` and starts its run; ticks that passed
/// unnoticed are recorded as missed and ticks that find a scan running as skipped.
async fn scheduler(daemon: Arc<Daemon>, from: DateTime<Utc>, mut stop: watch::Receiver<bool>) {
    let mut last = from;
    loop {
        let Some(next) = daemon.schedule.after(&last).next() else {
            tracing::warn!("the schedule has no further ticks");
            return;
        };
        loop {
            let now = Utc::now();
            if now >= next {
                break;
            }
            let nap = (next - now).to_std().unwrap_or_default().min(MAX_NAP);
            tokio::select! {
                () = tokio::time::sleep(nap) => {}
                _ = stop.changed() => return,
            }
        }
        let now = Utc::now();
        let mut due = missed_ticks(&daemon.schedule, last, now, NOT_SCHEDULED);
        let Some(current) = due.pop() else {
            continue;
        };
        let blocking = Arc::clone(&daemon);
        let _ = tokio::task::spawn_blocking(move || blocking.no_runs(&due)).await;
        let Some(tick) = parse_time(&current.scheduled_at) else {
            continue;
        };
        last = tick;
        match daemon.start(Trigger::Schedule, Some(tick)) {
            Ok(_) => {}
            Err(Refused::Stopping) => return,
            Err(Refused::Busy(reason)) => {
                let skipped = NoRun {
                    scheduled_at: current.scheduled_at,
                    outcome: TickOutcome::Skipped,
                    reason,
                };
                let blocking = Arc::clone(&daemon);
                let _ = tokio::task::spawn_blocking(move || blocking.no_runs(&[skipped])).await;
            }
        }
    }
}

/// The ticks of `schedule` after `from` up to `to`, as missed ticks; beyond
/// [`MAX_GAP_ROWS`], the oldest are folded into one row that counts them.
fn missed_ticks(
    schedule: &cron::Schedule,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    reason: &str,
) -> Vec<NoRun> {
    let mut kept = std::collections::VecDeque::new();
    let mut folded: Option<(DateTime<Utc>, DateTime<Utc>, usize)> = None;
    for tick in schedule.after(&from).take_while(|t| *t <= to) {
        kept.push_back(tick);
        if kept.len() > MAX_GAP_ROWS {
            if let Some(old) = kept.pop_front() {
                folded = Some(match folded {
                    None => (old, old, 1),
                    Some((first, _, n)) => (first, old, n + 1),
                });
            }
        }
    }
    let mut rows = Vec::with_capacity(kept.len() + 1);
    if let Some((first, last, n)) = folded {
        rows.push(NoRun {
            scheduled_at: timestamp(&first),
            outcome: TickOutcome::Missed,
            reason: format!(
                "{reason}; this row stands for {n} ticks from {} to {}",
                timestamp(&first),
                timestamp(&last)
            ),
        });
    }
    rows.extend(kept.into_iter().map(|t| NoRun {
        scheduled_at: timestamp(&t),
        outcome: TickOutcome::Missed,
        reason: reason.to_string(),
    }));
    rows
}

/// SIGTERM (what Kubernetes sends) and SIGINT (Ctrl-C), as one stream.
struct Signals {
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> std::io::Result<Signals> {
        Ok(Signals {
            #[cfg(unix)]
            terminate: tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?,
        })
    }

    /// Waits for the next signal and names it.
    async fn next(&mut self) -> &'static str {
        #[cfg(unix)]
        {
            tokio::select! {
                _ = self.terminate.recv() => "SIGTERM",
                _ = tokio::signal::ctrl_c() => "SIGINT",
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            "Ctrl-C"
        }
    }
}

/// Times as the database stores them: RFC 3339 in UTC to the second, which sorts as text.
fn timestamp(time: &DateTime<Utc>) -> String {
    time.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        parse_time(text).expect("time")
    }

    #[test]
    fn ticks_after_a_time_exclude_it() {
        let every_ten = cron::Schedule::from_str("*/10 * * * * *").expect("cron");
        let missed = missed_ticks(
            &every_ten,
            at("2026-01-01T00:00:00Z"),
            at("2026-01-01T00:00:30Z"),
            NOT_RUNNING,
        );
        let times: Vec<&str> = missed.iter().map(|m| m.scheduled_at.as_str()).collect();
        assert_eq!(
            times,
            [
                "2026-01-01T00:00:10Z",
                "2026-01-01T00:00:20Z",
                "2026-01-01T00:00:30Z"
            ]
        );
    }

    #[test]
    fn overdue_after_two_ticks_and_the_grace_period() {
        let every_minute = cron::Schedule::from_str("0 * * * * *").expect("cron");
        let since = at("2026-01-01T00:00:30Z");
        let grace = Duration::from_secs(30);
        // Ticks at 00:01:00 and 00:02:00 passed; the grace period ends at 00:02:30.
        assert_eq!(
            overdue(&every_minute, since, at("2026-01-01T00:02:30Z"), grace),
            None
        );
        let reason = overdue(&every_minute, since, at("2026-01-01T00:02:31Z"), grace);
        assert_eq!(
            reason.as_deref(),
            Some("overdue: no run has started since 2026-01-01T00:00:30Z although the schedule called for runs up to 2026-01-01T00:02:00Z")
        );
    }

    #[test]
    fn a_long_gap_is_folded_into_one_counting_row() {
        let every_second = cron::Schedule::from_str("* * * * * *").expect("cron");
        let from = at("2026-01-01T00:00:00Z");
        let to = from + chrono::Duration::seconds(MAX_GAP_ROWS as i64 + 5);
        let missed = missed_ticks(&every_second, from, to, NOT_RUNNING);
        assert_eq!(missed.len(), MAX_GAP_ROWS + 1);
        assert_eq!(missed[0].scheduled_at, "2026-01-01T00:00:01Z");
        assert!(missed[0].reason.ends_with(
            "this row stands for 5 ticks from 2026-01-01T00:00:01Z to 2026-01-01T00:00:05Z"
        ));
        assert_eq!(missed[1].scheduled_at, "2026-01-01T00:00:06Z");
        assert_eq!(missed[1].reason, NOT_RUNNING);
    }
}
