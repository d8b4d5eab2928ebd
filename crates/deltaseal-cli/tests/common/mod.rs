//! Shared harness for the `deltaseal` binary's integration tests.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Output};

use assert_cmd::cargo::cargo_bin_cmd;
use tempfile::TempDir;

/// A temporary working directory in which `deltaseal` runs.
pub struct Workdir {
    dir: TempDir,
}

impl Workdir {
    /// A new empty directory.
    pub fn new() -> Workdir {
        Workdir {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// `name` inside the directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Runs `deltaseal args...` in the directory.
    pub fn run(&self, args: &[&str]) -> Output {
        cargo_bin_cmd!("deltaseal")
            .current_dir(self.dir.path())
            .args(args)
            .output()
            .unwrap()
    }

    /// Runs a command that must succeed; returns its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "deltaseal {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs a command that must be rejected: exit 1 and exactly one line on
    /// stderr, starting with `error: `. Returns that line.
    pub fn rejected(&self, args: &[&str]) -> String {
        let out = self.run(args);
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert_eq!(out.status.code(), Some(1), "deltaseal {args:?}: {stderr}");
        assert!(stderr.starts_with("error: "), "{stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        stderr
    }
}

/// Whether `openssl` runs. When it does not, the test skips with a visible
/// message, unless `DELTASEAL_REQUIRE_INTEROP` is set (scripts/test.sh, and
/// so CI, sets it: there a skip would hide a missing install step).
pub fn openssl_available() -> bool {
    let ok = Command::new("openssl")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var_os("DELTASEAL_REQUIRE_INTEROP").is_none(),
            "openssl is required (DELTASEAL_REQUIRE_INTEROP is set)"
        );
        eprintln!("SKIP: openssl not available; OpenSSL interop not tested");
    }
    ok
}

/// Deterministic pseudo-random bytes (xorshift), so failures reproduce.
pub fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}
