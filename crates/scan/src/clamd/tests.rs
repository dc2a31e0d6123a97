//! Client tests against small fake servers (the real clamd is in tests/clamd_real.rs).

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::*;

/// Serves one connection with `handler` on a fresh loopback port.
fn fake_server<T: Send + 'static>(
    handler: impl FnOnce(TcpStream) -> T + Send + 'static,
) -> (ClamdClient, JoinHandle<T>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let handle = thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        handler(stream)
    });
    let client = ClamdClient::new(ClamdAddress::Tcp(addr))
        .with_connect_timeout(Duration::from_secs(2))
        .with_read_timeout(Duration::from_secs(5))
        .with_write_timeout(Duration::from_secs(5));
    (client, handle)
}

fn read_until_nul(stream: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    let mut byte = [0u8; 1];
    while stream.read_exact(&mut byte).is_ok() {
        out.push(byte[0]);
        if byte[0] == 0 {
            break;
        }
    }
    out
}

/// Reads the INSTREAM chunks; returns (chunk lengths, concatenated data).
fn read_chunks(stream: &mut TcpStream) -> (Vec<u32>, Vec<u8>) {
    let mut lens = Vec::new();
    let mut data = Vec::new();
    loop {
        let mut len = [0u8; 4];
        stream.read_exact(&mut len).unwrap();
        let len = u32::from_be_bytes(len);
        lens.push(len);
        if len == 0 {
            return (lens, data);
        }
        let mut chunk = vec![0u8; len as usize];
        stream.read_exact(&mut chunk).unwrap();
        data.extend_from_slice(&chunk);
    }
}

#[test]
fn ping_sends_z_command() {
    let (client, server) = fake_server(|mut s| {
        let cmd = read_until_nul(&mut s);
        s.write_all(b"PONG\0").unwrap();
        cmd
    });
    client.ping().unwrap();
    assert_eq!(server.join().unwrap(), b"zPING\0");
}

#[test]
fn version_is_parsed() {
    let (client, server) = fake_server(|mut s| {
        let cmd = read_until_nul(&mut s);
        s.write_all(b"ClamAV 1.0.7/27000/Thu Nov 20 09:24:36 2025\0")
            .unwrap();
        cmd
    });
    let v = client.version().unwrap();
    assert_eq!(server.join().unwrap(), b"zVERSION\0");
    assert_eq!(v.engine, "1.0.7");
    assert_eq!(v.db_version, Some(27000));
}

#[test]
fn instream_framing_and_found() {
    let (client, server) = fake_server(|mut s| {
        let cmd = read_until_nul(&mut s);
        let chunks = read_chunks(&mut s);
        s.write_all(b"stream: Test.Sig.UNOFFICIAL FOUND\0").unwrap();
        (cmd, chunks)
    });
    let client = client.with_chunk_size(4);
    let reply = client.instream(&b"0123456789"[..], 10).unwrap();
    let (cmd, (lens, data)) = server.join().unwrap();
    assert_eq!(cmd, b"zINSTREAM\0");
    assert_eq!(lens, vec![4, 4, 2, 0]);
    assert_eq!(data, b"0123456789");
    assert_eq!(reply.signature(), Some("Test.Sig.UNOFFICIAL"));
    assert!(reply.is_unofficial());
}

#[test]
fn instream_empty_input_sends_only_terminator() {
    let (client, server) = fake_server(|mut s| {
        read_until_nul(&mut s);
        let chunks = read_chunks(&mut s);
        s.write_all(b"stream: OK\0").unwrap();
        chunks
    });
    assert_eq!(client.instream(&b""[..], 0).unwrap(), ScanReply::Clean);
    assert_eq!(server.join().unwrap().0, vec![0]);
}

