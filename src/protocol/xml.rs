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
//!
//! Names and attribute values are borrowed from the input wherever they can
//! be (a value needs a copy only when it holds a reference or a character
//! that must be normalised): decoding a large document allocates little more
//! than the strings of the decoded value.

use std::borrow::Cow;

use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;

use super::error::{DecodeError, DecodeErrorKind, Limits};
use super::literals::trim_xml;
use super::NAMESPACE;

type Result<T> = std::result::Result<T, DecodeError>;

/// A child element as [`XmlIn::next_child_or_value`] returns it.
#[derive(Debug)]
pub(crate) enum Child<'a> {
    /// A plain empty element of the kind asked for: its attribute's value.
    Value(&'a str),
    /// Any other element.
    Tag(Tag<'a>),
}

/// Attributes a tag keeps without a heap allocation when they borrow from
/// the input; most of the protocol's elements have one or none.
const INLINE_ATTRS: usize = 3;

/// A start tag: local name and attributes (local names, unescaped, trimmed;
/// namespace declarations dropped), borrowed from the input where possible.
#[derive(Debug)]
pub(crate) struct Tag<'a> {
    pub(crate) name: Cow<'a, str>,
    /// The first attributes, while they borrow from the input.
    inline: [(&'a str, &'a str); INLINE_ATTRS],
    inline_len: usize,
    /// The others, in document order after `inline`.
    more: Vec<(Cow<'a, str>, Cow<'a, str>)>,
}

impl<'a> Tag<'a> {
    fn new(name: Cow<'a, str>) -> Self {
        Tag {
            name,
            inline: [("", ""); INLINE_ATTRS],
            inline_len: 0,
            more: Vec::new(),
        }
    }

    fn push_attr(&mut self, key: Cow<'a, str>, value: Cow<'a, str>) {
        match (key, value) {
            (Cow::Borrowed(k), Cow::Borrowed(v))
                if self.more.is_empty() && self.inline_len < INLINE_ATTRS =>
            {
                self.inline[self.inline_len] = (k, v);
                self.inline_len += 1;
            }
            (k, v) => self.more.push((k, v)),
        }
    }

    /// The local name.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// The value of the attribute with this local name.
    pub(crate) fn attr(&self, name: &str) -> Option<&str> {
        self.inline[..self.inline_len]
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| *v)
            .or_else(|| self.more.iter().find(|(k, _)| k == name).map(|(_, v)| &**v))
    }
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGH: u64 = 0x8080_8080_8080_8080;

// The word tests below are a few instructions each and run on every byte
// of every plain value: always inlined, as the size-optimised level would
// otherwise call them (benchmark P7).

/// For each byte of `x`, the high bit set if the byte is below `n` (for
/// n <= 0x80), or equal to `c` in [`equal`]. Borrows only run upwards from
/// a byte that is a hit, so the lowest set bit is always exact.
#[inline(always)]
fn below(x: u64, n: u8) -> u64 {
    x.wrapping_sub(ONES * u64::from(n)) & !x & HIGH
}

#[inline(always)]
fn equal(x: u64, c: u8) -> u64 {
    below(x ^ (ONES * u64::from(c)), 1)
}

/// Bytes that may not appear in a value used as it is: outside printable
/// ASCII (0x20..=0x7E), `&` and `<`.
#[inline(always)]
fn not_plain(x: u64) -> u64 {
    (x & HIGH) | below(x, 0x20) | equal(x, 0x7F) | equal(x, b'&') | equal(x, b'<')
}

fn is_plain_byte(b: u8) -> bool {
    (0x20..0x7F).contains(&b) && b != b'&' && b != b'<'
}

/// The position of the first `quote` in `s` if every byte before it is
/// plain (printable ASCII, not `&` or `<`): such a value needs no
/// unescaping, normalisation or character check. Eight bytes at a time.
fn plain_until(s: &[u8], quote: u8) -> Option<usize> {
    let mut at = 0;
    let mut rest = s;
    while let Some((word, after)) = rest.split_first_chunk::<8>() {
        let x = u64::from_le_bytes(*word);
        let q = equal(x, quote).trailing_zeros() / 8;
        let bad = not_plain(x).trailing_zeros() / 8;
        if bad < q {
            return None;
        }
        if q < 8 {
            return Some(at + q as usize);
        }
        at += 8;
        rest = after;
    }
    for (i, &b) in rest.iter().enumerate() {
        if b == quote {
            return Some(at + i);
        }
        if !is_plain_byte(b) {
            return None;
        }
    }
    None
}

