//! What the fuzz targets share: a scratch file per process (the decoders read paths, as the
//! server does with an upload spooled to disk) and the server's handling of a decoded
//! Windows event (normalize, then validate against the event schema).

use std::path::PathBuf;
use std::sync::OnceLock;

use dozor_decode::{DecodeError, FlatEvent};
use dozor_event::schema::EventValidator;

/// The event schema validator, compiled once per process.
pub fn validator() -> &'static EventValidator {
    static VALIDATOR: OnceLock<EventValidator> = OnceLock::new();
    VALIDATOR.get_or_init(|| EventValidator::new().expect("the built-in event schema compiles"))
}

/// A file of this process (under `TMPDIR`; `run.sh` points it at a tmpfs) holding `data`.
pub fn scratch_file(name: &str, data: &[u8]) -> PathBuf {
    let path = std::env::temp_dir().join(format!("dozor-fuzz-{}-{name}", std::process::id()));
    std::fs::write(&path, data).expect("the scratch file can be written");
    path
}

/// A scratch directory of this process, emptied.
pub fn scratch_dir(name: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("dozor-fuzz-{}-{name}", std::process::id()));
    match std::fs::remove_dir_all(&path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => panic!("cannot empty {}: {e}", path.display()),
    }
    std::fs::create_dir_all(&path).expect("the scratch directory can be created");
    path
}

/// What `POST /api/v1/ingest/evtx` does with each decoded item: a Windows event becomes a
/// normalized event and is validated; an undecodable one is reported with its message.
pub fn ingest_decoded(events: impl Iterator<Item = Result<FlatEvent, DecodeError>>) {
    for item in events {
        match item {
            Ok(flat) => {
                let _ = flat.to_json();
                if let Ok(event) = dozor_decode::winlog::to_event(&flat) {
                    let _ = validator().validate(&event);
                }
            }
            Err(e) => {
                let _ = e.to_string();
                let _ = e.location();
            }
        }
    }
}
