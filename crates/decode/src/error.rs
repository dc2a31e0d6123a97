//! Errors that say what went wrong and where.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// EVTX layout constants, to turn a chunk number into a file offset in messages.
const EVTX_FILE_HEADER_SIZE: u64 = 4096;
const EVTX_CHUNK_SIZE: u64 = 65536;

/// Where in an input a problem is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location {
    /// Nowhere more precise than the input itself.
    Unknown,
    /// An EVTX chunk (numbered from 0 in file order).
    Chunk { chunk: u64 },
    /// An EVTX record that could not be located by id: `offset` bytes into its chunk.
    ChunkOffset { chunk: Option<u64>, offset: u64 },
    /// An EVTX record, by its `EventRecordID`, and its chunk when known.
    Record { chunk: Option<u64>, record_id: u64 },
    /// A line of a text input (1-based), and a column (1-based) when known.
    Line { line: u64, column: Option<u64> },
    /// A byte offset into a text input (after UTF-16 inputs are transcoded to UTF-8).
    Byte { offset: u64 },
    /// The n-th (0-based) value of a JSON array or stream.
    Item { index: u64 },
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Location::Unknown => f.write_str("unknown location"),
            Location::Chunk { chunk } => write!(
                f,
                "chunk {chunk} (file offset {:#x})",
                EVTX_FILE_HEADER_SIZE.saturating_add(chunk.saturating_mul(EVTX_CHUNK_SIZE))
            ),
            Location::ChunkOffset {
                chunk: Some(chunk),
                offset,
            } => write!(
                f,
                "chunk {chunk}, offset {offset:#x} (file offset {:#x})",
                EVTX_FILE_HEADER_SIZE
                    .saturating_add(chunk.saturating_mul(EVTX_CHUNK_SIZE))
                    .saturating_add(offset)
            ),
            Location::ChunkOffset {
                chunk: None,
                offset,
            } => {
                write!(f, "offset {offset:#x} of its chunk")
            }
            Location::Record {
                chunk: Some(chunk),
                record_id,
            } => {
                write!(f, "chunk {chunk}, record {record_id}")
            }
            Location::Record {
                chunk: None,
                record_id,
            } => write!(f, "record {record_id}"),
            Location::Line {
                line,
                column: Some(column),
            } => {
                write!(f, "line {line}, column {column}")
            }
            Location::Line { line, column: None } => write!(f, "line {line}"),
            Location::Byte { offset } => write!(f, "byte {offset}"),
            Location::Item { index } => write!(f, "item {index}"),
        }
    }
}

/// The input and location an error is about, displayed as `path: location`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    /// The file, when the input was one.
    pub path: Option<PathBuf>,
    pub location: Location,
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.path, self.location) {
            (Some(path), Location::Unknown) => write!(f, "{}", path.display()),
            (Some(path), location) => write!(f, "{}: {location}", path.display()),
            (None, Location::Unknown) => f.write_str("input"),
            (None, location) => write!(f, "{location}"),
        }
    }
}

/// A decoding error.
///
/// [`DecodeError::Io`] and [`DecodeError::Unreadable`] concern a whole input: returned by
/// [`crate::read_path`], or as the last item of a stream that can't go on. [`DecodeError::Record`]
/// concerns one record, chunk, line or event, which was skipped: the stream goes on after it.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The file could not be opened or read.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The whole input can't be decoded: not EVTX, an unknown format, empty, ...
    #[error("{}: {message}", path.display())]
    Unreadable { path: PathBuf, message: String },
    /// One record, chunk, line or event could not be decoded and was skipped.
    #[error("{at}: {message}")]
    Record { at: Position, message: String },
}

impl DecodeError {
    pub(crate) fn record(
        path: Option<&Path>,
        location: Location,
        message: impl Into<String>,
    ) -> Self {
        DecodeError::Record {
            at: Position {
                path: path.map(Path::to_path_buf),
                location,
            },
            message: message.into(),
        }
    }

    /// An error about an in-memory input (no file), without a more precise location.
    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Self::record(None, Location::Unknown, message)
    }

    pub(crate) fn unreadable(path: &Path, message: impl Into<String>) -> Self {
        DecodeError::Unreadable {
            path: path.to_path_buf(),
            message: message.into(),
        }
    }

    pub(crate) fn io(path: &Path, source: io::Error) -> Self {
        DecodeError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    /// The file the error is about, when known.
    pub fn path(&self) -> Option<&Path> {
        match self {
            DecodeError::Io { path, .. } | DecodeError::Unreadable { path, .. } => Some(path),
            DecodeError::Record { at, .. } => at.path.as_deref(),
        }
    }

    /// Where in the input the error is.
    pub fn location(&self) -> Location {
        match self {
            DecodeError::Record { at, .. } => at.location,
            _ => Location::Unknown,
        }
    }

    /// Whether the error ends the input (nothing more will be read from it), as opposed to one
    /// skipped record, chunk, line or event.
    pub fn is_fatal(&self) -> bool {
        !matches!(self, DecodeError::Record { .. })
    }

    /// Sets the path of an error about an in-memory input.
    pub(crate) fn with_path(mut self, file: &Path) -> Self {
        if let DecodeError::Record { at, .. } = &mut self
            && at.path.is_none()
        {
            at.path = Some(file.to_path_buf());
        }
        self
    }

    /// Sets the location of an error that has none yet.
    pub(crate) fn with_location(mut self, location: Location) -> Self {
        if let DecodeError::Record { at, .. } = &mut self
            && at.location == Location::Unknown
        {
            at.location = location;
        }
        self
    }
}

/// An error and its sources, joined by `": "`, without repeating a message and without the
/// generic wrappers of the evtx crate ("An error occurred while trying to ...").
pub(crate) fn error_chain(err: &dyn std::error::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut current = Some(err);
    while let Some(e) = current {
        let text = e.to_string();
        let text = text.trim_end_matches('.');
        let generic = text.starts_with("An error occurred while trying to");
        let repeated = parts.last().is_some_and(|last| last.ends_with(text));
        if !generic && !repeated && !text.is_empty() {
            parts.push(text.to_owned());
        }
        current = e.source();
    }
    if parts.is_empty() {
        return err.to_string();
    }
    parts.join(": ")
}
