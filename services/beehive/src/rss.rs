//! Resident memory of a process, read from `/proc/<pid>/status` (Linux only).

use std::path::PathBuf;

/// Current and peak resident set size, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Rss {
    pub current_bytes: u64,
    pub peak_bytes: u64,
}

impl Rss {
    pub fn current_mib(&self) -> f64 {
        self.current_bytes as f64 / (1024.0 * 1024.0)
    }

    pub fn peak_mib(&self) -> f64 {
        self.peak_bytes as f64 / (1024.0 * 1024.0)
    }
}

/// Reads `VmRSS` and `VmHWM` of `pid`, or of this process when `pid` is `None`.
///
/// Returns `None` where `/proc` is missing or the process is gone.
pub fn read(pid: Option<u32>) -> Option<Rss> {
    let path = match pid {
        Some(pid) => PathBuf::from(format!("/proc/{pid}/status")),
        None => PathBuf::from("/proc/self/status"),
    };
    let status = std::fs::read_to_string(path).ok()?;
    parse_status(&status)
}

fn parse_status(status: &str) -> Option<Rss> {
    let field = |name: &str| -> Option<u64> {
        let line = status.lines().find(|line| line.starts_with(name))?;
        let kib: u64 = line[name.len()..]
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()?;
        Some(kib * 1024)
    };
    Some(Rss {
        current_bytes: field("VmRSS:")?,
        peak_bytes: field("VmHWM:")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_status_reads_kib() {
        let status = "Name:\tbeehive\nVmHWM:\t  204800 kB\nVmRSS:\t  102400 kB\n";
        let rss = parse_status(status).unwrap();
        assert_eq!(rss.current_bytes, 100 * 1024 * 1024);
        assert_eq!(rss.peak_bytes, 200 * 1024 * 1024);
    }

    #[test]
    fn parse_status_without_fields_is_none() {
        assert_eq!(parse_status("Name:\tx\n"), None);
    }

    #[test]
    fn read_self_is_positive() {
        let rss = read(None).unwrap();
        assert!(rss.current_bytes > 0);
        assert!(rss.peak_bytes >= rss.current_bytes);
    }
}
