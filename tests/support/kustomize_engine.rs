//! The real Kustomize engine, loaded in-process: kustomize's own Go code built as a C shared
//! library (`libpykustomize.so` from the `pykustomize` wheel, kustomize API v0.21), found
//! through `PLUMBLINE_KUSTOMIZE_ENGINE`. `scripts/test` fetches it and sets the variable.
//! Loading it in-process instead of running `kustomize` keeps hundreds of reference builds
//! fast, and the engine is the same on every machine whatever `kubectl` is installed.
//!
//! ABI (cgo exports, see the wheel's `libpykustomize.h`):
//! - `int pykustomize_build(char *path, char *options_json, char **result)`: 0 and a
//!   `malloc`ed YAML stream in `*result`, or -1 with the message kept for
//!   `pykustomize_last_error`.
//! - `char *pykustomize_last_error(void)`: a `malloc`ed copy of the last failure's message
//!   (NULL if none). It is one process-wide value that a success does not clear, so it is only
//!   meaningful right after a failed call, from the same caller.
//! - `void pykustomize_free(void *)`: frees what the two functions above return.
//!
//! Thread safety: the Go runtime accepts calls from any thread, but the last error is global,
//! so a build and the read of its error must not interleave with another build. Every call
//! goes through one mutex. The library is never unloaded: a Go runtime cannot be.
#![allow(dead_code)]

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

/// Names the shared library; `scripts/test` sets it when the engine could be fetched.
pub const ENV: &str = "PLUMBLINE_KUSTOMIZE_ENGINE";

/// What tests print, to stderr, when the engine is not installed.
pub const SKIPPED: &str = "SKIPPED: the real kustomize engine is not installed (run scripts/test)";

/// Defaults of `kustomize build` / `kubectl kustomize`: files only from within each
/// kustomization's root, the order a kustomization's `sortOptions` asks for or else the legacy
/// one, no managed-by label, no plugins, no Helm.
const OPTIONS: &CStr = c"{\"load_restrictions\":0,\"reorder\":\"unspecified\",\"add_managedby_label\":false,\"enable_plugins\":false,\"enable_helm\":false,\"helm_command\":\"\"}";

type BuildFn = unsafe extern "C" fn(*const c_char, *const c_char, *mut *mut c_char) -> c_int;
type LastErrorFn = unsafe extern "C" fn() -> *mut c_char;
type FreeFn = unsafe extern "C" fn(*mut c_void);

pub struct Engine {
    path: PathBuf,
    build: BuildFn,
    last_error: LastErrorFn,
    free: FreeFn,
    /// Serializes calls: the library's last error is process-wide.
    calls: Mutex<()>,
    /// Keeps the library mapped for the life of the process.
    _library: libloading::Library,
}

/// The engine named by `PLUMBLINE_KUSTOMIZE_ENGINE`, loaded once per process; `None` when the
/// variable is unset. A variable naming something that does not load is a broken setup and
/// panics rather than skipping.
pub fn engine() -> Option<&'static Engine> {
    static ENGINE: OnceLock<Option<Engine>> = OnceLock::new();
    ENGINE
        .get_or_init(|| {
            let path = std::env::var_os(ENV).filter(|p| !p.is_empty())?;
            Some(Engine::load(Path::new(&path)).unwrap_or_else(|e| panic!("{ENV}: {e}")))
        })
        .as_ref()
}

/// [`engine`], printing [`SKIPPED`] when it is not installed, so that a test returning early
/// says so. Written to stderr directly: the test harness would capture `eprintln!` and hide it
/// for a passing test.
pub fn engine_or_skip() -> Option<&'static Engine> {
    let engine = engine();
    if engine.is_none() {
        let _ = writeln!(std::io::stderr(), "{SKIPPED}");
    }
    engine
}

impl Engine {
    fn load(path: &Path) -> Result<Engine, String> {
        let shown = path.display();
        // SAFETY: loading runs the Go runtime's initializers, which have no preconditions on
        // the host process; the symbols are declared with the signatures of
        // `libpykustomize.h`, and the function pointers stay valid because the `Library` is
        // stored beside them and a process-wide static never drops it.
        unsafe {
            let library =
                libloading::Library::new(path).map_err(|e| format!("cannot load {shown}: {e}"))?;
            let build = *library
                .get::<BuildFn>(c"pykustomize_build")
                .map_err(|e| format!("{shown}: {e}"))?;
            let last_error = *library
                .get::<LastErrorFn>(c"pykustomize_last_error")
                .map_err(|e| format!("{shown}: {e}"))?;
            let free = *library
                .get::<FreeFn>(c"pykustomize_free")
                .map_err(|e| format!("{shown}: {e}"))?;
            Ok(Engine {
                path: path.to_path_buf(),
                build,
                last_error,
                free,
                calls: Mutex::new(()),
                _library: library,
            })
        }
    }

    /// Where the library was loaded from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `kustomize build dir`: the YAML stream, or kustomize's error message.
    pub fn build(&self, dir: &Path) -> Result<String, String> {
        let dir_text = dir
            .to_str()
            .ok_or_else(|| format!("{}: not UTF-8", dir.display()))?;
        let dir_c = CString::new(dir_text).map_err(|e| format!("{dir_text}: {e}"))?;
        // A panic in another test while it held the lock leaves nothing half-done here.
        let _serialized = self
            .calls
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut result: *mut c_char = std::ptr::null_mut();
        // SAFETY: both strings are NUL-terminated and outlive the call; `result` is a valid
        // out-pointer. The lock keeps the last error ours until it is read below.
        let status = unsafe { (self.build)(dir_c.as_ptr(), OPTIONS.as_ptr(), &mut result) };
        if status == 0 && !result.is_null() {
            // SAFETY: on success `result` is a NUL-terminated string the library allocated;
            // it is copied, then freed once with the library's own `free`.
            return unsafe { Ok(self.take(result)) };
        }
        // SAFETY: the error is a NUL-terminated copy (or NULL) that the caller must free.
        let message = unsafe {
            let error = (self.last_error)();
            if error.is_null() {
                format!("kustomize build failed with status {status} and no message")
            } else {
                self.take(error)
            }
        };
        Err(message)
    }

    /// Copies a string the library allocated and frees it.
    ///
    /// # Safety
    /// `text` must be a non-null, NUL-terminated string from this library, not yet freed.
    unsafe fn take(&self, text: *mut c_char) -> String {
        let copy = unsafe { CStr::from_ptr(text) }
            .to_string_lossy()
            .into_owned();
        unsafe { (self.free)(text.cast()) };
        copy
    }
}
