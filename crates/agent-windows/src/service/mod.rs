//! The agent as a Windows service (`DozorAgent`), through the `windows-service` crate.
//!
//! [`install`] registers `<exe> run --service --config <config>` to start automatically (after
//! the Event Log service), with a description and failure actions (restart after 5 s, 10 s,
//! 30 s; the failure count resets after a day; a non-zero exit counts as a failure too).
//! [`run_as_service`] is what `dozor-agent run --service` calls: it hands the process to the
//! service control dispatcher and runs the agent's body until a Stop or Shutdown control.
//! [`uninstall`] stops and deletes the service.
//!
//! The Windows calls are in `win` (`cfg(windows)`); the rest (arguments, path checks,
//! messages) is plain Rust, tested everywhere. Elsewhere every entry point returns
//! [`ServiceError::Unsupported`].

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

#[cfg(windows)]
mod win;

/// The service's name (`sc query DozorAgent`).
pub const SERVICE_NAME: &str = "DozorAgent";
/// The name shown in the Services console.
pub const DISPLAY_NAME: &str = "Dozor Agent";
/// The description shown in the Services console.
pub const DESCRIPTION: &str = "Dozor security monitoring agent: collects process, network, file and \
     Windows Event Log telemetry and sends it to the Dozor server.";
/// Restart delays after the first, second and later failures.
pub const RESTART_DELAYS: [Duration; 3] = [
    Duration::from_secs(5),
    Duration::from_secs(10),
    Duration::from_secs(30),
];
/// The failure count goes back to zero after this long without failures.
pub const FAILURE_RESET_PERIOD: Duration = Duration::from_secs(24 * 60 * 60);
/// How long [`uninstall`] waits for a running service to stop.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// The body run by [`run_as_service`]: it runs the agent until the flag is set (Stop or
/// Shutdown), then returns; `Err` is reported to Windows as a service-specific failure, which
/// triggers the failure actions.
pub type ServiceBody = fn(Arc<AtomicBool>) -> Result<(), String>;

/// Why a service operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// Not on Windows.
    #[error("Windows services exist only on Windows")]
    Unsupported,
    /// The account lacks the rights (installing and removing need an administrator).
    #[error(
        "access denied while trying to {action}: run the command from an elevated \
         (\"Run as administrator\") prompt"
    )]
    AccessDenied {
        /// What was being done.
        action: &'static str,
    },
    /// [`install`] found the service already there.
    #[error(
        "the {SERVICE_NAME} service is already installed; uninstall it first to install it again"
    )]
    AlreadyInstalled,
    /// [`uninstall`] found no such service.
    #[error("the {SERVICE_NAME} service is not installed")]
    NotInstalled,
    /// [`run_as_service`] was called in a process not started by the Service Control Manager.
    #[error(
        "not started by the Service Control Manager: `--service` is for the installed service; \
         run without it in a console"
    )]
    NotAService,
    /// A path given to [`install`] can't be used by a service.
    #[error("{what} {}: {reason}", path.display())]
    InvalidPath {
        /// Which path (`executable` or `configuration`).
        what: &'static str,
        /// The path.
        path: PathBuf,
        /// What is wrong.
        reason: &'static str,
    },
    /// The service body ended with an error (reported to Windows as a failure).
    #[error("the service stopped on an error: {0}")]
    Body(String),
    /// Any other failure of a Windows call.
    #[error("cannot {action}: {message}")]
    Windows {
        /// What was being done.
        action: &'static str,
        /// Windows' message.
        message: String,
    },
}

/// The arguments Windows starts the service with: `run --service --config <config>`.
pub fn service_arguments(config: &Path) -> Vec<OsString> {
    vec![
        "run".into(),
        "--service".into(),
        "--config".into(),
        config.as_os_str().to_owned(),
    ]
}

/// Checks the paths [`install`] registers: both absolute (a service starts in
/// `C:\Windows\System32`, where relative paths mean something else) and the executable a file.
pub fn check_install_paths(exe: &Path, config: &Path) -> Result<(), ServiceError> {
    let invalid = |what, path: &Path, reason| ServiceError::InvalidPath {
        what,
        path: path.to_path_buf(),
        reason,
    };
    if !exe.is_absolute() {
        return Err(invalid("executable", exe, "not an absolute path"));
    }
    if !exe.is_file() {
        return Err(invalid("executable", exe, "no such file"));
    }
    if !config.is_absolute() {
        return Err(invalid(
            "configuration",
            config,
            "not an absolute path (the service starts in C:\\Windows\\System32)",
        ));
    }
    if config.as_os_str().is_empty() {
        return Err(invalid("configuration", config, "empty path"));
    }
    Ok(())
}

