//! The Windows-only glue of the Dozor agent (`dozor-agent`).
//!
//! - [`eventlog`]: subscribes to Windows Event Log channels (Sysmon, Security, System,
//!   PowerShell), renders each event to XML and hands it to the agent, persisting one bookmark
//!   per channel so that nothing is skipped across restarts; [`xml_to_event`] turns the XML into
//!   the normalized (ECS-aligned) event.
//! - [`service`]: installs, uninstalls and runs the agent as the `DozorAgent` Windows service.
//! - [`process`]: `kill_process` — terminates a process only when its creation time matches.
//! - [`cpu`]: the machine's idle and total CPU time (`GetSystemTimes`) for the resource sample.
//!
//! This is the one crate of the workspace allowed `unsafe` (Win32 FFI). `unsafe` is denied
//! crate-wide and allowed only in the `cfg(windows)` FFI modules; everything that can be
//! plain Rust (XPath building, bookmark files, XML conversion, service arguments) is, and is
//! tested on Linux. On other systems the Windows entry points return `Unsupported`.

pub mod cpu;
pub mod eventlog;
pub mod process;
pub mod service;

mod convert;

pub use convert::xml_to_event;
pub use eventlog::{ChannelQuery, EventLogError, Subscription, default_queries, run};
pub use service::{SERVICE_NAME, ServiceError, install, run_as_service, uninstall};
