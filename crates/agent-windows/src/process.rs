//! `kill_process` on Windows: open the process (`PROCESS_TERMINATE |
//! PROCESS_QUERY_LIMITED_INFORMATION`), compare its creation time (`GetProcessTimes`) with the
//! command's start time, and only then `TerminateProcess` through the same handle — the handle
//! pins the process, so a reused pid cannot be hit. The time conversion is plain Rust, tested
//! everywhere; the calls are in the `cfg(windows)` FFI module `win`.

/// Milliseconds between 1601-01-01 (the `FILETIME` epoch) and 1970-01-01.
const FILETIME_UNIX_OFFSET_MS: i64 = 11_644_473_600_000;

/// A `FILETIME` (100 ns intervals since 1601) as ms since the Unix epoch.
pub fn filetime_to_unix_ms(filetime: u64) -> i64 {
    i64::try_from(filetime / 10_000).unwrap_or(i64::MAX) - FILETIME_UNIX_OFFSET_MS
}

/// What a kill did (the agent reports it as the command's result).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Killed {
    /// The process id.
    pub pid: u32,
    /// The executable's file name.
    pub name: String,
    /// The executable's full path, when readable.
    pub exe: Option<String>,
    /// The creation time read, ms since the Unix epoch.
    pub start_time_ms: i64,
}

/// Why a kill did not happen.
#[derive(Debug, thiserror::Error)]
pub enum KillError {
    /// No such process (or it cannot be opened).
    #[error("no process with pid {pid} can be opened: {reason}")]
    NotFound {
        /// The process id.
        pid: u32,
        /// The system's message.
        reason: String,
    },
    /// Another process than the one meant: nothing was killed.
    #[error(
        "pid {pid} ({name}) started at {actual_ms} ms, not at {wanted_ms} ms: another process; not killed"
    )]
    Mismatch {
        /// The process id.
        pid: u32,
        /// Its executable's name.
        name: String,
        /// Its creation time.
        actual_ms: i64,
        /// The time the command gave.
        wanted_ms: i64,
    },
    /// A call failed.
    #[error("{0}")]
    Failed(String),
    /// Not on Windows.
    #[error("kill_process through Win32 is only available on Windows")]
    Unsupported,
}

/// Kills `pid` when its creation time is within `tolerance_ms` of `wanted_ms`.
#[cfg(windows)]
pub fn kill(pid: u32, wanted_ms: i64, tolerance_ms: i64) -> Result<Killed, KillError> {
    win::kill(pid, wanted_ms, tolerance_ms)
}

/// Kills `pid` when its creation time is within `tolerance_ms` of `wanted_ms`.
#[cfg(not(windows))]
pub fn kill(_pid: u32, _wanted_ms: i64, _tolerance_ms: i64) -> Result<Killed, KillError> {
    Err(KillError::Unsupported)
}

#[cfg(windows)]
mod win {
    #![allow(unsafe_code)]

    use windows::Win32::Foundation::{FILETIME, HANDLE};
    use windows::Win32::System::Threading::{
        GetProcessTimes, OpenProcess, PROCESS_NAME_WIN32, PROCESS_QUERY_LIMITED_INFORMATION,
        PROCESS_TERMINATE, QueryFullProcessImageNameW, TerminateProcess,
    };
    use windows::core::{Owned, PWSTR};

    use super::{KillError, Killed, filetime_to_unix_ms};

    fn open(pid: u32) -> Result<Owned<HANDLE>, KillError> {
        // SAFETY: OpenProcess takes plain values; the handle it returns is owned here alone
        // and closed once by `Owned`.
        let handle = unsafe {
            OpenProcess(
                PROCESS_TERMINATE | PROCESS_QUERY_LIMITED_INFORMATION,
                false,
                pid,
            )
        }
        .map_err(|e| KillError::NotFound {
            pid,
            reason: e.message().trim().to_owned(),
        })?;
        // SAFETY: see above.
        Ok(unsafe { Owned::new(handle) })
    }

    fn creation_ms(process: HANDLE) -> Result<i64, KillError> {
        let mut times = [FILETIME::default(); 4];
        let [creation, exit, kernel, user] = &mut times;
        // SAFETY: `process` is a live handle with query rights; the four pointers are to
        // distinct, writable FILETIMEs that outlive the call.
        unsafe { GetProcessTimes(process, creation, exit, kernel, user) }
            .map_err(|e| KillError::Failed(format!("GetProcessTimes: {}", e.message().trim())))?;
        let ft = (u64::from(times[0].dwHighDateTime) << 32) | u64::from(times[0].dwLowDateTime);
        Ok(filetime_to_unix_ms(ft))
    }

    fn image(process: HANDLE) -> Option<String> {
        let mut buf = vec![0u16; 32 * 1024];
        let mut len = u32::try_from(buf.len()).ok()?;
        // SAFETY: `buf` is writable for `len` UTF-16 units and outlives the call; `len` is
        // updated to the units written.
        unsafe {
            QueryFullProcessImageNameW(
                process,
                PROCESS_NAME_WIN32,
                PWSTR(buf.as_mut_ptr()),
                &mut len,
            )
        }
        .ok()?;
        buf.truncate(usize::try_from(len).ok()?);
        Some(String::from_utf16_lossy(&buf))
    }

    pub(super) fn kill(pid: u32, wanted_ms: i64, tolerance_ms: i64) -> Result<Killed, KillError> {
        let process = open(pid)?;
        let actual_ms = creation_ms(*process)?;
        let exe = image(*process);
        let name = exe
            .as_deref()
            .and_then(|e| e.rsplit(['\\', '/']).next())
            .unwrap_or("")
            .to_owned();
        if actual_ms.abs_diff(wanted_ms) > tolerance_ms.unsigned_abs() {
            return Err(KillError::Mismatch {
                pid,
                name,
                actual_ms,
                wanted_ms,
            });
        }
        // SAFETY: `process` is a live handle with terminate rights.
        unsafe { TerminateProcess(*process, 1) }
            .map_err(|e| KillError::Failed(format!("TerminateProcess: {}", e.message().trim())))?;
        Ok(Killed {
            pid,
            name,
            exe,
            start_time_ms: actual_ms,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filetimes_convert_to_unix_milliseconds() {
        // 1970-01-01 and 2024-01-01T00:00:00.123Z.
        assert_eq!(filetime_to_unix_ms(116_444_736_000_000_000), 0);
        assert_eq!(
            filetime_to_unix_ms(133_485_408_001_230_000),
            1_704_067_200_123
        );
    }

    #[cfg(not(windows))]
    #[test]
    fn elsewhere_it_is_unsupported() {
        assert!(matches!(kill(4, 1, 1000), Err(KillError::Unsupported)));
    }
}
