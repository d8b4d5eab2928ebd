//! The agent's only door to the outside world: a small storage trait, and
//! its implementation on a directory of files.
//!
//! Every write the agent makes goes through [`Storage`], so a test can
//! replace the disk with one that loses power after any single operation
//! ([`crate::sim::PowerCutStorage`]) and prove that the device still boots a
//! verified image afterwards.
//!
//! Paths are `/`-separated and relative to the device directory (`""` is the
//! directory itself).
//!
//! [`Storage::lock`] keeps a second agent off the same device: on a
//! [`DirStorage`] it is an advisory lock on the [`LOCK`] file, which the
//! kernel drops when the holder exits or is killed, so a stale lock never
//! outlives an interrupted install.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions, TryLockError};
use std::io;
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};

/// The lock file in the device directory ([`DirStorage::lock`]). Its
/// existence means nothing; only the lock on it does. It is never removed:
/// a holder's lock stays on the file it opened, so removing the name would
/// let a third process lock a new file under it.
pub const LOCK: &str = "lock";

/// File operations the agent needs. Reads are free; each mutating call
/// (`write_at`, `set_len`, `sync`, `rename`, `remove`, `sync_dir`,
/// `create_dir`) is one step a power cut may interrupt.
///
/// Durability contract (POSIX): data written with `write_at`/`set_len` is
/// durable only after `sync` of that file; a `rename`, `remove` or new file
/// name is durable only after `sync_dir` of its directory.
pub trait Storage {
    /// Whole contents of `path`, or `None` if it does not exist.
    fn read(&mut self, path: &str) -> io::Result<Option<Vec<u8>>>;
    /// Length of `path`, or `None` if it does not exist.
    fn len(&mut self, path: &str) -> io::Result<Option<u64>>;
    /// Fill `buf` from `path` at `offset` (an error if the file is shorter).
    fn read_at(&mut self, path: &str, offset: u64, buf: &mut [u8]) -> io::Result<()>;
    /// Write `data` at `offset`, creating the file if needed.
    fn write_at(&mut self, path: &str, offset: u64, data: &[u8]) -> io::Result<()>;
    /// Truncate or extend (with zeros) `path` to `len`, creating it if needed.
    fn set_len(&mut self, path: &str, len: u64) -> io::Result<()>;
    /// Make the data of `path` durable (fsync).
    fn sync(&mut self, path: &str) -> io::Result<()>;
    /// Atomically replace `to` with `from` (same directory).
    fn rename(&mut self, from: &str, to: &str) -> io::Result<()>;
    /// Remove `path`; removing a missing file is not an error.
    fn remove(&mut self, path: &str) -> io::Result<()>;
    /// Make the names in directory `dir` durable (fsync the directory).
    fn sync_dir(&mut self, dir: &str) -> io::Result<()>;
    /// Create directory `dir` (and its parents); an existing one is fine.
    fn create_dir(&mut self, dir: &str) -> io::Result<()>;
    /// Names of the files in directory `dir`, sorted; empty if it is missing.
    fn list(&mut self, dir: &str) -> io::Result<Vec<String>>;
    /// Take the exclusive lock on the whole storage and hold it as long as
    /// this value lives; taking it again while holding it does nothing.
    /// Never waits: if someone else holds it, fails at once with
    /// [`io::ErrorKind::WouldBlock`]. Changes no data, so it is not one of
    /// the steps a power cut interrupts.
    fn lock(&mut self) -> io::Result<()>;
}

/// The parent directory of a storage path (`""` for the root).
pub fn parent(path: &str) -> &str {
    path.rfind('/').map_or("", |i| path.get(..i).unwrap_or(""))
}

/// [`Storage`] on a real directory, with real `fsync`s, and an advisory
/// lock ([`DirStorage::lock`]) against other processes.
///
/// ```no_run
/// use deltaseal_agent::storage::{DirStorage, Storage};
/// let mut disk = DirStorage::new("/var/lib/deltaseal/pump-1");
/// let state = disk.read("state/state.json")?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct DirStorage {
    root: PathBuf,
    open: HashMap<String, File>,
    /// The open [`LOCK`] file while this storage holds the lock.
    lock: Option<File>,
}

