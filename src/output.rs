//! Where commands put their results: all or nothing, one writer at a time, and
//! never over files kvsim did not write.
//!
//! # Directories
//!
//! A command that writes a directory (`run`, `sweep`, `plan`, `plot`) opens an
//! [`OutputDir`] on its `--out`. That
//!
//! 1. takes a lock file beside the target, `.<name>.kvsim-lock`, created only
//!    if absent and holding the writer's pid, so a second kvsim writing the same
//!    directory is refused (exit 2) while the first runs; a lock whose process
//!    is gone is reclaimed with a note;
//! 2. refuses a target that holds files kvsim did not write (exit 2): an
//!    existing directory is replaced only when it is empty or its
//!    [`MARKER`] file lists every file in it;
//! 3. gives the command a fresh hidden directory beside the target,
//!    `.<name>.kvsim-tmp-<pid>`, to write everything into;
//! 4. on [`OutputDir::commit`], writes the marker and swaps the new directory
//!    in: the old one is renamed aside, the new one renamed into place (both
//!    renames within one parent, so each is atomic), then the old one deleted.
//!
//! Until the swap the target is untouched; if anything fails before it (a full
//! disk, an error, Ctrl-C) the temporary directory is deleted and the target is
//! exactly as it was. Nothing of an earlier run survives beside the new results
//! (no stale chart beside a new `sweep.csv`), and two runs never mix their
//! files.
//!
//! # Single files
//!
//! [`write_atomic`] writes one file (`calibrate --out`, `merge --out`,
//! `validate --out`, a sweep shard) to a temporary name in the same directory
//! and renames it into place.
//!
//! # Ctrl-C
//!
//! Every temporary path and lock is recorded in a process-wide list while it
//! exists, and every change to them happens with that list locked. The Ctrl-C
//! handler ([`crate::interrupt`]) can then delete them all and exit
//! ([`abandon_and_exit`]) without racing a write or a swap in progress.
//!
//! # Tests
//!
//! Setting [`FAIL_ENV`] to a file's name (relative to the output directory)
//! makes writing that file fail, and setting it to `swap` makes the swap fail
//! after the old directory was moved aside; the tests use it to check that a
//! failure leaves the previous results intact.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};

use crate::error::Error;

/// Name of the file that marks a directory as kvsim's and lists its files.
pub const MARKER: &str = ".kvsim-output";

/// Environment variable that injects a write failure (tests only; see the
/// module documentation).
pub const FAIL_ENV: &str = "KVSIM_TEST_FAIL_AT";

/// Suffix of the lock file beside a target: `.<name>.kvsim-lock`.
const LOCK_SUFFIX: &str = ".kvsim-lock";
/// Infix of the directory a run writes into: `.<name>.kvsim-tmp-<pid>`.
const TMP_INFIX: &str = ".kvsim-tmp-";
/// Infix of the previous results while they are swapped out.
const OLD_INFIX: &str = ".kvsim-old-";

/// A path that exists only while a command runs.
struct Leftover {
    path: PathBuf,
    dir: bool,
}

/// Every temporary directory, temporary file and lock of this process.
static LEFTOVERS: Mutex<Vec<Leftover>> = Mutex::new(Vec::new());

/// The list of leftovers, locked. A panic while it was held leaves nothing
/// inconsistent in a list of paths, so a poisoned lock is used as is.
fn leftovers() -> MutexGuard<'static, Vec<Leftover>> {
    LEFTOVERS.lock().unwrap_or_else(PoisonError::into_inner)
}

fn forget(list: &mut Vec<Leftover>, path: &Path) {
    list.retain(|l| l.path != path);
}

/// Deletes every temporary path and lock of this process and exits with
/// `code`, after printing `message` on stderr. The list stays locked until
/// the process is gone, so no write or swap can start or be half done.
pub fn abandon_and_exit(code: i32, message: &str) -> ! {
    let list = leftovers();
    for l in list.iter() {
        let _ = if l.dir {
            fs::remove_dir_all(&l.path)
        } else {
            fs::remove_file(&l.path)
        };
    }
    eprintln!("{message}");
    std::process::exit(code)
}

