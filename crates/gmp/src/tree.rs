//! A small element tree for one bounded piece of XML (one `<result>`, one GMP response that is
//! not a report), plus the helpers both the report parser and the client use to turn quick-xml
//! events into text. Mixed content (`<host>10.0.0.1<asset/><hostname>h</hostname></host>`)
//! keeps the element's own text apart from its children.

use std::borrow::Cow;

use quick_xml::escape::resolve_xml_entity;
use quick_xml::events::{BytesRef, BytesStart, BytesText, Event};

/// One element: its own text (direct text children concatenated), attributes and children.
#[derive(Debug, Clone, Default)]
pub(crate) struct Node {
    pub name: String,
    pub attrs: Vec<(String, String)>,
    pub text: String,
    pub children: Vec<Node>,
    /// Byte offset of the start tag in the input.
    pub offset: u64,
    /// 1-based line of the start tag.
    pub line: u64,
}

impl Node {
    pub fn child(&self, name: &str) -> Option<&Node> {
        self.children.iter().find(|c| c.name == name)
    }

    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Node> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }

    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Own text, trimmed; `None` when blank.
    pub fn trimmed(&self) -> Option<&str> {
        let t = self.text.trim();
        (!t.is_empty()).then_some(t)
    }

    /// Trimmed own text of a direct child; `None` when the child is missing or blank.
    pub fn child_text(&self, name: &str) -> Option<&str> {
        self.child(name).and_then(Node::trimmed)
    }
}

/// Why a piece of XML could not be turned into text or a node.
pub(crate) type EventError = String;

/// Element name of a start tag, as written (prefixes kept: GMP uses none).
pub(crate) fn element_name(e: &BytesStart<'_>) -> Result<String, EventError> {
    std::str::from_utf8(e.name().as_ref())
        .map(str::to_owned)
        .map_err(|_| "element name is not UTF-8".to_owned())
}

pub(crate) fn attributes(e: &BytesStart<'_>) -> Result<Vec<(String, String)>, EventError> {
    let mut out = Vec::new();
    for attr in e.attributes().with_checks(true) {
        let attr = attr.map_err(|err| format!("bad attribute: {err}"))?;
        let key = std::str::from_utf8(attr.key.as_ref())
            .map_err(|_| "attribute name is not UTF-8".to_owned())?
            .to_owned();
        let value = attr
            .unescape_value()
            .map_err(|err| format!("bad value of attribute {key:?}: {err}"))?
            .into_owned();
        out.push((key, value));
    }
    Ok(out)
}

pub(crate) fn text_content<'a>(e: &'a BytesText<'_>) -> Result<Cow<'a, str>, EventError> {
    e.xml_content()
        .map_err(|err| format!("text is not valid UTF-8: {err}"))
}

/// `&amp;`, `&#233;` and the other four predefined entities. Anything else is refused: GMP
/// defines no entities of its own, and expanding DTD entities would open entity bombs.
pub(crate) fn resolve_reference(e: &BytesRef<'_>) -> Result<String, EventError> {
    if e.is_char_ref() {
        return match e.resolve_char_ref() {
            Ok(Some(c)) => Ok(c.to_string()),
            Ok(None) => Err("bad character reference".to_owned()),
            Err(err) => Err(format!("bad character reference: {err}")),
        };
    }
    let name = e
        .decode()
        .map_err(|err| format!("entity name is not UTF-8: {err}"))?;
    resolve_xml_entity(&name)
        .map(str::to_owned)
        .ok_or_else(|| format!("unknown entity &{name};"))
}

/// Builds one [`Node`] from the events of its subtree, the first event being its start tag.
#[derive(Debug)]
pub(crate) struct TreeBuilder {
    stack: Vec<Node>,
    max_depth: usize,
}

impl TreeBuilder {
    pub fn new(max_depth: usize) -> Self {
        Self {
            stack: Vec::new(),
            max_depth,
        }
    }

    /// Names of the open elements, outermost first (for error paths).
    pub fn open_path(&self) -> impl Iterator<Item = &str> {
        self.stack.iter().map(|n| n.name.as_str())
    }

    pub fn start(&mut self, e: &BytesStart<'_>, offset: u64, line: u64) -> Result<(), EventError> {
        if self.stack.len() >= self.max_depth {
            return Err(format!("elements nested deeper than {}", self.max_depth));
        }
        self.stack.push(Node {
            name: element_name(e)?,
            attrs: attributes(e)?,
            text: String::new(),
            children: Vec::new(),
            offset,
            line,
        });
        Ok(())
    }

    pub fn text(&mut self, text: &str) {
        if let Some(top) = self.stack.last_mut() {
            top.text.push_str(text);
        }
    }

    /// Closes the innermost element; returns the root once it closes.
    pub fn end(&mut self) -> Option<Node> {
        let node = self.stack.pop()?;
        match self.stack.last_mut() {
            Some(parent) => {
                parent.children.push(node);
                None
            }
            None => Some(node),
        }
    }

    /// Feeds one event; returns the finished root when this event closed it.
    pub fn feed(
        &mut self,
        event: &Event<'_>,
        offset: u64,
        line: u64,
    ) -> Result<Option<Node>, EventError> {
        match event {
            Event::Start(e) => self.start(e, offset, line).map(|()| None),
            Event::Empty(e) => {
                self.start(e, offset, line)?;
                Ok(self.end())
            }
            Event::End(_) => Ok(self.end()),
            Event::Text(t) => {
                let text = text_content(t)?;
                self.text(&text);
                Ok(None)
            }
            Event::CData(c) => {
                let text = c
                    .decode()
                    .map_err(|err| format!("CDATA is not valid UTF-8: {err}"))?;
                self.text(&text);
                Ok(None)
            }
            Event::GeneralRef(r) => {
                let text = resolve_reference(r)?;
                self.text(&text);
                Ok(None)
            }
            Event::Comment(_) | Event::PI(_) | Event::Decl(_) | Event::DocType(_) | Event::Eof => {
                Ok(None)
            }
        }
    }
}

/// Parses a complete, small XML document (a GMP response) into its root node.
pub(crate) fn parse_document(xml: &[u8], max_depth: usize) -> Result<Node, String> {
    let mut reader = quick_xml::Reader::from_reader(xml);
    let mut builder = TreeBuilder::new(max_depth);
    let mut buf = Vec::new();
    loop {
        let offset = reader.buffer_position();
        let event = reader
            .read_event_into(&mut buf)
            .map_err(|err| format!("byte {}: {err}", reader.error_position()))?;
        if let Event::Eof = event {
            return Err(format!(
                "byte {offset}: the document ended before its root closed"
            ));
        }
        // Lines are not tracked here: responses are one line, and errors name the byte.
        if let Some(root) = builder
            .feed(&event, offset, 0)
            .map_err(|reason| format!("byte {offset}: {reason}"))?
        {
            return Ok(root);
        }
        buf.clear();
    }
}
