use std::collections::BTreeMap;
use std::fmt::Debug;

use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

use super::*;

#[derive(Debug, PartialEq, Serialize, Deserialize)]
enum Shape {
    Empty,
    Blob(ByteBuf),
    Pair(u16, String),
    Named { id: i64, tags: Vec<String> },
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Everything {
    flag: bool,
    small: (i8, u8, i16, u16, i32, u32),
    wide: (i64, u64, i128, u128),
    floats: (f32, f64),
    letter: char,
    text: String,
    bytes: ByteBuf,
    plain: Vec<u8>,
    maybe: Option<ByteBuf>,
    nothing: Option<u8>,
    unit: (),
    shapes: Vec<Shape>,
    map: BTreeMap<String, ByteBuf>,
}

fn everything() -> Everything {
    let big =
        |seed: u8, len: usize| ByteBuf::from((0..len).map(|i| seed ^ i as u8).collect::<Vec<_>>());
    Everything {
        flag: true,
        small: (-5, 250, -30_000, 65_000, i32::MIN, u32::MAX),
        wide: (i64::MIN, u64::MAX, i128::MIN, u128::MAX),
        floats: (1.5, -2.25e300),
        letter: 'ß',
        text: "ünïcode ".repeat(5000),
        bytes: big(1, 100_000),
        plain: (0..3000).map(|i| i as u8).collect(),
        maybe: Some(big(2, 70_000)),
        nothing: None,
        unit: (),
        shapes: vec![
            Shape::Empty,
            Shape::Blob(big(3, 65_536)),
            Shape::Pair(7, "x".repeat(90_000)),
            Shape::Named {
                id: -1,
                tags: vec!["a".into(), String::new()],
            },
        ],
        map: [
            ("k".to_owned(), big(4, 80_000)),
            ("z".to_owned(), big(5, 3)),
        ]
        .into_iter()
        .collect(),
    }
}

/// `whole` with the byte ranges `cuts` (in order, not overlapping) moved apart.
fn cut(whole: &[u8], cuts: &[(usize, usize)]) -> (Vec<u8>, Vec<Apart>) {
    let mut rest = Vec::new();
    let mut apart = Vec::new();
    let mut from = 0;
    for &(start, end) in cuts {
        rest.extend_from_slice(&whole[from..start]);
        apart.push(Apart {
            at: rest.len(),
            bytes: whole[start..end].to_vec(),
        });
        from = end;
    }
    rest.extend_from_slice(&whole[from..]);
    (rest, apart)
}

fn decode_cut<T: DeserializeOwned>(whole: &[u8], cuts: &[(usize, usize)]) -> Result<T> {
    let (rest, apart) = cut(whole, cuts);
    decode(Encoded::with_apart(&rest, apart).unwrap())
}

/// The ranges of `whole` that an encoder's sink sees as single writes of at least `min`
/// bytes: what a strategy sends apart.
fn large_writes(value: &impl Serialize, min: usize) -> Vec<(usize, usize)> {
    struct Spans {
        at: usize,
        min: usize,
        spans: Vec<(usize, usize)>,
    }
    impl crate::ByteSink for Spans {
        fn put(&mut self, bytes: &[u8]) -> std::result::Result<(), crate::SinkRefused> {
            if bytes.len() >= self.min {
                self.spans.push((self.at, self.at + bytes.len()));
            }
            self.at += bytes.len();
            Ok(())
        }
    }
    let mut spans = Spans {
        at: 0,
        min,
        spans: Vec::new(),
    };
    crate::sink::encode_to(value, &mut spans).unwrap();
    spans.spans
}

/// A small deterministic generator, so that failures reproduce.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1);
        ((self.0 >> 33) as usize) % n.max(1)
    }
}

fn random_cuts(len: usize, rng: &mut Lcg) -> Vec<(usize, usize)> {
    let mut cuts = Vec::new();
    let mut at = rng.below(64);
    while at < len {
        let span = if rng.below(2) == 0 { 8 } else { 50_000 };
        let end = (at + 1 + rng.below(span)).min(len);
        cuts.push((at, end));
        let gap = if rng.below(2) == 0 { 3 } else { 40_000 };
        at = end + rng.below(gap);
    }
    cuts
}

