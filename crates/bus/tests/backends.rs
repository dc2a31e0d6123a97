//! The same behavioural suite for every backend.
//!
//! Memory always runs; Redis when `DOZOR_TEST_REDIS_URL` is set, NATS when
//! `DOZOR_TEST_NATS_URL` is set (otherwise each such test prints
//! "skipped: ... not set" and passes). Every test works on its own uniquely
//! named stream/group/subject and deletes it at the end.

mod common;

use std::collections::{BTreeSet, HashSet};
use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use dozor_bus::{Bus, BusError, Delivery};
use futures_util::StreamExt;

use common::{Harness, MemoryHarness, NatsHarness, Params, RedisHarness, guarded};

fn payload(i: usize) -> Bytes {
    Bytes::from(format!("msg-{i:06}"))
}

/// The texts of the payloads numbered `range`, as `texts` reads them back.
fn payload_texts(range: Range<usize>) -> Vec<String> {
    range
        .map(|i| String::from_utf8_lossy(&payload(i)).into_owned())
        .collect()
}

/// Publishes the payloads numbered `range`, in order.
async fn publish_payloads(bus: &dyn Bus, range: Range<usize>) {
    for i in range {
        bus.publish(payload(i)).await.expect("publish");
    }
}

/// Receives until `n` messages arrived or `limit` passed.
async fn receive_n(bus: &dyn Bus, n: usize, batch: usize, limit: Duration) -> Vec<Delivery> {
    let until = Instant::now() + limit;
    let mut out = Vec::new();
    while out.len() < n && Instant::now() < until {
        let want = batch.min(n - out.len());
        out.extend(
            bus.receive(want, Duration::from_millis(500))
                .await
                .expect("receive"),
        );
    }
    out
}

async fn ack_all(bus: &dyn Bus, deliveries: &[Delivery]) {
    let ids: Vec<_> = deliveries.iter().map(|d| d.id.clone()).collect();
    bus.ack(&ids).await.expect("ack");
}

