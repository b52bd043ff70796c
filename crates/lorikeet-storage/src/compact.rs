//! Compact event bodies: the event JSON as a few dozen bytes of tagged binary,
//! rendered back to the exact text it was written from.
//!
//! Pure (no I/O). The JSON is read token by token, not parsed into a value, so
//! nothing about it is normalised: strings keep their escapes, object keys their
//! order, numbers their text. Each token is stored in the smallest form that
//! renders back to the same bytes (a UUID as 16 bytes, a timestamp as nanoseconds
//! from the row's own time, base64 as its bytes, a float as the f32/f64 that
//! serde_json prints as that text), or as its text when no form does. Text that is
//! not compact JSON (whitespace, anything unexpected) is kept whole: the body's
//! first byte says which ([`RAW`] or [`V1`]).
//!
//! What repeats from event to event is stored once, in the `event_dict` table,
//! and referenced by id: an object's key list (its *shape*) and the subtrees that
//! describe the device, the radio settings and a gateway's location (*parts*).
//! The encoder reports dictionary entries it does not know yet ([`Encoded::Need`]);
//! the caller stores them and encodes again. The tag values and the part rules are
//! a storage format: never change them, only add.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use chrono::{DateTime, Datelike, NaiveDate, Timelike};

/// Body format: the JSON text as written.
pub(crate) const RAW: u8 = 0;
/// Body format: compact, version 1.
pub(crate) const V1: u8 = 1;

// Tags. 0x00..=0x7f: the small integers 0..=127.
const T_NULL: u8 = 0x80;
const T_FALSE: u8 = 0x81;
const T_TRUE: u8 = 0x82;
const T_INT: u8 = 0x83;
const T_F64: u8 = 0x84;
const T_F32: u8 = 0x85;
const T_NUM_TEXT: u8 = 0x86;
const T_STR: u8 = 0x87;
const T_UUID: u8 = 0x88;
const T_HEX: u8 = 0x89;
const T_B64: u8 = 0x8a;
const T_TIME: u8 = 0x8b;
const T_ARRAY: u8 = 0x8c;
const T_OBJ_SHAPE: u8 = 0x8d;
const T_OBJ_INLINE: u8 = 0x8e;
const T_PART: u8 = 0x8f;
const T_EMPTY_OBJ: u8 = 0x90;
const T_EMPTY_ARRAY: u8 = 0x91;
/// An integer -1..=-256 in one more byte (-1 - value).
const T_NEG: u8 = 0x92;
/// A float that serde_json prints as the `f32` nearest a tenth: the tenths as a
/// zig-zag varint (SNR, one-decimal sensor readings).
const T_TENTHS: u8 = 0x93;
/// Lower-case hex of exactly 8 bytes (EUIs) and 4 bytes (DevAddr), no length.
const T_HEX8: u8 = 0x94;
const T_HEX4: u8 = 0x95;
/// 0xa0..=0xbf: a string of 0..=31 bytes, its length in the tag.
const T_SHORT_STR: u8 = 0xa0;
const SHORT_STR_MAX: usize = 31;
/// 0xc0..: one of [`CONSTANTS`], by position.
const T_CONST: u8 = 0xc0;

/// Strings most events carry, stored as one byte. A storage format: only append.
const CONSTANTS: [&str; 24] = [
    "CRC_OK", "CRC_BAD", "CRC_NO", "CLASS_A", "CLASS_B", "CLASS_C", "eu868", "us915", "as923",
    "au915", "cn470", "in865", "kr920", "ru864", "CR_4_5", "CR_4_6", "CR_4_7", "CR_4_8", "CR_1_3",
    "CR_2_3", "US915_0", "US915_1", "AU915_0", "AS923_2",
];

/// Deeper JSON is kept whole (raw) rather than recursed into.
const MAX_DEPTH: usize = 32;
/// Objects with more keys, or longer keys, are not given a shape.
const MAX_SHAPE_KEYS: usize = 64;
const MAX_KEY_LEN: usize = 64;
/// Larger subtrees are not made parts.
const MAX_PART_LEN: usize = 2_048;

/// What a dictionary entry holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum DictKind {
    /// An object's keys, each as a length and its raw text.
    Shape = 1,
    /// An encoded subtree.
    Part = 2,
}

impl DictKind {
    pub(crate) fn code(self) -> i16 {
        self as i16
    }

    pub(crate) fn from_code(c: i64) -> Option<Self> {
        match c {
            1 => Some(DictKind::Shape),
            2 => Some(DictKind::Part),
            _ => None,
        }
    }
}

/// The answer of [`Dict::lookup`].
pub(crate) enum Lookup {
    /// Stored under this id.
    Found(u64),
    /// Not stored yet: the caller may store it.
    Missing,
    /// Not stored, and the dictionary takes no more: use the inline form.
    Full,
}

