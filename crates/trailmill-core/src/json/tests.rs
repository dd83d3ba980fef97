use super::*;

fn parse(text: &str) -> Result<(), JsonError> {
    let mut index = Index::default();
    let arena = Arena::default();
    index.parse(text.as_bytes(), 64, &arena).map(drop)
}

/// serde_json's verdict, which is RFC 8259's except that it refuses numbers
/// out of f64's range (this index keeps numbers as text, so accepts them).
fn serde_accepts(text: &str) -> Option<bool> {
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(_) => Some(true),
        Err(e) if e.to_string().contains("out of range") => None,
        Err(e) if e.to_string().contains("recursion limit") => None,
        Err(_) => Some(false),
    }
}

#[test]
fn accepts_what_rfc_8259_accepts() {
    for text in [
        "{}",
        "[]",
        " \n{\"a\" : [1, -2.5e+3, 0, 0.0, 1E2, true, false, null, \"x\"] } \r\n",
        "\"lone string\"",
        "-0",
        "[[[[]]],{}]",
        r#"{"k\"ey":"v\\a\/l\b\f\n\r\t\u00e9\ud83d\ude00"}"#,
        "{\"é\":\"ü\u{1F600}\"}",
        "[\"\u{7f}\"]",
    ] {
        assert_eq!(parse(text), Ok(()), "{text:?}");
    }
}

#[test]
fn refuses_what_rfc_8259_refuses() {
    for text in [
        "",
        "   ",
        "{",
        "[1,]",
        "{\"a\":1,}",
        "{\"a\" 1}",
        "{1:2}",
        "[01]",
        "[1.]",
        "[.5]",
        "[1e]",
        "[+1]",
        "[-]",
        "[tru]",
        "[truex]",
        "[nul]",
        "[\"a\"\"b\"]",
        "[\"a\" \"b\"]",
        "[1 2]",
        "{} {}",
        "[] x",
        "\"unclosed",
        "[\"tab\tinside\"]",
        "[\"\\x\"]",
        "[\"\\u12\"]",
        "[\"\\ud800\"]",
        "[\"\\udc00\"]",
        "[\"\\ud800\\u0041\"]",
        "[\"\\ud800\\ud800\"]",
        "[\\\"a\"]",
        "{\"a\":1]",
        "[1}",
        "]",
        "[1,2",
        "nan",
        "[1true]",
        "[\"a\"1]",
    ] {
        assert!(parse(text).is_err(), "accepted {text:?}");
        assert_eq!(
            serde_accepts(text),
            Some(false),
            "serde_json disagrees on {text:?}"
        );
    }
}

#[test]
fn invalid_utf8_is_refused_with_its_offset() {
    let mut index = Index::default();
    let arena = Arena::default();
    let err = index
        .parse(b"[\"ab\xff\"]", 64, &arena)
        .err()
        .expect("refused");
    assert_eq!(err.offset, 4);
    assert!(err.to_string().contains("UTF-8"));
}

#[test]
fn nesting_beyond_the_limit_is_refused() {
    let mut index = Index::default();
    let arena = Arena::default();
    let deep = format!("{}{}", "[".repeat(5), "]".repeat(5));
    assert!(index.parse(deep.as_bytes(), 5, &arena).is_ok());
    let err = index
        .parse(deep.as_bytes(), 4, &arena)
        .err()
        .expect("refused");
    assert!(err.to_string().contains("nesting deeper than 4"), "{err}");
}

