//! External renderers (`kustomize`, `kubectl kustomize`, `helm`) as bounded processes: a
//! few at once (`renderers.processes`), each with a timeout, stderr kept for the error.
//!
//! The bound is process-wide because it protects the machine's memory, whatever asks for
//! the render.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

/// External renders running at once: each can take hundreds of MB, so they are few.
static MAX_PROCESSES: AtomicUsize = AtomicUsize::new(2);
/// Seconds after which a render is stuck, not slow.
static TIMEOUT_SECONDS: AtomicU64 = AtomicU64::new(300);

static RUNNING: Mutex<usize> = Mutex::new(0);
static FREED: Condvar = Condvar::new();

/// Sets how many external renders may run at once and how long one may take.
pub fn configure(processes: usize, timeout: Duration) {
    MAX_PROCESSES.store(processes.max(1), Ordering::Relaxed);
    TIMEOUT_SECONDS.store(timeout.as_secs().max(1), Ordering::Relaxed);
}

/// Finds a configured program: a path as given, a bare name on `PATH`.
pub fn locate(program: &str) -> Option<PathBuf> {
    if program.contains('/') {
        let path = PathBuf::from(program);
        is_executable(&path).then_some(path)
    } else {
        which(program)
    }
}

/// Finds an executable on `PATH`.
pub fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Runs `program args…` in `dir` and returns its stdout, or an error with its stderr.
pub fn run(program: &Path, args: &[String], dir: &Path) -> Result<Vec<u8>, String> {
    let _slot = Slot::acquire();
    let shown = format!(
        "{} {}",
        program
            .file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default(),
        args.join(" ")
    );
    let mut child = Command::new(program)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {shown}: {e}"))?;
    let mut stdout = child.stdout.take();
    let mut stderr = child.stderr.take();
    let out_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(s) = stdout.as_mut() {
            let _ = s.read_to_end(&mut buf);
        }
        buf
    });
    let err_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(s) = stderr.as_mut() {
            let _ = s.read_to_end(&mut buf);
        }
        buf
    });
    let timeout = Duration::from_secs(TIMEOUT_SECONDS.load(Ordering::Relaxed));
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("{shown}: timed out after {}s", timeout.as_secs()));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => return Err(format!("{shown}: {e}")),
        }
    };
    let out = out_reader.join().unwrap_or_default();
    let err = err_reader.join().unwrap_or_default();
    if status.success() {
        Ok(out)
    } else {
        let message = String::from_utf8_lossy(&err).trim().to_string();
        Err(format!("{shown} failed ({status}): {message}"))
    }
}

/// A place among the external renders allowed to run at once.
struct Slot;

impl Slot {
    fn acquire() -> Slot {
        let mut running = RUNNING.lock().unwrap_or_else(|p| p.into_inner());
        while *running >= MAX_PROCESSES.load(Ordering::Relaxed) {
            running = FREED.wait(running).unwrap_or_else(|p| p.into_inner());
        }
        *running += 1;
        Slot
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut running = RUNNING.lock().unwrap_or_else(|p| p.into_inner());
        *running = running.saturating_sub(1);
        FREED.notify_one();
    }
}

/// What `program args…` prints of its version, asked once per process: it keys the render
/// cache, so a new engine renders again. An engine that cannot say gives a stable marker.
pub fn version(program: &Path, args: &[&str]) -> String {
    static KNOWN: Mutex<Vec<(PathBuf, String)>> = Mutex::new(Vec::new());
    let mut known = KNOWN.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((_, version)) = known.iter().find(|(p, _)| p == program) {
        return version.clone();
    }
    let printed = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    let version = format!(
        "{} {}",
        program.display(),
        printed.unwrap_or_else(|| "(version unknown)".into())
    );
    known.push((program.to_path_buf(), version.clone()));
    version
}
