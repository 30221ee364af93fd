//! The number parsing behind inspect's `normalize_number` for words that
//! Python's `str.isnumeric` accepts: Python's `float()` as extended by
//! inspect's `str_to_float` (a superscript exponent: `5²` is 25), then, when
//! that raises, inspect's `unicode_number_to_float` (a vulgar fraction after
//! the digits: `2½` is 2.5; digits of any script; a lone numeric symbol: `Ⅻ`
//! is 12). This is the pinned inspect (the 0.3.145 fork) the reference
//! scores GSM8K and AIME with; the `endswith` rule then applies to the
//! normalised number, so `2½` matches target `5` there and here.
//!
//! Only what can reach these parsers is reproduced: a word here has no
//! whitespace, no sign and no separators (the caller split on whitespace and
//! stripped `$ , £ € * _`), so it is numeric characters and dots.
//!
//! Hand-written: no maintained Rust crate exposes Unicode's numeric values
//! (Python's `unicodedata.decimal`/`digit`/`numeric`). Decimal digits are
//! computed from the general category (Unicode encodes them only in complete
//! runs 0–9, so a digit's value is its offset in its run); the other numeric
//! characters come from [`symbol_value`]'s table of the Latin-1 and Number
//! Forms blocks and the enclosed digits. A numeric character outside the
//! table (a CJK numeral, an Aegean number) makes the word unparsable, and
//! the caller keeps it as written, where the reference would parse it: the
//! deviation docs/benchmarks.md lists.

use regex::Regex;
use std::sync::OnceLock;

const SUPERSCRIPTS: [char; 10] = ['⁰', '¹', '²', '³', '⁴', '⁵', '⁶', '⁷', '⁸', '⁹'];

/// The value of `word` as the reference's `normalize_number` computes it, or
/// None where it raises (the caller keeps the word unnormalised).
pub fn parse(word: &str) -> Option<f64> {
    str_to_float(word).or_else(|| unicode_number_to_float(word)).filter(|x| x.is_finite())
}

fn is_decimal_category(c: char) -> bool {
    static R: OnceLock<Regex> = OnceLock::new();
    let mut buf = [0u8; 4];
    R.get_or_init(|| Regex::new(r"^\p{Nd}$").expect("static regex")).is_match(c.encode_utf8(&mut buf))
}

/// `unicodedata.decimal`: the value of a decimal digit of any script.
fn decimal(c: char) -> Option<u32> {
    if let Some(d) = c.to_digit(10) {
        return Some(d);
    }
    if !is_decimal_category(c) {
        return None;
    }
    // Runs of ten can be adjacent (the mathematical digits are five runs in
    // a row); every run starts at its zero, so the offset from the start of
    // the contiguous stretch, mod 10, is the value.
    let mut start = c as u32;
    while let Some(p) = start.checked_sub(1).and_then(char::from_u32).filter(|&p| is_decimal_category(p)) {
        start = p as u32;
    }
    Some((c as u32 - start) % 10)
}

/// `unicodedata.digit`: decimal digits, and the characters whose numeric
/// type is Digit (superscripts, subscripts, enclosed digits 0–9).
fn digit(c: char) -> Option<u32> {
    decimal(c).or_else(|| {
        let v = symbol_value(c)?;
        (v.fract() == 0.0 && (0.0..10.0).contains(&v) && !is_fraction_or_roman(c)).then_some(v as u32)
    })
}

/// `unicodedata.numeric`.
fn numeric(c: char) -> Option<f64> {
    decimal(c).map(f64::from).or_else(|| symbol_value(c))
}

/// Fractions and Roman numerals have a numeric value but no digit value.
fn is_fraction_or_roman(c: char) -> bool {
    matches!(c, '¼'..='¾' | '\u{2150}'..='\u{218B}')
}