/// An injected failure for `what` (a file name or `swap`), when the tests ask
/// for one.
fn injected(what: &str) -> std::io::Result<()> {
    match std::env::var_os(FAIL_ENV) {
        Some(v) if v == what => Err(std::io::Error::other(format!(
            "failure injected by {FAIL_ENV}={what}"
        ))),
        _ => Ok(()),
    }
}

/// `dir/.<name><suffix>`: a hidden sibling of `path`.
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    parent_of(path).join(format!(".{name}{suffix}"))
}

/// The directory `path` is in (`.` for a bare name).
fn parent_of(path: &Path) -> &Path {
    path.parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// Writes `bytes` to `path` atomically: a sibling temporary file, fsync'd, then
/// renamed over the destination. A failure (or Ctrl-C) leaves `path` as it was.
///
/// An existing `path` must be a regular file: the rename would replace a
/// device (`--out /dev/null` run as root turns the device into a file), a
/// symbolic link (not the file it points to) or an empty directory.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    require_regular(path)?;
    let tmp = sibling(path, &format!(".tmp-{}", std::process::id()));
    let mut list = leftovers();
    list.push(Leftover {
        path: tmp.clone(),
        dir: false,
    });
    let result = (|| {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        injected(&path.file_name().unwrap_or_default().to_string_lossy())?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    forget(&mut list, &tmp);
    result.map_err(|e| Error::io(path, e))
}

/// [`write_atomic`] of a single-file output (a merged table, a baseline),
/// creating its directory first.
pub fn write_file(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        create_dir(dir)?;
    }
    write_atomic(path, bytes)
}

/// An error unless `path` is absent or a regular file (not a link to one).
pub fn require_regular(path: &Path) -> Result<(), Error> {
    let Ok(meta) = fs::symlink_metadata(path) else {
        return Ok(());
    };
    let t = meta.file_type();
    if t.is_file() {
        return Ok(());
    }
    let kind = if t.is_dir() {
        "a directory"
    } else if t.is_symlink() {
        "a symbolic link"
    } else {
        "a device, pipe or socket"
    };
    Err(Error::Usage(format!(
        "{} is {kind}, not a regular file; kvsim writes its output as a new file that \
         replaces the old one, which would replace {kind} too: choose another path",
        path.display()
    )))
}

/// Creates `dir` and its parents if needed, naming the usual mistakes (a file
/// in the way) rather than echoing the system's terse message.
pub fn create_dir(dir: &Path) -> Result<(), Error> {
    if let Some(bad) = dir.ancestors().find(|a| a.is_file()) {
        return Err(Error::Usage(format!(
            "output directory {}: {} is a file, not a directory; choose another --out",
            dir.display(),
            bad.display()
        )));
    }
    fs::create_dir_all(dir).map_err(|e| {
        Error::Usage(format!(
            "output directory {} cannot be created ({e}); choose another --out",
            dir.display()
        ))
    })
}

/// The lock of one output (a directory or a file): `.<name>.kvsim-lock` beside
/// it, deleted when dropped.
#[derive(Debug)]
pub struct Lock {
    path: PathBuf,
}

/// Who holds a lock, as written in it.
#[derive(Debug, PartialEq)]
struct Holder {
    pid: u32,
    /// The process's start time (Linux clock ticks since boot), which tells a
    /// live holder from an unrelated process that got its pid later.
    start: Option<u64>,
}

impl Holder {
    fn me() -> Holder {
        let pid = std::process::id();
        Holder {
            pid,
            start: start_time(pid),
        }
    }

    fn to_text(&self, command: &str) -> String {
        let mut s = format!("# kvsim {command} is writing here\npid = {}\n", self.pid);
        if let Some(t) = self.start {
            s.push_str(&format!("start = {t}\n"));
        }
        s
    }

    fn parse(text: &str) -> Option<Holder> {
        let value = |key: &str| {
            text.lines()
                .filter_map(|l| l.split_once('='))
                .find(|(k, _)| k.trim() == key)
                .map(|(_, v)| v.trim().to_string())
        };
        Some(Holder {
            pid: value("pid")?.parse().ok()?,
            start: value("start").and_then(|s| s.parse().ok()),
        })
    }

    /// Whether the process that wrote the lock still runs.
    fn alive(&self) -> bool {
        match process_state(self.pid) {
            Some(Some(start)) => self.start.is_none_or(|s| s == start),
            Some(None) => true,
            None => false,
        }
    }
}

/// Whether process `pid` exists (`None`: no), with its start time when the
/// system tells it (`Some(None)`: it exists, start unknown).
fn process_state(pid: u32) -> Option<Option<u64>> {
    if Path::new("/proc/self/stat").exists() {
        return fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .map(|stat| parse_start_time(&stat));
    }
    // Elsewhere, ask `kill -0` (no signal is sent); a system without it
    // cannot tell, so the lock is assumed held and the message says how to
    // remove it by hand.
    match std::process::Command::new("kill")
        .args(["-0", &pid.to_string()])
        .stderr(std::process::Stdio::null())
        .status()
    {
        Ok(s) if !s.success() => None,
        _ => Some(None),
    }
}

/// The start time of `pid` (Linux only).
fn start_time(pid: u32) -> Option<u64> {
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| parse_start_time(&s))
}

