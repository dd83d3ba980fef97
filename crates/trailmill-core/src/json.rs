//! A validated structural index of a JSON text: what the decoder walks instead of a tree.
//!
//! The decoder needs three things from a record: its exact bytes, a couple of
//! dozen top-level fields, and the bytes of a few nested values. It never
//! needs the rest of the record as values, and most of a CloudTrail record is
//! free-form `requestParameters` and `responseElements`. A parser that builds
//! a tape of every value (simd-json's, which this module replaced) spends most
//! of its time on values nobody reads, and has to unescape strings in a copy of
//! the text. This index is what is left when that work is taken out:
//!
//! - **Stage 1** classifies the text 64 bytes at a time (AVX2 where the CPU has
//!   it, a portable loop otherwise): it finds which bytes are inside strings,
//!   and records the position of every structural character (`{ } [ ] : ,`),
//!   every string's opening quote and every other value's first byte. It also
//!   records where escape sequences are, and rejects control characters in strings.
//! - **Stage 2** checks the grammar over those positions with a stack,
//!   validates every number, literal and escape sequence, enforces the
//!   nesting limit, and notes for each `{` and `[` the index of its matching
//!   close, so that a whole value is skipped in one step.
//! - Stage 1 also checks the text is UTF-8, each run of [`RUN`] bytes just
//!   before it classifies it, so that the text is read from memory once.
//!
//! So the text is fully validated, as strictly as RFC 8259 asks (and lone
//! surrogate escapes are refused), but nothing is built per value. A [`Doc`]
//! then reads fields lazily: a string is a slice of the text unless it holds an
//! escape sequence, and only then is it unescaped, into an [`Arena`]. The text
//! itself is never modified, so the decoder parses its inflate buffer in place.

use std::fmt;
use std::sync::Mutex;

/// Why a text is not valid JSON, and at which byte.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct JsonError {
    /// Byte offset in the text where the problem was found.
    pub(crate) offset: usize,
    /// What is wrong there.
    pub(crate) what: String,
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at byte {}", self.what, self.offset)
    }
}

fn error(offset: usize, what: impl Into<String>) -> JsonError {
    JsonError {
        offset,
        what: what.into(),
    }
}

/// Reusable buffers for indexing one text after another.
#[derive(Default)]
pub(crate) struct Index {
    /// Byte offset of each structural character, string and scalar start.
    pos: Vec<u32>,
    /// For the index of each `{` and `[` in `pos`, the index of its matching close.
    /// Other entries are stale: they are never read.
    jump: Vec<u32>,
    /// Byte offsets of the character after each escaping backslash in a string.
    escapes: Vec<u32>,
    /// Open containers, as indexes into `pos` (with [`ARRAY`] set for arrays), while stage 2 runs.
    stack: Vec<u32>,
}

impl Index {
    /// Validates `text` as one JSON value (with optional surrounding
    /// whitespace) nested at most `max_depth` deep, and returns the view to
    /// walk it with. Unescaped strings go to `arena`.
    pub(crate) fn parse<'a>(
        &'a mut self,
        text: &'a [u8],
        max_depth: usize,
        arena: &'a Arena,
    ) -> Result<Doc<'a>, JsonError> {
        // Positions are u32, and stage 2 keeps a flag in their top bit.
        if text.len() >= 1 << 31 {
            return Err(error(0, "a JSON text of 2 GiB or more"));
        }
        self.pos.clear();
        self.escapes.clear();
        self.stack.clear();
        // Most CloudTrail text has a structural position every 6 to 10 bytes.
        self.pos.reserve(text.len() / 6);
        let mut stage1 = Stage1::new();
        let utf8 = stage1.run(text, &mut self.pos, &mut self.escapes)?;
        if self.jump.len() < self.pos.len() {
            self.jump.resize(self.pos.len(), 0);
        }
        let stages = Stages {
            text,
            pos: &self.pos,
            jump: &mut self.jump,
            stack: &mut self.stack,
            max_depth,
        };
        stage2(stages)?;
        check_escapes(text, &self.escapes)?;
        Ok(Doc {
            text,
            utf8,
            control_free: !stage1.carry.control_seen,
            pos: &self.pos,
            jump: &self.jump,
            escapes: &self.escapes,
            arena,
        })
    }
}

/// Where the unescaped copies of strings with escape sequences live while a
/// document is walked. Cleared (with `&mut`) before the next document.
#[derive(Default)]
pub(crate) struct Arena {
    strings: Mutex<Vec<Box<str>>>,
}

impl Arena {
    /// Drops every string kept so far.
    pub(crate) fn clear(&mut self) {
        self.strings
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    fn keep(&self, s: String) -> &str {
        let mut strings = self.strings.lock().unwrap_or_else(|e| e.into_inner());
        strings.push(s.into_boxed_str());
        // The pointer is taken from the box where it now stays, not before
        // the box was moved there.
        let ptr: *const str = strings.last().map_or("", |b| &**b);
        // SAFETY: the string's heap allocation does not move when the Vec of
        // boxes grows, and boxes are only dropped by `clear`, which takes
        // `&mut self` and so cannot run while this `&self` borrow is alive.
        unsafe { &*ptr }
    }
}

/// A position in a [`Doc`]: the index (into the structural positions) where a value starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct At(pub(crate) usize);

/// What kind of value starts at an [`At`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Object,
    Array,
    String,
    Number,
    True,
    False,
    Null,
}

