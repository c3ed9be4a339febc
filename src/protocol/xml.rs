//! The defensive pull reader and the strict writer every document codec is
//! built on. Private: the public surface is [`super::Document`].
//!
//! The reader works on a whole in-memory buffer whose size was checked before
//! the first byte was parsed. It tracks the open elements itself (local names
//! only, for error paths and the depth cap) and refuses DOCTYPEs, entity
//! references other than the predefined five, invalid character references
//! and characters XML does not allow. Nothing is ever expanded, so memory use
//! is bounded by the input size, and a deep nest fails at the first element
//! past [`Limits::max_depth`].

use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;

use super::error::{DecodeError, DecodeErrorKind, Limits};
use super::literals::trim_xml;
use super::NAMESPACE;

type Result<T> = std::result::Result<T, DecodeError>;

/// A start tag: local name and attributes (local names, unescaped, trimmed;
/// namespace declarations dropped).
#[derive(Debug)]
pub(crate) struct Tag {
    pub(crate) name: String,
    attrs: Vec<(String, String)>,
}

impl Tag {
    /// The value of the attribute with this local name.
    pub(crate) fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Whether `c` may appear in an XML 1.0 document.
fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// Resolves the body of a `&...;` reference: the five predefined entities and
/// character references to XML characters; anything else is refused.
fn resolve_reference(name: &str) -> std::result::Result<char, DecodeErrorKind> {
    match name {
        "lt" => return Ok('<'),
        "gt" => return Ok('>'),
        "amp" => return Ok('&'),
        "apos" => return Ok('\''),
        "quot" => return Ok('"'),
        _ => {}
    }
    let Some(num) = name.strip_prefix('#') else {
        return Err(DecodeErrorKind::EntityForbidden {
            name: name.chars().take(64).collect(),
        });
    };
    let bad = || DecodeErrorKind::malformed(format!("invalid character reference `&{name};`"));
    let (digits, radix) = match num.strip_prefix('x') {
        Some(hex) => (hex, 16),
        None => (num, 10),
    };
    if digits.is_empty() || digits.len() > 8 || !digits.chars().all(|c| c.is_digit(radix)) {
        return Err(bad());
    }
    let code = u32::from_str_radix(digits, radix).map_err(|_| bad())?;
    char::from_u32(code)
        .filter(|c| is_xml_char(*c))
        .ok_or_else(bad)
}

fn check_chars(s: &str) -> std::result::Result<(), DecodeErrorKind> {
    match s.chars().find(|c| !is_xml_char(*c)) {
        Some(c) => Err(DecodeErrorKind::malformed(format!(
            "character U+{:04X} is not allowed in XML",
            u32::from(c)
        ))),
        None => Ok(()),
    }
}

/// Unescapes a raw attribute value, normalising literal tab/CR/LF to spaces
/// as XML attribute-value normalisation requires.
fn unescape_attr(raw: &str, max: usize) -> std::result::Result<String, DecodeErrorKind> {
    let mut out = String::with_capacity(raw.len().min(max));
    let mut rest = raw;
    while let Some(i) = rest.find(['&', '<', '\t', '\r', '\n']) {
        out.push_str(&rest[..i]);
        let c = rest[i..].chars().next().unwrap_or(' ');
        match c {
            '&' => {
                let after = &rest[i + 1..];
                let end = after.find(';').filter(|&e| e <= 70).ok_or_else(|| {
                    DecodeErrorKind::malformed("unterminated reference in an attribute")
                })?;
                out.push(resolve_reference(&after[..end])?);
                rest = &after[end + 1..];
            }
            '<' => return Err(DecodeErrorKind::malformed("`<` inside an attribute value")),
            _ => {
                out.push(' ');
                rest = &rest[i + 1..];
            }
        }
        if out.len() > max {
            return Err(DecodeErrorKind::TooLong { limit: max });
        }
    }
    out.push_str(rest);
    if out.len() > max {
        return Err(DecodeErrorKind::TooLong { limit: max });
    }
    check_chars(&out)?;
    Ok(out)
}

/// The decoding cursor.
pub(crate) struct XmlIn<'a> {
    reader: Reader<&'a [u8]>,
    limits: Limits,
    /// Local names of the open elements, root first.
    stack: Vec<String>,
    /// The element on top of `stack` was self-closing: its content is empty.
    pending_empty: bool,
}