/// The encoder's view of the dictionary.
pub(crate) trait Dict {
    fn lookup(&self, kind: DictKind, content: &[u8]) -> Lookup;
}

/// The renderer's view of the dictionary.
pub(crate) trait DictRead {
    /// The entry's content, when known.
    fn get(&self, id: u64) -> Option<std::sync::Arc<[u8]>>;
}

/// An encoded body and the root's `fCnt` and `fPort` (typed columns).
#[derive(Debug, PartialEq)]
pub(crate) struct Body {
    pub(crate) bytes: Vec<u8>,
    pub(crate) f_cnt: Option<i64>,
    pub(crate) f_port: Option<i64>,
}

/// What [`encode`] made.
#[derive(Debug, PartialEq)]
pub(crate) enum Encoded {
    /// The body to store.
    Body(Body),
    /// Entries to store first; then encode again.
    Need(Vec<(DictKind, Vec<u8>)>),
}

/// Encodes event JSON; `base_us` is the row's time (µs since the epoch), which
/// timestamps are stored relative to.
pub(crate) fn encode(json: &str, base_us: i64, dict: &dyn Dict) -> Encoded {
    let mut e = Encoder {
        src: json.as_bytes(),
        pos: 0,
        base_ns: i128::from(base_us) * 1_000,
        dict,
        need: Vec::new(),
        scratch: Vec::new(),
        f_cnt: None,
        f_port: None,
    };
    let mut out = Vec::with_capacity(json.len() / 4);
    out.push(V1);
    if e.value(&mut out, 0, Ctx::Root).is_some() && e.pos == e.src.len() {
        if e.need.is_empty() {
            Encoded::Body(Body {
                bytes: out,
                f_cnt: e.f_cnt,
                f_port: e.f_port,
            })
        } else {
            e.need.sort();
            e.need.dedup();
            Encoded::Need(e.need)
        }
    } else {
        let mut raw = Vec::with_capacity(json.len() + 1);
        raw.push(RAW);
        raw.extend_from_slice(json.as_bytes());
        Encoded::Body(Body {
            bytes: raw,
            f_cnt: None,
            f_port: None,
        })
    }
}

/// Where a value sits, for the part rules.
#[derive(Clone, Copy, PartialEq)]
enum Ctx {
    Root,
    /// An element of the root's `rxInfo`.
    RxItem,
    /// Inside the decoded `object` (application data: no parts, since its subtrees
    /// rarely repeat).
    Object,
    Other,
}

struct Encoder<'a> {
    src: &'a [u8],
    pos: usize,
    base_ns: i128,
    dict: &'a dyn Dict,
    need: Vec<(DictKind, Vec<u8>)>,
    scratch: Vec<u8>,
    f_cnt: Option<i64>,
    f_port: Option<i64>,
}

impl<'a> Encoder<'a> {
    fn peek(&self) -> Option<u8> {
        self.src.get(self.pos).copied()
    }

    fn eat(&mut self, b: u8) -> Option<()> {
        (self.peek()? == b).then(|| self.pos += 1)
    }

    /// One value; `None` when the text is not compact JSON (kept raw then).
    fn value(&mut self, out: &mut Vec<u8>, depth: usize, ctx: Ctx) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        match self.peek()? {
            b'{' => self.object(out, depth, ctx),
            b'[' => {
                let item_ctx = match ctx {
                    Ctx::Object => Ctx::Object,
                    _ => Ctx::Other,
                };
                self.array(out, depth, item_ctx)
            }
            b'"' => {
                let s = self.string()?;
                put_string(out, s, self.base_ns);
                Some(())
            }
            b't' => self.literal(b"true", T_TRUE, out),
            b'f' => self.literal(b"false", T_FALSE, out),
            b'n' => self.literal(b"null", T_NULL, out),
            b'-' | b'0'..=b'9' => {
                let start = self.pos;
                while matches!(
                    self.peek(),
                    Some(b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9')
                ) {
                    self.pos += 1;
                }
                put_number(out, &self.src[start..self.pos], &mut self.scratch)
            }
            _ => None,
        }
    }

    fn literal(&mut self, word: &[u8], tag: u8, out: &mut Vec<u8>) -> Option<()> {
        if self.src[self.pos..].starts_with(word) {
            self.pos += word.len();
            out.push(tag);
            Some(())
        } else {
            None
        }
    }

