//! Memory of a local server: RSS and PSS of a process and all its descendants, from /proc.
//!
//! Dovecot runs a process per connection under its master, Postfach one process; summing the
//! whole tree under the given PIDs treats both the same. PSS (proportional set size) divides
//! shared pages among the processes sharing them, so it is the fair per-connection figure for a
//! forking server; RSS is reported beside it. Linux only (reads `/proc/PID/smaps_rollup`).

use std::collections::BTreeSet;
use std::fs;

/// Memory of a set of processes, in KiB.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Memory {
    /// Sum of resident set sizes.
    pub rss_kib: u64,
    /// Sum of proportional set sizes.
    pub pss_kib: u64,
    /// Processes counted.
    pub processes: usize,
}

/// Memory of `roots` and all their descendants. Processes that exit while being read are
/// skipped.
pub fn tree_memory(roots: &[u32]) -> Memory {
    let mut total = Memory::default();
    for pid in tree(roots) {
        let Ok(text) = fs::read_to_string(format!("/proc/{pid}/smaps_rollup")) else { continue };
        let (rss, pss) = parse_rollup(&text);
        total.rss_kib += rss;
        total.pss_kib += pss;
        total.processes += 1;
    }
    total
}

/// `roots` plus every process whose parent chain leads to one of them.
fn tree(roots: &[u32]) -> BTreeSet<u32> {
    let mut parents = Vec::new();
    if let Ok(entries) = fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
            let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
            if let Some(ppid) = parent_of(&stat) {
                parents.push((pid, ppid));
            }
        }
    }
    let mut set: BTreeSet<u32> = roots.iter().copied().collect();
    // Fixed point: a process tree is shallow, so a few passes suffice.
    loop {
        let before = set.len();
        for (pid, ppid) in &parents {
            if set.contains(ppid) {
                set.insert(*pid);
            }
        }
        if set.len() == before {
            return set;
        }
    }
}

/// The parent PID from `/proc/PID/stat` text. The command name (field 2) is in parentheses and
/// may itself contain spaces and parentheses, so parsing starts after the last `)`.
fn parent_of(stat: &str) -> Option<u32> {
    let after = stat.get(stat.rfind(')')? + 1..)?;
    let mut fields = after.split_whitespace();
    let _state = fields.next()?;
    fields.next()?.parse().ok()
}

/// `(Rss, Pss)` in KiB from `smaps_rollup` text.
fn parse_rollup(text: &str) -> (u64, u64) {
    let mut rss = 0;
    let mut pss = 0;
    for line in text.lines() {
        let mut words = line.split_whitespace();
        let (Some(name), Some(value)) = (words.next(), words.next()) else { continue };
        let Ok(value) = value.parse::<u64>() else { continue };
        match name {
            "Rss:" => rss = value,
            "Pss:" => pss = value,
            _ => {}
        }
    }
    (rss, pss)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_odd_names() {
        assert_eq!(parent_of("123 (dovecot) S 1 123 123 0 -1"), Some(1));
        assert_eq!(parent_of("124 (imap) (x y)) R 77 1 1"), Some(77));
        assert_eq!(parent_of("garbage"), None);
    }

    #[test]
    fn parses_rollup() {
        let text = "55a0-7ffd ---p 00000000 00:00 0 [rollup]\nRss:  2048 kB\nPss:  1024 kB\nPss_Anon: 5 kB\n";
        assert_eq!(parse_rollup(text), (2048, 1024));
    }

    #[test]
    fn own_process_is_measured() {
        let me = std::process::id();
        let m = tree_memory(&[me]);
        assert!(m.processes >= 1);
        assert!(m.rss_kib > 0);
    }
}