/// A validated JSON text and its structural index: values are read on demand.
#[derive(Clone, Copy)]
pub(crate) struct Doc<'a> {
    text: &'a [u8],
    /// The same text as `str`: values are cut from it at ASCII characters
    /// (structural characters, quotes, the end of a scalar), which are
    /// character boundaries, so no slice of it is checked again.
    utf8: &'a str,
    /// No byte of the text is below 0x20, so no value in it holds a line
    /// break: CloudTrail writes its files on one line.
    control_free: bool,
    pos: &'a [u32],
    jump: &'a [u32],
    /// Sorted: strings are looked up here to know whether they need unescaping.
    escapes: &'a [u32],
    arena: &'a Arena,
}

impl<'a> Doc<'a> {
    /// How many structural positions the text has.
    pub(crate) fn positions(&self) -> usize {
        self.pos.len()
    }

    /// True when no byte of the text is below 0x20 (no line breaks,
    /// tabs or other control characters anywhere in it).
    pub(crate) fn control_free(&self) -> bool {
        self.control_free
    }

    /// The root value.
    pub(crate) fn root(&self) -> At {
        At(0)
    }

    fn byte(&self, at: At) -> u8 {
        self.text[self.pos[at.0] as usize]
    }

    /// The kind of value at `at`.
    pub(crate) fn kind(&self, at: At) -> Kind {
        match self.byte(at) {
            b'{' => Kind::Object,
            b'[' => Kind::Array,
            b'"' => Kind::String,
            b't' => Kind::True,
            b'f' => Kind::False,
            b'n' => Kind::Null,
            _ => Kind::Number,
        }
    }

    /// The index of the structural position just after the value at `at`
    /// (the `,`, `}` or `]` that follows it, or the end).
    pub(crate) fn after(&self, at: At) -> usize {
        match self.byte(at) {
            b'{' | b'[' => self.jump[at.0] as usize + 1,
            _ => at.0 + 1,
        }
    }

    /// The exact text of the value at `at`.
    #[inline]
    pub(crate) fn raw(&self, at: At) -> &'a str {
        let start = self.pos[at.0] as usize;
        match self.byte(at) {
            b'{' | b'[' => &self.utf8[start..=self.pos[self.jump[at.0] as usize] as usize],
            _ => {
                // A scalar ends where the next structural character starts, less whitespace.
                let next = self
                    .pos
                    .get(at.0 + 1)
                    .map_or(self.text.len(), |&p| p as usize);
                let mut end = next;
                while end > start && self.text[end - 1].is_ascii_whitespace() {
                    end -= 1;
                }
                &self.utf8[start..end]
            }
        }
    }

    /// Calls `f(key, value)` for each member of the object at `at`, in order,
    /// and returns the index of its closing `}`.
    pub(crate) fn members(&self, at: At, mut f: impl FnMut(&'a str, At)) -> usize {
        self.members_while(at, |key, value| {
            f(key, value);
            true
        })
    }

    /// [`Doc::members`], stopping after the first member for which `f`
    /// returns false; returns the index of the object's closing `}` either way.
    #[inline]
    pub(crate) fn members_while(&self, at: At, mut f: impl FnMut(&'a str, At) -> bool) -> usize {
        debug_assert_eq!(self.byte(at), b'{');
        let close = self.jump[at.0] as usize;
        // Key at i, ':' at i + 1, value at i + 2, then ',' or '}'.
        let mut i = at.0 + 1;
        while i < close {
            let value = At(i + 2);
            if !f(self.key(i), value) {
                break;
            }
            i = self.after(value) + 1;
        }
        close
    }

    /// The key at position `i`, whose `:` is at `i + 1`.
    #[inline]
    fn key(&self, i: usize) -> &'a str {
        let start = self.pos[i] as usize + 1;
        // Only whitespace can stand between a key's closing quote and its ':'.
        let mut end = self.pos[i + 1] as usize - 1;
        while self.text[end] != b'"' {
            end -= 1;
        }
        self.string_between(start, end)
    }

    /// Calls `f(element)` for each element of the array at `at`, in order.
    pub(crate) fn elements(&self, at: At, mut f: impl FnMut(At)) {
        debug_assert_eq!(self.byte(at), b'[');
        let close = self.jump[at.0] as usize;
        let mut i = at.0 + 1;
        while i < close {
            f(At(i));
            i = self.after(At(i)) + 1;
        }
    }

    /// The string at `at`, unescaped; `None` when the value is not a string.
    #[inline]
    pub(crate) fn str_at(&self, at: At) -> Option<&'a str> {
        (self.byte(at) == b'"').then(|| self.string(at))
    }

    /// The string at `at`, which must be one.
    #[inline]
    fn string(&self, at: At) -> &'a str {
        let start = self.pos[at.0] as usize + 1;
        // The closing quote is the last byte before the next structural
        // position that is not whitespace.
        let next = self
            .pos
            .get(at.0 + 1)
            .map_or(self.text.len(), |&p| p as usize);
        let mut end = next - 1;
        while self.text[end] != b'"' {
            end -= 1;
        }
        self.string_between(start, end)
    }

    /// The string whose text (between its quotes) is `text[start..end]`, unescaped.
    #[inline(always)]
    fn string_between(&self, start: usize, end: usize) -> &'a str {
        if !self.escapes.is_empty() && self.has_escape(start, end) {
            return self.unescaped(start, end);
        }
        // Cut at two ASCII quotes, which are character boundaries.
        &self.utf8[start..end]
    }

    /// True when stage 1 found an escape sequence in `text[start..end]`.
    /// Escapes are rare and most strings short: a search of the escapes
    /// costs less than looking at the string's bytes.
    #[inline]
    fn has_escape(&self, start: usize, end: usize) -> bool {
        let first = self.escapes.partition_point(|&e| (e as usize) < start);
        self.escapes.get(first).is_some_and(|&e| (e as usize) < end)
    }

    /// The string `text[start..end]`, which has escape sequences, unescaped into the arena.
    #[cold]
    #[inline(never)]
    fn unescaped(&self, start: usize, end: usize) -> &'a str {
        self.arena.keep(unescape(&self.text[start..end]))
    }
}