    /// A string token's raw content (escapes kept), after its closing quote.
    fn string(&mut self) -> Option<&'a [u8]> {
        let src: &'a [u8] = self.src;
        self.eat(b'"')?;
        let start = self.pos;
        loop {
            match self.peek()? {
                b'"' => break,
                b'\\' => self.pos += 2,
                c if c < 0x20 => return None,
                _ => self.pos += 1,
            }
        }
        let end = self.pos;
        self.pos += 1;
        src.get(start..end)
    }

    /// An array whose items sit in `item_ctx` (`rxInfo`'s are RxItem, to find
    /// their `location`).
    fn array(&mut self, out: &mut Vec<u8>, depth: usize, item_ctx: Ctx) -> Option<()> {
        self.eat(b'[')?;
        if self.eat(b']').is_some() {
            out.push(T_EMPTY_ARRAY);
            return Some(());
        }
        let mut items = Vec::new();
        let mut n = 0u64;
        loop {
            self.value(&mut items, depth + 1, item_ctx)?;
            n += 1;
            if self.eat(b',').is_none() {
                break;
            }
        }
        self.eat(b']')?;
        out.push(T_ARRAY);
        put_varint(out, n);
        out.extend_from_slice(&items);
        Some(())
    }

    fn object(&mut self, out: &mut Vec<u8>, depth: usize, ctx: Ctx) -> Option<()> {
        self.eat(b'{')?;
        if self.eat(b'}').is_some() {
            out.push(T_EMPTY_OBJ);
            return Some(());
        }
        let mut shape = Vec::new();
        let mut inline = Vec::new();
        let mut values = Vec::new();
        let mut n = 0usize;
        let mut shapeable = true;
        loop {
            let key = self.string()?;
            self.eat(b':')?;
            n += 1;
            shapeable &= n <= MAX_SHAPE_KEYS && key.len() <= MAX_KEY_LEN;
            put_varint(&mut shape, key.len() as u64);
            shape.extend_from_slice(key);
            put_varint(&mut inline, key.len() as u64);
            inline.extend_from_slice(key);
            let child = match (ctx, key) {
                (Ctx::Object, _) => Ctx::Object,
                (Ctx::Root, b"object") => Ctx::Object,
                _ => Ctx::Other,
            };
            let part = matches!(
                (ctx, key),
                (Ctx::Root, b"deviceInfo" | b"txInfo") | (Ctx::RxItem, b"location")
            );
            let mark = values.len();
            let start = self.pos;
            if ctx == Ctx::Root && key == b"rxInfo" && self.peek() == Some(b'[') {
                self.array(&mut values, depth + 1, Ctx::RxItem)?;
            } else if part {
                self.part(&mut values, depth + 1)?;
            } else {
                self.value(&mut values, depth + 1, child)?;
            }
            inline.extend_from_slice(&values[mark..]);
            if ctx == Ctx::Root && matches!(key, b"fCnt" | b"fPort") {
                let n = std::str::from_utf8(&self.src[start..self.pos])
                    .ok()
                    .and_then(|t| t.parse::<i64>().ok());
                if key == b"fCnt" {
                    self.f_cnt = n;
                } else {
                    self.f_port = n;
                }
            }
            if self.eat(b',').is_none() {
                break;
            }
        }
        self.eat(b'}')?;
        // Application objects may have keys that never repeat: only small ones get
        // a shape.
        if shapeable && (ctx != Ctx::Object || n <= 16) {
            match self.dict.lookup(DictKind::Shape, &shape) {
                Lookup::Found(id) => {
                    out.push(T_OBJ_SHAPE);
                    put_varint(out, id);
                    out.extend_from_slice(&values);
                    return Some(());
                }
                Lookup::Missing => self.need.push((DictKind::Shape, shape)),
                Lookup::Full => {}
            }
        }
        out.push(T_OBJ_INLINE);
        put_varint(out, n as u64);
        out.extend_from_slice(&inline);
        Some(())
    }

    /// A subtree that repeats across events: stored once, referenced by id. While
    /// entries inside it are still unknown its content is not final, so it is only
    /// asked for once they are stored.
    fn part(&mut self, out: &mut Vec<u8>, depth: usize) -> Option<()> {
        let needed_before = self.need.len();
        let mut sub = Vec::new();
        self.value(&mut sub, depth, Ctx::Other)?;
        if self.need.len() == needed_before && sub.len() <= MAX_PART_LEN && sub.len() > 3 {
            match self.dict.lookup(DictKind::Part, &sub) {
                Lookup::Found(id) => {
                    out.push(T_PART);
                    put_varint(out, id);
                    return Some(());
                }
                Lookup::Missing => self.need.push((DictKind::Part, sub.clone())),
                Lookup::Full => {}
            }
        }
        out.extend_from_slice(&sub);
        Some(())
    }
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// A number token in the smallest form that prints back as the same text.
fn put_number(out: &mut Vec<u8>, text: &[u8], scratch: &mut Vec<u8>) -> Option<()> {
    if text.is_empty() {
        return None;
    }
    let s = std::str::from_utf8(text).ok()?;
    let is_int = text.iter().all(|c| c.is_ascii_digit() || *c == b'-');
    if is_int {
        if let Ok(v) = s.parse::<i64>() {
            scratch.clear();
            serde_json::to_writer(&mut *scratch, &v).ok()?;
            if scratch.as_slice() == text {
                if (0..=0x7f).contains(&v) {
                    out.push(v as u8);
                } else if (-256..0).contains(&v) {
                    out.push(T_NEG);
                    out.push((-1 - v) as u8);
                } else {
                    out.push(T_INT);
                    put_varint(out, zigzag(v));
                }
                return Some(());
            }
        }
    } else if let Ok(v) = s.parse::<f64>() {
        // Tenths first (a byte or two), then the f32 serde_json prints an f32
        // field as, then f64.
        let tenths = (v * 10.0).round();
        if tenths.abs() < 1e9 {
            // Checked as it will be rendered: from the stored integer.
            let k = tenths as i64;
            let t = (k as f32) / 10.0;
            scratch.clear();
            if serde_json::to_writer(&mut *scratch, &t).is_ok() && scratch.as_slice() == text {
                out.push(T_TENTHS);
                put_varint(out, zigzag(k));
                return Some(());
            }
        }
        let f = v as f32;
        scratch.clear();
        if f.is_finite()
            && serde_json::to_writer(&mut *scratch, &f).is_ok()
            && scratch.as_slice() == text
        {
            out.push(T_F32);
            out.extend_from_slice(&f.to_le_bytes());
            return Some(());
        }
        scratch.clear();
        if v.is_finite()
            && serde_json::to_writer(&mut *scratch, &v).is_ok()
            && scratch.as_slice() == text
        {
            out.push(T_F64);
            out.extend_from_slice(&v.to_le_bytes());
            return Some(());
        }
    }
    out.push(T_NUM_TEXT);
    put_varint(out, text.len() as u64);
    out.extend_from_slice(text);
    Some(())
}