impl DirStorage {
    /// Storage rooted at `root` (the device directory). Takes no lock until
    /// [`Storage::lock`] is called.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        DirStorage {
            root: root.into(),
            open: HashMap::new(),
            lock: None,
        }
    }

    /// The device directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The real path of a storage path.
    pub fn path(&self, path: &str) -> PathBuf {
        if path.is_empty() {
            self.root.clone()
        } else {
            self.root.join(path)
        }
    }

    fn file(&mut self, path: &str, create: bool) -> io::Result<&File> {
        if !self.open.contains_key(path) {
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(create)
                .truncate(false)
                .open(self.path(path))?;
            self.open.insert(path.to_owned(), file);
        }
        self.open
            .get(path)
            .ok_or_else(|| io::Error::other("file handle vanished"))
    }
}

impl Storage for DirStorage {
    fn read(&mut self, path: &str) -> io::Result<Option<Vec<u8>>> {
        match fs::read(self.path(path)) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn len(&mut self, path: &str) -> io::Result<Option<u64>> {
        match fs::metadata(self.path(path)) {
            Ok(m) => Ok(Some(m.len())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn read_at(&mut self, path: &str, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.file(path, false)?.read_exact_at(buf, offset)
    }

    fn write_at(&mut self, path: &str, offset: u64, data: &[u8]) -> io::Result<()> {
        self.file(path, true)?.write_all_at(data, offset)
    }

    fn set_len(&mut self, path: &str, len: u64) -> io::Result<()> {
        self.file(path, true)?.set_len(len)
    }

    fn sync(&mut self, path: &str) -> io::Result<()> {
        self.file(path, false)?.sync_all()
    }

    fn rename(&mut self, from: &str, to: &str) -> io::Result<()> {
        self.open.remove(from);
        self.open.remove(to);
        fs::rename(self.path(from), self.path(to))
    }

    fn remove(&mut self, path: &str) -> io::Result<()> {
        self.open.remove(path);
        match fs::remove_file(self.path(path)) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            other => other,
        }
    }

    fn sync_dir(&mut self, dir: &str) -> io::Result<()> {
        File::open(self.path(dir))?.sync_all()
    }

    fn create_dir(&mut self, dir: &str) -> io::Result<()> {
        fs::create_dir_all(self.path(dir))
    }

    /// An exclusive advisory lock on `<root>/lock` ([`File::try_lock`]:
    /// `flock(2)` on Linux), created if missing. The lock belongs to this
    /// value's open file, so it also keeps out another `DirStorage` of the
    /// same process, and it is released when this value is dropped or the
    /// process ends, however it ends. Only processes that take the lock
    /// are kept out (it is advisory).
    ///
    /// ```
    /// use deltaseal_agent::storage::{DirStorage, Storage};
    /// # let dir = std::env::temp_dir().join(format!("deltaseal-lock-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// let mut first = DirStorage::new(&dir);
    /// first.lock()?;
    /// let mut second = DirStorage::new(&dir);
    /// let busy = second.lock().unwrap_err();
    /// assert_eq!(busy.kind(), std::io::ErrorKind::WouldBlock);
    /// drop(first);
    /// second.lock()?;
    /// # drop(second);
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    fn lock(&mut self) -> io::Result<()> {
        if self.lock.is_some() {
            return Ok(());
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(self.path(LOCK))?;
        match file.try_lock() {
            Ok(()) => {
                self.lock = Some(file);
                Ok(())
            }
            Err(TryLockError::WouldBlock) => Err(io::ErrorKind::WouldBlock.into()),
            Err(TryLockError::Error(e)) => Err(e),
        }
    }

    fn list(&mut self, dir: &str) -> io::Result<Vec<String>> {
        let entries = match fs::read_dir(self.path(dir)) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry?;
            if entry.file_type()?.is_file()
                && let Some(name) = entry.file_name().to_str()
            {
                names.push(name.to_owned());
            }
        }
        names.sort();
        Ok(names)
    }
}