/// Field 22 of `/proc/<pid>/stat`, counted after the command name (which is
/// in parentheses and may hold spaces).
fn parse_start_time(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

impl Lock {
    /// Locks `target` for `command`: refused (exit 2) while another live
    /// kvsim holds it; a lock left by a process that is gone is reclaimed.
    pub fn acquire(target: &Path, command: &str) -> Result<Lock, Error> {
        let path = sibling(target, LOCK_SUFFIX);
        let me = Holder::me();
        // A stale lock is deleted and the creation tried again; a few tries
        // are enough unless other kvsims keep racing for it.
        for _ in 0..4 {
            let mut list = leftovers();
            match fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(mut f) => {
                    list.push(Leftover {
                        path: path.clone(),
                        dir: false,
                    });
                    if let Err(e) = f.write_all(me.to_text(command).as_bytes()) {
                        let _ = fs::remove_file(&path);
                        forget(&mut list, &path);
                        return Err(lock_error(target, &path, e));
                    }
                    return Ok(Lock { path });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    drop(list);
                    let text = match fs::read_to_string(&path) {
                        Ok(t) => t,
                        // Released meanwhile: try again.
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                        Err(e) => return Err(lock_error(target, &path, e)),
                    };
                    match Holder::parse(&text) {
                        Some(h) if h.alive() => {
                            return Err(Error::Usage(format!(
                                "{} is being written by another kvsim (pid {}; its lock file \
                                 is {}): wait for it to finish, or choose another --out",
                                target.display(),
                                h.pid,
                                path.display()
                            )));
                        }
                        Some(h) => eprintln!(
                            "note: removing the stale lock {} of kvsim pid {}, which is no \
                             longer running",
                            path.display(),
                            h.pid
                        ),
                        // A lock being created has no pid yet for a moment;
                        // an unreadable one older than that is debris.
                        None if modified_within(&path, 5.0) => {
                            return Err(Error::Usage(format!(
                                "{} is being written by another kvsim (its lock file is {}): \
                                 wait for it to finish, or choose another --out",
                                target.display(),
                                path.display()
                            )));
                        }
                        None => eprintln!(
                            "note: removing the unreadable stale lock {}",
                            path.display()
                        ),
                    }
                    let _ = fs::remove_file(&path);
                }
                Err(e) => return Err(lock_error(target, &path, e)),
            }
        }
        Err(Error::Usage(format!(
            "{}: cannot take the lock {} (other kvsims keep taking it); choose another \
             --out",
            target.display(),
            path.display()
        )))
    }
}

fn lock_error(target: &Path, lock: &Path, e: std::io::Error) -> Error {
    Error::Usage(format!(
        "{}: cannot create the lock file {} ({e}); choose another --out",
        target.display(),
        lock.display()
    ))
}

fn modified_within(path: &Path, secs: f64) -> bool {
    fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .is_some_and(|age| age.as_secs_f64() < secs)
}

impl Drop for Lock {
    fn drop(&mut self) {
        let mut list = leftovers();
        let _ = fs::remove_file(&self.path);
        forget(&mut list, &self.path);
    }
}

/// An output directory being written: everything goes into a temporary
/// directory beside the target until [`OutputDir::commit`] swaps it in.
/// Dropped without a commit, it deletes the temporary directory and leaves
/// the target as it was.
#[derive(Debug)]
pub struct OutputDir {
    target: PathBuf,
    staging: PathBuf,
    command: &'static str,
    committed: bool,
    // Declared last: released after the temporary directory is gone.
    _lock: Lock,
}