/// A string's raw content in the smallest form that renders back to it.
fn put_string(out: &mut Vec<u8>, s: &[u8], base_ns: i128) {
    if let Some(i) = CONSTANTS.iter().position(|c| c.as_bytes() == s) {
        out.push(T_CONST + i as u8);
        return;
    }
    if !s.contains(&b'\\') {
        if let Some(u) = uuid_bytes(s) {
            out.push(T_UUID);
            out.extend_from_slice(&u);
            return;
        }
        if let Some(v) = time_code(s, base_ns) {
            out.push(T_TIME);
            put_varint(out, v);
            return;
        }
        if s.len() >= 4
            && s.len().is_multiple_of(2)
            && s.iter().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
        {
            if let Ok(b) = hex::decode(s) {
                match b.len() {
                    8 => out.push(T_HEX8),
                    4 => out.push(T_HEX4),
                    n => {
                        out.push(T_HEX);
                        put_varint(out, n as u64);
                    }
                }
                out.extend_from_slice(&b);
                return;
            }
        }
        if s.len() >= 4 && s.len().is_multiple_of(4) {
            if let Ok(b) = STANDARD.decode(s) {
                if STANDARD.encode(&b).as_bytes() == s {
                    out.push(T_B64);
                    put_varint(out, b.len() as u64);
                    out.extend_from_slice(&b);
                    return;
                }
            }
        }
    }
    if s.len() <= SHORT_STR_MAX {
        out.push(T_SHORT_STR + s.len() as u8);
    } else {
        out.push(T_STR);
        put_varint(out, s.len() as u64);
    }
    out.extend_from_slice(s);
}

fn uuid_bytes(s: &[u8]) -> Option<[u8; 16]> {
    if s.len() != 36 {
        return None;
    }
    let mut hexed = [0u8; 32];
    let mut j = 0;
    for (i, &c) in s.iter().enumerate() {
        if matches!(i, 8 | 13 | 18 | 23) {
            if c != b'-' {
                return None;
            }
        } else {
            if !matches!(c, b'0'..=b'9' | b'a'..=b'f') {
                return None;
            }
            hexed[j] = c;
            j += 1;
        }
    }
    let mut b = [0u8; 16];
    hex::decode_to_slice(hexed, &mut b).ok()?;
    Some(b)
}

/// `YYYY-MM-DDTHH:MM:SS[.fff|.ffffff|.fffffffff]Z` (chrono's RFC 3339 in UTC) as
/// nanoseconds from the base, times four, plus the count of fraction digits / 3.
fn time_code(s: &[u8], base_ns: i128) -> Option<u64> {
    if !(20..=30).contains(&s.len()) || s[10] != b'T' || *s.last()? != b'Z' {
        return None;
    }
    let text = std::str::from_utf8(s).ok()?;
    let digits = match s.len() {
        20 => 0,
        24 => 1,
        27 => 2,
        30 => 3,
        _ => return None,
    };
    let t = DateTime::parse_from_rfc3339(text).ok()?;
    let ns = i128::from(t.timestamp()) * 1_000_000_000 + i128::from(t.timestamp_subsec_nanos());
    let mut back = String::with_capacity(30);
    write_time(&mut back, ns, digits)?;
    if back.as_bytes() != s {
        return None;
    }
    let delta = i64::try_from(ns - base_ns).ok()?;
    let z = zigzag(delta);
    (z >> 61 == 0).then_some((z << 2) | digits)
}

