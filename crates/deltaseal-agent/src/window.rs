//! Maintenance windows: daily `HH:MM-HH:MM` ranges in UTC.

use core::fmt;
use core::str::FromStr;

const DAY: u64 = 24 * 60 * 60;

/// A daily maintenance window in UTC; it may wrap past midnight
/// (`22:00-02:00`). The start is inside, the end is not.
///
/// ```
/// use deltaseal_agent::Window;
/// let w: Window = "02:00-04:00".parse()?;
/// let day = 1_764_028_800; // 2025-11-25T00:00:00Z
/// assert!(!w.contains(day + 3600));
/// assert_eq!(w.next_open(day + 3600), day + 2 * 3600);
/// assert!(w.contains(day + 3 * 3600));
/// # Ok::<(), deltaseal_agent::window::WindowError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    start: u64,
    end: u64,
}

/// Why a window does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WindowError {
    /// Not `HH:MM-HH:MM` with hours below 24 and minutes below 60.
    #[error("invalid window {0:?} (expected HH:MM-HH:MM, UTC)")]
    Syntax(String),
    /// Start equals end.
    #[error("empty window {0:?}")]
    Empty(String),
}

fn minutes(s: &str) -> Option<u64> {
    let (h, m) = s.split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let h: u64 = h.parse().ok()?;
    let m: u64 = m.parse().ok()?;
    (h < 24 && m < 60).then_some(h * 3600 + m * 60)
}

impl FromStr for Window {
    type Err = WindowError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let syntax = || WindowError::Syntax(s.to_owned());
        let (a, b) = s.split_once('-').ok_or_else(syntax)?;
        let start = minutes(a).ok_or_else(syntax)?;
        let end = minutes(b).ok_or_else(syntax)?;
        if start == end {
            return Err(WindowError::Empty(s.to_owned()));
        }
        Ok(Window { start, end })
    }
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:02}:{:02}-{:02}:{:02}",
            self.start / 3600,
            self.start % 3600 / 60,
            self.end / 3600,
            self.end % 3600 / 60
        )
    }
}

impl Window {
    /// Whether Unix time `now` (seconds) is inside the window.
    pub fn contains(&self, now: u64) -> bool {
        let t = now % DAY;
        if self.start < self.end {
            self.start <= t && t < self.end
        } else {
            t >= self.start || t < self.end
        }
    }

    /// `now` if inside the window, else the Unix time the window next opens.
    pub fn next_open(&self, now: u64) -> u64 {
        if self.contains(now) {
            return now;
        }
        let midnight = now - now % DAY;
        let today = midnight.saturating_add(self.start);
        if today > now {
            today
        } else {
            today.saturating_add(DAY)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_parse_wrap_and_open() {
        let day = 20_000 * DAY;
        let w: Window = "22:00-02:00".parse().unwrap();
        assert_eq!(w.to_string(), "22:00-02:00");
        assert!(w.contains(day + 23 * 3600));
        assert!(w.contains(day + 3600));
        assert!(!w.contains(day + 2 * 3600));
        assert_eq!(w.next_open(day + 12 * 3600), day + 22 * 3600);
        let w: Window = "02:00-04:00".parse().unwrap();
        assert!(w.contains(day + 2 * 3600));
        assert!(!w.contains(day + 4 * 3600));
        assert_eq!(w.next_open(day + 5 * 3600), day + DAY + 2 * 3600);
        for bad in [
            "",
            "2:00-04:00",
            "24:00-01:00",
            "01:60-02:00",
            "0100-0200",
            "x",
        ] {
            assert!(
                matches!(bad.parse::<Window>(), Err(WindowError::Syntax(_))),
                "{bad}"
            );
        }
        assert!(matches!(
            "03:00-03:00".parse::<Window>(),
            Err(WindowError::Empty(_))
        ));
    }
}