impl OutputDir {
    /// Opens `target` for `command` (`run`, `sweep`, ...), before any work is
    /// done: creates its parent, takes the lock, checks that the target holds
    /// only kvsim's files, and creates the temporary directory. `inputs` are
    /// files the command reads: one inside the target would be deleted by the
    /// swap, so that is refused.
    pub fn begin(target: &Path, command: &'static str, inputs: &[&Path]) -> Result<Self, Error> {
        let target = resolve(target)?;
        if let Some(bad) = target.ancestors().find(|a| a.is_file()) {
            return Err(Error::Usage(format!(
                "output directory {}: {} is a file, not a directory; choose another --out",
                target.display(),
                bad.display()
            )));
        }
        for input in inputs {
            if let (Ok(i), Ok(t)) = (fs::canonicalize(input), fs::canonicalize(&target)) {
                if i.starts_with(&t) {
                    return Err(Error::Usage(format!(
                        "output directory {} holds the input {}, and kvsim replaces the whole \
                         directory; choose another --out",
                        target.display(),
                        input.display()
                    )));
                }
            }
        }
        // Checked first without the lock so that a refused directory is not
        // even written beside, then again under it, when no other kvsim can
        // be replacing the target.
        check_owned(&target)?;
        create_dir(parent_of(&target))?;
        let lock = Lock::acquire(&target, command)?;
        check_owned(&target)?;
        remove_debris(&target);
        let staging = sibling(&target, &format!("{TMP_INFIX}{}", std::process::id()));
        let mut list = leftovers();
        list.push(Leftover {
            path: staging.clone(),
            dir: true,
        });
        // Ours by name (this pid holds the lock): the debris of a run
        // killed outright.
        let _ = fs::remove_dir_all(&staging);
        if let Err(e) = fs::create_dir(&staging) {
            forget(&mut list, &staging);
            return Err(Error::Usage(format!(
                "output directory {} is not writable: cannot create {} ({e}); choose another \
                 --out",
                target.display(),
                staging.display()
            )));
        }
        drop(list);
        Ok(OutputDir {
            target,
            staging,
            command,
            committed: false,
            _lock: lock,
        })
    }

    /// The directory results go to once committed (for messages).
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// Where `relative` will be once committed (for messages).
    pub fn final_path(&self, relative: &str) -> PathBuf {
        self.target.join(relative)
    }

    /// Writes `bytes` to `relative` (a file name, or `sub/name` under a
    /// [`OutputDir::subdir`]); returns where it will be once committed.
    pub fn write(&self, relative: &str, bytes: &[u8]) -> Result<PathBuf, Error> {
        self.write_with(relative, |f| f.write_all(bytes))
    }

    /// Writes `relative` as [`OutputDir::write`] does, streaming: `fill`
    /// writes the content into the new file, unbuffered (write large
    /// pieces). Several files may be written at once from several threads.
    /// A large file's pages go to disk while it is written (see
    /// [`Filling`]), so the sync that must precede the swap finds little
    /// left to do.
    pub fn write_with(
        &self,
        relative: &str,
        fill: impl FnOnce(&mut Filling<'_, '_>) -> std::io::Result<()>,
    ) -> Result<PathBuf, Error> {
        let result = (|| {
            // Only creating the file changes the temporary directory, so
            // only that holds the list: the Ctrl-C handler deletes the
            // directory with the list held, and a file being filled
            // meanwhile goes with it, while another thread's write need
            // not wait for this one.
            let f = {
                let _list = leftovers();
                injected(relative)?;
                fs::File::create(self.staging.join(relative))?
            };
            std::thread::scope(|scope| {
                let mut filling = Filling {
                    file: &f,
                    scope,
                    written: 0,
                    syncer: None,
                };
                fill(&mut filling)
            })?;
            // The swap publishes the directory; its files must be on disk
            // before it is.
            f.sync_all()
        })();
        result.map_err(|e| self.failed(relative, e))?;
        Ok(self.final_path(relative))
    }

    /// Copies the file `from` to `relative` (as [`OutputDir::write`], without
    /// holding it in memory): `kvsim report` carrying a directory's results
    /// over into the directory that replaces it.
    pub fn copy_in(&self, relative: &str, from: &Path) -> Result<PathBuf, Error> {
        let list = leftovers();
        let result = (|| {
            injected(relative)?;
            let to = self.staging.join(relative);
            fs::copy(from, &to)?;
            fs::File::open(&to)?.sync_all()
        })();
        drop(list);
        result.map_err(|e| self.failed(relative, e))?;
        Ok(self.final_path(relative))
    }

