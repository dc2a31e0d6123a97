//! JSON files: one object, a JSON array of objects, concatenated (pretty-printed) objects, or
//! NDJSON (one object per line, blank lines ignored).
//!
//! The layout is told from the first non-blank line: a `[` starts an array (streamed element by
//! element); a line that is a whole JSON value, or that is not JSON at all, starts NDJSON, read
//! line by line, a bad line being reported with its number while the others are still read; a
//! line that is the beginning of a value (`{` of a pretty-printed object) starts a stream of
//! values, where a syntax error ends the file (reported with its line and column).

use std::collections::VecDeque;
use std::io::{self, BufRead, Cursor, Read};
use std::path::{Path, PathBuf};

use dozor_event::FlatEvent;
use serde_json::Value as Json;
use serde_json::de::IoRead;

use crate::error::{DecodeError, Location};
use crate::json::{flatten_json, json_kind};

type Stream = serde_json::StreamDeserializer<'static, IoRead<Box<dyn Read + Send>>, Json>;

enum Mode {
    Lines {
        input: Box<dyn BufRead + Send>,
        line: Vec<u8>,
        line_no: u64,
    },
    Stream {
        stream: Box<Stream>,
        index: u64,
    },
    Done,
}

/// Streams the events of a JSON file.
pub(crate) struct JsonFileEvents {
    path: PathBuf,
    mode: Mode,
    queue: VecDeque<Result<FlatEvent, DecodeError>>,
}

fn trim_ascii(bytes: &[u8]) -> &[u8] {
    bytes.trim_ascii()
}

impl JsonFileEvents {
    pub(crate) fn new(
        path: &Path,
        mut input: Box<dyn BufRead + Send>,
    ) -> Result<Self, DecodeError> {
        let mut seen = Vec::new();
        let mut line = Vec::new();
        let mut line_no = 0u64;
        loop {
            line.clear();
            let n = input
                .read_until(b'\n', &mut line)
                .map_err(|e| DecodeError::io(path, e))?;
            if n == 0 {
                return Err(DecodeError::unreadable(path, "empty JSON input"));
            }
            line_no += 1;
            if !trim_ascii(&line).is_empty() {
                break;
            }
            seen.extend_from_slice(&line);
        }
        let mut this = JsonFileEvents {
            path: path.to_path_buf(),
            mode: Mode::Done,
            queue: VecDeque::new(),
        };
        let first = trim_ascii(&line);
        let as_stream = |seen: Vec<u8>, line: &[u8], input, arrays: bool| {
            let mut replay = seen;
            replay.extend_from_slice(line);
            let chained: Box<dyn Read + Send> = Box::new(Cursor::new(replay).chain(input));
            let reader: Box<dyn Read + Send> = if arrays {
                Box::new(TopLevelArrays::new(chained))
            } else {
                chained
            };
            Mode::Stream {
                stream: Box::new(serde_json::Deserializer::from_reader(reader).into_iter::<Json>()),
                index: 0,
            }
        };
        if first.starts_with(b"[") {
            this.mode = as_stream(seen, &line, input, true);
            return Ok(this);
        }
        match serde_json::from_slice::<Json>(line.trim_ascii_end()) {
            Ok(value) => {
                this.push_value(
                    &value,
                    Location::Line {
                        line: line_no,
                        column: None,
                    },
                );
                this.mode = Mode::Lines {
                    input,
                    line,
                    line_no,
                };
            }
            Err(e) if e.is_eof() => this.mode = as_stream(seen, &line, input, false),
            Err(e) => {
                this.queue.push_back(Err(this.line_error(line_no, &e)));
                this.mode = Mode::Lines {
                    input,
                    line,
                    line_no,
                };
            }
        }
        Ok(this)
    }

    fn line_error(&self, line_no: u64, e: &serde_json::Error) -> DecodeError {
        DecodeError::record(
            Some(&self.path),
            Location::Line {
                line: line_no,
                column: Some(e.column() as u64),
            },
            format!("invalid JSON: {e}"),
        )
    }

    /// Queues the events of one JSON value: an object, or an array of objects.
    fn push_value(&mut self, value: &Json, location: Location) {
        match value {
            Json::Array(items) => {
                for item in items {
                    self.push_object(item, location);
                }
            }
            other => self.push_object(other, location),
        }
    }

    fn push_object(&mut self, value: &Json, location: Location) {
        let result = match value {
            Json::Object(_) => {
                flatten_json(value).map_err(|e| e.with_path(&self.path).with_location(location))
            }
            other => Err(DecodeError::record(
                Some(&self.path),
                location,
                format!("expected a JSON object, found {}", json_kind(other)),
            )),
        };
        self.queue.push_back(result);
    }
}

