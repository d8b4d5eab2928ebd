//! Process-wide output settings (`--json`, `--quiet`) and progress bars.
//!
//! Progress bars go to stderr and are drawn only when stderr is a terminal
//! and `--quiet` is off, so pipelines and CI logs never see them.

use core::time::Duration;
use std::io::IsTerminal;
use std::sync::OnceLock;

use indicatif::{ProgressBar, ProgressStyle};

/// The global output flags, set once by `main`.
#[derive(Clone, Copy, Default)]
pub struct Flags {
    /// Machine-readable output on stdout.
    pub json: bool,
    /// No progress bars and no informational text (results in JSON and
    /// errors are still printed).
    pub quiet: bool,
}

static FLAGS: OnceLock<Flags> = OnceLock::new();

/// Records the global flags; called once, before any command runs.
pub fn init(flags: Flags) {
    // A second call (never made) would keep the first flags.
    let _ = FLAGS.set(flags);
}

fn flags() -> Flags {
    FLAGS.get().copied().unwrap_or_default()
}

/// `--json` was given.
pub fn json() -> bool {
    flags().json
}

/// `--quiet` was given.
pub fn quiet() -> bool {
    flags().quiet
}

/// Writes to stdout without `print!`'s panic when stdout is closed:
/// `deltaseal inspect big.bundle | head` ends quietly with status 0, as
/// SIGPIPE ends a C tool; another write error ends it with one `error:`
/// line and status 1.
pub fn write_stdout(args: core::fmt::Arguments<'_>) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_fmt(args).and_then(|()| out.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("error: cannot write to stdout: {e}");
        std::process::exit(1);
    }
}

/// `println!` through [`write_stdout`].
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::ui::write_stdout(format_args!("{}\n", format_args!($($arg)*)))
    };
}
pub(crate) use outln;

/// Prints a human-readable line on stdout unless `--quiet`.
macro_rules! say {
    ($($arg:tt)*) => {
        if !$crate::ui::quiet() {
            $crate::ui::outln!($($arg)*);
        }
    };
}
pub(crate) use say;

fn drawn() -> bool {
    !quiet() && std::io::stderr().is_terminal()
}

/// A byte-count progress bar of `len` bytes (hidden off a terminal).
pub fn bytes_bar(len: u64, message: &str) -> ProgressBar {
    if !drawn() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len).with_message(message.to_owned());
    if let Ok(style) = ProgressStyle::with_template(
        "{msg} [{bar:30}] {bytes}/{total_bytes} ({bytes_per_sec}, {eta})",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

/// A progress bar over `len` work items (hidden off a terminal).
pub fn items_bar(len: u64, message: &str) -> ProgressBar {
    if !drawn() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len).with_message(message.to_owned());
    if let Ok(style) =
        ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} ({elapsed}, {eta} left)")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// A spinner with elapsed time, for steps whose length is unknown
/// (computing a patch). Hidden off a terminal.
pub fn spinner(message: &str) -> ProgressBar {
    if !drawn() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new_spinner().with_message(message.to_owned());
    if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} ({elapsed})") {
        bar.set_style(style);
    }
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

/// Wraps an [`ImageSink`](deltaseal_verify::patch::ImageSink) and advances
/// a bar by the bytes written through it.
pub struct ProgressSink<'a, S> {
    inner: &'a mut S,
    bar: ProgressBar,
}

impl<'a, S> ProgressSink<'a, S> {
    /// Counts the bytes written to `inner` on `bar`.
    pub fn new(inner: &'a mut S, bar: ProgressBar) -> Self {
        ProgressSink { inner, bar }
    }

    /// Removes the bar from the terminal.
    pub fn finish(self) {
        self.bar.finish_and_clear();
    }
}

impl<S: deltaseal_verify::patch::ImageSink> deltaseal_verify::patch::ImageSink
    for ProgressSink<'_, S>
{
    fn write(&mut self, buf: &[u8]) -> Result<(), deltaseal_verify::patch::ImageIoError> {
        self.inner.write(buf)?;
        self.bar.inc(buf.len() as u64);
        Ok(())
    }
}