/// Numeric values of the non-decimal numeric characters a model plausibly
/// writes: Latin-1's superscripts and fractions, Number Forms (fractions,
/// Roman numerals), super- and subscripts, and the enclosed numbers.
fn symbol_value(c: char) -> Option<f64> {
    let u = c as u32;
    let from = |base: u32, first: f64| Some(first + f64::from(u - base));
    match c {
        '¹' => Some(1.0),
        '²' => Some(2.0),
        '³' => Some(3.0),
        '¼' => Some(0.25),
        '½' => Some(0.5),
        '¾' => Some(0.75),
        '⁰' => Some(0.0),
        '\u{2074}'..='\u{2079}' => from(0x2074, 4.0),
        '\u{2080}'..='\u{2089}' => from(0x2080, 0.0),
        '⅐' => Some(1.0 / 7.0),
        '⅑' => Some(1.0 / 9.0),
        '⅒' => Some(0.1),
        '⅓' => Some(1.0 / 3.0),
        '⅔' => Some(2.0 / 3.0),
        '\u{2155}'..='\u{2158}' => Some(f64::from(u - 0x2154) / 5.0),
        '⅙' => Some(1.0 / 6.0),
        '⅚' => Some(5.0 / 6.0),
        '⅛' => Some(0.125),
        '⅜' => Some(0.375),
        '⅝' => Some(0.625),
        '⅞' => Some(0.875),
        '⅟' => Some(1.0),
        '\u{2160}'..='\u{216B}' => from(0x2160, 1.0),
        '\u{2170}'..='\u{217B}' => from(0x2170, 1.0),
        'Ⅼ' | 'ⅼ' | 'ↆ' => Some(50.0),
        'Ⅽ' | 'ⅽ' => Some(100.0),
        'Ⅾ' | 'ⅾ' => Some(500.0),
        'Ⅿ' | 'ⅿ' | 'ↀ' => Some(1000.0),
        'ↁ' => Some(5000.0),
        'ↂ' => Some(10000.0),
        'ↅ' => Some(6.0),
        'ↇ' => Some(50000.0),
        'ↈ' => Some(100000.0),
        '↉' => Some(0.0),
        // ①–⑳, ⑴–⒇, ⒈–⒛: three runs of 1–20.
        '\u{2460}'..='\u{2473}' => from(0x2460, 1.0),
        '\u{2474}'..='\u{2487}' => from(0x2474, 1.0),
        '\u{2488}'..='\u{249B}' => from(0x2488, 1.0),
        '⓪' | '⓿' => Some(0.0),
        '\u{24EB}'..='\u{24F4}' => from(0x24EB, 11.0),
        '\u{24F5}'..='\u{24FE}' => from(0x24F5, 1.0),
        '\u{2776}'..='\u{277F}' => from(0x2776, 1.0),
        '\u{2780}'..='\u{2789}' => from(0x2780, 1.0),
        '\u{278A}'..='\u{2793}' => from(0x278A, 1.0),
        _ => None,
    }
}

/// Python's `float()` on a word of numeric characters and dots: decimal
/// digits of any script and one dot (`5.` and `.5` included).
fn py_float(s: &str) -> Option<f64> {
    let ascii: String = s.chars().map(|c| if c == '.' { Some('.') } else { decimal(c).and_then(|d| char::from_digit(d, 10)) }).collect::<Option<_>>()?;
    ascii.parse().ok()
}

/// Python's `int()` on the same: decimal digits of any script only.
fn py_int(s: &str) -> Option<f64> {
    if s.is_empty() {
        return None;
    }
    s.chars().try_fold(0.0, |acc, c| decimal(c).map(|d| acc * 10.0 + f64::from(d)))
}

fn superscript_to_ascii(c: char) -> char {
    SUPERSCRIPTS.iter().position(|&s| s == c).and_then(|i| char::from_digit(i as u32, 10)).unwrap_or(c)
}

/// inspect's `str_to_float`: everything from the first superscript digit on
/// is an exponent (an empty base is 1), the rest is `float()`.
fn str_to_float(s: &str) -> Option<f64> {
    let split = s.char_indices().find(|(_, c)| SUPERSCRIPTS.contains(c)).map_or(s.len(), |(i, _)| i);
    let (base, exponent) = s.split_at(split);
    let base = if base.is_empty() { 1.0 } else { py_float(base)? };
    if exponent.is_empty() {
        return Some(base);
    }
    let e = py_int(&exponent.chars().map(superscript_to_ascii).collect::<String>())?;
    Some(base.powf(e))
}