/// Polls `depth` until it equals `want` (JetStream applies acks
/// asynchronously) or a few seconds passed; returns the last value.
async fn depth_settles(bus: &dyn Bus, want: u64) -> u64 {
    let until = Instant::now() + Duration::from_secs(5);
    loop {
        let depth = bus.depth().await.expect("depth");
        if depth == want || Instant::now() >= until {
            return depth;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Publishes, retrying only `Full` for a short while (acks may take a moment
/// to free room on a server).
async fn publish_soon(bus: &dyn Bus, p: Bytes) {
    let until = Instant::now() + Duration::from_secs(5);
    loop {
        match bus.publish(p.clone()).await {
            Ok(()) => return,
            Err(BusError::Full) if Instant::now() < until => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("publish failed: {e}"),
        }
    }
}

fn texts(deliveries: &[Delivery]) -> Vec<String> {
    deliveries
        .iter()
        .map(|d| String::from_utf8_lossy(&d.payload).into_owned())
        .collect()
}

mod scenarios {
    use super::*;

    /// On a bus whose capacity is 100 events: capacity counts the events each batch
    /// carries, and acking a batch gives its events back (once, however often it is
    /// acked). Leaves the bus empty.
    pub async fn event_capacity_of_100(bus: &dyn Bus) {
        bus.publish_events(Bytes::from_static(b"a"), 60)
            .await
            .unwrap();
        bus.publish_events(Bytes::from_static(b"b"), 40)
            .await
            .unwrap();
        // 100 events held in two messages: one more event does not fit
        assert!(matches!(
            bus.publish_events(Bytes::from_static(b"c"), 1).await,
            Err(BusError::Full)
        ));
        // a batch larger than the whole queue can never fit
        assert!(matches!(
            bus.publish_events(Bytes::from_static(b"d"), 101).await,
            Err(BusError::TooLarge { .. })
        ));
        // acking the 60-event batch makes room for 60 events
        let first = receive_n(bus, 1, 1, Duration::from_secs(5)).await;
        assert_eq!(texts(&first), vec!["a"]);
        bus.ack(&[first[0].id.clone()]).await.unwrap();
        bus.ack(&[first[0].id.clone()]).await.unwrap();
        bus.publish_events(Bytes::from_static(b"e"), 60)
            .await
            .unwrap();
        assert!(matches!(
            bus.publish_events(Bytes::from_static(b"f"), 1).await,
            Err(BusError::Full)
        ));
        assert!(matches!(
            bus.publish(Bytes::from_static(b"g")).await,
            Err(BusError::Full)
        ));
        let rest = receive_n(bus, 2, 2, Duration::from_secs(5)).await;
        assert_eq!(texts(&rest), vec!["b", "e"]);
        ack_all(bus, &rest).await;
    }

    pub async fn round_trip_and_order(h: Arc<dyn Harness>) {
        let bus = h.consumer("w1").await;
        assert_eq!(bus.depth().await.unwrap(), 0);
        let n = 20;
        publish_payloads(bus.as_ref(), 0..n).await;
        assert_eq!(bus.depth().await.unwrap(), n as u64);
        let got = receive_n(bus.as_ref(), n, 7, Duration::from_secs(10)).await;
        assert_eq!(
            texts(&got),
            payload_texts(0..n),
            "all messages, in publish order"
        );
        assert!(got.iter().all(|d| !d.redelivered));
        // Delivered but not acked still counts as depth.
        assert_eq!(bus.depth().await.unwrap(), n as u64);
        ack_all(bus.as_ref(), &got).await;
        assert_eq!(depth_settles(bus.as_ref(), 0).await, 0);
        let more = bus.receive(10, Duration::from_millis(300)).await.unwrap();
        assert!(more.is_empty(), "nothing left: {:?}", texts(&more));
        // Acking again is a no-op.
        ack_all(bus.as_ref(), &got).await;
    }

    pub async fn back_pressure(h: Arc<dyn Harness>) {
        let cap = usize::try_from(h.params().capacity).unwrap();
        let bus = h.consumer("w1").await;
        for i in 0..cap {
            bus.publish(payload(i))
                .await
                .expect("publish under capacity");
        }
        let refused = bus.publish(payload(999)).await;
        assert!(
            matches!(refused, Err(BusError::Full)),
            "expected Full, got {refused:?}"
        );
        assert!(matches!(refused, Err(ref e) if e.is_transient()));
        assert_eq!(bus.depth().await.unwrap(), cap as u64);

        // Receiving alone frees nothing: delivered messages still count.
        let first = receive_n(bus.as_ref(), 2, 2, Duration::from_secs(5)).await;
        assert_eq!(first.len(), 2);
        assert!(matches!(
            bus.publish(payload(998)).await,
            Err(BusError::Full)
        ));

        ack_all(bus.as_ref(), &first).await;
        publish_soon(bus.as_ref(), payload(100)).await;
        publish_soon(bus.as_ref(), payload(101)).await;
        assert!(matches!(
            bus.publish(payload(997)).await,
            Err(BusError::Full)
        ));

        let rest = receive_n(bus.as_ref(), cap, cap, Duration::from_secs(10)).await;
        assert_eq!(rest.len(), cap);
        let mut want = payload_texts(2..cap);
        want.push("msg-000100".into());
        want.push("msg-000101".into());
        assert_eq!(texts(&rest), want);
        ack_all(bus.as_ref(), &rest).await;
        assert_eq!(depth_settles(bus.as_ref(), 0).await, 0);
    }

    pub async fn redelivered_to_another_consumer(h: Arc<dyn Harness>) {
        let timeout = h.params().timeout;
        let a = h.consumer("crashing").await;
        publish_payloads(a.as_ref(), 0..3).await;
        let taken = receive_n(a.as_ref(), 3, 3, Duration::from_secs(10)).await;
        assert_eq!(taken.len(), 3);
        drop(a); // the worker crashes: no ack

        let b = h.consumer("survivor").await;
        let started = Instant::now();
        let again = receive_n(b.as_ref(), 3, 10, timeout * 10 + Duration::from_secs(5)).await;
        assert_eq!(texts(&again), texts(&taken), "same messages, same order");
        assert!(
            again.iter().all(|d| d.redelivered),
            "flagged as redelivered"
        );
        assert!(
            started.elapsed() >= timeout.mul_f64(0.5),
            "not before the timeout: {:?}",
            started.elapsed()
        );
        ack_all(b.as_ref(), &again).await;

        tokio::time::sleep(timeout * 2 + timeout / 2).await;
        let none = b.receive(10, Duration::from_millis(300)).await.unwrap();
        assert!(none.is_empty(), "acked came back: {:?}", texts(&none));
        assert_eq!(depth_settles(b.as_ref(), 0).await, 0);
    }

    pub async fn acked_never_redelivered(h: Arc<dyn Harness>) {
        let timeout = h.params().timeout;
        let a = h.consumer("w1").await;
        publish_payloads(a.as_ref(), 0..5).await;
        let got = receive_n(a.as_ref(), 5, 5, Duration::from_secs(10)).await;
        assert_eq!(got.len(), 5);
        ack_all(a.as_ref(), &got).await;

        tokio::time::sleep(timeout * 2 + timeout / 2).await;
        let same = a.receive(10, Duration::from_millis(300)).await.unwrap();
        assert!(same.is_empty(), "same consumer got {:?}", texts(&same));
        let other = h.consumer("w2").await;
        let theirs = other.receive(10, Duration::from_millis(300)).await.unwrap();
        assert!(theirs.is_empty(), "other consumer got {:?}", texts(&theirs));
        assert_eq!(depth_settles(other.as_ref(), 0).await, 0);
    }

    pub async fn crash_mid_batch(h: Arc<dyn Harness>) {
        let timeout = h.params().timeout;
        let n = 50;
        let a = h.consumer("crashing").await;
        publish_payloads(a.as_ref(), 0..n).await;
        let batch = receive_n(a.as_ref(), 20, 20, Duration::from_secs(10)).await;
        assert_eq!(batch.len(), 20);
        let (committed, lost) = batch.split_at(10);
        ack_all(a.as_ref(), committed).await;
        drop(a); // crash mid-batch: 10 acked, 10 not

        let b = h.consumer("survivor").await;
        let committed: HashSet<String> = texts(committed).into_iter().collect();
        let lost: HashSet<String> = texts(lost).into_iter().collect();
        let mut seen: BTreeSet<String> = committed.iter().cloned().collect();
        let mut redelivered = HashSet::new();
        let until = Instant::now() + timeout * 10 + Duration::from_secs(10);
        while seen.len() < n && Instant::now() < until {
            let got = b.receive(16, Duration::from_millis(500)).await.unwrap();
            for d in &got {
                let text = String::from_utf8_lossy(&d.payload).into_owned();
                assert!(!committed.contains(&text), "acked {text} delivered again");
                if d.redelivered {
                    redelivered.insert(text.clone());
                }
                seen.insert(text);
            }
            ack_all(b.as_ref(), &got).await;
        }
        assert_eq!(seen.len(), n, "every message delivered at least once");
        assert_eq!(
            redelivered, lost,
            "exactly the unacked ones come back as redelivered"
        );
        tokio::time::sleep(timeout * 2).await;
        let none = b.receive(10, Duration::from_millis(300)).await.unwrap();
        assert!(none.is_empty(), "left over: {:?}", texts(&none));
        assert_eq!(depth_settles(b.as_ref(), 0).await, 0);
    }

    /// The connection to the server is cut under the bus; it recovers by
    /// itself and nothing is lost.
    pub async fn survives_connection_loss(h: Arc<dyn Harness>) {
        let bus = h.consumer("w1").await;
        bus.publish(payload(1)).await.unwrap();
        let before = h.connections_made();
        assert!(before > 0, "the bus connects through the proxy");
        h.cut_connections().await;

        let until = Instant::now() + Duration::from_secs(20);
        let mut failures = 0;
        loop {
            match bus.publish(payload(2)).await {
                Ok(()) => break,
                Err(e) if e.is_transient() && Instant::now() < until => {
                    failures += 1;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("no recovery: {e}"),
            }
        }
        let mut got = Vec::new();
        while got.len() < 2 && Instant::now() < until {
            match bus.receive(10, Duration::from_millis(500)).await {
                Ok(d) => got.extend(d),
                Err(e) if e.is_transient() => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("receive failed: {e}"),
            }
        }
        assert_eq!(texts(&got), vec!["msg-000001", "msg-000002"]);
        assert!(
            h.connections_made() > before,
            "the bus reconnected ({before} connections before the cut, {} after)",
            h.connections_made()
        );
        ack_all(bus.as_ref(), &got).await;
        assert_eq!(depth_settles(bus.as_ref(), 0).await, 0);
        println!("recovered after {failures} failed publish attempts");
    }

    /// 200k messages of 1 KiB: 64 publishers at once, one consumer taking
    /// batches of 500 and acking each batch.
    pub async fn throughput(h: Arc<dyn Harness>) {
        const N: usize = 200_000;
        const SIZE: usize = 1024;
        const PUBLISHERS: usize = 64;
        let bus = h.consumer("bench").await;
        let name = bus.name();
        let body = Bytes::from(vec![b'x'; SIZE]);
        let started = Instant::now();

        let publisher = {
            let bus = bus.clone();
            tokio::spawn(async move {
                futures_util::stream::iter(0..N)
                    .for_each_concurrent(PUBLISHERS, |_| {
                        let bus = bus.clone();
                        let body = body.clone();
                        async move {
                            loop {
                                match bus.publish(body.clone()).await {
                                    Ok(()) => break,
                                    Err(e) if e.is_transient() => {
                                        tokio::time::sleep(Duration::from_millis(1)).await;
                                    }
                                    Err(e) => panic!("publish: {e}"),
                                }
                            }
                        }
                    })
                    .await;
                started.elapsed()
            })
        };

        let mut received = 0usize;
        let until = Instant::now() + Duration::from_secs(600);
        while received < N && Instant::now() < until {
            let got = bus.receive(500, Duration::from_millis(100)).await.unwrap();
            received += got.len();
            ack_all(bus.as_ref(), &got).await;
        }
        let publish_time = publisher.await.unwrap();
        let total = started.elapsed();
        assert_eq!(received, N);
        println!(
            "throughput {name}: {N} x {SIZE} B: published in {:.2}s, published+received+acked in {:.2}s = {:.0} msgs/s",
            publish_time.as_secs_f64(),
            total.as_secs_f64(),
            N as f64 / total.as_secs_f64()
        );
    }
}

macro_rules! suite {
    ($module:ident, $harness:ty) => {
        mod $module {
            use super::*;

            async fn run(
                params: Params,
                scenario: fn(Arc<dyn Harness>) -> futures_util::future::BoxFuture<'static, ()>,
            ) {
                let Some(h) = <$harness>::setup(params).await else {
                    return;
                };
                guarded(h, scenario).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn round_trip_and_order() {
                run(Params::default(), |h| {
                    Box::pin(scenarios::round_trip_and_order(h))
                })
                .await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn back_pressure() {
                let params = Params {
                    capacity: 5,
                    ..Params::default()
                };
                run(params, |h| Box::pin(scenarios::back_pressure(h))).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn redelivered_to_another_consumer() {
                run(Params::default(), |h| {
                    Box::pin(scenarios::redelivered_to_another_consumer(h))
                })
                .await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn acked_never_redelivered() {
                run(Params::default(), |h| {
                    Box::pin(scenarios::acked_never_redelivered(h))
                })
                .await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn crash_mid_batch() {
                run(Params::default(), |h| {
                    Box::pin(scenarios::crash_mid_batch(h))
                })
                .await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            #[ignore = "throughput benchmark: run in release with --ignored --nocapture"]
            async fn throughput() {
                let params = Params {
                    capacity: 50_000,
                    timeout: Duration::from_secs(60),
                    proxied: false,
                };
                run(params, |h| Box::pin(scenarios::throughput(h))).await;
            }
        }
    };
}

suite!(memory, MemoryHarness);
suite!(redis, RedisHarness);
suite!(nats, NatsHarness);

mod redis_only {
    use super::*;

    /// With `max_events`, the stream's capacity counts the events each entry carries, and
    /// acking an entry gives its events back (once, however often it is acked).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn capacity_counts_events() {
        let Ok(url) = std::env::var("DOZOR_TEST_REDIS_URL") else {
            println!("skipped: DOZOR_TEST_REDIS_URL not set");
            return;
        };
        let stream = format!("dozor-test-events-{}", std::process::id());
        let mut config = dozor_bus::RedisConfig::new(url.clone(), "w1");
        config.stream = stream.clone();
        config.group = format!("{stream}-group");
        config.max_len = 1000;
        config.max_events = 100;
        let bus = dozor_bus::RedisBus::connect(config)
            .await
            .expect("redis bus");
        scenarios::event_capacity_of_100(&bus).await;
        let client = ::redis::Client::open(url.as_str()).unwrap();
        let mut conn = client.get_multiplexed_async_connection().await.unwrap();
        let left: i64 = ::redis::cmd("GET")
            .arg(format!("{stream}:events"))
            .query_async(&mut conn)
            .await
            .unwrap();
        assert_eq!(left, 0, "every event was given back");
        let _: i64 = ::redis::cmd("DEL")
            .arg(&stream)
            .arg(format!("{stream}:events"))
            .query_async(&mut conn)
            .await
            .unwrap();
    }

    /// A restarted worker (same consumer name) gets its own pending entries
    /// back at once, without waiting for the claim idle time.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn restarted_consumer_resumes_its_pending_entries() {
        let params = Params {
            timeout: Duration::from_secs(60),
            ..Params::default()
        };
        let Some(h) = RedisHarness::setup(params).await else {
            return;
        };
        guarded(h, |h| {
            Box::pin(async move {
                let first = h.consumer("worker-1").await;
                publish_payloads(first.as_ref(), 0..3).await;
                let taken = receive_n(first.as_ref(), 3, 3, Duration::from_secs(5)).await;
                assert_eq!(taken.len(), 3);
                drop(first);

                let restarted = h.consumer("worker-1").await;
                let started = Instant::now();
                let again = restarted.receive(10, Duration::from_secs(5)).await.unwrap();
                assert!(started.elapsed() < Duration::from_secs(3));
                assert_eq!(texts(&again), texts(&taken));
                assert!(again.iter().all(|d| d.redelivered));
                // A different consumer does not steal them before claim_idle.
                let other = h.consumer("worker-2").await;
                publish_payloads(other.as_ref(), 3..5).await;
                let fresh = other.receive(10, Duration::from_secs(2)).await.unwrap();
                assert_eq!(texts(&fresh), vec!["msg-000003", "msg-000004"]);
                ack_all(restarted.as_ref(), &again).await;
                ack_all(other.as_ref(), &fresh).await;
                assert_eq!(restarted.depth().await.unwrap(), 0);
            })
        })
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn survives_connection_loss() {
        let params = Params {
            proxied: true,
            ..Params::default()
        };
        let Some(h) = RedisHarness::setup(params).await else {
            return;
        };
        guarded(h, |h| Box::pin(scenarios::survives_connection_loss(h))).await;
    }

    /// The group is created again when the stream disappears under it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn recreates_a_deleted_group() {
        let Some(h) = RedisHarness::setup(Params::default()).await else {
            return;
        };
        guarded(h, |h| {
            Box::pin(async move {
                let bus = h.consumer("w1").await;
                bus.publish(payload(1)).await.unwrap();
                h.cleanup().await; // DEL the stream: group gone
                bus.publish(payload(2)).await.unwrap();
                let got = receive_n(bus.as_ref(), 1, 10, Duration::from_secs(5)).await;
                assert_eq!(texts(&got), vec!["msg-000002"]);
                ack_all(bus.as_ref(), &got).await;
            })
        })
        .await;
    }
}

mod memory_only {
    use super::*;

    /// With `max_events`, capacity counts the events each message carries.
    #[tokio::test]
    async fn capacity_counts_events() {
        let bus = dozor_bus::MemoryBus::new(dozor_bus::MemoryConfig {
            max_messages: 0,
            max_bytes: 0,
            max_events: 100,
            visibility_timeout: Duration::from_secs(60),
        })
        .expect("valid config");
        scenarios::event_capacity_of_100(&bus).await;
        assert_eq!(bus.depth().await.unwrap(), 0);
    }
}

mod nats_only {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn survives_connection_loss() {
        let params = Params {
            proxied: true,
            ..Params::default()
        };
        let Some(h) = NatsHarness::setup(params).await else {
            return;
        };
        guarded(h, |h| Box::pin(scenarios::survives_connection_loss(h))).await;
    }
}