    /// Creates the subdirectory `name`; returns where it will be once
    /// committed.
    pub fn subdir(&self, name: &str) -> Result<PathBuf, Error> {
        let list = leftovers();
        let result = fs::create_dir(self.staging.join(name));
        drop(list);
        result.map_err(|e| self.failed(name, e))?;
        Ok(self.final_path(name))
    }

    /// Marks the subdirectory `name` as kvsim's too, listing the files it
    /// holds now, so a later command may replace it alone (`kvsim plot`
    /// redrawing a sweep's `plots/`).
    pub fn mark_subdir(&self, name: &str) -> Result<(), Error> {
        let list = leftovers();
        let result = write_marker(&self.staging.join(name), self.command);
        drop(list);
        result.map_err(|e| self.failed(&format!("{name}/{MARKER}"), e))
    }

    /// The error of a failed write of `relative`, saying that nothing was
    /// published.
    fn failed(&self, relative: &str, e: std::io::Error) -> Error {
        Error::io(
            self.final_path(relative),
            std::io::Error::new(
                e.kind(),
                format!(
                    "{e}; nothing was written and {} is as it was",
                    self.target.display()
                ),
            ),
        )
    }

    /// Writes the marker and swaps the new directory in place of the target;
    /// returns the target.
    pub fn commit(mut self) -> Result<PathBuf, Error> {
        let mut list = leftovers();
        write_marker(&self.staging, self.command).map_err(|e| self.failed(MARKER, e))?;
        let old = sibling(&self.target, &format!("{OLD_INFIX}{}", std::process::id()));
        let moved_aside = match fs::rename(&self.target, &old) {
            Ok(()) => true,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
            Err(e) => {
                return Err(Error::io(
                    &self.target,
                    std::io::Error::new(
                        e.kind(),
                        format!(
                            "cannot move the previous results aside ({e}); the new ones were \
                             not written, choose another --out"
                        ),
                    ),
                ));
            }
        };
        if let Err(e) = injected("swap").and_then(|()| fs::rename(&self.staging, &self.target)) {
            // Put the previous results back: the target is as it was.
            let restored = !moved_aside || fs::rename(&old, &self.target).is_ok();
            let tail = if restored {
                format!("{} is as it was", self.target.display())
            } else {
                format!("the previous results are in {}", old.display())
            };
            return Err(Error::io(
                &self.target,
                std::io::Error::new(
                    e.kind(),
                    format!("cannot move the new results into place ({e}); {tail}"),
                ),
            ));
        }
        self.committed = true;
        forget(&mut list, &self.staging);
        if moved_aside {
            if let Err(e) = fs::remove_dir_all(&old) {
                eprintln!(
                    "warning: the new results are in {}, but the previous ones could not be \
                     deleted from {} ({e}); delete it by hand",
                    self.target.display(),
                    old.display()
                );
            }
        }
        // Make the renames durable where the system allows syncing a
        // directory (best effort: the results are complete either way).
        if let Ok(d) = fs::File::open(parent_of(&self.target)) {
            let _ = d.sync_all();
        }
        Ok(self.target.clone())
    }
}

impl Drop for OutputDir {
    fn drop(&mut self) {
        if !self.committed {
            let mut list = leftovers();
            let _ = fs::remove_dir_all(&self.staging);
            forget(&mut list, &self.staging);
        }
    }
}

/// Bytes written between two requests to start sending a file's pages to
/// disk.
const SYNC_EVERY: u64 = 32 << 20;

/// A file of an [`OutputDir`] being filled. Past every [`SYNC_EVERY`] bytes
/// it asks a helper thread (started at the first) to sync what was written
/// so far, which overlaps the disk's work with the rest of the writing
/// instead of leaving it all to the final sync; the helper's own errors are
/// left to that final sync to report.
pub struct Filling<'f, 's> {
    file: &'f fs::File,
    scope: &'s std::thread::Scope<'s, 'f>,
    written: u64,
    syncer: Option<std::sync::mpsc::SyncSender<()>>,
}