/// Registers the `DozorAgent` service: automatic start, `<exe> run --service --config
/// <config>` as LocalSystem, a description, and failure actions (restart after 5 s, 10 s, 30 s).
/// Needs administrator rights ([`ServiceError::AccessDenied`] otherwise).
pub fn install(exe: &Path, config: &Path) -> Result<(), ServiceError> {
    #[cfg(windows)]
    {
        check_install_paths(exe, config)?;
        win::install(exe, config)
    }
    #[cfg(not(windows))]
    {
        let _ = (exe, config);
        Err(ServiceError::Unsupported)
    }
}

/// Stops the service if it runs (waiting up to [`STOP_TIMEOUT`]) and deletes it. Needs
/// administrator rights.
pub fn uninstall() -> Result<(), ServiceError> {
    #[cfg(windows)]
    {
        win::uninstall()
    }
    #[cfg(not(windows))]
    {
        Err(ServiceError::Unsupported)
    }
}

/// Runs `body(stop)` under the service control dispatcher: reports Running, sets `stop` (and
/// reports Stop Pending) on a Stop or Shutdown control, and reports Stopped when `body` returns
/// (with a service-specific exit code 1 when it failed or panicked, so the failure actions
/// restart it). Returns when the service has stopped; `Err(ServiceError::Body)` when `body`
/// failed, [`ServiceError::NotAService`] when the process was not started by Windows as a
/// service.
pub fn run_as_service(body: ServiceBody) -> Result<(), ServiceError> {
    #[cfg(windows)]
    {
        win::run_as_service(body)
    }
    #[cfg(not(windows))]
    {
        let _ = body;
        Err(ServiceError::Unsupported)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments() {
        let args = service_arguments(Path::new("C:\\ProgramData\\Dozor\\agent config.toml"));
        assert_eq!(
            args,
            vec![
                OsString::from("run"),
                "--service".into(),
                "--config".into(),
                "C:\\ProgramData\\Dozor\\agent config.toml".into()
            ]
        );
    }

    #[test]
    fn restart_policy() {
        assert_eq!(
            RESTART_DELAYS.map(|d| d.as_secs()),
            [5, 10, 30],
            "the failure actions the brief asks for"
        );
        assert_eq!(SERVICE_NAME, "DozorAgent");
    }

    #[cfg(not(windows))]
    #[test]
    fn install_paths() {
        let dir = tempfile::tempdir().unwrap();
        let exe = dir.path().join("dozor-agent");
        std::fs::write(&exe, b"").unwrap();
        let config = dir.path().join("agent.toml");
        check_install_paths(&exe, &config).unwrap();
        let err = check_install_paths(Path::new("dozor-agent"), &config).unwrap_err();
        assert!(
            err.to_string()
                .contains("executable dozor-agent: not an absolute path"),
            "{err}"
        );
        let err = check_install_paths(&dir.path().join("missing"), &config).unwrap_err();
        assert!(err.to_string().contains("no such file"), "{err}");
        let err = check_install_paths(&exe, Path::new("agent.toml")).unwrap_err();
        assert!(err.to_string().contains("System32"), "{err}");
    }

    #[test]
    fn messages_say_what_to_do() {
        let e = ServiceError::AccessDenied {
            action: "create the service",
        };
        assert!(e.to_string().contains("Run as administrator"), "{e}");
        assert!(
            ServiceError::AlreadyInstalled
                .to_string()
                .contains("DozorAgent")
        );
        assert!(ServiceError::NotAService.to_string().contains("console"));
    }

    #[cfg(not(windows))]
    #[test]
    fn unsupported_here() {
        fn body(_: Arc<AtomicBool>) -> Result<(), String> {
            Ok(())
        }
        assert!(matches!(
            install(
                Path::new("/usr/bin/dozor-agent"),
                Path::new("/etc/dozor/agent.toml")
            ),
            Err(ServiceError::Unsupported)
        ));
        assert!(matches!(uninstall(), Err(ServiceError::Unsupported)));
        assert!(matches!(
            run_as_service(body),
            Err(ServiceError::Unsupported)
        ));
    }
}