impl std::fmt::Debug for XmlIn<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XmlIn").field("path", &self.path()).finish()
    }
}

impl<'a> XmlIn<'a> {
    /// Checks size, emptiness and encoding; no XML is parsed yet.
    pub(crate) fn new(bytes: &'a [u8], limits: &Limits) -> Result<Self> {
        if bytes.len() > limits.max_size {
            return Err(DecodeErrorKind::TooLarge {
                limit: limits.max_size,
                size: bytes.len(),
            }
            .into());
        }
        let text = std::str::from_utf8(bytes).map_err(|e| {
            DecodeError::from(DecodeErrorKind::NotUtf8 {
                offset: e.valid_up_to(),
            })
        })?;
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        if trim_xml(text).is_empty() {
            return Err(DecodeErrorKind::Empty.into());
        }
        let mut reader = Reader::from_str(text);
        let cfg = reader.config_mut();
        cfg.check_end_names = true;
        cfg.check_comments = true;
        cfg.expand_empty_elements = false;
        cfg.allow_dangling_amp = false;
        cfg.allow_unmatched_ends = false;
        cfg.trim_text(false);
        Ok(XmlIn {
            reader,
            limits: *limits,
            stack: Vec::new(),
            pending_empty: false,
        })
    }

    /// The path of the current element.
    pub(crate) fn path(&self) -> String {
        self.stack.join("/")
    }

    /// The path of an attribute of the current element.
    pub(crate) fn attr_path(&self, attr: &str) -> String {
        format!("{}/@{attr}", self.path())
    }

    fn err(&self, kind: DecodeErrorKind) -> DecodeError {
        DecodeError::new(kind, self.path())
    }