/// inspect's `unicode_number_to_float`, for words without signs or spaces:
/// a lone numeric symbol; else a trailing superscript exponent applied to a
/// base that may end in one vulgar fraction.
fn unicode_number_to_float(s: &str) -> Option<f64> {
    let mut chars = s.chars();
    if let (Some(c), None) = (chars.next(), chars.next()) {
        return numeric(c);
    }
    let exp_start = s.char_indices().rev().take_while(|(_, c)| SUPERSCRIPTS.contains(c)).last().map(|(i, _)| i);
    let (base, exp) = match exp_start {
        Some(i) if i > 0 => (&s[..i], Some(py_int(&s[i..].chars().map(superscript_to_ascii).collect::<String>())?)),
        _ => (s, None),
    };
    let value = with_fraction(base)?;
    Some(exp.map_or(value, |e| value.powf(e)))
}

/// `_parse_number_with_optional_vulgar_fraction`: at most one character
/// worth less than 1, and nothing after it.
fn with_fraction(s: &str) -> Option<f64> {
    let fractions: Vec<(usize, f64)> = s.char_indices().filter_map(|(i, c)| numeric(c).filter(|v| *v > 0.0 && *v < 1.0).map(|v| (i, v))).collect();
    match fractions.as_slice() {
        [] => core(s),
        [(i, v)] => {
            let (head, tail) = (&s[..*i], &s[*i..]);
            if tail.chars().count() != 1 {
                return None;
            }
            Some(if head.is_empty() { 0.0 } else { core(head)? } + v)
        }
        _ => None,
    }
}

/// `_parse_generic_unicode_digits`, then a lone numeric symbol: digits of
/// any script and digit-valued symbols (`²`, `①`), one dot as the decimal
/// mark.
fn core(s: &str) -> Option<f64> {
    let mut out = String::new();
    let mut seen_dot = false;
    for c in s.chars() {
        if c == '.' {
            if seen_dot {
                return None;
            }
            seen_dot = true;
            out.push('.');
        } else {
            out.push(char::from_digit(digit(c)?, 10)?);
        }
    }
    if out.chars().all(|c| c == '.') {
        let mut cs = s.chars();
        return match (cs.next(), cs.next()) {
            (Some(c), None) => numeric(c),
            _ => None,
        };
    }
    out.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_digits_of_any_script() {
        assert_eq!(decimal('7'), Some(7));
        assert_eq!(decimal('٣'), Some(3)); // Arabic-Indic
        assert_eq!(decimal('९'), Some(9)); // Devanagari
        assert_eq!(decimal('０'), Some(0)); // fullwidth
        assert_eq!(decimal('\u{1D7D9}'), Some(1)); // mathematical double-struck one, the second of five adjacent runs
        assert_eq!(decimal('\u{1D7FF}'), Some(9));
        assert_eq!(decimal('²'), None);
        assert_eq!(decimal('½'), None);
        assert_eq!(digit('²'), Some(2));
        assert_eq!(digit('③'), Some(3));
        assert_eq!(digit('⑫'), None);
        assert_eq!(digit('½'), None);
        assert_eq!(digit('Ⅲ'), None);
    }

    /// Values as Python 3 with the pinned inspect gives them (`float()`,
    /// `str_to_float`, `unicode_number_to_float`).
    #[test]
    fn reference_values() {
        let cases: &[(&str, Option<f64>)] = &[
            ("42", Some(42.0)),
            ("5.", Some(5.0)),
            (".5", Some(0.5)),
            ("١٢٣", Some(123.0)),
            ("٣.٥", Some(3.5)),
            ("5²", Some(25.0)),
            ("1.5²", Some(2.25)),
            ("²", Some(1.0)), // str_to_float: empty base is 1, 1**2
            ("10³", Some(1000.0)),
            ("2½", Some(2.5)),
            ("½", Some(0.5)),
            ("12¾", Some(12.75)),
            ("2½²", Some(6.25)),
            ("Ⅻ", Some(12.0)),
            ("ⅻ", Some(12.0)),
            ("⑳", Some(20.0)),
            ("①②", Some(12.0)),
            ("½½", None),
            ("½2", None),
            ("1..2", None),
            ("ⅫⅫ", None),
        ];
        for (word, want) in cases {
            assert_eq!(parse(word), *want, "{word}");
        }
    }
}
