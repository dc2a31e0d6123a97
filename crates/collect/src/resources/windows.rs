//! Windows resource sampling through `sysinfo`.

use sysinfo::{
    CpuRefreshKind, Disks, MemoryRefreshKind, ProcessRefreshKind, ProcessesToUpdate, System,
    UpdateKind,
};

use super::{CpuTimes, DiskUsage, ProcessUsage, ResourceUsage, cpu_percent_between, top_by};

pub struct Sampler {
    system: Option<System>,
    disks: Option<Disks>,
    /// Where the global CPU load comes from when not from sysinfo (see `with_cpu_times`).
    pub(super) cpu_times: Option<fn() -> Option<CpuTimes>>,
    last_cpu_times: Option<CpuTimes>,
}

impl std::fmt::Debug for Sampler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sampler").finish_non_exhaustive()
    }
}

impl Sampler {
    pub fn new() -> Self {
        Sampler {
            system: System::new().ok(),
            disks: None,
            cpu_times: None,
            last_cpu_times: None,
        }
    }

    pub fn sample(&mut self, top_n: usize) -> ResourceUsage {
        let mut u = ResourceUsage {
            cpu_count: std::thread::available_parallelism().map_or(1, |n| n.get()),
            uptime_secs: System::uptime().unwrap_or(0),
            ..ResourceUsage::default()
        };
        if let Some(read) = self.cpu_times {
            let now = read();
            if let (Some(before), Some(after)) = (self.last_cpu_times, now) {
                u.cpu_percent = cpu_percent_between(before, after).unwrap_or(0.0);
            }
            self.last_cpu_times = now;
        }
        if let Some(system) = self.system.as_mut() {
            if self.cpu_times.is_none() {
                system.refresh_cpu_specifics(CpuRefreshKind::nothing().with_usage());
                u.cpu_percent = f64::from(system.global_cpu_usage()).clamp(0.0, 100.0);
            }
            system.refresh_memory_specifics(MemoryRefreshKind::everything());
            u.memory_total_bytes = system.total_memory();
            u.memory_available_bytes = system.available_memory();
            u.memory_used_bytes = system.used_memory();
            u.swap_total_bytes = system.total_swap();
            u.swap_used_bytes = system.used_swap();
            if top_n > 0 {
                system.refresh_processes_specifics(
                    ProcessesToUpdate::All,
                    true,
                    ProcessRefreshKind::nothing()
                        .with_cpu()
                        .with_memory()
                        .with_exe(UpdateKind::OnlyIfNotSet),
                );
                let list: Vec<ProcessUsage> = system
                    .processes()
                    .values()
                    .map(|p| ProcessUsage {
                        pid: p.pid().as_u32(),
                        name: p.name().to_string_lossy().into_owned(),
                        executable: p.exe().map(|e| e.to_string_lossy().into_owned()),
                        cpu_percent: f64::from(p.cpu_usage()),
                        rss_bytes: p.memory(),
                    })
                    .collect();
                u.top_cpu = top_by(list.clone(), top_n, |p| p.cpu_percent);
                u.top_memory = top_by(list, top_n, |p| p.rss_bytes as f64);
            }
        }
        match self.disks.as_mut() {
            Some(d) => d.refresh(true),
            None => self.disks = Disks::new_with_refreshed_list().ok(),
        }
        if let Some(disks) = &self.disks {
            u.disks = disks
                .iter()
                .filter(|d| d.total_space() > 0)
                .map(|d| DiskUsage {
                    mount: d.mount_point().to_string_lossy().into_owned(),
                    fs_type: d.file_system().to_string_lossy().into_owned(),
                    total_bytes: d.total_space(),
                    used_bytes: d.total_space().saturating_sub(d.available_space()),
                })
                .collect();
        }
        u
    }
}
