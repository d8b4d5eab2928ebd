//! An in-memory [`Storage`] that loses power after the Nth operation, for
//! proving an agent (this one, or yours) power-cut safe.
//!
//! The model is deliberately pessimistic: file data is durable only after
//! `sync`, names (creations, renames, removals) only after `sync_dir` of
//! their directory. After the cut every operation fails; then
//! [`PowerCutStorage::after_power_cut`] gives the disk as a fresh boot sees
//! it, under one of three [`CutMode`]s.
//!
//! ```
//! use deltaseal_agent::sim::{CutMode, PowerCutStorage};
//! use deltaseal_agent::storage::Storage;
//!
//! let mut disk = PowerCutStorage::new();
//! disk.write_at("a", 0, b"kept")?;
//! disk.sync("a")?;
//! disk.sync_dir("")?;
//! disk.cut_after(1);
//! disk.write_at("a", 0, b"lost")?; // operation 1 succeeds
//! assert!(disk.sync("a").is_err()); // operation 2: the power is gone
//! let mut rebooted = disk.after_power_cut(CutMode::DropUnsynced);
//! assert_eq!(rebooted.read("a")?, Some(b"kept".to_vec()));
//! # Ok::<(), std::io::Error>(())
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::io;

use crate::storage::{Storage, parent};

/// What survives a power cut besides synced data and synced names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CutMode {
    /// Everything not synced is lost (the worst case a disk may show).
    DropUnsynced,
    /// Everything written so far survives, as when only the process is
    /// killed (`SIGKILL`) and the kernel keeps its page cache.
    KeepUnsynced,
    /// As [`CutMode::KeepUnsynced`]; use it with
    /// [`PowerCutStorage::cut_after_torn`], whose interrupted write lands
    /// half way (a torn write).
    TornWrite,
}

#[derive(Debug, Clone, Default)]
struct Inode {
    data: Vec<u8>,
    durable: Vec<u8>,
}

/// In-memory storage with a power-cut switch. See the [module docs](self).
#[derive(Debug, Clone, Default)]
pub struct PowerCutStorage {
    inodes: Vec<Inode>,
    names: BTreeMap<String, usize>,
    durable_names: BTreeMap<String, usize>,
    dirs: BTreeSet<String>,
    ops: u64,
    budget: Option<u64>,
    cut: bool,
    torn: bool,
}

fn lost() -> io::Error {
    io::Error::other("simulated power cut")
}

fn not_found(path: &str) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, format!("{path}: no such file"))
}

fn index(offset: u64) -> io::Result<usize> {
    usize::try_from(offset).map_err(|_| io::Error::other("offset too large"))
}

impl PowerCutStorage {
    /// An empty disk with the power on.
    pub fn new() -> Self {
        Self::default()
    }

    /// Lose power after `ops` more mutating operations succeed (counted
    /// from now).
    pub fn cut_after(&mut self, ops: u64) {
        self.ops = 0;
        self.budget = Some(ops);
        self.torn = false;
    }

    /// Mutating operations since the last [`PowerCutStorage::cut_after`]
    /// (or since creation).
    pub fn ops(&self) -> u64 {
        self.ops
    }

    /// Whether the power has been cut.
    pub fn is_cut(&self) -> bool {
        self.cut
    }

    /// The disk as the next boot finds it, power restored, no cut pending.
    pub fn after_power_cut(&self, mode: CutMode) -> PowerCutStorage {
        let keep = !matches!(mode, CutMode::DropUnsynced);
        let names = if keep {
            self.names.clone()
        } else {
            self.durable_names.clone()
        };
        let inodes = self
            .inodes
            .iter()
            .map(|inode| {
                let data = if keep {
                    inode.data.clone()
                } else {
                    inode.durable.clone()
                };
                Inode {
                    durable: data.clone(),
                    data,
                }
            })
            .collect();
        PowerCutStorage {
            inodes,
            durable_names: names.clone(),
            names,
            dirs: self.dirs.clone(),
            ops: 0,
            budget: None,
            cut: false,
            torn: false,
        }
    }

    /// Count one mutating operation; fail (and stay failed) once over budget.
    fn step(&mut self) -> io::Result<()> {
        if self.cut {
            return Err(lost());
        }
        self.ops = self.ops.saturating_add(1);
        if self.budget.is_some_and(|b| self.ops > b) {
            self.cut = true;
            return Err(lost());
        }
        Ok(())
    }

