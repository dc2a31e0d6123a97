//! Dozor's Sigma engine: Sigma v2.1 rules, filters and correlations, compiled for speed.
//!
//! The crate does no I/O beyond reading rule and mapping files. Events come in through
//! [`dozor_event::EventFields`]; results are rule indices into [`Engine::rules`].
//!
//! ```no_run
//! use dozor_sigma::{Engine, EngineOptions, LoadOptions, RuleSet};
//! let set = RuleSet::load_paths(&["rules".into()], &LoadOptions::default());
//! let (engine, _report) = Engine::build(set.rules, &set.filters, &EngineOptions::default());
//! let mut scratch = engine.new_scratch();
//! let mut hits = Vec::new();
//! let event = serde_json::json!({"Channel": "Security", "EventID": 1102});
//! engine.matches(&event, &mut scratch, &mut hits);
//! ```

pub mod condition;
pub mod detector;
pub mod engine;
pub mod load;
pub mod mapping;
pub mod matcher;
pub mod rule;
pub mod value;

pub use detector::{Detector, DetectorOptions};
pub use dozor_correlation::CorrelationHit;
pub use engine::{Engine, EngineOptions, Outcome, RuleIndex, RuleReport, Scratch};
pub use load::{LoadOptions, RuleSet};
pub use mapping::LogsourceMapping;
pub use rule::{Level, LogSource, RuleKind, RuleMeta, Status};
