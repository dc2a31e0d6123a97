//! Opening text inputs: byte-order marks, UTF-16 (what PowerShell's `>` writes) to UTF-8.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;

use crate::error::DecodeError;

const BUF_SIZE: usize = 1 << 16;

/// Text encodings told by a byte-order mark.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Bom {
    None,
    Utf8,
    Utf16Le,
    Utf16Be,
}

pub(crate) fn sniff_bom(head: &[u8]) -> Bom {
    if head.starts_with(&[0xEF, 0xBB, 0xBF]) {
        Bom::Utf8
    } else if head.starts_with(&[0xFF, 0xFE]) {
        Bom::Utf16Le
    } else if head.starts_with(&[0xFE, 0xFF]) {
        Bom::Utf16Be
    } else {
        Bom::None
    }
}

/// The first character of a text that is not whitespace, when the head of the input shows it.
pub(crate) fn first_non_space(head: &[u8]) -> Option<char> {
    match sniff_bom(head) {
        Bom::None => head
            .iter()
            .find(|b| !b.is_ascii_whitespace())
            .map(|&b| char::from(b)),
        Bom::Utf8 => head[3..]
            .iter()
            .find(|b| !b.is_ascii_whitespace())
            .map(|&b| char::from(b)),
        bom @ (Bom::Utf16Le | Bom::Utf16Be) => {
            let units = head[2..].chunks_exact(2).map(|p| {
                if bom == Bom::Utf16Le {
                    u16::from_le_bytes([p[0], p[1]])
                } else {
                    u16::from_be_bytes([p[0], p[1]])
                }
            });
            char::decode_utf16(units)
                .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
                .find(|c| !c.is_whitespace())
        }
    }
}

/// Opens a text file as UTF-8: a UTF-8 byte-order mark is skipped, UTF-16 (with a byte-order
/// mark) is transcoded.
pub(crate) fn open_text(path: &Path) -> Result<Box<dyn BufRead + Send>, DecodeError> {
    let file = File::open(path).map_err(|e| DecodeError::io(path, e))?;
    let mut reader = BufReader::with_capacity(BUF_SIZE, file);
    let head = reader.fill_buf().map_err(|e| DecodeError::io(path, e))?;
    Ok(match sniff_bom(head) {
        Bom::None => Box::new(reader),
        Bom::Utf8 => {
            reader.consume(3);
            Box::new(reader)
        }
        Bom::Utf16Le => {
            reader.consume(2);
            Box::new(BufReader::with_capacity(
                BUF_SIZE,
                Utf16Reader::new(reader, false),
            ))
        }
        Bom::Utf16Be => {
            reader.consume(2);
            Box::new(BufReader::with_capacity(
                BUF_SIZE,
                Utf16Reader::new(reader, true),
            ))
        }
    })
}

/// Transcodes UTF-16 to UTF-8 as it is read; unpaired surrogates become U+FFFD.
pub(crate) struct Utf16Reader<R> {
    inner: R,
    big_endian: bool,
    input: Vec<u8>,
    output: Vec<u8>,
    out_pos: usize,
    eof: bool,
}

impl<R: Read> Utf16Reader<R> {
    pub(crate) fn new(inner: R, big_endian: bool) -> Self {
        Utf16Reader {
            inner,
            big_endian,
            input: Vec::with_capacity(BUF_SIZE),
            output: Vec::with_capacity(BUF_SIZE * 3 / 2),
            out_pos: 0,
            eof: false,
        }
    }

    fn unit(&self, pair: &[u8]) -> u16 {
        if self.big_endian {
            u16::from_be_bytes([pair[0], pair[1]])
        } else {
            u16::from_le_bytes([pair[0], pair[1]])
        }
    }

    /// Reads more input and transcodes what can be; false at the end of the input.
    fn refill(&mut self) -> io::Result<bool> {
        self.output.clear();
        self.out_pos = 0;
        while self.output.is_empty() {
            if self.eof {
                return Ok(false);
            }
            let start = self.input.len();
            self.input.resize(start + BUF_SIZE, 0);
            let n = loop {
                match self.inner.read(&mut self.input[start..]) {
                    Ok(n) => break n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        self.input.truncate(start);
                        return Err(e);
                    }
                }
            };
            self.input.truncate(start + n);
            if n == 0 {
                self.eof = true;
            }
            let mut usable = self.input.len() & !1;
            // A high surrogate at the end waits for its pair, unless the input is over.
            if !self.eof && usable >= 2 {
                let last = self.unit(&self.input[usable - 2..usable]);
                if (0xD800..0xDC00).contains(&last) {
                    usable -= 2;
                }
            }
            let units: Vec<u16> = self.input[..usable]
                .chunks_exact(2)
                .map(|p| self.unit(p))
                .collect();
            let mut utf8 = [0u8; 4];
            for c in char::decode_utf16(units) {
                let c = c.unwrap_or(char::REPLACEMENT_CHARACTER);
                self.output
                    .extend_from_slice(c.encode_utf8(&mut utf8).as_bytes());
            }
            self.input.drain(..usable);
            if self.eof && !self.input.is_empty() {
                // An odd byte at the very end.
                self.input.clear();
                self.output.extend_from_slice(
                    char::REPLACEMENT_CHARACTER
                        .encode_utf8(&mut utf8)
                        .as_bytes(),
                );
            }
        }
        Ok(true)
    }
}

impl<R: Read> Read for Utf16Reader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.out_pos >= self.output.len() && !self.refill()? {
            return Ok(0);
        }
        let available = &self.output[self.out_pos..];
        let n = available.len().min(buf.len());
        buf[..n].copy_from_slice(&available[..n]);
        self.out_pos += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf16_transcodes_including_surrogates() {
        let text = "<Event>Привет 😀</Event>";
        for big_endian in [false, true] {
            let bytes: Vec<u8> = text
                .encode_utf16()
                .flat_map(|u| {
                    if big_endian {
                        u.to_be_bytes()
                    } else {
                        u.to_le_bytes()
                    }
                })
                .collect();
            // One byte at a time, to split surrogate pairs across reads.
            struct Slow<'a>(&'a [u8]);
            impl Read for Slow<'_> {
                fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                    if self.0.is_empty() || buf.is_empty() {
                        return Ok(0);
                    }
                    buf[0] = self.0[0];
                    self.0 = &self.0[1..];
                    Ok(1)
                }
            }
            let mut out = String::new();
            Utf16Reader::new(Slow(&bytes), big_endian)
                .read_to_string(&mut out)
                .unwrap();
            assert_eq!(out, text);
        }
    }

    #[test]
    fn first_char() {
        assert_eq!(first_non_space(b"  \n{"), Some('{'));
        assert_eq!(first_non_space(b"\xEF\xBB\xBF<E"), Some('<'));
        assert_eq!(first_non_space(b"\xFF\xFE \0<\0"), Some('<'));
        assert_eq!(first_non_space(b"   "), None);
    }
}
