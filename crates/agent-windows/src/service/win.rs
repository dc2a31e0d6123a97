//! The Windows side of the service glue, through `windows-service`. The only `unsafe` here is
//! in the expansion of `define_windows_service!` (the `extern "system"` entry point the
//! dispatcher calls, which turns the raw argument vector into `Vec<OsString>`).

#![allow(unsafe_code)]

use std::ffi::OsString;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use tracing::{error, info, warn};
use windows_service::service::{
    ServiceAccess, ServiceAction, ServiceActionType, ServiceControl, ServiceControlAccept,
    ServiceDependency, ServiceErrorControl, ServiceExitCode, ServiceFailureActions,
    ServiceFailureResetPeriod, ServiceInfo, ServiceStartType, ServiceState, ServiceStatus,
    ServiceType,
};
use windows_service::service_control_handler::{self, ServiceControlHandlerResult};
use windows_service::service_manager::{ServiceManager, ServiceManagerAccess};
use windows_service::{define_windows_service, service_dispatcher};

use super::{
    DESCRIPTION, DISPLAY_NAME, FAILURE_RESET_PERIOD, RESTART_DELAYS, SERVICE_NAME, STOP_TIMEOUT,
    ServiceBody, ServiceError, service_arguments,
};

const ERROR_ACCESS_DENIED: i32 = 5;
const ERROR_SERVICE_DOES_NOT_EXIST: i32 = 1060;
const ERROR_SERVICE_NOT_ACTIVE: i32 = 1062;
const ERROR_FAILED_SERVICE_CONTROLLER_CONNECT: i32 = 1063;
const ERROR_SERVICE_EXISTS: i32 = 1073;
const ERROR_SERVICE_MARKED_FOR_DELETE: i32 = 1072;

/// How long Windows is told a stop may take.
const STOP_WAIT_HINT: Duration = Duration::from_secs(30);

fn map_err(action: &'static str, e: windows_service::Error) -> ServiceError {
    if let windows_service::Error::Winapi(io) = &e {
        match io.raw_os_error() {
            Some(ERROR_ACCESS_DENIED) => return ServiceError::AccessDenied { action },
            Some(ERROR_SERVICE_EXISTS) => return ServiceError::AlreadyInstalled,
            Some(ERROR_SERVICE_DOES_NOT_EXIST) => return ServiceError::NotInstalled,
            Some(ERROR_FAILED_SERVICE_CONTROLLER_CONNECT) => return ServiceError::NotAService,
            _ => {}
        }
        return ServiceError::Windows {
            action,
            message: io.to_string(),
        };
    }
    ServiceError::Windows {
        action,
        message: e.to_string(),
    }
}

pub(super) fn install(exe: &Path, config: &Path) -> Result<(), ServiceError> {
    let manager = ServiceManager::local_computer(
        None::<&str>,
        ServiceManagerAccess::CONNECT | ServiceManagerAccess::CREATE_SERVICE,
    )
    .map_err(|e| map_err("open the Service Control Manager", e))?;
    let info = ServiceInfo {
        name: SERVICE_NAME.into(),
        display_name: DISPLAY_NAME.into(),
        service_type: ServiceType::OWN_PROCESS,
        start_type: ServiceStartType::AutoStart,
        error_control: ServiceErrorControl::Normal,
        executable_path: exe.to_path_buf(),
        launch_arguments: service_arguments(config),
        // The agent reads the Event Log.
        dependencies: vec![ServiceDependency::Service("EventLog".into())],
        // LocalSystem: needed to read the Security channel.
        account_name: None,
        account_password: None,
    };
    let service = manager
        .create_service(
            &info,
            ServiceAccess::CHANGE_CONFIG | ServiceAccess::QUERY_STATUS,
        )
        .map_err(|e| match map_err("create the service", e) {
            ServiceError::Windows { message, .. }
                if message.contains(&ERROR_SERVICE_MARKED_FOR_DELETE.to_string()) =>
            {
                ServiceError::Windows {
                    action: "create the service",
                    message: format!(
                        "{message} (the previous {SERVICE_NAME} is still being deleted: close \
                         the Services console and try again)"
                    ),
                }
            }
            other => other,
        })?;
    service
        .set_description(DESCRIPTION)
        .map_err(|e| map_err("set the service description", e))?;
    let actions = RESTART_DELAYS
        .iter()
        .map(|delay| ServiceAction {
            action_type: ServiceActionType::Restart,
            delay: *delay,
        })
        .collect();
    service
        .update_failure_actions(ServiceFailureActions {
            reset_period: ServiceFailureResetPeriod::After(FAILURE_RESET_PERIOD),
            reboot_msg: None,
            command: None,
            actions: Some(actions),
        })
        .map_err(|e| map_err("set the service failure actions", e))?;
    // An exit with an error (not only a crash) triggers the restarts too.
    service
        .set_failure_actions_on_non_crash_failures(true)
        .map_err(|e| map_err("set the service failure actions", e))?;
    info!(
        service = SERVICE_NAME,
        exe = %exe.display(),
        config = %config.display(),
        "service installed"
    );
    Ok(())
}