/// The text of a string with escape sequences (already validated), unescaped.
fn unescape(inner: &[u8]) -> String {
    let mut out = Vec::with_capacity(inner.len());
    let mut i = 0;
    while i < inner.len() {
        let b = inner[i];
        if b != b'\\' {
            out.push(b);
            i += 1;
            continue;
        }
        let e = inner[i + 1];
        i += 2;
        let c = match e {
            b'n' => b'\n',
            b't' => b'\t',
            b'r' => b'\r',
            b'b' => 0x08,
            b'f' => 0x0c,
            b'u' => {
                let mut cp = u32::from(hex4(&inner[i..]).unwrap_or(0xfffd));
                i += 4;
                if (0xd800..0xdc00).contains(&cp) {
                    let low = u32::from(hex4(&inner[i + 2..]).unwrap_or(0xdc00));
                    cp = 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00);
                    i += 6;
                }
                let ch = char::from_u32(cp).unwrap_or('\u{fffd}');
                out.extend_from_slice(ch.encode_utf8(&mut [0; 4]).as_bytes());
                continue;
            }
            other => other, // '"', '\\' and '/' stand for themselves
        };
        out.push(c);
    }
    // Escapes decode to whole characters and the rest was UTF-8 already.
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// The value of four hex digits at the start of `b`.
fn hex4(b: &[u8]) -> Option<u16> {
    let digits = b.get(..4)?;
    let mut v = 0u16;
    for &d in digits {
        v = v << 4 | u16::from((d as char).to_digit(16)? as u8);
    }
    Some(v)
}

// ---------------------------------------------------------------------------
// Stage 1

/// Bit masks of one 64-byte block, bit `i` for byte `i`.
#[derive(Clone, Copy, Default)]
struct Masks {
    backslash: u64,
    quote: u64,
    whitespace: u64,
    /// `{ } [ ] : ,`
    operator: u64,
    /// Bytes below 0x20.
    control: u64,
}

/// What stage 1 carries from one block to the next.
#[derive(Default)]
struct Carry {
    /// 1 when the first byte of the next block is escaped.
    escaped: u64,
    /// All ones when the next block starts inside a string.
    in_string: u64,
    /// 1 when the last byte was part of a scalar (a number or literal).
    scalar: u64,
    /// A byte below 0x20 has been seen (whitespace or not).
    control_seen: bool,
    /// The text before this offset is valid UTF-8, and the offset is a
    /// character boundary.
    utf8_checked: usize,
}

/// Stage 1's state.
struct Stage1 {
    carry: Carry,
    avx2: bool,
}

impl Stage1 {
    fn new() -> Self {
        Stage1 {
            carry: Carry::default(),
            avx2: has_avx2(),
        }
    }