    fn inode(&self, path: &str) -> io::Result<&Inode> {
        self.names
            .get(path)
            .and_then(|&i| self.inodes.get(i))
            .ok_or_else(|| not_found(path))
    }

    fn inode_mut(&mut self, path: &str, create: bool) -> io::Result<&mut Inode> {
        if !self.names.contains_key(path) {
            if !create {
                return Err(not_found(path));
            }
            self.inodes.push(Inode::default());
            self.names
                .insert(path.to_owned(), self.inodes.len().saturating_sub(1));
        }
        let i = *self.names.get(path).ok_or_else(|| not_found(path))?;
        self.inodes.get_mut(i).ok_or_else(|| not_found(path))
    }
}

fn write_into(data: &mut Vec<u8>, offset: usize, bytes: &[u8]) -> io::Result<()> {
    let end = offset
        .checked_add(bytes.len())
        .ok_or_else(|| io::Error::other("write past the end of the address space"))?;
    if data.len() < end {
        data.resize(end, 0);
    }
    if let Some(dst) = data.get_mut(offset..end) {
        dst.copy_from_slice(bytes);
    }
    Ok(())
}

impl Storage for PowerCutStorage {
    fn read(&mut self, path: &str) -> io::Result<Option<Vec<u8>>> {
        Ok(self.inode(path).ok().map(|i| i.data.clone()))
    }

    fn len(&mut self, path: &str) -> io::Result<Option<u64>> {
        Ok(self.inode(path).ok().map(|i| i.data.len() as u64))
    }

    fn read_at(&mut self, path: &str, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let start = index(offset)?;
        let data = &self.inode(path)?.data;
        let src = start
            .checked_add(buf.len())
            .and_then(|end| data.get(start..end))
            .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "read past the end"))?;
        buf.copy_from_slice(src);
        Ok(())
    }

    fn write_at(&mut self, path: &str, offset: u64, data: &[u8]) -> io::Result<()> {
        let start = index(offset)?;
        let was_cut = self.cut;
        if let Err(e) = self.step() {
            if self.torn && !was_cut {
                let half = data.get(..data.len() / 2).unwrap_or(&[]);
                write_into(&mut self.inode_mut(path, true)?.data, start, half)?;
            }
            return Err(e);
        }
        write_into(&mut self.inode_mut(path, true)?.data, start, data)
    }

    fn set_len(&mut self, path: &str, len: u64) -> io::Result<()> {
        let len = index(len)?;
        self.step()?;
        self.inode_mut(path, true)?.data.resize(len, 0);
        Ok(())
    }

    fn sync(&mut self, path: &str) -> io::Result<()> {
        self.step()?;
        let inode = self.inode_mut(path, false)?;
        inode.durable = inode.data.clone();
        Ok(())
    }

    fn rename(&mut self, from: &str, to: &str) -> io::Result<()> {
        self.step()?;
        let i = self.names.remove(from).ok_or_else(|| not_found(from))?;
        self.names.insert(to.to_owned(), i);
        Ok(())
    }

    fn remove(&mut self, path: &str) -> io::Result<()> {
        self.step()?;
        self.names.remove(path);
        Ok(())
    }

    fn sync_dir(&mut self, dir: &str) -> io::Result<()> {
        self.step()?;
        self.durable_names.retain(|name, _| parent(name) != dir);
        for (name, &i) in &self.names {
            if parent(name) == dir {
                self.durable_names.insert(name.clone(), i);
            }
        }
        Ok(())
    }

    fn create_dir(&mut self, dir: &str) -> io::Result<()> {
        self.step()?;
        self.dirs.insert(dir.to_owned());
        Ok(())
    }

    /// Nothing to exclude: the simulated disk belongs to the one agent
    /// that holds it, and no other process can reach it.
    fn lock(&mut self) -> io::Result<()> {
        Ok(())
    }

    fn list(&mut self, dir: &str) -> io::Result<Vec<String>> {
        Ok(self
            .names
            .keys()
            .filter(|name| parent(name) == dir)
            .map(|name| {
                name.get(dir.len()..)
                    .unwrap_or("")
                    .trim_start_matches('/')
                    .to_owned()
            })
            .collect())
    }
}

impl PowerCutStorage {
    /// Lose power after `ops` more operations; the interrupted operation, if
    /// it is a write, lands half way (see [`CutMode::TornWrite`]).
    pub fn cut_after_torn(&mut self, ops: u64) {
        self.cut_after(ops);
        self.torn = true;
    }
}
