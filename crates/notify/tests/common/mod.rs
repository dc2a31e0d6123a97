//! Shared by the integration tests: a throwaway PKI made with rcgen, and a real SMTP server
//! (aiosmtpd) run as a child process.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use dozor_notify::{Smtp, SmtpSecurity};

/// A CA, and a server certificate it signed for 127.0.0.1 and localhost, as PEM files; the DER
/// forms for an in-process rustls server.
pub struct Pki {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
    pub cert_der: Vec<u8>,
    pub key_der: Vec<u8>,
}

pub fn make_pki(dir: &Path) -> Pki {
    use rcgen::{
        BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair, KeyUsagePurpose,
    };
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "dozor-notify test CA");
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().expect("CA key"))
        .expect("CA certificate");
    let leaf_key = KeyPair::generate().expect("server key");
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
        .expect("server params")
        .signed_by(&leaf_key, &ca)
        .expect("server certificate");
    let pki = Pki {
        ca: dir.join("ca.pem"),
        cert: dir.join("server.pem"),
        key: dir.join("server.key"),
        cert_der: leaf.der().to_vec(),
        key_der: leaf_key.serialize_der(),
    };
    std::fs::write(&pki.ca, ca.pem()).expect("write CA");
    std::fs::write(&pki.cert, leaf.pem()).expect("write cert");
    std::fs::write(&pki.key, leaf_key.serialize_pem()).expect("write key");
    pki
}

const SERVER_SCRIPT: &str = include_str!("../smtp_server.py");

/// The first Python that has aiosmtpd: `DOZOR_TEST_PYTHON`, then `python3`, then
/// `/usr/bin/python3` (the system one, where Debian's package lives, when a pyenv shim comes
/// first in PATH).
pub fn python() -> Option<String> {
    let mut candidates = Vec::new();
    if let Ok(p) = std::env::var("DOZOR_TEST_PYTHON") {
        candidates.push(p);
    }
    candidates.push("python3".into());
    candidates.push("/usr/bin/python3".into());
    candidates.into_iter().find(|p| {
        Command::new(p)
            .args(["-c", "import aiosmtpd"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })
}

/// A running aiosmtpd; killed on drop.
pub struct SmtpServer {
    child: Child,
    pub port: u16,
    outbox: PathBuf,
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl SmtpServer {
    /// `mode`: plain, starttls or tls; `auth`: required login.
    pub fn start(
        python: &str,
        dir: &Path,
        mode: &str,
        pki: Option<&Pki>,
        auth: Option<(&str, &str)>,
    ) -> SmtpServer {
        let script = dir.join("smtp_server.py");
        std::fs::write(&script, SERVER_SCRIPT).expect("write script");
        let outbox = dir.join(format!("outbox-{mode}"));
        std::fs::create_dir_all(&outbox).expect("outbox");
        let mut cmd = Command::new(python);
        cmd.arg(&script).arg(mode).arg(&outbox);
        if let Some(pki) = pki {
            cmd.arg(&pki.cert).arg(&pki.key);
        }
        if let Some((user, password)) = auth {
            cmd.arg(user).arg(password);
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the SMTP server");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read the port");
        let port = line.trim().parse().unwrap_or_else(|_| {
            let _ = child.kill();
            panic!("the SMTP server printed {line:?} instead of its port")
        });
        SmtpServer {
            child,
            port,
            outbox,
        }
    }

    /// The messages received so far, in order.
    pub fn received(&self) -> Vec<serde_json::Value> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&self.outbox)
            .expect("outbox")
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        files.sort();
        files
            .iter()
            .map(|p| serde_json::from_slice(&std::fs::read(p).expect("read")).expect("json"))
            .collect()
    }

    pub fn smtp(&self, security: SmtpSecurity) -> Smtp {
        let mut smtp = Smtp::new("127.0.0.1");
        smtp.port = Some(self.port);
        smtp.security = security;
        smtp.timeout = Duration::from_secs(10);
        smtp.deadline = Duration::from_secs(20);
        smtp
    }
}
