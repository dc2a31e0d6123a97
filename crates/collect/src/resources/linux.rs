//! Linux resource sampling from `/proc` and `statvfs`.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::time::Instant;

use super::{DiskUsage, ProcessUsage, ResourceUsage, top_by};
use crate::procfs;

/// Filesystem types that are not disks.
const PSEUDO_FS: &[&str] = &[
    "proc",
    "sysfs",
    "devtmpfs",
    "devpts",
    "tmpfs",
    "securityfs",
    "cgroup",
    "cgroup2",
    "pstore",
    "bpf",
    "debugfs",
    "tracefs",
    "configfs",
    "fusectl",
    "mqueue",
    "hugetlbfs",
    "autofs",
    "binfmt_misc",
    "rpc_pipefs",
    "nsfs",
    "ramfs",
    "efivarfs",
    "selinuxfs",
    "squashfs",
    "overlay",
    "nfsd",
    "fuse.gvfsd-fuse",
    "fuse.portal",
    "fuse.lxcfs",
    "rootfs",
    "virtiofs",
];

#[derive(Debug)]
pub struct Sampler {
    /// Previous (busy, total) jiffies of the whole CPU.
    cpu: Option<(u64, u64)>,
    /// pid → (start time, utime + stime) at the previous sample.
    procs: HashMap<u32, (u64, u64)>,
    at: Option<Instant>,
    ticks: u64,
    page: u64,
}

/// (busy, total) from the `cpu` line of `/proc/stat`.
pub fn parse_cpu_line(text: &str) -> Option<(u64, u64)> {
    let line = text.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<u64> = line
        .split_ascii_whitespace()
        .skip(1)
        .take(8) // user nice system idle iowait irq softirq steal (guest is inside user)
        .filter_map(|f| f.parse().ok())
        .collect();
    if v.len() < 4 {
        return None;
    }
    let total: u64 = v.iter().sum();
    let idle = v[3] + v.get(4).copied().unwrap_or(0);
    Some((total.saturating_sub(idle), total))
}

/// Value in bytes of a `/proc/meminfo` key (`MemTotal:  16318372 kB`).
pub fn meminfo(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let rest = l.strip_prefix(key)?.strip_prefix(':')?;
        let mut parts = rest.split_ascii_whitespace();
        let n: u64 = parts.next()?.parse().ok()?;
        Some(match parts.next() {
            Some("kB") => n * 1024,
            _ => n,
        })
    })
}

/// `/proc/mounts` line → (device, mount point, fs type); octal escapes (`\040`) decoded.
pub fn parse_mount(line: &str) -> Option<(String, String, String)> {
    let mut f = line.split_ascii_whitespace();
    let dev = unescape(f.next()?);
    let mount = unescape(f.next()?);
    let fs_type = f.next()?.to_owned();
    Some((dev, mount, fs_type))
}

fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 4 <= b.len() {
            let digits = std::str::from_utf8(&b[i + 1..i + 4]).unwrap_or("");
            if let Ok(v) = u8::from_str_radix(digits, 8) {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn disks() -> Vec<DiskUsage> {
    let text = fs::read_to_string("/proc/self/mounts")
        .or_else(|_| fs::read_to_string("/proc/mounts"))
        .unwrap_or_default();
    let mut seen_dev = HashSet::new();
    let mut out = Vec::new();
    for (dev, mount, fs_type) in text.lines().filter_map(parse_mount) {
        if PSEUDO_FS.contains(&fs_type.as_str()) || !seen_dev.insert(dev) {
            continue;
        }
        let Ok(st) = rustix::fs::statvfs(mount.as_str()) else {
            continue;
        };
        let total = st.f_blocks.saturating_mul(st.f_frsize);
        if total == 0 {
            continue;
        }
        out.push(DiskUsage {
            mount,
            fs_type,
            total_bytes: total,
            used_bytes: st
                .f_blocks
                .saturating_sub(st.f_bfree)
                .saturating_mul(st.f_frsize),
        });
    }
    out
}

impl Sampler {
    pub fn new() -> Self {
        Sampler {
            cpu: None,
            procs: HashMap::new(),
            at: None,
            ticks: procfs::clock_ticks(),
            page: rustix::param::page_size() as u64,
        }
    }

    pub fn sample(&mut self, top_n: usize) -> ResourceUsage {
        let mut u = ResourceUsage {
            cpu_count: std::thread::available_parallelism().map_or(1, |n| n.get()),
            ..ResourceUsage::default()
        };
        if let Some((busy, total)) = fs::read_to_string("/proc/stat")
            .ok()
            .and_then(|t| parse_cpu_line(&t))
        {
            let (pb, pt) = self.cpu.unwrap_or((0, 0));
            let dt = total.saturating_sub(pt);
            if dt > 0 {
                u.cpu_percent =
                    (busy.saturating_sub(pb) as f64 / dt as f64 * 100.0).clamp(0.0, 100.0);
            }
            self.cpu = Some((busy, total));
        }
        if let Ok(m) = fs::read_to_string("/proc/meminfo") {
            u.memory_total_bytes = meminfo(&m, "MemTotal").unwrap_or(0);
            u.memory_available_bytes = meminfo(&m, "MemAvailable")
                .or_else(|| meminfo(&m, "MemFree"))
                .unwrap_or(0);
            u.memory_used_bytes = u
                .memory_total_bytes
                .saturating_sub(u.memory_available_bytes);
            u.swap_total_bytes = meminfo(&m, "SwapTotal").unwrap_or(0);
            u.swap_used_bytes = u
                .swap_total_bytes
                .saturating_sub(meminfo(&m, "SwapFree").unwrap_or(0));
        }
        if let Ok(l) = fs::read_to_string("/proc/loadavg") {
            let v: Vec<f64> = l
                .split_ascii_whitespace()
                .take(3)
                .filter_map(|f| f.parse().ok())
                .collect();
            if let [a, b, c] = v[..] {
                u.load_average = Some([a, b, c]);
            }
        }
        let uptime: f64 = fs::read_to_string("/proc/uptime")
            .ok()
            .and_then(|t| t.split_ascii_whitespace().next()?.parse().ok())
            .unwrap_or(0.0);
        u.uptime_secs = uptime as u64;
        u.disks = disks();
        if top_n > 0 {
            self.processes(&mut u, top_n, uptime);
        } else {
            self.at = Some(Instant::now());
        }
        u
    }

    fn processes(&mut self, u: &mut ResourceUsage, top_n: usize, uptime: f64) {
        let now = Instant::now();
        let elapsed = self.at.map(|a| now.duration_since(a).as_secs_f64());
        self.at = Some(now);
        let mut next = HashMap::new();
        let mut list = Vec::new();
        for pid in procfs::list_pids().unwrap_or_default() {
            let Some(st) = procfs::read_stat(pid) else {
                continue;
            };
            let used = st.utime + st.stime;
            let secs = match (elapsed, self.procs.get(&pid)) {
                (Some(e), Some((start, prev))) if *start == st.starttime => {
                    Some((used.saturating_sub(*prev), e))
                }
                (Some(e), _) => Some((
                    used,
                    e.min(uptime - st.starttime as f64 / self.ticks as f64),
                )),
                (None, _) => Some((used, uptime - st.starttime as f64 / self.ticks as f64)),
            };
            let cpu_percent = match secs {
                Some((ticks, wall)) if wall > 0.0 => {
                    ticks as f64 / self.ticks as f64 / wall * 100.0
                }
                _ => 0.0,
            };
            next.insert(pid, (st.starttime, used));
            list.push(ProcessUsage {
                pid,
                name: st.comm,
                executable: None,
                cpu_percent: (cpu_percent * 10.0).round() / 10.0,
                rss_bytes: st.rss_pages * self.page,
            });
        }
        self.procs = next;
        let fill = |mut v: Vec<ProcessUsage>| {
            for p in &mut v {
                p.executable = procfs::read_link(p.pid, "exe").map(|(e, _)| e);
            }
            v
        };
        u.top_cpu = fill(top_by(list.clone(), top_n, |p| p.cpu_percent));
        u.top_memory = fill(top_by(list, top_n, |p| p.rss_bytes as f64));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parsers() {
        assert_eq!(
            parse_cpu_line("cpu  100 5 50 800 20 1 2 3 0 0\ncpu0 1 2 3 4\n"),
            Some((161, 981))
        );
        assert_eq!(parse_cpu_line("intr 1"), None);
        let m = "MemTotal:       16318372 kB\nMemFree:         1000 kB\nMemAvailable:    8000000 kB\nSwapTotal: 0 kB\n";
        assert_eq!(meminfo(m, "MemTotal"), Some(16318372 * 1024));
        assert_eq!(meminfo(m, "MemAvailable"), Some(8_000_000 * 1024));
        assert_eq!(meminfo(m, "Mem"), None);
        assert_eq!(
            parse_mount("/dev/sda1 /mnt/my\\040disk ext4 rw,relatime 0 0"),
            Some(("/dev/sda1".into(), "/mnt/my disk".into(), "ext4".into()))
        );
        assert_eq!(parse_mount("x"), None);
    }

    #[test]
    fn samples_this_host() {
        let mut s = Sampler::new();
        let first = s.sample(3);
        assert!(first.cpu_count >= 1);
        assert!(first.memory_total_bytes > 0);
        assert!(first.memory_used_bytes <= first.memory_total_bytes);
        assert!(first.uptime_secs > 0);
        assert!(first.load_average.is_some());
        assert!(
            first
                .disks
                .iter()
                .all(|d| !PSEUDO_FS.contains(&d.fs_type.as_str()))
        );
        assert_eq!(first.top_memory.len(), 3);
        assert!(first.top_memory[0].rss_bytes >= first.top_memory[1].rss_bytes);
        // Burn some CPU so this process shows up in the next sample.
        let t = Instant::now();
        let mut x = 0u64;
        while t.elapsed().as_millis() < 300 {
            x = x.wrapping_mul(31).wrapping_add(7);
        }
        std::hint::black_box(x);
        // Every process, not the top 5: on a busy machine (parallel builds) others outrank us.
        let second = s.sample(100_000);
        assert!(second.cpu_percent > 0.0);
        let me = second
            .top_cpu
            .iter()
            .find(|p| p.pid == std::process::id())
            .unwrap_or_else(|| panic!("this process is not sampled: {:?}", second.top_cpu));
        assert!(me.cpu_percent > 0.0, "{me:?}");
        assert!(
            second
                .top_cpu
                .windows(2)
                .all(|w| w[0].cpu_percent >= w[1].cpu_percent),
            "sorted by CPU"
        );
    }
}
