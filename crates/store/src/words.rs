//! Words for the keyword index: those of an event document, and those of a free-text term.
//!
//! A word is a run of letters and digits (`char::is_alphanumeric`, so Cyrillic words are
//! words), lower-cased, cut to [`MAX_WORD_CHARS`]. A document's words come from its string and
//! number values, not its keys, each word once. Both backends index exactly these words —
//! SQLite's FTS5 with its `ascii` tokenizer (every non-ASCII character is part of a word and
//! our spaces are the only separators left), PostgreSQL's `array_to_tsvector` (lexemes taken as
//! given) — and look them up the same way, so they answer alike. Their own tokenizers would
//! not: PostgreSQL's parser keeps `powershell.exe` as one "host" token, FTS5's splits it.

use std::fmt::Write as _;
use std::ops::Range;

use serde_json::Value;

/// Longer words are cut here (base64 blobs and hashes would otherwise fill the index with
/// words nobody types whole); a longer word in a query is looked up by its first this-many
/// characters as a prefix.
pub(crate) const MAX_WORD_CHARS: usize = 64;

/// A document's words are indexed up to this many bytes of them (PostgreSQL refuses a
/// `tsvector` of 1 MiB; events are far smaller in practice).
pub(crate) const MAX_DOCUMENT_WORD_BYTES: usize = 512 * 1024;

/// Appends each word of `text` to `buf`, lower-cased and cut, and calls `f` with where it
/// went in `buf`, where it was in `text`, and whether it was cut. One definition of a word
/// for documents and queries alike.
fn scan_words(text: &str, buf: &mut String, mut f: impl FnMut(Range<usize>, Range<usize>, bool)) {
    let mut word: Option<(usize, usize)> = None; // (start in text, start in buf)
    let mut chars = 0;
    for (i, c) in text.char_indices() {
        let alphanumeric = if c.is_ascii() {
            c.is_ascii_alphanumeric()
        } else {
            c.is_alphanumeric()
        };
        if alphanumeric {
            if word.is_none() {
                word = Some((i, buf.len()));
                chars = 0;
            }
            if chars < MAX_WORD_CHARS {
                if c.is_ascii() {
                    buf.push(c.to_ascii_lowercase());
                } else {
                    buf.extend(c.to_lowercase());
                }
            }
            chars += 1;
        } else if let Some((at, from)) = word.take() {
            f(from..buf.len(), at..i, chars > MAX_WORD_CHARS);
        }
    }
    if let Some((at, from)) = word {
        f(from..buf.len(), at..text.len(), chars > MAX_WORD_CHARS);
    }
}