/// Writes a UTC time with 0, 3, 6 or 9 fraction digits (`digits` / 3 given).
fn write_time(out: &mut String, ns: i128, digits: u64) -> Option<()> {
    use std::fmt::Write as _;
    let secs = i64::try_from(ns.div_euclid(1_000_000_000)).ok()?;
    let sub = ns.rem_euclid(1_000_000_000) as u32;
    let t = DateTime::from_timestamp(secs, sub)?;
    let (y, mo, d) = (t.year(), t.month(), t.day());
    if !(0..=9999).contains(&y) {
        return None;
    }
    let _ = NaiveDate::from_ymd_opt(y, mo, d)?;
    write!(
        out,
        "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}",
        t.hour(),
        t.minute(),
        t.second()
    )
    .ok()?;
    match digits {
        0 if sub == 0 => {}
        1 if sub.is_multiple_of(1_000_000) => write!(out, ".{:03}", sub / 1_000_000).ok()?,
        2 if sub.is_multiple_of(1_000) => write!(out, ".{:06}", sub / 1_000).ok()?,
        3 => write!(out, ".{sub:09}").ok()?,
        _ => return None,
    }
    out.push('Z');
    Some(())
}

/// Why a body could not be rendered.
#[derive(Debug, PartialEq)]
pub(crate) enum RenderError {
    /// Dictionary entries to load first; then render again.
    Missing(Vec<u64>),
    /// The body is damaged (or from a newer format).
    Corrupt(&'static str),
}

/// Renders a stored body back to its JSON text.
pub(crate) fn render(
    body: &[u8],
    base_us: i64,
    dict: &dyn DictRead,
) -> Result<String, RenderError> {
    match body.split_first() {
        Some((&RAW, text)) => std::str::from_utf8(text)
            .map(str::to_owned)
            .map_err(|_| RenderError::Corrupt("raw body is not UTF-8")),
        // JSON text as it was stored before this format (read from the old table).
        Some((b'{' | b'[', _)) => std::str::from_utf8(body)
            .map(str::to_owned)
            .map_err(|_| RenderError::Corrupt("text body is not UTF-8")),
        Some((&V1, rest)) => {
            let mut r = Reader {
                src: rest,
                pos: 0,
                base_ns: i128::from(base_us) * 1_000,
                dict,
                missing: Vec::new(),
            };
            let mut out = Vec::with_capacity(rest.len() * 5);
            let done = r.value(&mut out, 0);
            if !r.missing.is_empty() {
                r.missing.sort_unstable();
                r.missing.dedup();
                return Err(RenderError::Missing(r.missing));
            }
            done?;
            if r.pos != rest.len() {
                return Err(RenderError::Corrupt("trailing bytes"));
            }
            String::from_utf8(out).map_err(|_| RenderError::Corrupt("not UTF-8"))
        }
        Some(_) => Err(RenderError::Corrupt("unknown body format")),
        None => Err(RenderError::Corrupt("empty body")),
    }
}

/// A JSON string of `content` (its escapes as stored).
fn quoted(out: &mut Vec<u8>, content: &[u8]) {
    out.push(b'"');
    out.extend_from_slice(content);
    out.push(b'"');
}

struct Reader<'a> {
    src: &'a [u8],
    pos: usize,
    base_ns: i128,
    dict: &'a dyn DictRead,
    missing: Vec<u64>,
}

const SHORT: RenderError = RenderError::Corrupt("truncated body");

