//! Test harness: starts real collectors, receives their events, stamps `event.id` like the
//! agent and validates every event against the event schema.

#![allow(dead_code)]

use std::path::Path;
use std::sync::Mutex;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use dozor_collect::{
    CollectConfig, CollectorContext, CollectorState, CollectorStatus, Health, Shutdown,
};
use dozor_event::schema::EventValidator;
use serde_json::Value;

pub struct Harness {
    rx: crossbeam_channel::Receiver<Value>,
    pub shutdown: Shutdown,
    pub health: Health,
    handles: Vec<JoinHandle<()>>,
    validator: EventValidator,
    /// Every event received so far, in order.
    pub seen: Mutex<Vec<Value>>,
}

/// A config with every collector off; tests turn on the one they test.
pub fn all_off() -> CollectConfig {
    let mut c = CollectConfig::default();
    c.process.enabled = Some(false);
    c.network.enabled = Some(false);
    c.fim.enabled = Some(false);
    c.auth.enabled = Some(false);
    c
}

/// Stamps `event.id` the way the agent does when the collector did not set one.
pub fn stamp(mut v: Value) -> Value {
    if v.pointer("/event/id").is_none()
        && let Some(event) = v.get_mut("event").and_then(Value::as_object_mut)
    {
        event.insert("id".into(), uuid::Uuid::now_v7().to_string().into());
    }
    v
}

impl Harness {
    pub fn start(config: &CollectConfig, state_dir: &Path) -> Harness {
        let (tx, rx) = crossbeam_channel::bounded(1024);
        let shutdown = Shutdown::new();
        let health = Health::default();
        let ctx = CollectorContext {
            sender: tx,
            shutdown: shutdown.clone(),
            state_dir: state_dir.to_path_buf(),
            health: health.clone(),
        };
        let handles = dozor_collect::start(config, ctx).expect("start collectors");
        Harness {
            rx,
            shutdown,
            health,
            handles,
            validator: EventValidator::new().expect("schema"),
            seen: Mutex::new(Vec::new()),
        }
    }

    /// Waits until collector `name` has left the Starting state.
    pub fn wait_ready(&self, name: &str) -> CollectorStatus {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.health.get(name)
                && status.state != CollectorState::Starting
            {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "{name} did not start: {:?}",
                self.health.snapshot()
            );
            // Events may already flow: keep them.
            self.pump(Duration::from_millis(20));
        }
    }

    fn pump(&self, wait: Duration) -> Option<Value> {
        match self.rx.recv_timeout(wait) {
            Ok(v) => {
                let v = stamp(v);
                let errors = self.validator.validate(&v);
                assert!(
                    errors.is_empty(),
                    "invalid event {}: {errors:?}",
                    serde_json::to_string_pretty(&v).unwrap_or_default()
                );
                self.seen.lock().expect("lock").push(v.clone());
                Some(v)
            }
            Err(_) => None,
        }
    }

    /// The first event (already seen or arriving within `secs`) that matches `pred`.
    pub fn wait_for(&self, what: &str, secs: u64, pred: impl Fn(&Value) -> bool) -> Value {
        if let Some(v) = self.seen.lock().expect("lock").iter().find(|v| pred(v)) {
            return v.clone();
        }
        let deadline = Instant::now() + Duration::from_secs(secs);
        while Instant::now() < deadline {
            if let Some(v) = self.pump(Duration::from_millis(100))
                && pred(&v)
            {
                return v;
            }
        }
        let seen = self.seen.lock().expect("lock");
        let tail: Vec<String> = seen.iter().rev().take(30).map(|v| v.to_string()).collect();
        panic!(
            "timed out waiting for {what}; health {:?}; last events:\n{}",
            self.health.snapshot(),
            tail.join("\n")
        );
    }

    /// Receives (and validates) events for `wait`.
    pub fn drain_for(&self, wait: Duration) {
        let deadline = Instant::now() + wait;
        while Instant::now() < deadline {
            self.pump(Duration::from_millis(50));
        }
    }

    /// The events seen so far that match `pred`.
    pub fn count(&self, pred: impl Fn(&Value) -> bool) -> usize {
        self.seen
            .lock()
            .expect("lock")
            .iter()
            .filter(|v| pred(v))
            .count()
    }

    /// Triggers shutdown and joins the threads (which must stop promptly).
    pub fn stop(self) -> Vec<Value> {
        self.shutdown.trigger();
        let started = Instant::now();
        // Keep receiving so no collector is stuck on a full queue.
        let rx = self.rx.clone();
        let validator = self.validator;
        let mut seen = self.seen.into_inner().expect("lock");
        for h in self.handles {
            while !h.is_finished() {
                if let Ok(v) = rx.recv_timeout(Duration::from_millis(20)) {
                    let v = stamp(v);
                    assert!(validator.validate(&v).is_empty(), "invalid event {v}");
                    seen.push(v);
                }
                assert!(
                    started.elapsed() < Duration::from_secs(20),
                    "collector threads did not stop"
                );
            }
            h.join().expect("collector thread panicked");
        }
        while let Ok(v) = rx.try_recv() {
            seen.push(stamp(v));
        }
        seen
    }
}

pub fn str_at<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer).and_then(Value::as_str)
}

pub fn has_type(v: &Value, t: &str) -> bool {
    v.pointer("/event/type")
        .and_then(Value::as_array)
        .is_some_and(|a| a.iter().any(|x| x == t))
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    dozor_collect::sha256_reader(bytes).expect("hash")
}