fn check_every_cut<T: Serialize + DeserializeOwned + PartialEq + Debug>(value: &T) {
    let whole = postcard::to_stdvec(value).unwrap();
    let large = large_writes(value, 1 << 16);
    assert_eq!(
        &decode_cut::<T>(&whole, &large).unwrap(),
        value,
        "cut at its large writes"
    );
    // Cuts one byte off from the byte strings, either way, at either end.
    for (grow_start, grow_end) in [(0, 1), (0, -1), (1, 0), (-1, 0)] {
        let shifted: Vec<(usize, usize)> = large
            .iter()
            .map(|&(start, end)| {
                let start = start.saturating_add_signed(-grow_start);
                let end = end.saturating_add_signed(grow_end).min(whole.len());
                (start, end)
            })
            .collect();
        let decoded = decode_cut::<T>(&whole, &shifted);
        assert!(decoded.as_ref() == Ok(value), "cuts {shifted:?}");
    }
    let mut rng = Lcg(7);
    for round in 0..40 {
        let cuts = random_cuts(whole.len(), &mut rng);
        let decoded = decode_cut::<T>(&whole, &cuts);
        assert!(
            decoded.as_ref() == Ok(value),
            "round {round}: cuts {cuts:?}"
        );
    }
    assert_eq!(
        &decode_cut::<T>(&whole, &[(0, whole.len())]).unwrap(),
        value
    );
}

#[test]
fn decodes_what_postcard_encodes_however_it_is_cut() {
    check_every_cut(&everything());
    check_every_cut(&(ByteBuf::from(vec![9; 1 << 17]), "tail".to_owned()));
    check_every_cut(&Vec::<Shape>::new());
}

#[test]
fn a_byte_string_sent_apart_is_handed_over_without_a_copy() {
    let value = (5u8, ByteBuf::from(vec![1u8; 1 << 17]), "s".repeat(1 << 17));
    let whole = postcard::to_stdvec(&value).unwrap();
    let large = large_writes(&value, 1 << 16);
    assert_eq!(large.len(), 2, "both strings are single writes");
    let (rest, apart) = cut(&whole, &large);
    let addresses: Vec<*const u8> = apart.iter().map(|gap| gap.bytes.as_ptr()).collect();
    let decoded: (u8, ByteBuf, String) =
        decode(Encoded::with_apart(&rest, apart).unwrap()).unwrap();
    assert_eq!(decoded, value);
    assert_eq!(
        decoded.1.as_ptr(),
        addresses[0],
        "the ByteBuf is the piece itself"
    );
    assert_eq!(
        decoded.2.as_ptr(),
        addresses[1],
        "the String is the piece itself"
    );
}

#[test]
fn bad_encodings_are_errors() {
    let whole = postcard::to_stdvec(&(1u32, ByteBuf::from(vec![3u8; 100]))).unwrap();
    let short = &whole[..whole.len() - 1];
    let error = decode_cut::<(u32, ByteBuf)>(short, &[(0, 1)]).unwrap_err();
    assert!(error.to_string().contains("ended early"), "{error}");

    let mut extra = whole.clone();
    extra.extend_from_slice(b"more");
    let at = extra.len() - 4;
    let error = decode_cut::<(u32, ByteBuf)>(&extra, &[(at, extra.len())]).unwrap_err();
    assert!(error.to_string().contains("left over"), "{error}");

    let not_utf8 = postcard::to_stdvec(&ByteBuf::from(vec![0xff; 10])).unwrap();
    assert!(decode_cut::<String>(&not_utf8, &[(1, 11)]).is_err());
    let bad_bool = [2u8, 0];
    assert!(decode_cut::<(bool, u8)>(&bad_bool, &[(1, 2)]).is_err());
    let overlong = [0xffu8, 0xff, 0xff, 0];
    assert!(decode_cut::<(u16, u8)>(&overlong, &[(3, 4)]).is_err());

    // A length near usize::MAX once every piece is read: an error, not an overflow.
    let mut huge = vec![0xffu8; 9];
    huge.push(0x01);
    huge.push(0);
    let error = decode_cut::<(ByteBuf, u8)>(&huge, &[(0, 1)]).unwrap_err();
    assert!(error.to_string().contains("ended early"), "{error}");
}

#[test]
fn empty_pieces_at_the_end_are_accepted_as_postcard_accepts_them() {
    let whole = postcard::to_stdvec(&(7u32, ByteBuf::from(vec![3u8; 10]))).unwrap();
    let end = whole.len();
    let decoded: (u32, ByteBuf) = decode_cut(&whole, &[(1, 3), (end, end), (end, end)]).unwrap();
    assert_eq!(decoded, (7, ByteBuf::from(vec![3u8; 10])));
}

#[test]
fn many_one_byte_pieces_decode() {
    // A hostile worker's 16,000 one-byte offers: every byte its own piece.
    let value = ByteBuf::from((0..16_000u32).map(|i| i as u8).collect::<Vec<_>>());
    let whole = postcard::to_stdvec(&value).unwrap();
    let cuts: Vec<_> = (2..whole.len()).map(|at| (at, at + 1)).collect();
    assert_eq!(decode_cut::<ByteBuf>(&whole, &cuts).unwrap(), value);
}