impl Iterator for JsonFileEvents {
    type Item = Result<FlatEvent, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(item) = self.queue.pop_front() {
                return Some(item);
            }
            match &mut self.mode {
                Mode::Done => return None,
                Mode::Lines {
                    input,
                    line,
                    line_no,
                } => {
                    line.clear();
                    match input.read_until(b'\n', line) {
                        Ok(0) => self.mode = Mode::Done,
                        Ok(_) => {
                            *line_no += 1;
                            let no = *line_no;
                            // Trailing whitespace only, so columns stay those of the line.
                            let text = line.trim_ascii_end();
                            if text.is_empty() {
                                continue;
                            }
                            match serde_json::from_slice::<Json>(text) {
                                Ok(value) => self.push_value(
                                    &value,
                                    Location::Line {
                                        line: no,
                                        column: None,
                                    },
                                ),
                                Err(e) => {
                                    let err = self.line_error(no, &e);
                                    self.queue.push_back(Err(err));
                                }
                            }
                        }
                        Err(e) => {
                            self.mode = Mode::Done;
                            return Some(Err(DecodeError::io(&self.path, e)));
                        }
                    }
                }
                Mode::Stream { stream, index } => match stream.next() {
                    None => self.mode = Mode::Done,
                    Some(Ok(value)) => {
                        let location = Location::Item { index: *index };
                        *index += 1;
                        self.push_value(&value, location);
                    }
                    Some(Err(e)) => {
                        self.mode = Mode::Done;
                        if e.is_io() {
                            let source = io::Error::other(e.to_string());
                            return Some(Err(DecodeError::io(&self.path, source)));
                        }
                        return Some(Err(DecodeError::record(
                            Some(&self.path),
                            Location::Line {
                                line: e.line() as u64,
                                column: Some(e.column() as u64),
                            },
                            format!("invalid JSON, the rest of the file is skipped: {e}"),
                        )));
                    }
                },
            }
        }
    }
}

/// Turns top-level JSON arrays into whitespace-separated values (`[a, b]` reads as `a  b`), so a
/// huge array streams through `serde_json::StreamDeserializer` one element at a time. Bytes are
/// replaced one for one, so line and column numbers stay right.
struct TopLevelArrays<R> {
    inner: R,
    depth: u32,
    top_is_array: bool,
    in_string: bool,
    escape: bool,
}

impl<R: Read> TopLevelArrays<R> {
    fn new(inner: R) -> Self {
        TopLevelArrays {
            inner,
            depth: 0,
            top_is_array: false,
            in_string: false,
            escape: false,
        }
    }
}

impl<R: Read> Read for TopLevelArrays<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        for b in &mut buf[..n] {
            if self.in_string {
                if self.escape {
                    self.escape = false;
                } else if *b == b'\\' {
                    self.escape = true;
                } else if *b == b'"' {
                    self.in_string = false;
                }
                continue;
            }
            match *b {
                b'"' => self.in_string = true,
                b'[' | b'{' => {
                    if self.depth == 0 {
                        self.top_is_array = *b == b'[';
                        if self.top_is_array {
                            *b = b' ';
                        }
                    }
                    self.depth += 1;
                }
                b']' | b'}' => {
                    self.depth = self.depth.saturating_sub(1);
                    if self.depth == 0 && self.top_is_array && *b == b']' {
                        *b = b' ';
                    }
                }
                b',' if self.depth == 1 && self.top_is_array => *b = b' ',
                _ => {}
            }
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Vec<Result<FlatEvent, DecodeError>> {
        let input: Box<dyn BufRead + Send> = Box::new(Cursor::new(text.as_bytes().to_vec()));
        match JsonFileEvents::new(Path::new("t.json"), input) {
            Ok(events) => events.collect(),
            Err(e) => vec![Err(e)],
        }
    }

    #[test]
    fn ndjson_with_a_bad_line() {
        let got = read("{\"a\":1}\n\n{\"a\":\n{\"a\":3}\n[{\"a\":4},{\"a\":5}]\n\"x\"\n");
        assert_eq!(got.len(), 6);
        assert!(got[0].is_ok() && got[2].is_ok() && got[3].is_ok() && got[4].is_ok());
        let err = got[1].as_ref().unwrap_err();
        assert_eq!(
            err.location(),
            Location::Line {
                line: 3,
                column: Some(5)
            }
        );
        assert!(err.to_string().starts_with("t.json: line 3"), "{err}");
        assert!(matches!(
            got[5].as_ref().unwrap_err().location(),
            Location::Line { line: 6, .. }
        ));
    }

    #[test]
    fn arrays_and_pretty_objects() {
        let got = read("[\n {\"a\": [1, 2], \"s\": \"],[\\\"\"},\n {\"b\": {\"c\": 2}}\n]\n");
        assert_eq!(got.len(), 2);
        assert!(got.iter().all(Result::is_ok));
        let got = read("{\n  \"a\": 1\n}\n{\n  \"a\": 2\n}\n");
        assert_eq!(got.len(), 2);
        assert!(got.iter().all(Result::is_ok));
        let got = read("{\n  \"a\": 1\n}\n{\n  \"a\": oops\n}\n{\"a\": 3}");
        assert_eq!(got.len(), 2);
        assert_eq!(
            got[1].as_ref().unwrap_err().location(),
            Location::Line {
                line: 5,
                column: Some(8)
            }
        );
        let got = read("  \n");
        assert!(got[0].as_ref().unwrap_err().is_fatal());
    }
}
