//! Memory-only behaviour; the shared behavioural suite is in `tests/`.

use std::time::Duration;

use bytes::Bytes;

use super::*;

fn bus(max_messages: usize, max_bytes: usize, visibility_ms: u64) -> MemoryBus {
    MemoryBus::new(MemoryConfig {
        max_messages,
        max_bytes,
        max_events: 0,
        visibility_timeout: Duration::from_millis(visibility_ms),
    })
    .expect("valid config")
}

#[test]
fn rejects_unbounded_or_zero_timeout() {
    assert!(matches!(
        MemoryBus::new(MemoryConfig {
            max_messages: 0,
            max_bytes: 0,
            max_events: 0,
            visibility_timeout: Duration::from_secs(1),
        }),
        Err(BusError::Config(_))
    ));
    assert!(matches!(
        MemoryBus::new(MemoryConfig {
            visibility_timeout: Duration::ZERO,
            ..MemoryConfig::default()
        }),
        Err(BusError::Config(_))
    ));
}

/// The event-counting scenario shared by the backends is in `tests/backends.rs`.
#[tokio::test]
async fn a_plain_publish_counts_as_one_event() {
    let bus = MemoryBus::new(MemoryConfig {
        max_events: 2,
        ..MemoryConfig::default()
    })
    .unwrap();
    bus.publish(Bytes::from_static(b"1")).await.unwrap();
    bus.publish(Bytes::from_static(b"2")).await.unwrap();
    assert!(matches!(
        bus.publish(Bytes::from_static(b"3")).await,
        Err(BusError::Full)
    ));
}

#[tokio::test]
async fn byte_capacity_and_too_large() {
    let bus = bus(0, 10, 1000);
    assert!(matches!(
        bus.publish(Bytes::from(vec![0u8; 11])).await,
        Err(BusError::TooLarge { size: 11, max: 10 })
    ));
    bus.publish(Bytes::from(vec![1u8; 6])).await.unwrap();
    assert!(matches!(
        bus.publish(Bytes::from(vec![2u8; 5])).await,
        Err(BusError::Full)
    ));
    bus.publish(Bytes::from(vec![3u8; 4])).await.unwrap();
    let got = bus.receive(1, Duration::ZERO).await.unwrap();
    assert_eq!(got.len(), 1);
    // Delivered but not acked still counts.
    assert!(matches!(
        bus.publish(Bytes::from_static(b"x")).await,
        Err(BusError::Full)
    ));
    bus.ack(&[got[0].id.clone()]).await.unwrap();
    bus.publish(Bytes::from(vec![4u8; 6])).await.unwrap();
    assert_eq!(bus.depth().await.unwrap(), 2);
}

#[tokio::test]
async fn waiting_receiver_wakes_on_publish() {
    let bus = bus(10, 0, 1000);
    let consumer = bus.clone();
    let started = Instant::now();
    let task = tokio::spawn(async move { consumer.receive(5, Duration::from_secs(10)).await });
    tokio::time::sleep(Duration::from_millis(50)).await;
    bus.publish(Bytes::from_static(b"hello")).await.unwrap();
    let got = task.await.unwrap().unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].payload, Bytes::from_static(b"hello"));
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn waiting_receiver_wakes_on_redelivery() {
    let bus = bus(10, 0, 200);
    bus.publish(Bytes::from_static(b"a")).await.unwrap();
    let first = bus.receive(1, Duration::ZERO).await.unwrap();
    assert_eq!(first.len(), 1);
    let started = Instant::now();
    let again = bus.receive(1, Duration::from_secs(10)).await.unwrap();
    assert_eq!(again.len(), 1);
    assert!(again[0].redelivered);
    assert_eq!(again[0].id, first[0].id);
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn late_ack_removes_a_message_waiting_for_redelivery() {
    let bus = bus(10, 0, 50);
    bus.publish(Bytes::from_static(b"a")).await.unwrap();
    let first = bus.receive(1, Duration::ZERO).await.unwrap();
    tokio::time::sleep(Duration::from_millis(80)).await;
    // The visibility timeout ran out, but no receive has moved the message
    // back yet: a late ack still removes it for good.
    bus.ack(&[first[0].id.clone()]).await.unwrap();
    assert_eq!(bus.depth().await.unwrap(), 0);
    assert!(
        bus.receive(10, Duration::from_millis(100))
            .await
            .unwrap()
            .is_empty()
    );
    // Acking twice is a no-op.
    bus.ack(&[first[0].id.clone()]).await.unwrap();
    assert_eq!(bus.depth().await.unwrap(), 0);
}

#[tokio::test]
async fn late_ack_after_expiry_into_retry() {
    let bus = bus(10, 0, 50);
    bus.publish(Bytes::from_static(b"a")).await.unwrap();
    bus.publish(Bytes::from_static(b"b")).await.unwrap();
    let first = bus.receive(1, Duration::ZERO).await.unwrap();
    tokio::time::sleep(Duration::from_millis(80)).await;
    // This receive moves "a" to the retry set and hands it out again first.
    let second = bus.receive(1, Duration::ZERO).await.unwrap();
    assert_eq!(second[0].payload, Bytes::from_static(b"a"));
    assert!(second[0].redelivered);
    tokio::time::sleep(Duration::from_millis(80)).await;
    {
        let mut state = bus.state();
        state.expire(Instant::now());
        assert_eq!(state.retry.len(), 1);
    }
    // The first consumer finally acks: the copy waiting in retry goes away.
    bus.ack(&[first[0].id.clone()]).await.unwrap();
    let rest = bus.receive(10, Duration::ZERO).await.unwrap();
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0].payload, Bytes::from_static(b"b"));
    assert!(!rest[0].redelivered);
}

#[tokio::test]
async fn foreign_ids_are_refused_before_anything_is_acked() {
    let bus = bus(10, 0, 1000);
    bus.publish(Bytes::from_static(b"a")).await.unwrap();
    let got = bus.receive(1, Duration::ZERO).await.unwrap();
    let foreign = DeliveryId(IdRepr::Redis("1-0".into()));
    assert!(matches!(
        bus.ack(&[got[0].id.clone(), foreign]).await,
        Err(BusError::ForeignId(..))
    ));
    assert_eq!(bus.depth().await.unwrap(), 1);
}

#[tokio::test]
async fn receive_zero_and_empty() {
    let bus = bus(10, 0, 1000);
    assert!(
        bus.receive(0, Duration::from_secs(5))
            .await
            .unwrap()
            .is_empty()
    );
    let started = Instant::now();
    assert!(
        bus.receive(5, Duration::from_millis(50))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(started.elapsed() >= Duration::from_millis(50));
}
