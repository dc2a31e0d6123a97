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