    /// Records the structural positions and escapes of `text`, and returns
    /// it as the `str` it has been checked to be; fails on invalid UTF-8, on
    /// a control character inside a string or one that is not whitespace
    /// outside, and on a string that is never closed.
    fn run<'t>(
        &mut self,
        text: &'t [u8],
        pos: &mut Vec<u32>,
        escapes: &mut Vec<u32>,
    ) -> Result<&'t str, JsonError> {
        let whole = text.len() / 64 * 64;
        let blocks = &text[..whole];
        #[cfg(target_arch = "x86_64")]
        let done = self.avx2 && {
            // SAFETY: the CPU has AVX2, POPCNT, BMI1 and PCLMULQDQ.
            unsafe { stage1_blocks_avx2(blocks, &mut self.carry, pos, escapes)? };
            true
        };
        #[cfg(not(target_arch = "x86_64"))]
        let done = false;
        if !done {
            let carry = &mut self.carry;
            stage1_blocks(blocks, carry, pos, escapes, classify_portable, prefix_xor)?;
        }
        check_utf8(text, &mut self.carry.utf8_checked, text.len(), true)?;
        let rest = &text[whole..];
        if !rest.is_empty() {
            // The text's last block, padded with spaces, which are never structural.
            let mut block = [b' '; 64];
            block[..rest.len()].copy_from_slice(rest);
            let masks = classify_portable(&block);
            self.carry.control_seen |= masks.control != 0;
            let starts = step::<true>(&mut self.carry, masks, prefix_xor, whole as u32, escapes)?;
            flatten(pos, whole as u32, starts);
        }
        if self.carry.in_string != 0 {
            let open = last_quote_before(text, text.len());
            return Err(error(open, "a string that is never closed"));
        }
        // SAFETY: `check_utf8` has checked the whole text, piece after
        // piece, each starting where the one before ended, at a character
        // boundary; valid UTF-8 strings joined are valid UTF-8.
        Ok(unsafe { std::str::from_utf8_unchecked(text) })
    }
}

/// Stage 1 over whole blocks, compiled for AVX2 so that the classifier,
/// the bit tricks and the flattening loop all use it.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,popcnt,bmi1,pclmulqdq")]
unsafe fn stage1_blocks_avx2(
    text: &[u8],
    carry: &mut Carry,
    pos: &mut Vec<u32>,
    escapes: &mut Vec<u32>,
) -> Result<(), JsonError> {
    stage1_blocks(
        text,
        carry,
        pos,
        escapes,
        |block| {
            // SAFETY: this function only runs on CPUs with AVX2.
            unsafe { classify_avx2_inner(block) }
        },
        |x| {
            use std::arch::x86_64::{_mm_clmulepi64_si128, _mm_cvtsi128_si64, _mm_set_epi64x};
            // Carry-less multiplication by all ones is the prefix XOR. (The
            // closure has this function's target features, so these are safe.)
            let product =
                _mm_clmulepi64_si128(_mm_set_epi64x(0, x as i64), _mm_set_epi64x(0, -1), 0);
            _mm_cvtsi128_si64(product) as u64
        },
    )
}

/// Bytes stage 1 takes at a time: it checks a run's UTF-8 and looks for
/// control characters in it before it classifies its blocks, and a run is
/// small enough that those looks leave it in the L1 cache. (8 KiB and
/// 32 KiB made the index 0.8% and 2.4% slower on real-shaped text.)
const RUN: usize = 16 << 10;

/// Stage 1 over `text`, whose length is a multiple of 64.
///
/// CloudTrail writes its files without line breaks or tabs, so most runs of
/// [`RUN`] bytes hold no byte below 0x20 at all. One vectorised look
/// at a run tells, and such a run's blocks skip the control-character masks.
#[inline(always)]
fn stage1_blocks(
    text: &[u8],
    carry: &mut Carry,
    pos: &mut Vec<u32>,
    escapes: &mut Vec<u32>,
    classify: impl Fn(&[u8; 64]) -> Masks,
    prefix_xor: impl Fn(u64) -> u64,
) -> Result<(), JsonError> {
    let mut flat = Flattener {
        base: 0,
        pending: 0,
    };
    let mut end = 0;
    for run in text.chunks(RUN) {
        end += run.len();
        check_utf8(text, &mut carry.utf8_checked, end, false)?;
        if has_control(run) {
            carry.control_seen = true;
            flat.blocks::<true>(run, carry, pos, escapes, &classify, &prefix_xor)?;
        } else {
            flat.blocks::<false>(run, carry, pos, escapes, &classify, &prefix_xor)?;
        }
    }
    flatten(pos, flat.base.wrapping_sub(64), flat.pending);
    Ok(())
}

/// Checks that `text[*checked..end]` is UTF-8, up to the last character
/// boundary before `end` unless `last` (the end of the text), and moves
/// `checked` there.
///
/// Stage 1 checks each run just before it classifies it, so that the text
/// is read from memory once rather than once for this check and once more
/// for the stages.
#[inline(always)]
fn check_utf8(text: &[u8], checked: &mut usize, end: usize, last: bool) -> Result<(), JsonError> {
    let is_continuation = |b: u8| b & 0xc0 == 0x80;
    // A character has at most three continuation bytes; if the last four
    // bytes are all continuation bytes, the check below fails anyway.
    let cut = if last {
        end
    } else {
        (end.saturating_sub(4).max(*checked)..end)
            .rev()
            .find(|&c| !is_continuation(text[c]))
            .unwrap_or(end)
    };
    let piece = &text[*checked..cut];
    if simdutf8::basic::from_utf8(piece).is_err() {
        let at = std::str::from_utf8(piece).map_or_else(|e| e.valid_up_to(), |_| 0);
        return Err(error(*checked + at, "invalid UTF-8"));
    }
    *checked = cut;
    Ok(())
}

