//! Slow and numerous clients against a real server: a body sent a byte at a time is cut off
//! at its deadline, and connections beyond the per-address cap are closed at once.

mod common;

use std::time::{Duration, Instant};

use common::{AGENT_TOKEN, TestServer, pinned_connector, test_env};
use rustls_pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

type Tls = tokio_rustls::client::TlsStream<TcpStream>;

async fn connect(server: &TestServer) -> std::io::Result<Tls> {
    let tcp = TcpStream::connect(server.addr).await?;
    pinned_connector(&server.ca_pem)
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
}

/// Everything the server sends until it closes the connection (or `within` passes).
async fn read_all(stream: &mut Tls, within: Duration) -> String {
    let mut out = Vec::new();
    let _ = tokio::time::timeout(within, stream.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_sent_too_slowly_is_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(
        dir.path(),
        test_env(&[
            ("DOZOR_BODY_TIMEOUT", "2s"),
            ("DOZOR_BODY_MIN_RATE", "1KiB"),
        ]),
    )
    .await;
    let mut stream = connect(&server).await.unwrap();
    let head = format!(
        "POST /api/v1/ingest HTTP/1.1\r\nhost: localhost\r\nauthorization: Bearer {AGENT_TOKEN}\r\ncontent-type: application/x-ndjson\r\ncontent-length: 60000\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let started = Instant::now();
    // One byte every 300 ms: far below 1 KiB/s. The server must answer (or close) once the
    // 2 s grace is spent, not wait for the 60,000 bytes.
    let trickle = async {
        for _ in 0..100 {
            if stream.write_all(b" ").await.is_err() || stream.flush().await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
            if started.elapsed() > Duration::from_secs(20) {
                break;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(4), trickle)
        .await
        .ok();
    let answer = read_all(&mut stream, Duration::from_secs(5)).await;
    let elapsed = started.elapsed();
    assert!(
        answer.starts_with("HTTP/1.1 408"),
        "after {elapsed:?}: {answer:?}"
    );
    assert!(answer.contains("limits.body_timeout"), "{answer}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_per_address_cap_are_closed() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(
        dir.path(),
        test_env(&[("DOZOR_MAX_CONNECTIONS_PER_ADDRESS", "3")]),
    )
    .await;
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(connect(&server).await.expect("within the cap"));
    }
    // The fourth is accepted by the kernel and closed by the server before the handshake.
    let fourth = tokio::time::timeout(Duration::from_secs(5), connect(&server))
        .await
        .expect("answered at once");
    assert!(fourth.is_err(), "a fourth connection was served");
    // Closing one makes room again.
    drop(held.pop());
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut again = connect(&server).await.expect("room again");
    again
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let answer = read_all(&mut again, Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    drop(held);
    server.stop().await;
}
