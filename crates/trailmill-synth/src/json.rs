//! A minimal JSON writer: records are written straight into a byte buffer,
//! field by field, in CloudTrail's field order, without building a DOM.

use std::io::Write as _;

/// Appends `v` as a JSON string (quoted and escaped).
pub(crate) fn esc(b: &mut Vec<u8>, v: &str) {
    b.push(b'"');
    if v.bytes().all(|c| c >= 0x20 && c != b'"' && c != b'\\') {
        b.extend_from_slice(v.as_bytes());
    } else {
        for c in v.chars() {
            match c {
                '"' => b.extend_from_slice(b"\\\""),
                '\\' => b.extend_from_slice(b"\\\\"),
                '\n' => b.extend_from_slice(b"\\n"),
                '\t' => b.extend_from_slice(b"\\t"),
                c if (c as u32) < 0x20 => {
                    let _ = write!(b, "\\u{:04x}", c as u32);
                }
                c => {
                    let mut tmp = [0u8; 4];
                    b.extend_from_slice(c.encode_utf8(&mut tmp).as_bytes());
                }
            }
        }
    }
    b.push(b'"');
}

/// An open JSON object; [`Obj::end`] closes it.
pub(crate) struct Obj<'b> {
    b: &'b mut Vec<u8>,
    first: bool,
}

impl<'b> Obj<'b> {
    pub(crate) fn new(b: &'b mut Vec<u8>) -> Self {
        b.push(b'{');
        Obj { b, first: true }
    }

    fn key(&mut self, k: &str) {
        if !self.first {
            self.b.push(b',');
        }
        self.first = false;
        self.b.push(b'"');
        self.b.extend_from_slice(k.as_bytes());
        self.b.extend_from_slice(b"\":");
    }

    /// A string member.
    pub(crate) fn s(&mut self, k: &str, v: &str) -> &mut Self {
        self.key(k);
        esc(self.b, v);
        self
    }

    /// An integer member.
    pub(crate) fn n(&mut self, k: &str, v: i64) -> &mut Self {
        self.key(k);
        let _ = write!(self.b, "{v}");
        self
    }

    /// A boolean member.
    pub(crate) fn t(&mut self, k: &str, v: bool) -> &mut Self {
        self.key(k);
        self.b.extend_from_slice(if v { b"true" } else { b"false" });
        self
    }

    /// A member whose value is already JSON (`null` when `v` is empty).
    pub(crate) fn raw(&mut self, k: &str, v: &[u8]) -> &mut Self {
        self.key(k);
        self.b
            .extend_from_slice(if v.is_empty() { b"null" } else { v });
        self
    }

    /// A nested object member.
    pub(crate) fn o(&mut self, k: &str, f: impl FnOnce(&mut Obj<'_>)) -> &mut Self {
        self.key(k);
        let mut o = Obj::new(self.b);
        f(&mut o);
        o.b.push(b'}');
        self
    }

    /// A nested array member.
    pub(crate) fn a(&mut self, k: &str, f: impl FnOnce(&mut Arr<'_>)) -> &mut Self {
        self.key(k);
        let mut a = Arr::new(self.b);
        f(&mut a);
        a.b.push(b']');
        self
    }

    /// Closes the object.
    pub(crate) fn end(self) {
        self.b.push(b'}');
    }

    /// Closes the object, for call chains that end in `&mut Obj`; the
    /// object must not be written to afterwards.
    pub(crate) fn end_ref(&mut self) {
        self.b.push(b'}');
    }
}

/// An open JSON array, closed by its parent.
pub(crate) struct Arr<'b> {
    b: &'b mut Vec<u8>,
    first: bool,
}

impl<'b> Arr<'b> {
    fn new(b: &'b mut Vec<u8>) -> Self {
        b.push(b'[');
        Arr { b, first: true }
    }

    /// Opens an array at the top of `b`; [`Arr::end`] closes it.
    pub(crate) fn new_top(b: &'b mut Vec<u8>) -> Self {
        Self::new(b)
    }

    /// Closes a top-level array.
    pub(crate) fn end(self) {
        self.b.push(b']');
    }

    fn sep(&mut self) {
        if !self.first {
            self.b.push(b',');
        }
        self.first = false;
    }

    /// An object element.
    pub(crate) fn o(&mut self, f: impl FnOnce(&mut Obj<'_>)) -> &mut Self {
        self.sep();
        let mut o = Obj::new(self.b);
        f(&mut o);
        o.b.push(b'}');
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_valid_json() {
        let mut b = Vec::new();
        let mut o = Obj::new(&mut b);
        o.s("a", "q\"\\\n\u{1}é")
            .n("n", -3)
            .t("t", true)
            .raw("z", b"")
            .o("o", |o| {
                o.a("arr", |a| {
                    a.o(|_| {}).o(|o| {
                        o.n("k", 1);
                    });
                });
            });
        o.end();
        let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(v["a"], "q\"\\\n\u{1}é");
        assert_eq!(v["o"]["arr"][1]["k"], 1);
        assert!(v["z"].is_null());
    }
}
