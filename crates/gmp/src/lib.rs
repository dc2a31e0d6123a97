//! OpenVAS / Greenbone for Dozor: a streaming parser of GMP/OpenVAS XML reports
//! ([`report`]) and an async client of gvmd's Greenbone Management Protocol ([`client`]).
//!
//! The crate does no storage: it turns a report into [`report::ParsedReport`] (all results or
//! an error, never part of them) and drives gvmd; the store and the API build on it.

mod tree;

pub mod report;

pub use report::{
    LevelCounts, ParsedReport, ReportError, ReportHost, SeverityLevel, VulnResult, parse_report,
    parse_report_bytes, parse_report_file, parse_report_reader,
};

pub mod client;

pub use client::{
    Endpoint, GmpClient, GmpConfig, GmpError, GmpIo, GmpVersion, ReportFilter, TargetSpec,
    TaskSpec, TaskStatus, TlsTrust,
};
