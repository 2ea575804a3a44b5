//! One daemon per database: an advisory lock on `<database>.lock`, held for the life of the
//! process and released by the operating system however the process ends, so a crash never
//! leaves a stale lock behind.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

/// The held lock; dropping it (or the process ending) releases it.
#[derive(Debug)]
pub struct DatabaseLock {
    _file: File,
}

/// `<database>.lock`, beside the database so it lives on the same volume.
pub fn lock_path(database: &Path) -> PathBuf {
    let mut path = database.as_os_str().to_owned();
    path.push(".lock");
    PathBuf::from(path)
}

/// Takes the lock, writing this process's id into the file for whoever is refused next.
pub fn acquire(database: &Path) -> Result<DatabaseLock, String> {
    let path = lock_path(database);
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .map_err(|e| format!("cannot create directory {}: {e}", parent.display()))?;
    }
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| format!("cannot open the lock file {}: {e}", path.display()))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = match holder.trim().parse::<u32>() {
                Ok(pid) => format!(" (pid {pid})"),
                Err(_) => String::new(),
            };
            return Err(format!(
                "another plumbline daemon{holder} holds {}: only one daemon may write {}",
                path.display(),
                database.display()
            ));
        }
        Err(TryLockError::Error(e)) => {
            return Err(format!("cannot lock {}: {e}", path.display()));
        }
    }
    let written = file
        .set_len(0)
        .and_then(|()| file.rewind())
        .and_then(|()| writeln!(file, "{}", std::process::id()))
        .and_then(|()| file.sync_all());
    if let Err(e) = written {
        return Err(format!("cannot write {}: {e}", path.display()));
    }
    Ok(DatabaseLock { _file: file })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_with_the_first_ones_pid() {
        let dir = tempfile::tempdir().expect("tempdir");
        let database = dir.path().join("data").join("plumbline.db");
        let held = acquire(&database).expect("first lock");
        let refused = acquire(&database).expect_err("second lock");
        assert!(refused.contains(&format!("(pid {})", std::process::id())));
        assert!(refused.contains("plumbline.db.lock"));
        drop(held);
        acquire(&database).expect("free again");
    }
}
