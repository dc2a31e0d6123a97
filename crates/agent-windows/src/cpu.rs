//! The machine's CPU time counters (`GetSystemTimes`), for the agent's resource sample.
//!
//! sysinfo measures the global CPU load on Windows through PDH performance counters; Wine
//! implements too little of PDH (`PdhEnumObjectsW` aborts the process), and two counters read
//! straight from the kernel are all a percentage needs.

/// Idle and total (kernel + user, idle included) CPU time over all processors, in 100 ns
/// intervals since boot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SystemTimes {
    /// Time all processors spent idle.
    pub idle: u64,
    /// Time all processors spent in kernel and user mode (idle included).
    pub total: u64,
}

/// The counters now; `None` when the call fails (or off Windows).
#[cfg(windows)]
pub fn system_times() -> Option<SystemTimes> {
    win::system_times()
}

/// The counters now; `None` when the call fails (or off Windows).
#[cfg(not(windows))]
pub fn system_times() -> Option<SystemTimes> {
    None
}

#[cfg(windows)]
mod win {
    #![allow(unsafe_code)]

    use windows::Win32::Foundation::FILETIME;
    use windows::Win32::System::Threading::GetSystemTimes;

    use super::SystemTimes;

    fn ticks(t: FILETIME) -> u64 {
        (u64::from(t.dwHighDateTime) << 32) | u64::from(t.dwLowDateTime)
    }

    pub(super) fn system_times() -> Option<SystemTimes> {
        let (mut idle, mut kernel, mut user) = (
            FILETIME::default(),
            FILETIME::default(),
            FILETIME::default(),
        );
        // SAFETY: three distinct, writable FILETIMEs that outlive the call.
        unsafe { GetSystemTimes(Some(&mut idle), Some(&mut kernel), Some(&mut user)) }.ok()?;
        Some(SystemTimes {
            idle: ticks(idle),
            total: ticks(kernel).saturating_add(ticks(user)),
        })
    }
}