/// Whether a whole raw attribute value is plain (see [`plain_until`]).
fn plain_attr(raw: &str) -> bool {
    let mut rest = raw.as_bytes();
    while let Some((word, after)) = rest.split_first_chunk::<8>() {
        if not_plain(u64::from_le_bytes(*word)) != 0 {
            return false;
        }
        rest = after;
    }
    rest.iter().all(|&b| is_plain_byte(b))
}

/// `s` without `prefix`, when it starts with it: a byte loop, as the
/// prefixes are a tag's first dozen bytes and a `memcmp` call costs more
/// than comparing them.
#[inline(always)]
fn strip_short_prefix<'s>(s: &'s [u8], prefix: &[u8]) -> Option<&'s [u8]> {
    let (head, rest) = s.split_at_checked(prefix.len())?;
    head.iter().zip(prefix).all(|(a, b)| a == b).then_some(rest)
}

/// `s` without leading and trailing spaces (`str::trim_matches(' ')`, which
/// at the size-optimised level is a call per character). Inline up to the
/// check of the two ends: values almost never have spaces there, and the
/// call was a tenth of decoding a long package list.
#[inline(always)]
fn trim_spaces(s: &str) -> &str {
    match (s.as_bytes().first(), s.as_bytes().last()) {
        (Some(b' '), _) | (_, Some(b' ')) => trim_padded(s),
        _ => s,
    }
}

fn trim_padded(s: &str) -> &str {
    let b = s.as_bytes();
    let (mut start, mut end) = (0, b.len());
    while start < end && b[start] == b' ' {
        start += 1;
    }
    while end > start && b[end - 1] == b' ' {
        end -= 1;
    }
    // Both bounds are next to an ASCII space or at an end of `s`.
    s.get(start..end).unwrap_or(s)
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// The attributes of a start tag in the form every encoder writes —
/// whitespace, `key="value"` or `key='value'`, values that
/// [`plain_until`] accepts, no key twice, at most [`INLINE_ATTRS`] — added
/// to `tag` as borrowed slices, namespace declarations dropped. `false`
/// (with `tag` untouched) for anything else: the caller then runs
/// quick-xml's full attribute parser, which also reports the errors. What
/// this accepts quick-xml accepts too, with the same keys and values.
fn plain_attrs<'a>(raw: &'a str, max: usize, tag: &mut Tag<'a>) -> bool {
    let b = raw.as_bytes();
    // Byte ranges of keys and values; every bound is at an ASCII byte, so
    // slicing `raw` there cannot fail.
    let mut found = [(0, 0, 0, 0); INLINE_ATTRS];
    let mut n = 0;
    let mut i = 0;
    loop {
        let space = i;
        while b.get(i).is_some_and(|&c| is_space(c)) {
            i += 1;
        }
        if i == b.len() {
            break;
        }
        if i == space || n == INLINE_ATTRS {
            return false;
        }
        let key = i;
        while b.get(i).is_some_and(|&c| {
            !is_space(c) && !matches!(c, b'=' | b'"' | b'\'' | b'<' | b'>' | b'&')
        }) {
            i += 1;
        }
        let key_end = i;
        let (Some(b'='), Some(&quote)) = (b.get(i), b.get(i + 1)) else {
            return false;
        };
        if key == key_end || !matches!(quote, b'"' | b'\'') {
            return false;
        }
        let value = i + 2;
        let Some(len) = b.get(value..).and_then(|v| plain_until(v, quote)) else {
            return false;
        };
        if len > max {
            return false;
        }
        let k = &b[key..key_end];
        if found[..n].iter().any(|&(s, e, _, _)| &b[s..e] == k) {
            return false;
        }
        found[n] = (key, key_end, value, value + len);
        n += 1;
        i = value + len + 1;
    }
    let mut kept = 0;
    for &(ks, ke, vs, ve) in &found[..n] {
        let (Some(key), Some(value)) = (raw.get(ks..ke), raw.get(vs..ve)) else {
            return false;
        };
        if key == "xmlns" || key.starts_with("xmlns:") {
            continue;
        }
        let local = key.split_once(':').map_or(key, |(_, l)| l);
        tag.inline[kept] = (local, trim_spaces(value));
        kept += 1;
    }
    tag.inline_len = kept;
    true
}