#[test]
fn scan_reader_queries_version_then_scans() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        assert_eq!(read_until_nul(&mut s), b"zVERSION\0");
        s.write_all(b"ClamAV 1.4.6\0").unwrap();
        drop(s);
        let (mut s, _) = listener.accept().unwrap();
        assert_eq!(read_until_nul(&mut s), b"zINSTREAM\0");
        read_chunks(&mut s);
        s.write_all(b"stream: OK\0").unwrap();
    });
    let client = ClamdClient::new(ClamdAddress::Tcp(addr));
    let verdict = client.scan_bytes(b"hello").unwrap();
    server.join().unwrap();
    assert_eq!(
        verdict,
        Verdict {
            engine: "clamav".into(),
            signature: None,
            infected: false,
            engine_version: "1.4.6".into(),
            db_version: None,
        }
    );
    assert!(!verdict.is_unofficial());
}

#[test]
fn input_larger_than_limit_is_refused_without_sending_it() {
    let (client, server) = fake_server(|mut s| {
        read_until_nul(&mut s);
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest);
        rest
    });
    let client = client.with_chunk_size(4);
    let err = client.instream(&b"0123456789"[..], 6).unwrap_err();
    assert!(
        matches!(err, ClamdError::InputTooLarge { max_bytes: 6, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("larger than the scan limit of 6"));
    // Only the first chunk (4 bytes) was sent, never more than the limit.
    let sent = server.join().unwrap();
    assert_eq!(sent, b"\0\0\0\x040123");
}

#[test]
fn server_size_limit_after_write_error() {
    // Like clamd with a small StreamMaxLength: read a little, answer, close.
    let (client, server) = fake_server(|mut s| {
        read_until_nul(&mut s);
        let mut buf = [0u8; 1024];
        s.read_exact(&mut buf).unwrap();
        s.write_all(b"INSTREAM size limit exceeded. ERROR\0")
            .unwrap();
        s.shutdown(Shutdown::Write).unwrap();
        // Keep reading a while so the client's writes land somewhere, then close.
        let deadline = Instant::now() + Duration::from_millis(200);
        while Instant::now() < deadline && s.read(&mut buf).map(|n| n > 0).unwrap_or(false) {}
    });
    let data = vec![0u8; 4 << 20];
    let err = client.instream(&data[..], u64::MAX).unwrap_err();
    server.join().unwrap();
    // Over TCP the reply can be lost to a reset; both outcomes are clear errors.
    match &err {
        ClamdError::SizeLimit { message, .. } => {
            assert_eq!(message, "INSTREAM size limit exceeded. ERROR")
        }
        ClamdError::Io { command, .. } => assert_eq!(*command, "INSTREAM"),
        other => panic!("unexpected error {other:?}"),
    }
}

#[test]
fn server_error_line() {
    let (client, server) = fake_server(|mut s| {
        read_until_nul(&mut s);
        read_chunks(&mut s);
        s.write_all(b"stream: Can't allocate memory ERROR\0")
            .unwrap();
    });
    let err = client.instream(&b"x"[..], 1).unwrap_err();
    server.join().unwrap();
    let ClamdError::Server {
        command, message, ..
    } = &err
    else {
        panic!("unexpected {err:?}");
    };
    assert_eq!(*command, "INSTREAM");
    assert_eq!(message, "stream: Can't allocate memory ERROR");
    let text = err.to_string();
    assert!(text.contains("clamd at tcp:127.0.0.1:"), "{text}");
}

#[test]
fn unexpected_reply_is_protocol_error() {
    let (client, server) = fake_server(|mut s| {
        read_until_nul(&mut s);
        s.write_all(b"UNKNOWN COMMAND\0").unwrap();
    });
    let err = client.ping().unwrap_err();
    server.join().unwrap();
    assert!(matches!(
        err,
        ClamdError::Protocol {
            command: "PING",
            ..
        }
    ));
    assert!(err.to_string().contains("UNKNOWN COMMAND"), "{err}");
}

#[test]
fn closed_without_reply() {
    let (client, server) = fake_server(|mut s| {
        read_until_nul(&mut s);
    });
    let err = client.ping().unwrap_err();
    server.join().unwrap();
    assert!(
        err.to_string()
            .contains("connection closed without a reply"),
        "{err}"
    );
}

#[test]
fn endless_reply_is_bounded() {
    let (client, server) = fake_server(|mut s| {
        read_until_nul(&mut s);
        let junk = vec![b'A'; MAX_REPLY_BYTES + 4096];
        let _ = s.write_all(&junk);
    });
    let err = client.version().unwrap_err();
    server.join().unwrap();
    assert!(err.to_string().contains("reply longer than"), "{err}");
}

#[test]
fn silent_server_times_out() {
    let (client, server) = fake_server(|mut s| {
        read_until_nul(&mut s);
        thread::sleep(Duration::from_millis(1500));
    });
    let client = client.with_read_timeout(Duration::from_millis(300));
    let started = Instant::now();
    let err = client.ping().unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(1), "{err}");
    assert!(
        matches!(
            err,
            ClamdError::Timeout {
                command: "PING",
                during: "reading the reply",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.is_unavailable());
    server.join().unwrap();
}

#[test]
fn refused_tcp_connection_is_connect_error() {
    let addr = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let client = ClamdClient::new(ClamdAddress::Tcp(addr));
    let err = client.ping().unwrap_err();
    assert!(matches!(err, ClamdError::Connect { .. }), "{err:?}");
    assert!(err.is_unavailable());
    let text = err.to_string();
    assert!(text.contains(&format!("tcp:{addr}")), "{text}");
    assert!(text.contains("PING"), "{text}");
}

#[cfg(unix)]
#[test]
fn missing_unix_socket_is_connect_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("clamd.sock");
    let client = ClamdClient::new(ClamdAddress::Unix(path.clone()));
    let err = client.version().unwrap_err();
    assert!(matches!(err, ClamdError::Connect { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains(&format!("unix:{}: VERSION", path.display())),
        "{err}"
    );
}

#[cfg(unix)]
#[test]
fn unix_backlog_full_times_out_instead_of_hanging() {
    use std::os::unix::net::UnixListener;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("busy.sock");
    let listener = UnixListener::bind(&path).unwrap();
    // Shrink the backlog and never accept: once the queue holds an (unaccepted) connection,
    // further connects cannot complete.
    rustix::net::listen(&listener, 0).unwrap();
    let client = ClamdClient::new(ClamdAddress::Unix(path.clone()))
        .with_connect_timeout(Duration::from_millis(200))
        .with_read_timeout(Duration::from_millis(200));
    let mut saw_connect_timeout = false;
    for _ in 0..64 {
        let started = Instant::now();
        match client.ping() {
            Err(ClamdError::Timeout {
                during: "connecting",
                ..
            }) => {
                assert!(started.elapsed() < Duration::from_secs(2));
                saw_connect_timeout = true;
                break;
            }
            // Accepted into the backlog, never served: the read times out.
            Err(ClamdError::Timeout { .. }) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(saw_connect_timeout);
    drop(listener);
}

#[test]
fn unreadable_file_and_non_regular_file() {
    let client = ClamdClient::new("tcp:127.0.0.1:9".parse().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.bin");
    let err = client.scan_file(&missing, 1024).unwrap_err();
    assert!(matches!(err, ClamdError::Input { .. }), "{err:?}");
    assert!(err.to_string().contains("missing.bin"), "{err}");

    let err = client.scan_file(dir.path(), 1024).unwrap_err();
    assert!(err.to_string().contains("not a regular file"), "{err}");

    let big = dir.path().join("big.bin");
    std::fs::write(&big, vec![0u8; 2048]).unwrap();
    let err = client.scan_file(&big, 1024).unwrap_err();
    assert!(
        matches!(
            err,
            ClamdError::InputTooLarge {
                max_bytes: 1024,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("big.bin"), "{err}");
}

#[cfg(unix)]
#[test]
fn fifo_is_refused_without_blocking() {
    use rustix::fs::{CWD, FileType, Mode};
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("pipe");
    rustix::fs::mknodat(CWD, &fifo, FileType::Fifo, Mode::from(0o600), 0).unwrap();
    let client = ClamdClient::new("tcp:127.0.0.1:9".parse().unwrap());
    let err = client.scan_file(&fifo, 1024).unwrap_err();
    assert!(err.to_string().contains("not a regular file"), "{err}");
    let lists = crate::HashLists::default();
    let err = lists.classify_file(&fifo, 1024).unwrap_err();
    assert!(err.to_string().contains("not a regular file"), "{err}");
}