impl Reader<'_> {
    fn byte(&mut self) -> Result<u8, RenderError> {
        let b = *self.src.get(self.pos).ok_or(SHORT)?;
        self.pos += 1;
        Ok(b)
    }

    fn bytes(&mut self, n: usize) -> Result<&[u8], RenderError> {
        let end = self.pos.checked_add(n).ok_or(SHORT)?;
        let s = self.src.get(self.pos..end).ok_or(SHORT)?;
        self.pos = end;
        Ok(s)
    }

    fn varint(&mut self) -> Result<u64, RenderError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(RenderError::Corrupt("varint too long"))
    }

    fn len(&mut self) -> Result<usize, RenderError> {
        usize::try_from(self.varint()?).map_err(|_| SHORT)
    }

    fn entry(&mut self, id: u64) -> Result<std::sync::Arc<[u8]>, RenderError> {
        match self.dict.get(id) {
            Some(c) => Ok(c),
            None => {
                self.missing.push(id);
                // Nothing after an unknown entry can be read: stop here.
                Err(RenderError::Missing(Vec::new()))
            }
        }
    }

    fn value(&mut self, out: &mut Vec<u8>, depth: usize) -> Result<(), RenderError> {
        if depth > MAX_DEPTH + 2 {
            return Err(RenderError::Corrupt("too deep"));
        }
        let tag = self.byte()?;
        match tag {
            0..=0x7f => serde_json::to_writer(&mut *out, &tag).map_err(|_| SHORT)?,
            T_NULL => out.extend_from_slice(b"null"),
            T_FALSE => out.extend_from_slice(b"false"),
            T_TRUE => out.extend_from_slice(b"true"),
            T_INT => {
                let v = unzigzag(self.varint()?);
                serde_json::to_writer(&mut *out, &v).map_err(|_| SHORT)?;
            }
            T_F64 => {
                let b: [u8; 8] = self.bytes(8)?.try_into().map_err(|_| SHORT)?;
                serde_json::to_writer(&mut *out, &f64::from_le_bytes(b))
                    .map_err(|_| RenderError::Corrupt("bad f64"))?;
            }
            T_F32 => {
                let b: [u8; 4] = self.bytes(4)?.try_into().map_err(|_| SHORT)?;
                serde_json::to_writer(&mut *out, &f32::from_le_bytes(b))
                    .map_err(|_| RenderError::Corrupt("bad f32"))?;
            }
            T_NUM_TEXT => {
                let n = self.len()?;
                out.extend_from_slice(self.bytes(n)?);
            }
            T_STR => {
                let n = self.len()?;
                quoted(out, self.bytes(n)?);
            }
            T_NEG => {
                let v = -1 - i64::from(self.byte()?);
                serde_json::to_writer(&mut *out, &v).map_err(|_| SHORT)?;
            }
            T_TENTHS => {
                let t = (unzigzag(self.varint()?) as f32) / 10.0;
                serde_json::to_writer(&mut *out, &t).map_err(|_| SHORT)?;
            }
            T_HEX8 | T_HEX4 => {
                let n = if tag == T_HEX8 { 8 } else { 4 };
                let h = hex::encode(self.bytes(n)?);
                quoted(out, h.as_bytes());
            }
            T_CONST.. => {
                let c = CONSTANTS
                    .get(usize::from(tag - T_CONST))
                    .ok_or(RenderError::Corrupt("unknown constant"))?;
                quoted(out, c.as_bytes());
            }
            T_SHORT_STR..=0xbf => {
                let n = usize::from(tag - T_SHORT_STR);
                quoted(out, self.bytes(n)?);
            }
            T_UUID => {
                let b: [u8; 16] = self.bytes(16)?.try_into().map_err(|_| SHORT)?;
                quoted(
                    out,
                    uuid::Uuid::from_bytes(b)
                        .hyphenated()
                        .encode_lower(&mut uuid::Uuid::encode_buffer())
                        .as_bytes(),
                );
            }
            T_HEX => {
                let n = self.len()?;
                let h = hex::encode(self.bytes(n)?);
                quoted(out, h.as_bytes());
            }
            T_B64 => {
                let n = self.len()?;
                let b = STANDARD.encode(self.bytes(n)?);
                quoted(out, b.as_bytes());
            }
            T_TIME => {
                let v = self.varint()?;
                let ns = self.base_ns + i128::from(unzigzag(v >> 2));
                let mut s = String::with_capacity(30);
                write_time(&mut s, ns, v & 3).ok_or(RenderError::Corrupt("bad time"))?;
                quoted(out, s.as_bytes());
            }
            T_ARRAY => {
                let n = self.varint()?;
                out.push(b'[');
                for i in 0..n {
                    if i > 0 {
                        out.push(b',');
                    }
                    self.value(out, depth + 1)?;
                }
                out.push(b']');
            }
            T_EMPTY_ARRAY => out.extend_from_slice(b"[]"),
            T_EMPTY_OBJ => out.extend_from_slice(b"{}"),
            T_OBJ_SHAPE => {
                let id = self.varint()?;
                let shape = self.entry(id)?;
                let mut keys = Reader {
                    src: &shape,
                    pos: 0,
                    base_ns: 0,
                    dict: self.dict,
                    missing: Vec::new(),
                };
                out.push(b'{');
                let mut first = true;
                while keys.pos < shape.len() {
                    let n = keys.len()?;
                    if !first {
                        out.push(b',');
                    }
                    first = false;
                    out.push(b'"');
                    out.extend_from_slice(keys.bytes(n)?);
                    out.extend_from_slice(b"\":");
                    self.value(out, depth + 1)?;
                }
                out.push(b'}');
            }
            T_OBJ_INLINE => {
                let n = self.varint()?;
                out.push(b'{');
                for i in 0..n {
                    if i > 0 {
                        out.push(b',');
                    }
                    let k = self.len()?;
                    out.push(b'"');
                    out.extend_from_slice(self.bytes(k)?);
                    out.extend_from_slice(b"\":");
                    self.value(out, depth + 1)?;
                }
                out.push(b'}');
            }
            T_PART => {
                let id = self.varint()?;
                let part = self.entry(id)?;
                let mut sub = Reader {
                    src: &part,
                    pos: 0,
                    base_ns: self.base_ns,
                    dict: self.dict,
                    missing: Vec::new(),
                };
                let r = sub.value(out, depth + 1);
                if !sub.missing.is_empty() {
                    self.missing.append(&mut sub.missing);
                    return Err(RenderError::Missing(Vec::new()));
                }
                r?;
            }
            _ => return Err(RenderError::Corrupt("unknown tag")),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};

    /// An in-memory dictionary that stores what the encoder asks for.
    #[derive(Default)]
    struct MemDict {
        by_content: Mutex<HashMap<(DictKind, Vec<u8>), u64>>,
        by_id: Mutex<HashMap<u64, Arc<[u8]>>>,
        full: bool,
    }

    impl Dict for MemDict {
        fn lookup(&self, kind: DictKind, content: &[u8]) -> Lookup {
            match self
                .by_content
                .lock()
                .unwrap()
                .get(&(kind, content.to_vec()))
            {
                Some(id) => Lookup::Found(*id),
                None if self.full => Lookup::Full,
                None => Lookup::Missing,
            }
        }
    }

    impl DictRead for MemDict {
        fn get(&self, id: u64) -> Option<Arc<[u8]>> {
            self.by_id.lock().unwrap().get(&id).cloned()
        }
    }

    impl MemDict {
        fn store(&self, kind: DictKind, content: Vec<u8>) {
            let mut m = self.by_content.lock().unwrap();
            let id = m.len() as u64 + 1;
            self.by_id
                .lock()
                .unwrap()
                .insert(id, content.clone().into());
            m.insert((kind, content), id);
        }

        fn encode(&self, json: &str, base_us: i64) -> Vec<u8> {
            for _ in 0..8 {
                match encode(json, base_us, self) {
                    Encoded::Body(b) => return b.bytes,
                    Encoded::Need(n) => n.into_iter().for_each(|(k, c)| self.store(k, c)),
                }
            }
            panic!("the encoder kept asking for entries");
        }
    }

    fn roundtrip(json: &str) -> Vec<u8> {
        let d = MemDict::default();
        let base = 1_764_700_000_000_000;
        let body = d.encode(json, base);
        assert_eq!(render(&body, base, &d).unwrap(), json, "{body:02x?}");
        body
    }

    const UP: &str = r#"{"deduplicationId":"92755e4b-16ce-4ae4-97d7-36d716d49b7b","time":"2026-12-02T18:37:46.242664709Z","deviceInfo":{"tenantId":"00000000-0000-0000-0000-000000000001","tenantName":"default","applicationId":"f38448f9-8418-4ebf-b16a-c800e7cde111","applicationName":"sim","deviceProfileId":"9493565d-66cc-491f-93e9-2db1181d7664","deviceProfileName":"sim","deviceName":"sim-70b3d57e50000000","devEui":"70b3d57e50000000","deviceClassEnabled":"CLASS_A","tags":{}},"devAddr":"016b0cfb","adr":true,"dr":5,"fCnt":1234,"fPort":10,"confirmed":false,"data":"AWcAygJoYg==","object":{"humiditySensor":{"2":49},"temperatureSensor":{"1":20.2}},"rxInfo":[{"gatewayId":"70b3d57e5a000000","uplinkId":11,"gwTime":"2026-12-02T18:37:46.242405Z","nsTime":"2026-12-02T18:37:46.242664709Z","rssi":-70,"snr":7.0,"channel":0,"rfChain":0,"board":0,"antenna":0,"location":{"latitude":52.1,"longitude":4.3,"altitude":12.5},"context":"OgVr/g==","metadata":{},"crcStatus":"CRC_OK"}],"txInfo":{"frequency":868100000,"modulation":{"lora":{"bandwidth":125000,"spreadingFactor":7,"codeRate":"CR_4_5"}}},"regionConfigId":"eu868"}"#;

    #[test]
    fn an_uplink_renders_back_exactly_and_small() {
        let d = MemDict::default();
        // The row's time: the event's, to the microsecond.
        let base = DateTime::parse_from_rfc3339("2026-12-02T18:37:46.242664Z")
            .unwrap()
            .timestamp_micros();
        let first = d.encode(UP, base);
        assert_eq!(render(&first, base, &d).unwrap(), UP);
        // Once the dictionary knows the device, the next uplink is small.
        let body = d.encode(UP, base);
        assert_eq!(render(&body, base, &d).unwrap(), UP);
        assert!(body.len() <= 100, "{} bytes: {body:02x?}", body.len());
    }

    #[test]
    fn tokens_keep_their_exact_text() {
        for json in [
            r#"{"a":"x\"y\\z\u00e9\n","b":-0.0,"c":1e-7,"d":1.5E3,"e":18446744073709551615,"f":-9223372036854775808}"#,
            r#"[1,-1,127,128,-129,0.1,3.4028235e38,1.7976931348623157e308,null,true,false,[],{}]"#,
            r#"{"t1":"2026-12-02T18:37:46Z","t2":"2026-12-02T18:37:46.100Z","t3":"1969-01-01T00:00:00.000001Z","t4":"2026-02-30T00:00:00Z","t5":"2026-12-02T18:37:46.1Z"}"#,
            r#"{"u":"92755E4B-16CE-4AE4-97D7-36D716D49B7B","h":"abcd","H":"ABCD","odd":"abc","b64":"AAE=","nb64":"AAF=","s":"","dup":{"k":1,"k":2}}"#,
            r#"{"snr":-3.2,"s2":9.5,"t":0.1,"big":123456.7,"f64":0.30000000000000004,"n":-70,"m":-256,"o":-257,"c":"CRC_OK","cc":"CRC_OKX","e":"70b3d57e5a000000","d":"016b0cfb","h6":"0a0b0c"}"#,
            r#""just a string""#,
            r#"12"#,
            r#"{"a":01,"b":1-2}"#,
            r#"{"rxInfo":[{"location":{"latitude":1.0}},{"location":null}],"deviceInfo":{},"txInfo":3}"#,
        ] {
            roundtrip(json);
        }
    }

    #[test]
    fn text_that_is_not_compact_json_is_kept_whole() {
        for json in [
            "{ \"a\": 1 }",
            "{\"a\":1}x",
            "",
            "{\"a\":\"\t\"}",
            "[1,]",
            "nul",
        ] {
            let body = roundtrip(json);
            assert_eq!(body[0], RAW, "{json:?}");
        }
        let deep = "[".repeat(40) + &"]".repeat(40);
        assert_eq!(roundtrip(&deep)[0], RAW);
    }

    #[test]
    fn a_full_dictionary_inlines() {
        let d = MemDict {
            full: true,
            ..Default::default()
        };
        let body = match encode(UP, 0, &d) {
            Encoded::Body(b) => {
                assert_eq!((b.f_cnt, b.f_port), (Some(1234), Some(10)));
                b.bytes
            }
            Encoded::Need(n) => panic!("asked for {n:?}"),
        };
        assert_eq!(render(&body, 0, &d).unwrap(), UP);
    }

    #[test]
    fn missing_entries_are_reported_and_damage_is_an_error() {
        let d = MemDict::default();
        let body = d.encode(UP, 0);
        let empty = MemDict::default();
        assert!(
            matches!(render(&body, 0, &empty), Err(RenderError::Missing(ids)) if !ids.is_empty())
        );
        for cut in 1..body.len() {
            assert!(render(&body[..cut], 0, &d).is_err(), "cut at {cut}");
        }
        assert!(render(&[9, 1, 2], 0, &d).is_err());
        assert!(render(&[], 0, &d).is_err());
    }

    #[test]
    fn random_json_round_trips() {
        // Values serde_json writes, as events are written.
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..2_000 {
            let v = random_value(&mut next, 0);
            let json = serde_json::to_string(&v).unwrap();
            let body = roundtrip(&json);
            assert_eq!(body[0], V1, "{json}");
        }
    }

    fn random_value(next: &mut impl FnMut() -> u64, depth: usize) -> serde_json::Value {
        use serde_json::{json, Value};
        let r = next();
        match (r % 11, depth) {
            (0, _) => Value::Null,
            (1, _) => json!(r & 1 == 0),
            (2, _) => json!((next() as i64) >> (r % 60)),
            (3, _) => json!(f64::from_bits(next()) % 1e6),
            (4, _) if r & 16 == 0 => json!((next() % 100_000) as f32 / 7.0),
            (4, _) => json!(((next() % 20_000) as f64 - 10_000.0) / 10.0),
            (5, _) => json!(uuid::Uuid::from_u64_pair(next(), next()).to_string()),
            (6, _) => json!(hex::encode(next().to_be_bytes())),
            (7, _) => json!(STANDARD.encode(&next().to_be_bytes()[..(r % 8) as usize])),
            (8, _) => json!(DateTime::from_timestamp(
                (next() % 4_000_000_000) as i64,
                (next() % 1_000_000_000) as u32
            )
            .unwrap()),
            (9, d) if d < 4 => {
                Value::Array((0..r % 4).map(|_| random_value(next, d + 1)).collect())
            }
            (_, d) if d < 4 => Value::Object(
                (0..r % 5)
                    .map(|i| (format!("k{}\"é{i}", next() % 3), random_value(next, d + 1)))
                    .collect(),
            ),
            _ if r & 16 == 0 => json!(format!("s\u{1}{}", next() % 1000)),
            _ => json!(CONSTANTS[(next() % CONSTANTS.len() as u64) as usize]),
        }
    }
}