    fn read(&mut self) -> Result<Event<'a>> {
        match self.reader.read_event() {
            Ok(Event::DocType(_)) => Err(self.err(DecodeErrorKind::DoctypeForbidden)),
            Ok(ev) => Ok(ev),
            Err(e) => Err(self.err(DecodeErrorKind::malformed(format!(
                "{e} (near byte {})",
                self.reader.error_position()
            )))),
        }
    }

    fn eof_error(&self) -> DecodeError {
        self.err(DecodeErrorKind::malformed(format!(
            "the document ends inside `{}`",
            self.stack.last().map(String::as_str).unwrap_or("")
        )))
    }

    fn check_ref(&self, name: &[u8]) -> Result<char> {
        let name = std::str::from_utf8(name)
            .map_err(|_| self.err(DecodeErrorKind::malformed("reference is not UTF-8")))?;
        resolve_reference(name).map_err(|k| self.err(k))
    }

    /// Pushes a start tag (depth-checked) and reads its attributes.
    fn open(&mut self, e: &BytesStart<'_>, empty: bool) -> Result<Tag> {
        let name = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
        self.stack.push(name.clone());
        self.pending_empty = empty;
        if self.stack.len() > self.limits.max_depth {
            return Err(self.err(DecodeErrorKind::TooDeep {
                limit: self.limits.max_depth,
            }));
        }
        let mut attrs = Vec::new();
        for a in e.attributes() {
            let a = a.map_err(|e| self.err(DecodeErrorKind::malformed(e.to_string())))?;
            let key = a.key.as_ref();
            if key == b"xmlns" || key.starts_with(b"xmlns:") {
                continue;
            }
            let local = String::from_utf8_lossy(a.key.local_name().as_ref()).into_owned();
            let raw = std::str::from_utf8(&a.value)
                .map_err(|_| self.err(DecodeErrorKind::malformed("attribute is not UTF-8")))?;
            let value = unescape_attr(raw, self.limits.max_string)
                .map_err(|k| DecodeError::new(k, self.attr_path(&local)))?;
            attrs.push((local, trim_xml(&value).to_owned()));
        }
        Ok(Tag { name, attrs })
    }

    /// Reads up to the root start tag and checks its local name.
    pub(crate) fn root(&mut self, expected: &'static str) -> Result<Tag> {
        let tag = self.any_root()?;
        if tag.name != expected {
            return Err(self.err(DecodeErrorKind::WrongRoot {
                expected,
                found: tag.name,
            }));
        }
        Ok(tag)
    }

    /// Reads up to the root start tag, whatever its name.
    pub(crate) fn any_root(&mut self) -> Result<Tag> {
        loop {
            match self.read()? {
                Event::Decl(_) | Event::Comment(_) | Event::PI(_) => {}
                Event::Text(t) => {
                    if !t.iter().all(u8::is_ascii_whitespace) {
                        return Err(
                            self.err(DecodeErrorKind::malformed("text before the root element"))
                        );
                    }
                }
                Event::Start(e) => return self.open(&e, false),
                Event::Empty(e) => return self.open(&e, true),
                Event::CData(_) | Event::GeneralRef(_) => {
                    return Err(self.err(DecodeErrorKind::malformed(
                        "character data before the root element",
                    )))
                }
                Event::End(_) => {
                    return Err(self.err(DecodeErrorKind::malformed(
                        "end tag before the root element",
                    )))
                }
                Event::DocType(_) => return Err(self.err(DecodeErrorKind::DoctypeForbidden)),
                Event::Eof => return Err(DecodeErrorKind::Empty.into()),
            }
        }
    }

    /// The next child element of the current element, or `None` once the
    /// current element has ended (it is then closed). Text between children
    /// is ignored (but references in it are still checked).
    pub(crate) fn next_child(&mut self) -> Result<Option<Tag>> {
        if self.pending_empty {
            self.pending_empty = false;
            self.stack.pop();
            return Ok(None);
        }
        loop {
            match self.read()? {
                Event::Start(e) => return self.open(&e, false).map(Some),
                Event::Empty(e) => return self.open(&e, true).map(Some),
                Event::End(_) => {
                    self.stack.pop();
                    return Ok(None);
                }
                Event::GeneralRef(r) => {
                    self.check_ref(&r)?;
                }
                Event::Text(_)
                | Event::CData(_)
                | Event::Comment(_)
                | Event::PI(_)
                | Event::Decl(_) => {}
                Event::DocType(_) => return Err(self.err(DecodeErrorKind::DoctypeForbidden)),
                Event::Eof => return Err(self.eof_error()),
            }
        }
    }

    /// Skips the current element and its whole subtree (still enforcing the
    /// depth cap and reference rules).
    pub(crate) fn skip(&mut self) -> Result<()> {
        let base = self.stack.len();
        if self.pending_empty {
            self.pending_empty = false;
            self.stack.pop();
            return Ok(());
        }
        loop {
            match self.read()? {
                Event::Start(e) => {
                    self.open(&e, false)?;
                    self.pending_empty = false;
                }
                Event::Empty(e) => {
                    self.open(&e, true)?;
                    self.pending_empty = false;
                    self.stack.pop();
                }
                Event::End(_) => {
                    self.stack.pop();
                    if self.stack.len() < base {
                        return Ok(());
                    }
                }
                Event::GeneralRef(r) => {
                    self.check_ref(&r)?;
                }
                Event::Text(_)
                | Event::CData(_)
                | Event::Comment(_)
                | Event::PI(_)
                | Event::Decl(_) => {}
                Event::DocType(_) => return Err(self.err(DecodeErrorKind::DoctypeForbidden)),
                Event::Eof => return Err(self.eof_error()),
            }
        }
    }

    /// Reads the text content of the current element (child elements are
    /// skipped) without closing it.
    fn raw_text(&mut self) -> Result<String> {
        let mut buf = String::new();
        if self.pending_empty {
            return Ok(buf);
        }
        loop {
            match self.read()? {
                Event::Text(t) => {
                    let s = t
                        .xml10_content()
                        .map_err(|e| self.err(DecodeErrorKind::malformed(e.to_string())))?;
                    check_chars(&s).map_err(|k| self.err(k))?;
                    buf.push_str(&s);
                }
                Event::CData(c) => {
                    let s = c
                        .xml10_content()
                        .map_err(|e| self.err(DecodeErrorKind::malformed(e.to_string())))?;
                    check_chars(&s).map_err(|k| self.err(k))?;
                    buf.push_str(&s);
                }
                Event::GeneralRef(r) => {
                    let c = self.check_ref(&r)?;
                    buf.push(c);
                }
                Event::Start(e) => {
                    self.open(&e, false)?;
                    self.skip()?;
                }
                Event::Empty(e) => {
                    self.open(&e, true)?;
                    self.skip()?;
                }
                Event::End(_) => return Ok(buf),
                Event::Comment(_) | Event::PI(_) | Event::Decl(_) => {}
                Event::DocType(_) => return Err(self.err(DecodeErrorKind::DoctypeForbidden)),
                Event::Eof => return Err(self.eof_error()),
            }
            if buf.len() > self.limits.max_string {
                return Err(self.err(DecodeErrorKind::TooLong {
                    limit: self.limits.max_string,
                }));
            }
        }
    }

    fn close(&mut self) {
        self.pending_empty = false;
        self.stack.pop();
    }

    /// The trimmed text of the current element, which is then closed.
    pub(crate) fn text(&mut self) -> Result<String> {
        let buf = self.raw_text()?;
        self.close();
        Ok(trim_xml(&buf).to_owned())
    }

    /// The current element's trimmed text parsed by `parse`; a parse failure
    /// is reported at this element's path.
    pub(crate) fn parse_text<T>(
        &mut self,
        parse: impl FnOnce(&str) -> std::result::Result<T, DecodeErrorKind>,
    ) -> Result<T> {
        let buf = self.raw_text()?;
        let v = parse(trim_xml(&buf)).map_err(|k| self.err(k))?;
        self.close();
        Ok(v)
    }

    /// A required attribute of the current element.
    pub(crate) fn req_attr<'t>(&self, tag: &'t Tag, name: &str) -> Result<&'t str> {
        tag.attr(name)
            .ok_or_else(|| DecodeError::new(DecodeErrorKind::Missing, self.attr_path(name)))
    }

    /// A required attribute parsed by `parse`.
    pub(crate) fn req_parse_attr<T>(
        &self,
        tag: &Tag,
        name: &str,
        parse: impl FnOnce(&str) -> std::result::Result<T, DecodeErrorKind>,
    ) -> Result<T> {
        let v = self.req_attr(tag, name)?;
        parse(v).map_err(|k| DecodeError::new(k, self.attr_path(name)))
    }

    /// An optional attribute parsed by `parse`.
    pub(crate) fn parse_attr<T>(
        &self,
        tag: &Tag,
        name: &str,
        parse: impl FnOnce(&str) -> std::result::Result<T, DecodeErrorKind>,
    ) -> Result<Option<T>> {
        tag.attr(name)
            .map(|v| parse(v).map_err(|k| DecodeError::new(k, self.attr_path(name))))
            .transpose()
    }

    /// A "required child element is missing" error; `here` is the path of
    /// the parent, captured before the parent was closed.
    pub(crate) fn missing(here: &str, child: &str) -> DecodeError {
        DecodeError::new(DecodeErrorKind::Missing, format!("{here}/{child}"))
    }

    /// After the root has closed: only whitespace, comments and processing
    /// instructions may follow.
    pub(crate) fn finish(&mut self) -> Result<()> {
        loop {
            match self.read()? {
                Event::Eof => return Ok(()),
                Event::Comment(_) | Event::PI(_) => {}
                Event::Text(t) if t.iter().all(u8::is_ascii_whitespace) => {}
                Event::Start(e) | Event::Empty(e) => {
                    let name = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
                    return Err(DecodeError::new(
                        DecodeErrorKind::malformed("a second root element"),
                        name,
                    ));
                }
                _ => {
                    return Err(
                        self.err(DecodeErrorKind::malformed("content after the root element"))
                    )
                }
            }
        }
    }
}

