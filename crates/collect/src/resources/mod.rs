//! Host resource usage for the agent's heartbeats.

#[cfg(target_os = "linux")]
mod linux;
#[cfg(windows)]
mod windows;

use serde::Serialize;

/// One mounted filesystem.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DiskUsage {
    pub mount: String,
    pub fs_type: String,
    pub total_bytes: u64,
    pub used_bytes: u64,
}

/// One process in a top list.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ProcessUsage {
    pub pid: u32,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub executable: Option<String>,
    /// Percent of one core since the previous sample (the process's lifetime average on the
    /// first sample).
    pub cpu_percent: f64,
    pub rss_bytes: u64,
}

/// A sample of the host's resource usage.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ResourceUsage {
    /// CPU busy time in percent of all cores (0–100) since the previous sample (since boot on
    /// the first one).
    pub cpu_percent: f64,
    pub cpu_count: usize,
    pub memory_total_bytes: u64,
    pub memory_used_bytes: u64,
    pub memory_available_bytes: u64,
    pub swap_total_bytes: u64,
    pub swap_used_bytes: u64,
    /// 1, 5 and 15 minute load averages (Linux).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub load_average: Option<[f64; 3]>,
    /// Real filesystems (pseudo filesystems such as proc, sysfs, tmpfs, cgroup are skipped).
    pub disks: Vec<DiskUsage>,
    pub uptime_secs: u64,
    /// The N processes using the most CPU since the previous sample.
    pub top_cpu: Vec<ProcessUsage>,
    /// The N processes with the largest resident set.
    pub top_memory: Vec<ProcessUsage>,
}

/// Idle and total CPU time over all processors since boot, in any one unit (Windows: 100 ns).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuTimes {
    pub idle: u64,
    pub total: u64,
}

/// The busy share of the CPU between two readings, in percent (`None` when no time passed).
pub fn cpu_percent_between(before: CpuTimes, after: CpuTimes) -> Option<f64> {
    let total = after.total.checked_sub(before.total)?;
    let idle = after.idle.checked_sub(before.idle)?;
    if total == 0 {
        return None;
    }
    Some((total.saturating_sub(idle) as f64 * 100.0 / total as f64).clamp(0.0, 100.0))
}

/// Samples [`ResourceUsage`]; keeps the previous counters to compute rates.
#[derive(Debug)]
pub struct ResourceSampler {
    #[cfg(target_os = "linux")]
    inner: linux::Sampler,
    #[cfg(windows)]
    inner: windows::Sampler,
}

impl Default for ResourceSampler {
    fn default() -> Self {
        Self::new()
    }
}

impl ResourceSampler {
    pub fn new() -> Self {
        ResourceSampler {
            #[cfg(target_os = "linux")]
            inner: linux::Sampler::new(),
            #[cfg(windows)]
            inner: windows::Sampler::new(),
        }
    }

    /// Reads the global CPU load from these counters instead of sysinfo's (on Windows: PDH,
    /// which Wine lacks). Ignored on other systems.
    pub fn with_cpu_times(self, read: fn() -> Option<CpuTimes>) -> Self {
        #[cfg(windows)]
        {
            let mut sampler = self;
            sampler.inner.cpu_times = Some(read);
            sampler
        }
        #[cfg(not(windows))]
        {
            let _ = read;
            self
        }
    }

    /// A sample with the top `top_n` processes by CPU and by memory.
    pub fn sample(&mut self, top_n: usize) -> ResourceUsage {
        #[cfg(any(target_os = "linux", windows))]
        {
            self.inner.sample(top_n)
        }
        #[cfg(not(any(target_os = "linux", windows)))]
        {
            let _ = top_n;
            ResourceUsage {
                cpu_count: std::thread::available_parallelism().map_or(1, |n| n.get()),
                ..ResourceUsage::default()
            }
        }
    }
}

/// Keeps the `n` largest by `key`, sorted descending.
pub(crate) fn top_by(
    mut list: Vec<ProcessUsage>,
    n: usize,
    key: impl Fn(&ProcessUsage) -> f64,
) -> Vec<ProcessUsage> {
    list.sort_by(|a, b| key(b).total_cmp(&key(a)).then(a.pid.cmp(&b.pid)));
    list.truncate(n);
    list
}

#[cfg(test)]
mod cpu_tests {
    use super::{CpuTimes, cpu_percent_between};

    #[test]
    fn cpu_percent_from_two_readings() {
        let before = CpuTimes {
            idle: 1_000,
            total: 4_000,
        };
        let after = CpuTimes {
            idle: 1_750,
            total: 5_000,
        };
        assert_eq!(cpu_percent_between(before, after), Some(25.0));
        assert_eq!(cpu_percent_between(after, after), None, "no time passed");
        assert_eq!(
            cpu_percent_between(after, before),
            None,
            "counters went back"
        );
    }
}