pub(super) fn uninstall() -> Result<(), ServiceError> {
    let manager = ServiceManager::local_computer(None::<&str>, ServiceManagerAccess::CONNECT)
        .map_err(|e| map_err("open the Service Control Manager", e))?;
    let service = manager
        .open_service(
            SERVICE_NAME,
            ServiceAccess::QUERY_STATUS | ServiceAccess::STOP | ServiceAccess::DELETE,
        )
        .map_err(|e| map_err("open the service", e))?;
    let status = service
        .query_status()
        .map_err(|e| map_err("query the service", e))?;
    if status.current_state != ServiceState::Stopped {
        match service.stop() {
            Ok(_) => {}
            Err(windows_service::Error::Winapi(io))
                if io.raw_os_error() == Some(ERROR_SERVICE_NOT_ACTIVE) => {}
            Err(e) => return Err(map_err("stop the service", e)),
        }
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            let state = service
                .query_status()
                .map_err(|e| map_err("query the service", e))?
                .current_state;
            if state == ServiceState::Stopped {
                break;
            }
            if Instant::now() >= deadline {
                warn!(
                    service = SERVICE_NAME,
                    "the service did not stop in time; it is deleted once it stops"
                );
                break;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }
    service
        .delete()
        .map_err(|e| map_err("delete the service", e))?;
    info!(service = SERVICE_NAME, "service uninstalled");
    Ok(())
}

/// The body `run_as_service` was given, for `service_main` (the dispatcher calls it with no
/// way to pass data along).
static BODY: Mutex<Option<ServiceBody>> = Mutex::new(None);
/// What the body returned, for `run_as_service` to return once the dispatcher is done.
static OUTCOME: Mutex<Option<Result<(), String>>> = Mutex::new(None);

define_windows_service!(ffi_service_main, service_main);

pub(super) fn run_as_service(body: ServiceBody) -> Result<(), ServiceError> {
    *BODY.lock().unwrap_or_else(|p| p.into_inner()) = Some(body);
    *OUTCOME.lock().unwrap_or_else(|p| p.into_inner()) = None;
    // Blocks until the service has stopped.
    service_dispatcher::start(SERVICE_NAME, ffi_service_main)
        .map_err(|e| map_err("start the service dispatcher", e))?;
    match OUTCOME.lock().unwrap_or_else(|p| p.into_inner()).take() {
        Some(Err(message)) => Err(ServiceError::Body(message)),
        _ => Ok(()),
    }
}

fn service_main(_arguments: Vec<OsString>) {
    let result = run_service();
    if let Err(message) = &result {
        error!(service = SERVICE_NAME, "{message}");
    }
    *OUTCOME.lock().unwrap_or_else(|p| p.into_inner()) = Some(result);
}

fn status(state: ServiceState, exit_code: ServiceExitCode, wait_hint: Duration) -> ServiceStatus {
    let controls_accepted = if state == ServiceState::Running {
        ServiceControlAccept::STOP | ServiceControlAccept::SHUTDOWN
    } else {
        ServiceControlAccept::empty()
    };
    ServiceStatus {
        service_type: ServiceType::OWN_PROCESS,
        current_state: state,
        controls_accepted,
        exit_code,
        checkpoint: u32::from(state == ServiceState::StopPending),
        wait_hint,
        process_id: None,
    }
}

fn run_service() -> Result<(), String> {
    let body = BODY
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .ok_or("no service body")?;
    let stop = Arc::new(AtomicBool::new(false));
    let handle_cell: Arc<OnceLock<service_control_handler::ServiceStatusHandle>> =
        Arc::new(OnceLock::new());
    let handler_stop = Arc::clone(&stop);
    let handler_cell = Arc::clone(&handle_cell);
    let handle = service_control_handler::register(SERVICE_NAME, move |control| match control {
        ServiceControl::Stop | ServiceControl::Shutdown => {
            info!(service = SERVICE_NAME, ?control, "stop requested");
            handler_stop.store(true, Ordering::SeqCst);
            if let Some(handle) = handler_cell.get() {
                let pending = status(
                    ServiceState::StopPending,
                    ServiceExitCode::NO_ERROR,
                    STOP_WAIT_HINT,
                );
                if let Err(e) = handle.set_service_status(pending) {
                    warn!("cannot report StopPending: {e}");
                }
            }
            ServiceControlHandlerResult::NoError
        }
        ServiceControl::Interrogate => ServiceControlHandlerResult::NoError,
        _ => ServiceControlHandlerResult::NotImplemented,
    })
    .map_err(|e| format!("cannot register the service control handler: {e}"))?;
    let _ = handle_cell.set(handle);
    handle
        .set_service_status(status(
            ServiceState::Running,
            ServiceExitCode::NO_ERROR,
            Duration::ZERO,
        ))
        .map_err(|e| format!("cannot report Running: {e}"))?;
    info!(service = SERVICE_NAME, "service running");

    let result = match catch_unwind(AssertUnwindSafe(|| body(Arc::clone(&stop)))) {
        Ok(result) => result,
        Err(_) => Err("the agent panicked".to_owned()),
    };
    let exit_code = match &result {
        Ok(()) => ServiceExitCode::NO_ERROR,
        Err(_) => ServiceExitCode::ServiceSpecific(1),
    };
    if let Err(e) =
        handle.set_service_status(status(ServiceState::Stopped, exit_code, Duration::ZERO))
    {
        warn!("cannot report Stopped: {e}");
    }
    info!(service = SERVICE_NAME, "service stopped");
    result
}
