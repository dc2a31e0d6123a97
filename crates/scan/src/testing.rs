//! Test support (feature `test-support`, for this workspace's tests only): a real clamd
//! (Debian `clamav-daemon`) started on a private socket with a signature database the test
//! writes, and the EICAR test string assembled at runtime so no source file holds it.

use std::fs;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::clamd::{ClamdAddress, ClamdClient};

/// How long clamd may take to load the (tiny) database and open its sockets.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(90);

/// The EICAR test file's 68 bytes.
pub fn eicar() -> Vec<u8> {
    let pieces = [
        "X5O!P%@AP[4\\",
        "PZX54(P^)7CC)7}$",
        "EICAR-STANDARD-",
        "ANTIVIRUS-",
        "TEST-FILE!$H",
        "+H*",
    ];
    pieces.concat().into_bytes()
}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    crate::to_hex(bytes)
}

/// The clamd binary: `DOZOR_TEST_CLAMD`, else `clamd` on PATH or in the sbin directories.
pub fn find_clamd() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("DOZOR_TEST_CLAMD") {
        return Some(PathBuf::from(p));
    }
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    dirs.extend(["/usr/sbin", "/usr/local/sbin", "/sbin"].map(PathBuf::from));
    dirs.into_iter()
        .map(|d| d.join("clamd"))
        .find(|p| p.is_file())
}

/// A clamd child process with its own directory; stopped (and reaped) on drop.
pub struct TestClamd {
    child: Option<Child>,
    dir: tempfile::TempDir,
    /// `LocalSocket`.
    pub socket: PathBuf,
    /// `TCPSocket` on 127.0.0.1.
    pub tcp: SocketAddr,
}

impl TestClamd {
    /// Starts `binary` with a database made of `db_files` (file name, content), e.g.
    /// `("dozor.hdb", "<md5>:<size>:Name\n")`, and `StreamMaxLength` = `stream_max`
    /// (clamd syntax, e.g. `1M`). Panics with clamd's log when it does not come up.
    pub fn start(binary: &Path, db_files: &[(&str, String)], stream_max: &str) -> TestClamd {
        let dir = tempfile::Builder::new()
            .prefix("dozor-clamd-")
            .tempdir()
            .expect("temp dir");
        let db = dir.path().join("db");
        let tmp = dir.path().join("tmp");
        fs::create_dir_all(&db).expect("db dir");
        fs::create_dir_all(&tmp).expect("tmp dir");
        for (name, content) in db_files {
            fs::write(db.join(name), content).expect("database file");
        }
        let socket = dir.path().join("clamd.sock");
        let tcp = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port");
        let config = dir.path().join("clamd.conf");
        fs::write(
            &config,
            format!(
                "LocalSocket {socket}\n\
                 TCPSocket {port}\n\
                 TCPAddr 127.0.0.1\n\
                 DatabaseDirectory {db}\n\
                 TemporaryDirectory {tmp}\n\
                 PidFile {pid}\n\
                 LogFile {log}\n\
                 LogSyslog no\n\
                 LogTime yes\n\
                 Foreground yes\n\
                 StreamMaxLength {stream_max}\n\
                 MaxThreads 4\n\
                 SelfCheck 0\n\
                 ConcurrentDatabaseReload no\n",
                socket = socket.display(),
                port = tcp.port(),
                db = db.display(),
                tmp = tmp.display(),
                pid = dir.path().join("clamd.pid").display(),
                log = dir.path().join("clamd.log").display(),
            ),
        )
        .expect("clamd.conf");
        let stderr = fs::File::create(dir.path().join("stderr.txt")).expect("stderr file");
        let child = Command::new(binary)
            .arg(format!("--config-file={}", config.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        let mut clamd = TestClamd {
            child: Some(child),
            dir,
            socket,
            tcp,
        };
        let probe = ClamdClient::new(clamd.address())
            .with_connect_timeout(Duration::from_secs(1))
            .with_read_timeout(Duration::from_secs(5));
        let started = Instant::now();
        loop {
            if let Some(child) = clamd.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                panic!("clamd exited during startup ({status}):\n{}", clamd.log());
            }
            match probe.ping() {
                Ok(()) => break,
                Err(e) if started.elapsed() > STARTUP_TIMEOUT => {
                    let log = clamd.log();
                    clamd.stop();
                    panic!("clamd did not answer PING within {STARTUP_TIMEOUT:?}: {e}\n{log}");
                }
                Err(_) => thread::sleep(Duration::from_millis(100)),
            }
        }
        eprintln!("clamd ready after {:?}", started.elapsed());
        clamd
    }

    /// The unix socket address.
    pub fn address(&self) -> ClamdAddress {
        ClamdAddress::Unix(self.socket.clone())
    }

    /// `unix:/path` as configuration text.
    pub fn address_text(&self) -> String {
        format!("unix:{}", self.socket.display())
    }

    /// clamd's log file and stderr.
    pub fn log(&self) -> String {
        let mut out = String::new();
        for name in ["clamd.log", "stderr.txt"] {
            if let Ok(text) = fs::read_to_string(self.dir.path().join(name)) {
                out.push_str(&format!("--- {name} ---\n{text}\n"));
            }
        }
        out
    }

    /// Stops clamd (SIGTERM, then SIGKILL after 20 s) and waits for it.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        #[cfg(unix)]
        {
            let pid = rustix::process::Pid::from_child(&child);
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            match child.try_wait() {
                Ok(Some(_)) => return,
                Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(50)),
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return;
                }
            }
        }
    }
}

impl Drop for TestClamd {
    fn drop(&mut self) {
        self.stop();
    }
}