/// True when `bytes` holds a byte below 0x20 (vectorised by the compiler).
#[inline(always)]
fn has_control(bytes: &[u8]) -> bool {
    bytes.iter().fold(false, |any, &b| any | (b < 0x20))
}

/// Where stage 1 is, and the starts of the block before, not yet written.
///
/// Each block's positions are written while the next block is classified
/// (simdjson's order), so that the two overlap: 4% off the index on
/// real-shaped text.
struct Flattener {
    base: u32,
    pending: u64,
}

impl Flattener {
    /// Stage 1 over `run`'s blocks, checking them for control characters
    /// only when `CONTROL` is set.
    #[inline(always)]
    fn blocks<const CONTROL: bool>(
        &mut self,
        run: &[u8],
        carry: &mut Carry,
        pos: &mut Vec<u32>,
        escapes: &mut Vec<u32>,
        classify: &impl Fn(&[u8; 64]) -> Masks,
        prefix_xor: &impl Fn(u64) -> u64,
    ) -> Result<(), JsonError> {
        for block in run.chunks_exact(64) {
            let block: &[u8; 64] = block.try_into().unwrap_or(&[b' '; 64]);
            let starts = step::<CONTROL>(carry, classify(block), prefix_xor, self.base, escapes)?;
            flatten(pos, self.base.wrapping_sub(64), self.pending);
            self.pending = starts;
            self.base += 64;
        }
        Ok(())
    }
}

/// Where the unclosed string that runs to `end` starts (for the error message).
fn last_quote_before(text: &[u8], end: usize) -> usize {
    // The precise place needs the quote parity again; the last quote that
    // stage 1 recorded as a structural position is good enough for a message.
    memchr::memrchr(b'"', &text[..end]).unwrap_or(0)
}

/// Stage 1 for one block: the block's classified bytes become positions.
#[inline(always)]
fn step<const CONTROL: bool>(
    carry: &mut Carry,
    m: Masks,
    prefix_xor: impl Fn(u64) -> u64,
    base: u32,
    escapes: &mut Vec<u32>,
) -> Result<u64, JsonError> {
    let escaped = escaped_bytes(m.backslash, &mut carry.escaped);
    let quote = m.quote & !escaped;
    // From an opening quote (included) to its closing quote (excluded).
    let in_string = prefix_xor(quote) ^ carry.in_string;
    carry.in_string = ((in_string as i64) >> 63) as u64;
    // From the byte after an opening quote to its closing quote (included).
    let string_tail = in_string ^ quote;
    let scalar = !(m.operator | m.whitespace);
    let unquoted_scalar = scalar & !quote;
    let follows_scalar = unquoted_scalar << 1 | carry.scalar;
    carry.scalar = unquoted_scalar >> 63;
    let starts = (m.operator | (scalar & !follows_scalar)) & !string_tail;
    // Control characters are whitespace or nothing outside strings, and never
    // allowed inside them (the classifier relies on this: it folds a few of
    // them onto operators).
    let control = (m.control & in_string) | (m.control & !m.whitespace);
    if CONTROL && control != 0 {
        let at = base as usize + control.trailing_zeros() as usize;
        let what = if control & in_string != 0 {
            "a control character inside a string"
        } else {
            "a control character outside a string"
        };
        return Err(error(at, what));
    }
    let escapes_here = escaped & in_string;
    if escapes_here != 0 {
        flatten(escapes, base, escapes_here);
    }
    Ok(starts)
}

/// The bytes that an odd run of backslashes escapes (simdjson's branchless
/// method); `carry` is 1 when the previous block ended in such a backslash.
#[inline(always)]
fn escaped_bytes(backslash: u64, carry: &mut u64) -> u64 {
    const EVEN: u64 = 0x5555_5555_5555_5555;
    let backslash = backslash & !*carry;
    let follows_escape = backslash << 1 | *carry;
    let odd_starts = backslash & !EVEN & !follows_escape;
    let (even_sequences, overflow) = odd_starts.overflowing_add(backslash);
    *carry = u64::from(overflow);
    let invert = even_sequences << 1;
    (EVEN ^ invert) & follows_escape
}

/// Bit `i` of the result is the XOR of bits `0..=i` of `x`.
#[inline(always)]
fn prefix_xor(mut x: u64) -> u64 {
    x ^= x << 1;
    x ^= x << 2;
    x ^= x << 4;
    x ^= x << 8;
    x ^= x << 16;
    x ^= x << 32;
    x
}

/// Appends `base + i` for each set bit `i` of `bits`.
///
/// Blocks hold about ten positions each, in varying numbers: writing eight
/// at a time, whether or not there are that many, and then setting the
/// length, saves the mispredicted branch a loop per bit would take (simdjson's
/// method). Slots written past the count are garbage that the next block overwrites.
#[inline(always)]
fn flatten(out: &mut Vec<u32>, base: u32, mut bits: u64) {
    let count = bits.count_ones() as usize;
    out.reserve(64);
    let len = out.len();
    let spare: &mut [std::mem::MaybeUninit<u32>; 64] = (&mut out.spare_capacity_mut()[..64])
        .try_into()
        .expect("64 slots were reserved");
    let mut next = |slot: &mut std::mem::MaybeUninit<u32>| {
        slot.write(base.wrapping_add(bits.trailing_zeros()));
        bits &= bits.wrapping_sub(1);
    };
    spare[..8].iter_mut().for_each(&mut next);
    if count > 8 {
        spare[8..16].iter_mut().for_each(&mut next);
        if count > 16 {
            spare[16..count].iter_mut().for_each(&mut next);
        }
    }
    // SAFETY: the first `count` slots after `len` were written above (one
    // per set bit), within the capacity reserved for them.
    unsafe { out.set_len(len + count) };
}