/// The words of an event document, each once, separated by single spaces (in byte order:
/// the indexes don't care, and sorting is how duplicates go without a set of strings).
pub(crate) fn document_words(doc: &Value) -> String {
    let mut buf = String::new();
    let mut spans: Vec<Range<usize>> = Vec::new();
    let mut number = String::new();
    let mut stack = vec![doc];
    while let Some(v) = stack.pop() {
        let text = match v {
            Value::String(s) => s.as_str(),
            Value::Number(n) => {
                number.clear();
                let _ = write!(number, "{n}");
                number.as_str()
            }
            Value::Array(items) => {
                stack.extend(items.iter().rev());
                continue;
            }
            Value::Object(members) => {
                stack.extend(members.values().rev());
                continue;
            }
            Value::Bool(_) | Value::Null => continue,
        };
        scan_words(text, &mut buf, |word, _, _| spans.push(word));
        if buf.len() > 4 * MAX_DOCUMENT_WORD_BYTES {
            break;
        }
    }
    spans.sort_unstable_by(|a, b| buf[a.clone()].cmp(&buf[b.clone()]));
    spans.dedup_by(|a, b| buf[a.clone()] == buf[b.clone()]);
    let mut out = String::with_capacity(buf.len().min(MAX_DOCUMENT_WORD_BYTES));
    for span in spans {
        let word = &buf[span];
        if out.len() + word.len() + 1 > MAX_DOCUMENT_WORD_BYTES {
            break;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

/// A word a free-text term requires of a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TermWord {
    /// Lower-cased, cut to [`MAX_WORD_CHARS`].
    pub word: String,
    /// A document word that starts with `word` will do (the term's last word, which the
    /// analyst may not have typed to its end, or a word cut to the limit).
    pub prefix: bool,
}

/// The words a free-text term starting at a word's start requires: every word of `text`;
/// all but the last are whole words (a separator follows them in the term), the last is a
/// prefix unless the text ends in a separator.
pub(crate) fn term_words(text: &str) -> Vec<TermWord> {
    let mut buf = String::new();
    let mut found = Vec::new();
    scan_words(text, &mut buf, |word, at, cut| {
        found.push((word, cut || at.end == text.len()));
    });
    found
        .into_iter()
        .map(|(word, prefix)| TermWord {
            word: buf[word].to_owned(),
            prefix,
        })
        .collect()
}

/// Whether a term is one word and nothing else: its index lookup alone is its answer (no
/// substring check of the document is needed).
pub(crate) fn is_single_word(text: &str) -> bool {
    !text.is_empty()
        && text.chars().count() <= MAX_WORD_CHARS
        && text.chars().all(char::is_alphanumeric)
}

/// An FTS5 `MATCH` expression requiring every word (words are letters and digits only, so
/// quoting them needs no escapes).
pub(crate) fn fts5_query(words: &[TermWord]) -> String {
    let parts: Vec<String> = words
        .iter()
        .map(|w| format!("\"{}\"{}", w.word, if w.prefix { "*" } else { "" }))
        .collect();
    parts.join(" AND ")
}

/// A PostgreSQL `tsquery` requiring every word.
pub(crate) fn tsquery(words: &[TermWord]) -> String {
    let parts: Vec<String> = words
        .iter()
        .map(|w| format!("'{}'{}", w.word, if w.prefix { ":*" } else { "" }))
        .collect();
    parts.join(" & ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn document_words_are_values_lower_cased_once() {
        let doc = json!({"process": {"command_line": "C:\\Windows\\System32\\PowerShell.exe -enc AAA",
                         "name": "powershell.exe", "pid": 4688},
                         "user": {"name": "Администратор"}, "ok": true, "n": null,
                         "tags": ["Line1\nline2", 1.5]});
        let words = document_words(&doc);
        let list: Vec<&str> = words.split(' ').collect();
        assert_eq!(
            list,
            [
                "1",
                "4688",
                "5",
                "aaa",
                "c",
                "enc",
                "exe",
                "line1",
                "line2",
                "powershell",
                "system32",
                "windows",
                "администратор"
            ],
            "{words}"
        );
        assert!(!words.contains("process"), "keys are not words");
        assert_eq!(document_words(&json!({"a": "", "b": "--"})), "");
    }

    #[test]
    fn long_words_are_cut_and_the_total_is_bounded() {
        let long = "x".repeat(200);
        assert_eq!(document_words(&json!(long)), "x".repeat(MAX_WORD_CHARS));
        let many: Vec<String> = (0..200_000).map(|i| format!("w{i}")).collect();
        let words = document_words(&json!(many.join(" ")));
        assert!(words.len() < MAX_DOCUMENT_WORD_BYTES);
        assert!(words.len() > MAX_DOCUMENT_WORD_BYTES - 20);
        assert_eq!(
            document_words(&json!(["b a", "A", ["B"], {"k": "ÄÖ äö"}])),
            "a b äö"
        );
    }

    #[test]
    fn term_words_know_which_may_continue() {
        let w = |word: &str, prefix| TermWord {
            word: word.into(),
            prefix,
        };
        assert_eq!(term_words("Power"), [w("power", true)]);
        assert_eq!(
            term_words("powershell.exe"),
            [w("powershell", false), w("exe", true)]
        );
        assert_eq!(term_words("-enc "), [w("enc", false)]);
        assert_eq!(term_words("::"), []);
        assert_eq!(term_words(&"y".repeat(70)), [w(&"y".repeat(64), true)]);
        let q = term_words("C:\\Windows\\");
        assert_eq!(fts5_query(&q), "\"c\" AND \"windows\"");
        assert_eq!(tsquery(&term_words("cmd.ex")), "'cmd' & 'ex':*");
        assert!(is_single_word("Привет"));
        assert!(!is_single_word("a.b"));
        assert!(!is_single_word(""));
    }
}
