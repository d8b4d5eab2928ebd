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

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};

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
}

/// The parent directory of a storage path (`""` for the root).
pub fn parent(path: &str) -> &str {
    path.rfind('/').map_or("", |i| path.get(..i).unwrap_or(""))
}

/// [`Storage`] on a real directory, with real `fsync`s.
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
}

impl DirStorage {
    /// Storage rooted at `root` (the device directory).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        DirStorage {
            root: root.into(),
            open: HashMap::new(),
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
