//! Cheap readers of `/proc` (Linux), shared by the process, network and resource code.
//! Parsers are pure functions over the text so they are tested with real-format input.

use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// Command lines longer than this are cut (the kernel allows megabytes).
pub const MAX_CMDLINE_BYTES: u64 = 32 * 1024;

/// The fields of `/proc/<pid>/stat` we use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stat {
    pub pid: u32,
    /// `comm`: the first 15 bytes of the executable's name (may contain spaces and parens).
    pub comm: String,
    pub state: char,
    pub ppid: u32,
    /// User and system CPU time in clock ticks.
    pub utime: u64,
    pub stime: u64,
    /// Start time in clock ticks after boot.
    pub starttime: u64,
    /// Resident set size in pages.
    pub rss_pages: u64,
}

/// Parses `/proc/<pid>/stat`. `comm` is between the first `(` and the LAST `)`, since the name
/// itself may hold `)` and spaces.
pub fn parse_stat(text: &str) -> Option<Stat> {
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    if close < open {
        return None;
    }
    let pid = text[..open].trim().parse().ok()?;
    let comm = text[open + 1..close].to_owned();
    // Fields after comm, numbered from 3 (state) as in proc(5).
    let rest: Vec<&str> = text[close + 1..].split_ascii_whitespace().collect();
    let field = |n: usize| rest.get(n - 3).copied();
    let num = |n: usize| field(n).and_then(|f| f.parse::<u64>().ok());
    Some(Stat {
        pid,
        comm,
        state: field(3)?.chars().next()?,
        ppid: u32::try_from(num(4)?).ok()?,
        utime: num(14)?,
        stime: num(15)?,
        starttime: num(22)?,
        rss_pages: num(24).unwrap_or(0),
    })
}

/// Real and effective uid from `/proc/<pid>/status` (`Uid:\treal\teffective\tsaved\tfs`).
pub fn parse_status_uids(text: &str) -> Option<(u32, u32)> {
    let line = text.lines().find(|l| l.starts_with("Uid:"))?;
    let mut ids = line["Uid:".len()..].split_ascii_whitespace();
    let real = ids.next()?.parse().ok()?;
    let effective = ids.next()?.parse().ok()?;
    Some((real, effective))
}

/// `/proc/<pid>/cmdline`: NUL-separated arguments (a trailing NUL ends the last one).
pub fn parse_cmdline(bytes: &[u8]) -> Vec<String> {
    let bytes = bytes.strip_suffix(&[0]).unwrap_or(bytes);
    if bytes.is_empty() {
        return Vec::new();
    }
    bytes
        .split(|b| *b == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect()
}

/// The numeric entries of `/proc`.
pub fn list_pids() -> io::Result<Vec<u32>> {
    let mut pids = Vec::new();
    for entry in fs::read_dir("/proc")? {
        let Ok(entry) = entry else { continue };
        if let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse().ok()) {
            pids.push(pid);
        }
    }
    pids.sort_unstable();
    Ok(pids)
}

pub fn proc_path(pid: u32, leaf: &str) -> PathBuf {
    PathBuf::from(format!("/proc/{pid}/{leaf}"))
}

pub fn read_stat(pid: u32) -> Option<Stat> {
    parse_stat(&fs::read_to_string(proc_path(pid, "stat")).ok()?)
}

/// The arguments, at most [`MAX_CMDLINE_BYTES`] read.
pub fn read_cmdline(pid: u32) -> Option<Vec<String>> {
    let mut bytes = Vec::new();
    fs::File::open(proc_path(pid, "cmdline"))
        .ok()?
        .take(MAX_CMDLINE_BYTES)
        .read_to_end(&mut bytes)
        .ok()?;
    Some(parse_cmdline(&bytes))
}

/// A link of `/proc/<pid>/` as text; `exe` of a replaced binary ends with " (deleted)",
/// which is cut (the flag is returned).
pub fn read_link(pid: u32, leaf: &str) -> Option<(String, bool)> {
    let target = fs::read_link(proc_path(pid, leaf)).ok()?;
    let text = target.to_string_lossy();
    Some(match text.strip_suffix(" (deleted)") {
        Some(stripped) => (stripped.to_owned(), true),
        None => (text.into_owned(), false),
    })
}

/// `btime` of `/proc/stat`: boot time in seconds since the epoch.
pub fn parse_btime(text: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
}

pub fn boot_time() -> Option<u64> {
    parse_btime(&fs::read_to_string("/proc/stat").ok()?)
}

pub fn clock_ticks() -> u64 {
    rustix::param::clock_ticks_per_second().max(1)
}

/// The last path component, as a process name.
pub fn file_name(path: &str) -> Option<String> {
    Path::new(path)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_with_spaces_and_parens_in_comm() {
        let line = "4242 (tmux: server) S 1 4242 4242 0 -1 4194560 1071 0 0 0 12 34 0 0 20 0 1 0 987654 9453568 1234 18446744073709551615 1 1 0 0 0 0 0 3674112 134433283 0 0 0 17 1 0 0 0 0 0 0 0 0 0 0 0 0 0\n";
        let s = parse_stat(line).expect("parse");
        assert_eq!(s.pid, 4242);
        assert_eq!(s.comm, "tmux: server");
        assert_eq!(s.state, 'S');
        assert_eq!(s.ppid, 1);
        assert_eq!((s.utime, s.stime), (12, 34));
        assert_eq!(s.starttime, 987654);
        assert_eq!(s.rss_pages, 1234);

        let evil = "77 (a) b) ( c) R 12 77 77 0 -1 0 0 0 0 0 5 6 0 0 20 0 1 0 1000 0 7 0";
        let s = parse_stat(evil).expect("parse");
        assert_eq!(s.comm, "a) b) ( c");
        assert_eq!(s.ppid, 12);
        assert_eq!(s.starttime, 1000);
        assert_eq!(s.rss_pages, 7);

        assert_eq!(parse_stat(""), None);
        assert_eq!(parse_stat("12 (x"), None);
        assert_eq!(parse_stat("12 (x) S"), None);
        assert_eq!(parse_stat("x (y) S 1 2 3"), None);
    }

    #[test]
    fn own_stat() {
        let s = read_stat(std::process::id()).expect("own stat");
        assert_eq!(s.pid, std::process::id());
        assert!(s.starttime > 0);
    }

    #[test]
    fn status_uids_and_cmdline_and_btime() {
        let status = "Name:\tsudo\nUmask:\t0022\nState:\tS (sleeping)\nUid:\t1000\t0\t0\t0\nGid:\t1000\t1000\t1000\t1000\n";
        assert_eq!(parse_status_uids(status), Some((1000, 0)));
        assert_eq!(parse_status_uids("Name:\tx\n"), None);
        assert_eq!(
            parse_cmdline(b"/bin/sleep\x002.5\x00a b\x00"),
            vec!["/bin/sleep", "2.5", "a b"]
        );
        assert_eq!(
            parse_cmdline(b"nginx: worker process"),
            vec!["nginx: worker process"]
        );
        assert!(parse_cmdline(b"").is_empty());
        assert_eq!(parse_cmdline(b"a\x00\x00b\x00"), vec!["a", "", "b"]);
        assert_eq!(
            parse_btime("cpu  1 2 3\nintr 5\nbtime 1763720360\nprocesses 9\n"),
            Some(1_763_720_360)
        );
        assert_eq!(parse_btime("cpu 1"), None);
    }
}