#[test]
fn a_doc_walks_members_elements_and_exact_bytes() {
    let text = br#" {"a": 1.50 , "b":{"c":[true, null,"x\ty"]},"e\u0041":"\"q\"", "n":[] } "#;
    let mut index = Index::default();
    let arena = Arena::default();
    let doc = index.parse(text, 64, &arena).expect("valid");
    let root = doc.root();
    assert_eq!(doc.kind(root), Kind::Object);
    let mut seen = Vec::new();
    let close = doc.members(root, |k, v| {
        seen.push((k.to_string(), doc.raw(v).to_owned()))
    });
    assert_eq!(doc.raw(root).as_bytes(), &text[1..text.len() - 1]);
    assert_eq!(doc.after(root), close + 1);
    assert_eq!(
        seen,
        [
            ("a".to_string(), "1.50".to_string()),
            ("b".into(), r#"{"c":[true, null,"x\ty"]}"#.into()),
            ("eA".into(), r#""\"q\"""#.into()),
            ("n".into(), "[]".into()),
        ]
    );
    let mut strings = Vec::new();
    doc.members(root, |k, v| {
        if k == "eA" {
            strings.push(doc.str_at(v).unwrap().to_string());
        }
        if k == "b" {
            doc.members(v, |_, list| {
                doc.elements(list, |el| {
                    strings.push(format!("{:?}:{:?}", doc.kind(el), doc.str_at(el)))
                })
            });
        }
    });
    assert_eq!(
        strings,
        [
            "True:None".to_string(),
            "Null:None".into(),
            "String:Some(\"x\\ty\")".into(),
            "\"q\"".into(),
        ]
    );
}

/// Text that crosses 64-byte blocks at every offset: escapes, strings and
/// backslash runs split across the boundary.
#[test]
fn block_boundaries_change_nothing() {
    for pad in 0..70 {
        let text = format!(
            "{}[\"{}\\\\\",\"\\\"\\\\\\\"{}\", 12345, {{\"k\":\"\\u00e9\\ud83d\\ude00\"}}]",
            " ".repeat(pad),
            "a".repeat(pad % 7),
            "b".repeat(pad % 13)
        );
        let expected: serde_json::Value = serde_json::from_str(&text).unwrap();
        let mut index = Index::default();
        let arena = Arena::default();
        let doc = index.parse(text.as_bytes(), 64, &arena).expect("valid");
        let mut got = Vec::new();
        doc.elements(doc.root(), |el| match doc.kind(el) {
            Kind::String => got.push(serde_json::Value::from(doc.str_at(el).unwrap())),
            Kind::Object => {
                doc.members(el, |_, v| {
                    got.push(serde_json::Value::from(doc.str_at(v).unwrap()));
                });
            }
            _ => got.push(serde_json::from_str(doc.raw(el)).unwrap()),
        });
        let want = expected.as_array().unwrap();
        assert_eq!(got[..3], want[..3], "pad {pad}");
        assert_eq!(got[3], want[3]["k"], "pad {pad}");
    }
}

#[cfg(target_arch = "x86_64")]
#[test]
fn the_avx2_classifier_agrees_with_the_portable_one() {
    if !has_avx2() {
        return;
    }
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    for _ in 0..2000 {
        let mut block = [0u8; 64];
        for b in &mut block {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            // Mostly the interesting bytes, some of everything.
            *b = match state % 4 {
                0 => b"{}[]:,\"\\ \t\n\r\x01\x1fa0"[(state >> 8) as usize % 16],
                _ => (state >> 16) as u8,
            };
        }
        // SAFETY: checked above that the CPU has AVX2.
        let a = unsafe { avx2_classify(&block) };
        let p = classify_portable(&block);
        assert_eq!(
            (a.backslash, a.quote, a.whitespace, a.operator, a.control),
            (p.backslash, p.quote, p.whitespace, p.operator, p.control),
            "{block:?}"
        );
    }
}

proptest::proptest! {
    /// Random token soup: this index accepts exactly what serde_json accepts.
    #[test]
    fn agrees_with_serde_json(tokens in proptest::collection::vec(0usize..TOKENS.len(), 0..40)) {
        let text: String = tokens.iter().map(|&t| TOKENS[t]).collect();
        if let Some(valid) = serde_accepts(&text) {
            proptest::prop_assert_eq!(parse(&text).is_ok(), valid, "{:?}", text);
        }
    }

    /// Valid documents of random strings: every string reads back as serde_json reads it.
    #[test]
    fn strings_read_back_as_serde_json_reads_them(values in proptest::collection::vec(".{0,80}", 0..8)) {
        let text = serde_json::to_string(&values).unwrap();
        let mut index = Index::default();
        let arena = Arena::default();
        let doc = index.parse(text.as_bytes(), 64, &arena).unwrap();
        let mut got = Vec::new();
        doc.elements(doc.root(), |el| got.push(doc.str_at(el).unwrap().to_string()));
        proptest::prop_assert_eq!(got, values);
    }
}

const TOKENS: &[&str] = &[
    "{", "}", "[", "]", ":", ",", "\"", "\"k\"", "\"v\\n\"", "\\", "\\u00e9", "\\ud83d", "\\ude00",
    "1", "0", "-", ".", "e", "+", "9", "true", "false", "null", "nul", " ", "\n", "\t", "x", "é",
    "\"\\\"\"", "\u{1}",
];

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn avx2_classify(block: &[u8; 64]) -> Masks {
    // SAFETY: the caller checked the CPU has AVX2.
    unsafe { classify_avx2_inner(block) }
}

/// Stage 1 on CPUs without AVX2 (the portable classifier and prefix XOR over
/// every block) records what the AVX2 path records, on real-shaped text.
#[test]
fn the_portable_stage_1_finds_what_the_avx2_one_finds() {
    let text = format!(
        "{{\"Records\":[{}]}}",
        (0..40)
            .map(|i| {
                format!(
                    r#"{{"eventVersion":"1.08","eventName":"Get\"{i}\u00e9","requestParameters":{{"a":[1,-2.5e3,true,null,"\\\\"]}},"n": {i} }}"#
                )
            })
            .collect::<Vec<_>>()
            .join(",\n ")
    );
    let run = |avx2: bool| {
        let (mut pos, mut escapes) = (Vec::new(), Vec::new());
        let mut stage1 = Stage1::new();
        stage1.avx2 = avx2 && has_avx2();
        stage1
            .run(text.as_bytes(), &mut pos, &mut escapes)
            .expect("valid");
        (pos, escapes)
    };
    let (pos, escapes) = run(false);
    assert_eq!(run(true), (pos.clone(), escapes.clone()));
    assert!(pos.len() > 40 * 20 && escapes.len() >= 40 * 3);
}

/// Stage 1 looks at each run of `RUN` bytes for control characters
/// once, and checks the blocks of runs that have one. A control character
/// in any run, near or at a run's edges, must still be refused at its
/// offset, and whitespace control characters outside strings accepted, on
/// both classifiers.
#[test]
fn control_characters_are_found_in_every_run() {
    let clean: Vec<u8> = format!(
        "[{}]",
        (0..700)
            .map(|i| format!("\"{}\"", "a".repeat(60 + i % 17)))
            .collect::<Vec<_>>()
            .join(", ")
    )
    .into_bytes();
    assert!(clean.len() > 3 * RUN);
    let run = |avx2: bool, text: &[u8]| {
        let (mut pos, mut escapes) = (Vec::new(), Vec::new());
        let mut stage1 = Stage1::new();
        stage1.avx2 = avx2 && has_avx2();
        stage1.run(text, &mut pos, &mut escapes).map(|_| pos)
    };
    let clean_pos = run(false, &clean).expect("valid");
    let near = |target: usize, wanted: u8| {
        (target..clean.len())
            .find(|&i| clean[i] == wanted)
            .expect("found")
    };
    let mut places = Vec::new();
    for target in [0, RUN - 1, RUN, 2 * RUN + 63, clean.len() - 80] {
        places.push((near(target, b'a'), true));
        places.push((near(target, b' '), false));
    }
    for avx2 in [false, true] {
        assert_eq!(run(avx2, &clean).expect("valid"), clean_pos);
        for &(at, in_string) in &places {
            let mut text = clean.clone();
            text[at] = 0x01;
            let err = run(avx2, &text).expect_err("a control character");
            assert_eq!(err.offset, at, "avx2 {avx2}, at {at}");
            let what = if in_string { "inside" } else { "outside" };
            assert!(err.what.contains(what), "{err}");
            if !in_string {
                text[at] = b'\n';
                assert_eq!(run(avx2, &text).expect("whitespace"), clean_pos);
            }
        }
    }
}

/// Stage 1 checks UTF-8 a run at a time, cutting each piece at a character
/// boundary: characters split across a run's end must be accepted, and
/// invalid bytes there refused at the offset `std` gives, on both
/// classifiers.
#[test]
fn utf8_is_checked_across_run_boundaries() {
    let chars = ["é", "€", "😀"];
    let bad: [&[u8]; 5] = [
        b"\x80",
        b"\xe2\x82",
        b"\xf0\x9f\x98",
        b"\x80\x80\x80\x80\x80",
        b"\xc0\xaf",
    ];
    let run = |avx2: bool, text: &[u8]| {
        let (mut pos, mut escapes) = (Vec::new(), Vec::new());
        let mut stage1 = Stage1::new();
        stage1.avx2 = avx2 && has_avx2();
        stage1.run(text, &mut pos, &mut escapes).map(str::len)
    };
    for boundary in [RUN, 2 * RUN] {
        for shift in 0..5 {
            let lead = boundary - shift;
            for ch in chars {
                let mut text = format!("[\"{}", "a".repeat(lead - 2));
                text.push_str(&ch.repeat(3));
                text.push_str("\"]");
                for avx2 in [false, true] {
                    assert_eq!(run(avx2, text.as_bytes()), Ok(text.len()), "{ch} at {lead}");
                }
            }
            for seq in bad {
                let mut text = b"[\"".to_vec();
                text.resize(lead, b'a');
                text.extend_from_slice(seq);
                text.extend_from_slice(b"bc\"]");
                let want = std::str::from_utf8(&text).unwrap_err().valid_up_to();
                for avx2 in [false, true] {
                    let err = run(avx2, &text).expect_err("invalid UTF-8");
                    assert_eq!(err.offset, want, "{seq:?} at {lead}, avx2 {avx2}");
                    assert!(err.what.contains("UTF-8"), "{err}");
                }
            }
        }
    }
}