impl Write for Filling<'_, '_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = (&mut &*self.file).write(buf)?;
        let before = self.written / SYNC_EVERY;
        self.written += n as u64;
        if self.written / SYNC_EVERY > before {
            let file = self.file;
            let syncer = self.syncer.get_or_insert_with(|| {
                // One request waits at most: syncs do not pile up behind a
                // slow disk.
                let (tx, rx) = std::sync::mpsc::sync_channel::<()>(1);
                self.scope.spawn(move || {
                    while rx.recv().is_ok() {
                        let _ = file.sync_data();
                    }
                });
                tx
            });
            let _ = syncer.try_send(());
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The target a command will replace: a symbolic link is followed (its
/// destination is replaced, the link kept), and a path without a final name
/// (`.`, `..`, `/`) is refused since it cannot be swapped.
fn resolve(target: &Path) -> Result<PathBuf, Error> {
    let is_link = fs::symlink_metadata(target).is_ok_and(|m| m.file_type().is_symlink());
    let target = if is_link {
        fs::canonicalize(target).map_err(|e| {
            Error::Usage(format!(
                "output directory {} is a link that cannot be followed ({e}); choose another \
                 --out",
                target.display()
            ))
        })?
    } else {
        target.to_path_buf()
    };
    match target.components().next_back() {
        Some(std::path::Component::Normal(_)) => Ok(target),
        _ => Err(Error::Usage(format!(
            "output directory {}: name a directory to write (kvsim replaces it as a whole), \
             e.g. --out results",
            target.display()
        ))),
    }
}

/// Every file under `dir`, relative to it, with `/` separators, sorted.
fn files_under(dir: &Path) -> std::io::Result<Vec<String>> {
    fn walk(dir: &Path, prefix: &str, out: &mut Vec<String>) -> std::io::Result<()> {
        for entry in fs::read_dir(dir)? {
            let entry = entry?;
            let name = format!("{prefix}{}", entry.file_name().to_string_lossy());
            if entry.file_type()?.is_dir() {
                walk(&entry.path(), &format!("{name}/"), out)?;
            } else {
                out.push(name);
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(dir, "", &mut out)?;
    out.sort();
    Ok(out)
}

/// The marker's content: what wrote the directory, and its files.
#[derive(serde::Serialize, serde::Deserialize)]
struct Marker {
    command: String,
    version: String,
    files: Vec<String>,
}

/// Writes `dir/.kvsim-output`, listing the files in `dir` (itself included).
fn write_marker(dir: &Path, command: &str) -> std::io::Result<()> {
    let mut files = files_under(dir)?;
    files.push(MARKER.to_string());
    files.sort();
    files.dedup();
    let marker = Marker {
        command: command.to_string(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        files,
    };
    let text = format!(
        "# Written by kvsim {command}. kvsim replaces this directory as a whole when asked to \
         write here again,\n# unless it holds files not listed below.\n{}",
        toml::to_string(&marker).map_err(std::io::Error::other)?
    );
    injected(MARKER)?;
    let mut f = fs::File::create(dir.join(MARKER))?;
    f.write_all(text.as_bytes())?;
    f.sync_all()
}

/// Refuses (exit 2) a target that holds files kvsim did not write: it may be
/// replaced only when absent, empty, or holding nothing but files that its
/// markers list.
fn check_owned(target: &Path) -> Result<(), Error> {
    // Three names make the point; the walk stops at the fourth, so `--out ~`
    // is refused without reading the whole home directory.
    const SHOWN: usize = 3;
    let mut foreign = Vec::new();
    match foreign_files(target, "", &mut Default::default(), &mut foreign, SHOWN + 1) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            return Err(Error::Usage(format!(
                "output directory {} cannot be read ({e}); choose another --out",
                target.display()
            )));
        }
    }
    if foreign.is_empty() {
        return Ok(());
    }
    foreign.sort();
    if foreign.len() > SHOWN {
        foreign.truncate(SHOWN);
        foreign.push("...".into());
    }
    Err(Error::Usage(format!(
        "output directory {} holds files kvsim did not write ({}); kvsim replaces its output \
         directory as a whole, so it writes only to a new or empty one or one it wrote itself: \
         choose another --out, or move those files away",
        target.display(),
        foreign.join(", ")
    )))
}

/// Adds to `found` (up to `limit`) the files under `dir` that no marker
/// vouches for; names relative to the target, `prefix` being `dir`'s. A
/// marker vouches for the files it lists under its own directory (a sweep's
/// `plots/`, redrawn alone by `kvsim plot`, has its own).
fn foreign_files(
    dir: &Path,
    prefix: &str,
    owned: &mut std::collections::HashSet<String>,
    found: &mut Vec<String>,
    limit: usize,
) -> std::io::Result<()> {
    let entries = fs::read_dir(dir)?;
    let marker: Option<Marker> = fs::read_to_string(dir.join(MARKER))
        .ok()
        .and_then(|t| toml::from_str(&t).ok());
    for f in marker.map(|m| m.files).unwrap_or_default() {
        owned.insert(format!("{prefix}{f}"));
    }
    for entry in entries {
        if found.len() >= limit {
            break;
        }
        let entry = entry?;
        let name = format!("{prefix}{}", entry.file_name().to_string_lossy());
        if entry.file_type()?.is_dir() {
            foreign_files(&entry.path(), &format!("{name}/"), owned, found, limit)?;
        } else if !owned.contains(&name) && !is_shard_file(&entry.path()) {
            found.push(name);
        }
    }
    Ok(())
}

/// Whether `path` is a sweep shard kvsim wrote: shards share their
/// directory, so no marker lists them, but their name and their first line,
/// the fingerprint, say whose they are.
fn is_shard_file(path: &Path) -> bool {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if !(name.starts_with("sweep.shard-") && name.ends_with(".csv")) {
        return false;
    }
    let Ok(file) = fs::File::open(path) else {
        return false;
    };
    let mut first = String::new();
    use std::io::{BufRead, Read};
    std::io::BufReader::new(file.take(4096))
        .read_line(&mut first)
        .is_ok_and(|_| first.starts_with(SHARD_FINGERPRINT_PREFIX))
}

/// How a sweep shard's first line starts (its fingerprint): defined here,
/// below the commands, and used by `sweep` as its own.
pub const SHARD_FINGERPRINT_PREFIX: &str = "# kvsim shard ";

/// Deletes the temporary and swapped-out directories of earlier writers of
/// `target` that were killed outright (the caller holds the lock, so no live
/// writer owns them), after putting back previous results that a writer
/// killed between the two renames of its swap left aside.
fn remove_debris(target: &Path) {
    let Some(name) = target.file_name().map(|n| n.to_string_lossy().into_owned()) else {
        return;
    };
    let Ok(entries) = fs::read_dir(parent_of(target)) else {
        return;
    };
    let mut debris: Vec<(PathBuf, bool)> = entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| {
            let file = e.file_name().to_string_lossy().into_owned();
            let of = |infix: &str| {
                file.strip_prefix(&format!(".{name}{infix}"))
                    .is_some_and(|pid| !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()))
            };
            (of(TMP_INFIX) || of(OLD_INFIX)).then(|| (e.path(), of(OLD_INFIX)))
        })
        .collect();
    // Deterministic: with several, the same one is restored every time.
    debris.sort();
    for (path, old) in debris {
        if old && !target.exists() && fs::rename(&path, target).is_ok() {
            eprintln!(
                "note: restored {} from {}, where an earlier kvsim stopped in the middle of \
                 replacing it had left it",
                target.display(),
                path.display()
            );
            continue;
        }
        eprintln!(
            "note: removing {}, left by an earlier kvsim that was stopped before it finished",
            path.display()
        );
        let _ = fs::remove_dir_all(&path);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_single_file_output_never_replaces_a_directory_or_a_link() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("sub");
        fs::create_dir(&sub).unwrap();
        let e = write_atomic(&sub, b"x").unwrap_err().to_string();
        assert!(e.contains("is a directory, not a regular file"), "{e}");
        assert!(sub.is_dir());
        let target = dir.path().join("target.csv");
        fs::write(&target, "keep").unwrap();
        let link = dir.path().join("link.csv");
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(&target, &link).unwrap();
            let e = write_atomic(&link, b"x").unwrap_err().to_string();
            assert!(e.contains("is a symbolic link"), "{e}");
            assert_eq!(fs::read_to_string(&target).unwrap(), "keep");
        }
        #[cfg(unix)]
        if std::path::Path::new("/dev/null").exists() {
            // Refused before anything is created beside it.
            let e = write_atomic(std::path::Path::new("/dev/null"), b"x")
                .unwrap_err()
                .to_string();
            assert!(e.contains("a device, pipe or socket"), "{e}");
        }
        write_atomic(&target, b"new").unwrap();
        assert_eq!(fs::read_to_string(&target).unwrap(), "new");
    }

    use super::*;

    #[test]
    fn the_start_time_is_read_past_a_command_name_with_spaces_and_parentheses() {
        let stat = "42 (a (b) c) S 1 42 42 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 \
                    1000 10";
        assert_eq!(parse_start_time(stat), Some(987654));
        assert_eq!(parse_start_time("garbage"), None);
    }

    #[test]
    fn a_lock_names_its_holder() {
        let h = Holder {
            pid: 17,
            start: Some(99),
        };
        assert_eq!(Holder::parse(&h.to_text("run")), Some(h));
        assert_eq!(Holder::parse("nothing here"), None);
    }

    #[test]
    fn this_process_is_alive_and_a_reused_pid_is_not_its_holder() {
        let me = Holder::me();
        assert!(me.alive());
        if let Some(start) = me.start {
            let reused = Holder {
                pid: me.pid,
                start: Some(start + 1),
            };
            assert!(!reused.alive());
        }
    }

    #[test]
    fn a_commit_replaces_the_directory_and_a_drop_leaves_it() {
        let tmp = tempfile::tempdir().unwrap();
        let target = tmp.path().join("out");
        let first = OutputDir::begin(&target, "run", &[]).unwrap();
        first.write("a.txt", b"first").unwrap();
        first.commit().unwrap();
        assert_eq!(fs::read(target.join("a.txt")).unwrap(), b"first");

        let second = OutputDir::begin(&target, "run", &[]).unwrap();
        second.write("b.txt", b"second").unwrap();
        drop(second);
        assert_eq!(files_under(&target).unwrap(), [MARKER, "a.txt"]);

        let third = OutputDir::begin(&target, "run", &[]).unwrap();
        third.write("b.txt", b"third").unwrap();
        third.commit().unwrap();
        assert_eq!(files_under(&target).unwrap(), [MARKER, "b.txt"]);
        // Nothing but the target is left in its parent.
        let names: Vec<_> = fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["out"]);
    }

    #[test]
    fn a_file_added_to_a_kvsim_directory_makes_it_the_user_s() {
        let tmp = tempfile::tempdir().unwrap();
        let target = tmp.path().join("out");
        let o = OutputDir::begin(&target, "run", &[]).unwrap();
        o.write("a.txt", b"x").unwrap();
        o.commit().unwrap();
        fs::write(target.join("notes.txt"), "mine").unwrap();
        let e = OutputDir::begin(&target, "run", &[]).unwrap_err();
        assert!(e.to_string().contains("notes.txt"), "{e}");
        assert_eq!(fs::read(target.join("notes.txt")).unwrap(), b"mine");
    }

    #[test]
    fn debris_of_a_writer_killed_mid_swap_is_cleared_and_the_old_results_restored() {
        let tmp = tempfile::tempdir().unwrap();
        let target = tmp.path().join("out");
        let o = OutputDir::begin(&target, "run", &[]).unwrap();
        o.write("a.txt", b"old").unwrap();
        o.commit().unwrap();
        // Killed after moving the old results aside, before the new ones
        // went in: both directories are left, the target is missing.
        let old = tmp.path().join(".out.kvsim-old-99999999");
        let new = tmp.path().join(".out.kvsim-tmp-99999999");
        fs::rename(&target, &old).unwrap();
        fs::create_dir(&new).unwrap();
        fs::write(new.join("a.txt"), "new").unwrap();
        let o = OutputDir::begin(&target, "run", &[]).unwrap();
        assert_eq!(fs::read(target.join("a.txt")).unwrap(), b"old");
        assert!(!old.exists() && !new.exists());
        drop(o);
        assert_eq!(fs::read(target.join("a.txt")).unwrap(), b"old");
    }

    #[test]
    fn a_path_that_names_no_directory_is_refused() {
        for p in [".", "..", "/"] {
            assert!(resolve(Path::new(p)).is_err(), "{p}");
        }
        assert!(resolve(Path::new("a/b")).is_ok());
    }
}