fn has_avx2() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("popcnt")
            && std::arch::is_x86_feature_detected!("bmi1")
            && std::arch::is_x86_feature_detected!("pclmulqdq")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Byte classes for the portable classifier.
const CLASS_WHITESPACE: u8 = 1;
const CLASS_OPERATOR: u8 = 2;
const CLASS_QUOTE: u8 = 4;
const CLASS_BACKSLASH: u8 = 8;
const CLASS_CONTROL: u8 = 16;

const CLASSES: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = CLASS_CONTROL;
        i += 1;
    }
    t[b' ' as usize] = CLASS_WHITESPACE;
    t[b'\t' as usize] = CLASS_WHITESPACE | CLASS_CONTROL;
    t[b'\n' as usize] = CLASS_WHITESPACE | CLASS_CONTROL;
    t[b'\r' as usize] = CLASS_WHITESPACE | CLASS_CONTROL;
    t[b'{' as usize] = CLASS_OPERATOR;
    t[b'}' as usize] = CLASS_OPERATOR;
    t[b'[' as usize] = CLASS_OPERATOR;
    t[b']' as usize] = CLASS_OPERATOR;
    t[b':' as usize] = CLASS_OPERATOR;
    t[b',' as usize] = CLASS_OPERATOR;
    // The AVX2 classifier's lookup also takes these two control characters
    // for operators (',' and ':' without the 0x20 bit); so does this one, so
    // that both agree byte for byte. Stage 1 refuses them either way.
    t[0x0c] = CLASS_OPERATOR | CLASS_CONTROL;
    t[0x1a] = CLASS_OPERATOR | CLASS_CONTROL;
    t[b'"' as usize] = CLASS_QUOTE;
    t[b'\\' as usize] = CLASS_BACKSLASH;
    t
};

/// Classifies a block one byte at a time (CPUs without AVX2, and the last block).
fn classify_portable(block: &[u8; 64]) -> Masks {
    let mut m = Masks::default();
    for (i, &b) in block.iter().enumerate() {
        let c = CLASSES[b as usize];
        let bit = 1u64 << i;
        if c & CLASS_WHITESPACE != 0 {
            m.whitespace |= bit;
        }
        if c & CLASS_OPERATOR != 0 {
            m.operator |= bit;
        }
        if c & CLASS_QUOTE != 0 {
            m.quote |= bit;
        }
        if c & CLASS_BACKSLASH != 0 {
            m.backslash |= bit;
        }
        if c & CLASS_CONTROL != 0 {
            m.control |= bit;
        }
    }
    m
}

/// The AVX2 classifier's whitespace table, by low nibble (simdjson's).
#[cfg(target_arch = "x86_64")]
const WHITESPACE_TABLE: [u8; 16] = [
    b' ', 100, 100, 100, 17, 100, 113, 2, 100, b'\t', b'\n', 112, 100, b'\r', 100, 100,
];

/// The AVX2 classifier's operator table, by low nibble: `:`, `{`, `,`, `}`.
#[cfg(target_arch = "x86_64")]
const OPERATOR_TABLE: [u8; 16] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, b':', b'{', b',', b'}', 0, 0];

