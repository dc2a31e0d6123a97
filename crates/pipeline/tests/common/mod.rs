//! The rig every pipeline test runs on: one worker over a real in-memory bus and a real
//! SQLite store in a temporary directory.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use dozor_bus::{Bus, BusConfig, MemoryConfig};
use dozor_pipeline::{AlertNotice, PipelineOptions, PipelineStats, Worker};
use dozor_sigma::Detector;
use dozor_store::{Alert, AlertQuery, Store, StoreConfig, sqlite::SqliteConfig};
use tokio::sync::broadcast;

pub struct Rig {
    pub worker: Worker,
    pub bus: Arc<dyn Bus>,
    pub store: Arc<dyn Store>,
    pub stats: Arc<PipelineStats>,
    pub notices: broadcast::Receiver<AlertNotice>,
    /// Holds the store's files until the rig is dropped.
    _dir: tempfile::TempDir,
}

impl Rig {
    /// A worker with default options and no enricher, detecting with `detector`.
    pub async fn new(detector: Detector) -> Rig {
        Rig::with_options(detector, PipelineOptions::default()).await
    }

    /// A worker with these options and no enricher, detecting with `detector`.
    pub async fn with_options(detector: Detector, options: PipelineOptions) -> Rig {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = dozor_store::open(&StoreConfig::Sqlite(SqliteConfig::new(dir.path())))
            .await
            .expect("store");
        let bus = dozor_bus::connect(&BusConfig::Memory(MemoryConfig {
            max_messages: 100,
            max_bytes: 0,
            max_events: 0,
            visibility_timeout: Duration::from_millis(200),
        }))
        .await
        .expect("bus");
        let (notices_tx, notices) = broadcast::channel(16);
        let stats = Arc::new(PipelineStats::default());
        let worker = Worker::new(
            bus.clone(),
            store.clone(),
            None,
            detector,
            options,
            notices_tx,
            stats.clone(),
        );
        Rig {
            worker,
            bus,
            store,
            stats,
            notices,
            _dir: dir,
        }
    }

    /// Publishes `batch` (a JSON array of events) as one message.
    pub async fn publish(&self, batch: &impl serde::Serialize) {
        self.bus
            .publish(Bytes::from(serde_json::to_vec(batch).expect("json")))
            .await
            .expect("publish");
    }

    /// Runs worker cycles until at least `events` events were processed.
    pub async fn process(&self, events: usize) {
        let mut processed = 0;
        while processed < events {
            processed += self.worker.process_once().await.expect("cycle");
        }
    }

    /// Every alert in the store (the default query).
    pub async fn alerts(&self) -> Vec<Alert> {
        self.store
            .list_alerts(&AlertQuery::default())
            .await
            .expect("alerts")
            .alerts
    }
}