/// Escapes text content. CR is written as a character reference so that it
/// survives end-of-line normalisation; characters XML cannot carry become
/// U+FFFD.
fn escape_into(out: &mut String, s: &str, attr: bool) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\r' => out.push_str("&#13;"),
            '"' if attr => out.push_str("&quot;"),
            '\t' if attr => out.push_str("&#9;"),
            '\n' if attr => out.push_str("&#10;"),
            c if is_xml_char(c) => out.push(c),
            _ => out.push('\u{FFFD}'),
        }
    }
}

/// The strict writer: XML declaration, our namespace on the root, two-space
/// indentation, text elements on one line.
#[derive(Debug)]
pub(crate) struct XmlOut {
    buf: String,
    depth: usize,
}

/// An attribute list entry; `None` values are omitted.
pub(crate) type Attr<'x> = (&'static str, Option<&'x str>);

impl XmlOut {
    /// Starts a document with the declaration and the root start tag.
    pub(crate) fn new(root: &str, attrs: &[Attr<'_>]) -> Self {
        let mut out = XmlOut {
            buf: String::from("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n"),
            depth: 0,
        };
        out.buf.push('<');
        out.buf.push_str(root);
        out.buf.push_str(" xmlns=\"");
        out.buf.push_str(NAMESPACE);
        out.buf.push('"');
        out.attrs(attrs);
        out.buf.push_str(">\n");
        out.depth = 1;
        out
    }

    fn indent(&mut self) {
        for _ in 0..self.depth {
            self.buf.push_str("  ");
        }
    }

    fn attrs(&mut self, attrs: &[Attr<'_>]) {
        for (k, v) in attrs {
            if let Some(v) = v {
                self.buf.push(' ');
                self.buf.push_str(k);
                self.buf.push_str("=\"");
                escape_into(&mut self.buf, v, true);
                self.buf.push('"');
            }
        }
    }

    /// Indentation, `<name` and the attributes: the common start of every tag.
    fn start_tag(&mut self, name: &str, attrs: &[Attr<'_>]) {
        self.indent();
        self.buf.push('<');
        self.buf.push_str(name);
        self.attrs(attrs);
    }

    /// `<name attrs>` on its own line; children follow.
    pub(crate) fn open(&mut self, name: &str, attrs: &[Attr<'_>]) {
        self.start_tag(name, attrs);
        self.buf.push_str(">\n");
        self.depth += 1;
    }

    /// `</name>`.
    pub(crate) fn close(&mut self, name: &str) {
        self.depth = self.depth.saturating_sub(1);
        self.indent();
        self.buf.push_str("</");
        self.buf.push_str(name);
        self.buf.push_str(">\n");
    }

    /// `<name attrs/>`.
    pub(crate) fn empty(&mut self, name: &str, attrs: &[Attr<'_>]) {
        self.start_tag(name, attrs);
        self.buf.push_str("/>\n");
    }

    /// `<name attrs>text</name>`.
    pub(crate) fn leaf_with(&mut self, name: &str, attrs: &[Attr<'_>], text: &str) {
        self.start_tag(name, attrs);
        self.buf.push('>');
        escape_into(&mut self.buf, text, false);
        self.buf.push_str("</");
        self.buf.push_str(name);
        self.buf.push_str(">\n");
    }

    /// `<name>text</name>`.
    pub(crate) fn leaf(&mut self, name: &str, text: &str) {
        self.leaf_with(name, &[], text);
    }

    /// `<name>text</name>` when `Some` (also for `Some("")`).
    pub(crate) fn opt(&mut self, name: &str, text: Option<&str>) {
        if let Some(t) = text {
            self.leaf(name, t);
        }
    }

    /// `<name>value</name>` when `Some`, formatted with `Display`.
    pub(crate) fn opt_display<T: std::fmt::Display>(&mut self, name: &str, v: Option<T>) {
        if let Some(v) = v {
            self.leaf(name, &v.to_string());
        }
    }

    /// Closes the root and returns the document.
    pub(crate) fn finish(mut self, root: &str) -> String {
        self.close(root);
        self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references() {
        assert_eq!(resolve_reference("amp"), Ok('&'));
        assert_eq!(resolve_reference("#x41"), Ok('A'));
        assert_eq!(resolve_reference("#65"), Ok('A'));
        assert!(matches!(
            resolve_reference("#0"),
            Err(DecodeErrorKind::Malformed { .. })
        ));
        assert!(matches!(
            resolve_reference("#xD800"),
            Err(DecodeErrorKind::Malformed { .. })
        ));
        assert!(matches!(
            resolve_reference("lol"),
            Err(DecodeErrorKind::EntityForbidden { .. })
        ));
    }

    #[test]
    fn attr_unescape() {
        assert_eq!(
            unescape_attr("a&lt;b&#10;c\td", 100),
            Ok("a<b\nc d".to_owned())
        );
        assert!(unescape_attr("a&x", 100).is_err());
    }
}