#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn classify_avx2_inner(block: &[u8; 64]) -> Masks {
    use std::arch::x86_64::{
        __m256i, _mm_loadu_si128, _mm256_broadcastsi128_si256, _mm256_cmpeq_epi8,
        _mm256_loadu_si256, _mm256_min_epu8, _mm256_movemask_epi8, _mm256_or_si256,
        _mm256_set1_epi8, _mm256_shuffle_epi8,
    };
    #[inline(always)]
    fn eq(v: __m256i, c: u8) -> __m256i {
        // SAFETY: inlined into the AVX2 function below only.
        unsafe { _mm256_cmpeq_epi8(v, _mm256_set1_epi8(c as i8)) }
    }
    #[inline(always)]
    fn bits(lo: __m256i, hi: __m256i) -> u64 {
        // SAFETY: as above.
        unsafe {
            u64::from(_mm256_movemask_epi8(lo) as u32)
                | u64::from(_mm256_movemask_epi8(hi) as u32) << 32
        }
    }
    #[inline(always)]
    fn classes(v: __m256i) -> [__m256i; 5] {
        // simdjson's lookup: a byte is whitespace when the table entry at its
        // low nibble equals it, and an operator when the entry of the operator
        // table equals it with the 0x20 bit set ('[' and ']' become '{' and '}').
        // Bytes with the high bit set look up 0 and match nothing. The only
        // other bytes that match are control characters (0x0c, 0x1a), which
        // stage 1 refuses anyway.
        // SAFETY: inlined into the AVX2 function only.
        unsafe {
            let table =
                |t: &[u8; 16]| _mm256_broadcastsi128_si256(_mm_loadu_si128(t.as_ptr().cast()));
            let whitespace_table = table(&WHITESPACE_TABLE);
            let operator_table = table(&OPERATOR_TABLE);
            let whitespace = _mm256_cmpeq_epi8(_mm256_shuffle_epi8(whitespace_table, v), v);
            let folded = _mm256_or_si256(v, _mm256_set1_epi8(0x20));
            let operator = _mm256_cmpeq_epi8(_mm256_shuffle_epi8(operator_table, v), folded);
            let control = _mm256_cmpeq_epi8(_mm256_min_epu8(v, _mm256_set1_epi8(0x1f)), v);
            [eq(v, b'\\'), eq(v, b'"'), whitespace, operator, control]
        }
    }
    // SAFETY: `block` holds 64 readable bytes; unaligned loads are allowed.
    let (lo, hi) = unsafe {
        (
            _mm256_loadu_si256(block.as_ptr().cast()),
            _mm256_loadu_si256(block.as_ptr().add(32).cast()),
        )
    };
    let [b0, q0, w0, o0, c0] = classes(lo);
    let [b1, q1, w1, o1, c1] = classes(hi);
    Masks {
        backslash: bits(b0, b1),
        quote: bits(q0, q1),
        whitespace: bits(w0, w1),
        operator: bits(o0, o1),
        control: bits(c0, c1),
    }
}

// ---------------------------------------------------------------------------
// Stage 2

/// What stage 2 expects at the next structural position.
#[derive(Clone, Copy)]
enum Expect {
    Value,
    /// After `{`: a key or `}`.
    KeyOrClose,
    /// After `[`: a value or `]`.
    ValueOrClose,
    /// After a value: `,` or the close of the enclosing container, or the end.
    Next,
}

/// What stage 2 works on.
struct Stages<'s> {
    text: &'s [u8],
    pos: &'s [u32],
    jump: &'s mut [u32],
    stack: &'s mut Vec<u32>,
    max_depth: usize,
}

/// Checks the grammar, numbers and literals over the positions, and fills `jump`.
fn stage2(st: Stages<'_>) -> Result<(), JsonError> {
    let Stages {
        text,
        pos,
        jump,
        stack,
        max_depth,
    } = st;
    let n = pos.len();
    let at = |i: usize| pos.get(i).map_or(text.len(), |&p| p as usize);
    let byte = |i: usize| pos.get(i).map(|&p| text[p as usize]);
    let (mut i, mut expect) = (0, Expect::Value);
    loop {
        match expect {
            Expect::Value => {
                let Some(c) = byte(i) else {
                    return Err(error(text.len(), "the data ends where a value should be"));
                };
                match c {
                    b'{' | b'[' => {
                        if stack.len() >= max_depth {
                            let what = format!("nesting deeper than {max_depth} levels");
                            return Err(error(at(i), what));
                        }
                        stack.push(i as u32 | if c == b'[' { ARRAY } else { 0 });
                        expect = if c == b'{' {
                            Expect::KeyOrClose
                        } else {
                            Expect::ValueOrClose
                        };
                        i += 1;
                        continue;
                    }
                    b'"' => {}
                    b't' => literal(text, at(i), b"true")?,
                    b'f' => literal(text, at(i), b"false")?,
                    b'n' => literal(text, at(i), b"null")?,
                    b'-' | b'0'..=b'9' => number(text, at(i))?,
                    other => return Err(unexpected(other, at(i), "a value")),
                }
                i += 1;
                expect = Expect::Next;
            }
            Expect::KeyOrClose => {
                if byte(i) == Some(b'}') {
                    close(stack, jump, &mut i);
                    expect = Expect::Next;
                } else {
                    key(text, pos, i)?;
                    i += 2;
                    expect = Expect::Value;
                }
            }
            Expect::ValueOrClose => {
                if byte(i) == Some(b']') {
                    close(stack, jump, &mut i);
                    expect = Expect::Next;
                } else {
                    expect = Expect::Value;
                }
            }
            Expect::Next => {
                let Some(&open) = stack.last() else {
                    if i < n {
                        return Err(error(at(i), "trailing data after the JSON value"));
                    }
                    return Ok(());
                };
                let in_object = open & ARRAY == 0;
                match (byte(i), in_object) {
                    (Some(b','), true) => {
                        key(text, pos, i + 1)?;
                        i += 3;
                        expect = Expect::Value;
                    }
                    (Some(b','), false) => {
                        i += 1;
                        expect = Expect::Value;
                    }
                    (Some(b'}'), true) | (Some(b']'), false) => {
                        close(stack, jump, &mut i);
                    }
                    (None, _) => {
                        let what = "the data ends inside an object or array";
                        return Err(error(text.len(), what));
                    }
                    (Some(other), true) => {
                        let wanted = "',' or '}' after an object member";
                        return Err(unexpected(other, at(i), wanted));
                    }
                    (Some(other), false) => {
                        let wanted = "',' or ']' after an array element";
                        return Err(unexpected(other, at(i), wanted));
                    }
                }
            }
        }
    }
}