/// The value of `attr` among the attributes `raw` of a tag, when they are
/// all plain (see [`plain_attrs`]).
fn plain_attr_value<'a>(raw: &'a str, max: usize, attr: &str) -> Option<&'a str> {
    let mut tag = Tag::new(Cow::Borrowed(""));
    if !plain_attrs(raw, max, &mut tag) {
        return None;
    }
    tag.inline[..tag.inline_len]
        .iter()
        .find(|(k, _)| *k == attr)
        .map(|(_, v)| *v)
}

/// The length of the attributes of an empty element's tag, `b` starting
/// right after its name: up to the `/` of the first `/>` outside quotes.
/// `None` if a `>` outside quotes comes without `/` (a start tag) or a `<`
/// comes first (not a tag quick-xml would accept either).
fn empty_tag_attrs(b: &[u8]) -> Option<usize> {
    let mut i = 0;
    loop {
        match *b.get(i)? {
            quote @ (b'"' | b'\'') => {
                i += 1 + b.get(i + 1..)?.iter().position(|&c| c == quote)?;
            }
            b'>' => return (i > 0 && b[i - 1] == b'/').then(|| i - 1),
            b'<' => return None,
            _ => {}
        }
        i += 1;
    }
}

/// `value` trimmed of XML whitespace, still borrowed if it was.
fn trimmed(value: Cow<'_, str>) -> Cow<'_, str> {
    match value {
        Cow::Borrowed(v) => Cow::Borrowed(trim_xml(v)),
        Cow::Owned(v) => {
            let t = trim_xml(&v);
            if t.len() == v.len() {
                Cow::Owned(v)
            } else {
                Cow::Owned(t.to_owned())
            }
        }
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
    /// The document (after the byte order mark), which names and values
    /// borrow from.
    input: &'a str,
    reader: Reader<&'a [u8]>,
    limits: Limits,
    /// Local names of the open elements, root first.
    stack: Vec<Cow<'a, str>>,
    /// The element on top of `stack` was self-closing: its content is empty.
    pending_empty: bool,
    /// Bytes [`Self::plain_run`] read past the reader, which does not count
    /// them in its positions.
    skipped: u64,
    /// The input as a shared buffer, when the caller has one: decoded
    /// values may then refer to it instead of copying (see
    /// [`PackageList`](super::PackageList)).
    shared: Option<bytes::Bytes>,
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
            input: text,
            reader,
            limits: *limits,
            stack: Vec::new(),
            pending_empty: false,
            skipped: 0,
            shared: None,
        })
    }

    /// [`Self::new`] on a shared buffer, which [`Self::shared`] then hands
    /// out.
    pub(crate) fn new_shared(bytes: &'a bytes::Bytes, limits: &Limits) -> Result<Self> {
        let mut p = XmlIn::new(bytes, limits)?;
        p.shared = Some(bytes.clone());
        Ok(p)
    }

    /// The input as a shared buffer, if it is one.
    pub(crate) fn shared(&self) -> Option<bytes::Bytes> {
        self.shared.clone()
    }

    /// The path of the current element.
    pub(crate) fn path(&self) -> String {
        self.stack.join("/")
    }

    /// `part` as a slice of the input, when it is one: quick-xml hands out
    /// names and values that borrow from an in-memory input, and this gives
    /// them the input's lifetime without copying. The address comparison
    /// only tells where `part` lies; the bytes returned are the input's own.
    fn in_input(&self, part: &[u8]) -> Option<&'a str> {
        let start = (part.as_ptr() as usize).checked_sub(self.input.as_ptr() as usize)?;
        self.input.get(start..start.checked_add(part.len())?)
    }

    /// A name from the document, borrowed when possible.
    fn name_of(&self, raw: &[u8]) -> Cow<'a, str> {
        match self.in_input(raw) {
            Some(s) => Cow::Borrowed(s),
            None => Cow::Owned(String::from_utf8_lossy(raw).into_owned()),
        }
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
                self.reader.error_position() + self.skipped
            )))),
        }
    }

    fn eof_error(&self) -> DecodeError {
        self.err(DecodeErrorKind::malformed(format!(
            "the document ends inside `{}`",
            self.stack.last().map_or("", |s| &**s)
        )))
    }

    fn check_ref(&self, name: &[u8]) -> Result<char> {
        let name = std::str::from_utf8(name)
            .map_err(|_| self.err(DecodeErrorKind::malformed("reference is not UTF-8")))?;
        resolve_reference(name).map_err(|k| self.err(k))
    }

    /// Pushes a start tag (depth-checked) and reads its attributes.
    fn open(&mut self, e: &BytesStart<'_>, empty: bool) -> Result<Tag<'a>> {
        let name = self.name_of(e.local_name().as_ref());
        self.stack.push(name.clone());
        self.pending_empty = empty;
        if self.stack.len() > self.limits.max_depth {
            return Err(self.err(DecodeErrorKind::TooDeep {
                limit: self.limits.max_depth,
            }));
        }
        let mut tag = Tag::new(name);
        if let Some(raw) = self.in_input(e.attributes_raw()) {
            if plain_attrs(raw, self.limits.max_string, &mut tag) {
                return Ok(tag);
            }
        }
        // quick-xml's own duplicate check allocates for every tag; this one
        // does only past a few attributes.
        let mut keys = [&[][..]; 8];
        let mut more_keys: Vec<&[u8]> = Vec::new();
        let mut attrs = e.attributes();
        attrs.with_checks(false);
        for (i, a) in attrs.enumerate() {
            let a = a.map_err(|e| self.err(DecodeErrorKind::malformed(e.to_string())))?;
            let key: &[u8] = a.key.0;
            let seen = keys.get(..i).unwrap_or(&keys);
            if seen.contains(&key) || more_keys.contains(&key) {
                return Err(self.err(DecodeErrorKind::malformed(format!(
                    "duplicate attribute `{}`",
                    String::from_utf8_lossy(key)
                ))));
            }
            match keys.get_mut(i) {
                Some(slot) => *slot = key,
                None => more_keys.push(key),
            }
            if key == b"xmlns" || key.starts_with(b"xmlns:") {
                continue;
            }
            let local = self.name_of(a.key.local_name().as_ref());
            let value = match self.in_input(&a.value) {
                Some(raw) if raw.len() <= self.limits.max_string && plain_attr(raw) => {
                    Cow::Borrowed(raw)
                }
                _ => {
                    let raw = std::str::from_utf8(&a.value).map_err(|_| {
                        self.err(DecodeErrorKind::malformed("attribute is not UTF-8"))
                    })?;
                    Cow::Owned(
                        unescape_attr(raw, self.limits.max_string)
                            .map_err(|k| DecodeError::new(k, self.attr_path(&local)))?,
                    )
                }
            };
            tag.push_attr(local, trimmed(value));
        }
        Ok(tag)
    }

    /// Reads up to the root start tag and checks its local name.
    pub(crate) fn root(&mut self, expected: &'static str) -> Result<Tag<'a>> {
        let tag = self.any_root()?;
        if tag.name != expected {
            return Err(self.err(DecodeErrorKind::WrongRoot {
                expected,
                found: tag.name.into_owned(),
            }));
        }
        Ok(tag)
    }

    /// Reads up to the root start tag, whatever its name.
    pub(crate) fn any_root(&mut self) -> Result<Tag<'a>> {
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
    pub(crate) fn next_child(&mut self) -> Result<Option<Tag<'a>>> {
        match self.next_child_or_value(None)? {
            Some(Child::Tag(tag)) => Ok(Some(tag)),
            Some(Child::Value(_)) => Err(self.err(DecodeErrorKind::malformed("internal"))),
            None => Ok(None),
        }
    }

    /// [`Self::next_child`] for a list of like elements: a child that is an
    /// empty element named `name` whose attributes are plain (the form
    /// every encoder writes, see `plain_attrs`) and include `attr` comes
    /// back as that attribute's value alone, already closed — no tag is
    /// built. Every other child (and any such element that is not plain, or
    /// would be too deep) comes back as a tag, exactly as `next_child` gives
    /// it, so what is accepted and refused, and every error, is unchanged.
    pub(crate) fn next_child_or_value(
        &mut self,
        plain: Option<(&str, &str)>,
    ) -> Result<Option<Child<'a>>> {
        if self.pending_empty {
            self.pending_empty = false;
            self.stack.pop();
            return Ok(None);
        }
        loop {
            match self.read()? {
                Event::Start(e) => return self.open(&e, false).map(|t| Some(Child::Tag(t))),
                Event::Empty(e) => {
                    if let Some((name, attr)) = plain {
                        if let Some(value) = self.plain_value(&e, name, attr) {
                            return Ok(Some(Child::Value(value)));
                        }
                    }
                    return self.open(&e, true).map(|t| Some(Child::Tag(t)));
                }
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

    /// Bytes of the input not read yet: an upper bound on what any value
    /// still to come can hold.
    pub(crate) fn unread_len(&self) -> usize {
        self.reader.get_ref().len()
    }

    /// The dedicated path for long lists (a catalog's `ApplicablePackages`):
    /// reads the children of the current element straight from the input
    /// for as long as each is whitespace and then an empty element `<name …/>`
    /// whose attributes are plain (see `plain_attrs`) and include `attr`,
    /// giving that value to `each`, and stops in front of anything else
    /// (text, a comment, another element, an end tag, a tag in any other
    /// form), which [`Self::next_child_or_value`] then reads as before.
    /// What it reads is what `next_child_or_value` would have returned as
    /// [`Child::Value`]s, with no event built: the size cap held for the
    /// whole input, the depth cap is checked here, and no reference or
    /// character outside printable ASCII gets through `plain_attrs`.
    pub(crate) fn plain_run(&mut self, name: &str, attr: &str, mut each: impl FnMut(&'a str)) {
        if self.pending_empty || self.stack.len() >= self.limits.max_depth {
            return;
        }
        let rest: &'a [u8] = self.reader.get_ref();
        // The form every encoder writes, `<name attr="`, value, `"/>`, is
        // matched as bytes; any other form of the tag goes through
        // `plain_attrs`.
        let exact = [b"<", name.as_bytes(), b" ", attr.as_bytes(), b"=\""].concat();
        let name = name.as_bytes();
        let mut done = 0;
        loop {
            let mut i = done;
            while rest.get(i).is_some_and(|&c| is_space(c)) {
                i += 1;
            }
            let Some(tail) = rest.get(i..) else {
                break;
            };
            if let Some(value) = strip_short_prefix(tail, &exact) {
                // One pass finds the closing quote and checks the value is
                // plain (a short value costs memchr more than it saves).
                if let Some(len) = plain_until(value, b'"') {
                    if matches!(value.get(len + 1..), Some([b'/', b'>', ..]))
                        && len <= self.limits.max_string
                    {
                        if let Some(v) = self.in_input(&value[..len]) {
                            each(trim_spaces(v));
                            done = i + exact.len() + len + 3;
                            continue;
                        }
                    }
                }
            }
            let Some(attrs) = tail.strip_prefix(b"<").and_then(|a| a.strip_prefix(name)) else {
                break;
            };
            if !attrs.first().is_some_and(|&c| is_space(c)) {
                break;
            }
            let Some(len) = empty_tag_attrs(attrs) else {
                break;
            };
            let Some(value) = self
                .in_input(&attrs[..len])
                .and_then(|raw| plain_attr_value(raw, self.limits.max_string, attr))
            else {
                break;
            };
            each(value);
            // `<`, the name, the attributes, `/>`.
            done = i + 1 + name.len() + len + 2;
        }
        if done > 0 {
            *self.reader.get_mut() = &rest[done..];
            self.skipped += done as u64;
        }
    }

    /// The value of `attr` of the empty element `e` when it is named `name`,
    /// would not be too deep and its attributes are plain.
    fn plain_value(&self, e: &BytesStart<'_>, name: &str, attr: &str) -> Option<&'a str> {
        if self.stack.len() >= self.limits.max_depth || e.local_name().as_ref() != name.as_bytes() {
            return None;
        }
        plain_attr_value(
            self.in_input(e.attributes_raw())?,
            self.limits.max_string,
            attr,
        )
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
    pub(crate) fn req_attr<'t>(&self, tag: &'t Tag<'_>, name: &str) -> Result<&'t str> {
        tag.attr(name)
            .ok_or_else(|| DecodeError::new(DecodeErrorKind::Missing, self.attr_path(name)))
    }

    /// A required attribute parsed by `parse`.
    pub(crate) fn req_parse_attr<T>(
        &self,
        tag: &Tag<'_>,
        name: &str,
        parse: impl FnOnce(&str) -> std::result::Result<T, DecodeErrorKind>,
    ) -> Result<T> {
        let v = self.req_attr(tag, name)?;
        parse(v).map_err(|k| DecodeError::new(k, self.attr_path(name)))
    }

    /// An optional attribute parsed by `parse`.
    pub(crate) fn parse_attr<T>(
        &self,
        tag: &Tag<'_>,
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

    /// The IDs of `<Package>` children of the root's first child as
    /// `read_poll_response` reads them, and how many bytes `plain_run` took.
    fn run_ids(doc: &str) -> Result<(Vec<String>, u64)> {
        let mut p = XmlIn::new(doc.as_bytes(), &Limits::default())?;
        p.any_root()?;
        p.next_child()?.expect("a list element");
        let mut ids = Vec::new();
        loop {
            p.plain_run("Package", "ID", |id| ids.push(id.to_owned()));
            match p.next_child_or_value(Some(("Package", "ID")))? {
                None => break,
                Some(Child::Value(id)) => ids.push(id.to_owned()),
                Some(Child::Tag(t)) => {
                    if let Some(id) = t.attr("ID") {
                        ids.push(id.to_owned());
                    }
                    p.skip()?;
                }
            }
        }
        assert!(p.next_child()?.is_none(), "the root ends after the list");
        p.finish()?;
        Ok((ids, p.skipped))
    }

    #[test]
    fn plain_run_reads_what_the_general_path_reads() {
        let doc = "<R><L>\n  <Package ID=\"A\"/>\n\t<Package  ID='B' x=\"/>\" />\
                   <!-- c --><Package ID=\"C&amp;D\"/><Package ID=\"E\"/>\
                   <Package ID=\"F\"></Package><Other/>\
                   <Package ID=\"H\"/><Package ID=\" S \"/><Package ID=\"T \"/>\
                   <PackageX ID=\"I\"/></L></R>";
        let (ids, skipped) = run_ids(doc).expect("decodes");
        assert_eq!(ids, ["A", "B", "C&D", "E", "F", "H", "S", "T", "I"]);
        // A, B, E and H came by the dedicated path.
        assert!(skipped > 40, "{skipped}");
        // Positions in errors count the bytes read past quick-xml: the
        // wrong end tag is at byte 40.
        let err = run_ids("<R><L><Package ID=\"A\"/><Package ID=\"B\"/></X></R>")
            .expect_err("wrong end tag");
        assert!(err.to_string().contains("near byte 40"), "{err}");
    }

    /// A reader of `doc` under `limits`, inside the root's first child.
    fn in_list<'d>(doc: &'d str, limits: &Limits) -> XmlIn<'d> {
        let mut p = XmlIn::new(doc.as_bytes(), limits).expect("small");
        p.any_root().expect("root");
        p.next_child().expect("list").expect("list");
        p
    }

    #[test]
    fn plain_run_keeps_the_caps() {
        let deep = Limits {
            max_depth: 2,
            ..Limits::default()
        };
        let mut p = in_list("<R><L><Package ID=\"A\"/></L></R>", &deep);
        let mut n = 0;
        p.plain_run("Package", "ID", |_| n += 1);
        assert_eq!(n, 0, "depth 3 is past the cap: left to the general path");
        assert!(p.next_child_or_value(Some(("Package", "ID"))).is_err());
        let long = Limits {
            max_string: 3,
            ..Limits::default()
        };
        let mut p = in_list("<R><L><Package ID=\"ABCD\"/></L></R>", &long);
        p.plain_run("Package", "ID", |_| n += 1);
        assert_eq!((n, p.skipped), (0, 0));
    }

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

    /// The attributes of `<t{attrs}/>` through the full path (quick-xml's
    /// parser) and through the decoder's `open`.
    type Pairs = Option<Vec<(String, String)>>;

    fn both_ways(attrs: &str) -> (Pairs, Pairs) {
        let doc = format!("<t{attrs}/>");
        let limits = Limits::default();
        let Ok(mut p) = XmlIn::new(doc.as_bytes(), &limits) else {
            return (None, None);
        };
        let pairs = |t: &Tag<'_>| {
            t.inline[..t.inline_len]
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .chain(t.more.iter().map(|(k, v)| (k.to_string(), v.to_string())))
                .collect::<Vec<_>>()
        };
        let decoded = p.any_root().ok().map(|t| pairs(&t));
        let mut fast = Tag::new(Cow::Borrowed("t"));
        let fast =
            plain_attrs(&doc[2..doc.len() - 2], limits.max_string, &mut fast).then(|| pairs(&fast));
        (decoded, fast)
    }

    #[test]
    fn plain_attributes_read_as_the_full_parser_reads_them() {
        let pieces = [
            " ",
            "  ",
            "\t",
            "\n",
            "ID",
            "a:ID",
            "xmlns",
            "xmlns:a",
            "v",
            "=",
            "\"",
            "'",
            "\"x\"",
            "'y'",
            "\" padded \"",
            "&amp;",
            "<",
            ">",
            "é",
            "\u{1}",
            "ID=\"1\"",
        ];
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut checked = 0;
        for _ in 0..20_000 {
            let mut attrs = String::new();
            for _ in 0..(x % 9) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                attrs.push_str(pieces[(x % pieces.len() as u64) as usize]);
            }
            let (decoded, fast) = both_ways(&attrs);
            if let Some(fast) = fast {
                assert_eq!(decoded.as_ref(), Some(&fast), "attributes {attrs:?}");
                checked += 1;
            }
        }
        assert!(checked > 1000, "{checked}");
        assert_eq!(
            both_ways(" ID=\"A B\" v='1' xmlns=\"u\""),
            (
                Some(vec![("ID".into(), "A B".into()), ("v".into(), "1".into())]),
                Some(vec![("ID".into(), "A B".into()), ("v".into(), "1".into())])
            )
        );
        for s in [
            "a=\"1\" a=\"2\"",
            " a=\"1\"b=\"2\"",
            " a = \"1\"",
            " a=\"&lt;\"",
            " a=\"x\ty\"",
        ] {
            assert_eq!(both_ways(s).1, None, "{s:?} takes the full parser");
        }
    }

    #[test]
    fn plain_until_matches_a_byte_by_byte_scan() {
        let alphabet = b"aZ0 ~\"'&<>\t\n\x7f\x00\x80\xff";
        let mut x: u64 = 0x2545_F491_4F6C_DD1D;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let len = (x % 24) as usize;
            let s: Vec<u8> = (0..len)
                .map(|i| {
                    let r = x.rotate_left(i as u32 * 5);
                    // Mostly plain bytes, so that quotes are often reached.
                    if r % 4 == 0 {
                        alphabet[(r / 4 % alphabet.len() as u64) as usize]
                    } else {
                        b'A' + (r % 26) as u8
                    }
                })
                .collect();
            for quote in [b'"', b'\''] {
                let reference = s
                    .iter()
                    .position(|&b| b == quote || !is_plain_byte(b))
                    .filter(|&i| s[i] == quote);
                assert_eq!(plain_until(&s, quote), reference, "{s:?}");
            }
        }
    }

    #[test]
    fn plain_values() {
        assert!(plain_attr(""));
        assert!(plain_attr("9A437CA5-5B17-4486-9E87-260742074A72"));
        assert!(plain_attr("~ !\"#$%'()*+,-./09:;=>?@AZ[]^_`az{|}"));
        for bad in [
            "a&b",
            "a<b",
            "\u{7f}",
            "\t",
            "\u{1f}",
            "é",
            "0123456789abcde&",
            "0123456\n89abcdef",
        ] {
            assert!(!plain_attr(bad), "{bad:?}");
            assert!(!plain_attr(&format!("{bad}0123456789")), "{bad:?}");
            assert!(!plain_attr(&format!("01234567{bad}")), "{bad:?}");
        }
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