/// The bit of a stack entry that marks an array; the rest is the position of its `[`.
const ARRAY: u32 = 1 << 31;

#[inline(always)]
fn close(stack: &mut Vec<u32>, jump: &mut [u32], i: &mut usize) {
    if let Some(open) = stack.pop() {
        jump[(open & !ARRAY) as usize] = *i as u32;
    }
    *i += 1;
}

fn unexpected(found: u8, offset: usize, wanted: &str) -> JsonError {
    let found = if found.is_ascii_graphic() {
        format!("{:?}", char::from(found))
    } else {
        format!("byte 0x{found:02x}")
    };
    error(offset, format!("expected {wanted}, found {found}"))
}

/// Checks that position `i` holds a key followed by `:`.
#[inline(always)]
fn key(text: &[u8], pos: &[u32], i: usize) -> Result<(), JsonError> {
    let offset = |i: usize| pos.get(i).map_or(text.len(), |&p| p as usize);
    match pos.get(i).map(|&p| text[p as usize]) {
        Some(b'"') => {}
        Some(other) => return Err(unexpected(other, offset(i), "a string key")),
        None => return Err(error(text.len(), "the data ends where a key should be")),
    }
    match pos.get(i + 1).map(|&p| text[p as usize]) {
        Some(b':') => Ok(()),
        Some(other) => Err(unexpected(other, offset(i + 1), "':' after a key")),
        None => Err(error(text.len(), "the data ends after a key")),
    }
}

/// True for the bytes that may follow a scalar: whitespace, an operator, or the end.
fn ends_scalar(text: &[u8], at: usize) -> bool {
    text.get(at).is_none_or(|&b| {
        matches!(
            b,
            b' ' | b'\t' | b'\n' | b'\r' | b',' | b'}' | b']' | b':' | b'{' | b'['
        )
    })
}

/// Checks that the literal `word` stands at `at`, ended as a scalar must be.
///
/// The word is an array, so that comparing it is a load or two rather than
/// a `memcmp` call (one per `true`, `false` or `null`: 1% of a decode).
#[inline(always)]
fn literal<const N: usize>(text: &[u8], at: usize, word: &[u8; N]) -> Result<(), JsonError> {
    if text[at..].first_chunk::<N>() == Some(word) && ends_scalar(text, at + N) {
        Ok(())
    } else {
        Err(error(at, "an invalid literal (not true, false or null)"))
    }
}

/// Checks the number at `at` against RFC 8259's grammar.
fn number(text: &[u8], at: usize) -> Result<(), JsonError> {
    let digits = |mut i: usize| {
        let start = i;
        while text.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        (i, i - start)
    };
    let bad = || error(at, "an invalid number");
    let mut i = at;
    if text[i] == b'-' {
        i += 1;
    }
    match text.get(i) {
        Some(b'0') => i += 1,
        Some(b'1'..=b'9') => i = digits(i).0,
        _ => return Err(bad()),
    }
    if text.get(i) == Some(&b'.') {
        let (end, n) = digits(i + 1);
        if n == 0 {
            return Err(bad());
        }
        i = end;
    }
    if matches!(text.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(text.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let (end, n) = digits(i);
        if n == 0 {
            return Err(bad());
        }
        i = end;
    }
    if ends_scalar(text, i) {
        Ok(())
    } else {
        Err(bad())
    }
}

/// Checks every escape sequence: its letter, `\u`'s four hex digits, and that
/// surrogates come in high-low pairs.
fn check_escapes(text: &[u8], escapes: &[u32]) -> Result<(), JsonError> {
    // The position a low surrogate's `u` must be at, after a high surrogate.
    let mut low_due: Option<usize> = None;
    for &p in escapes {
        let p = p as usize;
        if let Some(due) = low_due
            && due != p
        {
            return Err(error(
                due - 7,
                "a high surrogate escape without its low half",
            ));
        }
        match text[p] {
            b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => {}
            b'u' => {
                let Some(cp) = hex4(&text[p + 1..]) else {
                    return Err(error(p - 1, "a \\u escape without four hex digits"));
                };
                match cp {
                    0xd800..=0xdbff if low_due.is_none() => low_due = Some(p + 6),
                    0xdc00..=0xdfff if low_due == Some(p) => low_due = None,
                    0xd800..=0xdfff => {
                        return Err(error(p - 1, "a lone surrogate escape"));
                    }
                    _ if low_due.is_some() => {
                        return Err(error(p - 7, "a high surrogate escape without its low half"));
                    }
                    _ => {}
                }
            }
            _ => return Err(error(p - 1, "an invalid escape sequence")),
        }
    }
    if let Some(due) = low_due {
        return Err(error(
            due - 7,
            "a high surrogate escape without its low half",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
