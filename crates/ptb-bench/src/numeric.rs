//! inspect_ai's `match(numeric=True)` scorer at location `end`, as shipped in
//! the inspect version the reference evaluates with (0.3.145 fork; later
//! inspect releases changed this code, so we reproduce the pinned behaviour,
//! quirks included: e.g. `endswith` lets `170` match target `70`).

use regex::Regex;
use std::sync::OnceLock;

/// The result of matching one completion against one target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatchOutcome {
    /// What the scorer extracted (the normalised last number on the numeric path).
    pub answer: String,
    pub correct: bool,
}

fn re(cell: &'static OnceLock<Regex>, pat: &str) -> &'static Regex {
    cell.get_or_init(|| Regex::new(pat).expect("static regex"))
}

/// `re.sub(r"\\boxed\{(.+)\}", r"\1", answer)` from the reference's AIME task:
/// greedy, within one line, every occurrence.
pub fn strip_boxed(s: &str) -> String {
    static R: OnceLock<Regex> = OnceLock::new();
    re(&R, r"\\boxed\{(.+)\}").replace_all(s, "$1").into_owned()
}

/// Python's `str.isnumeric()`: non-empty and every char has a numeric value.
/// `char::is_numeric` covers the Unicode categories Nd/Nl/No, which is what
/// Python uses except for a few CJK ideographs; those never occur in targets.
fn py_isnumeric(s: &str) -> bool {
    !s.is_empty() && s.chars().all(char::is_numeric)
}

/// Python's `\d` (Unicode decimal digit, category Nd).
fn py_is_digit(c: char) -> bool {
    static R: OnceLock<Regex> = OnceLock::new();
    let mut buf = [0u8; 4];
    re(&R, r"^\p{Nd}$").is_match(c.encode_utf8(&mut buf))
}

/// `strip_numeric_punctuation`: drop `$ , £ € * _`, then any `.` not followed
/// by a digit (a sentence full stop, not a decimal point).
pub fn strip_numeric_punctuation(s: &str) -> String {
    let kept: Vec<char> = s.chars().filter(|c| !matches!(c, '$' | ',' | '£' | '€' | '*' | '_')).collect();
    let mut out = String::with_capacity(kept.len());
    for (i, &c) in kept.iter().enumerate() {
        if c == '.' && !kept.get(i + 1).is_some_and(|&n| py_is_digit(n)) {
            continue;
        }
        out.push(c);
    }
    out
}

/// `strip_punctuation`: strip ASCII whitespace and punctuation from both ends.
fn strip_punctuation(s: &str) -> &str {
    s.trim_matches(|c: char| c.is_ascii_punctuation() || c.is_ascii_whitespace() || c == '\x0b' || c == '\x0c')
}

/// Python's `format(x, ".5g")`.
pub fn format_g5(x: f64) -> String {
    format_g(x, 5)
}

fn format_g(x: f64, precision: usize) -> String {
    if x.is_nan() {
        return "nan".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if x == 0.0 {
        return if x.is_sign_negative() { "-0".into() } else { "0".into() };
    }
    let p = precision.max(1);
    // Round to p significant digits first: the exponent after rounding decides
    // between fixed and scientific notation, exactly as Python does.
    let sci = format!("{:.*e}", p - 1, x);
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if exp < -4 || exp >= p as i32 {
        let m = trim_zeros(mantissa);
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{m}e{sign}{:02}", exp.abs())
    } else {
        let decimals = (p as i32 - 1 - exp).max(0) as usize;
        trim_zeros(&format!("{:.*}", decimals, x)).to_string()
    }
}

fn trim_zeros(s: &str) -> &str {
    if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.') } else { s }
}

/// `normalize_number`: numbers become their `.5g` form, anything else is kept.
/// A word Python calls numeric but `float()` rejects (`2½`, `5²`, `١٢`) is
/// read as the pinned inspect reads it (`unicode_number::parse`); one that
/// inspect could not read either is kept as written.
pub fn normalize_number(word: &str) -> String {
    if !py_isnumeric(&word.replace('.', "")) {
        return word.to_string();
    }
    match crate::unicode_number::parse(word) {
        Some(x) => format_g5(x),
        None => word.to_string(),
    }
}

/// `match_str(value, target, location="end", ignore_case=True, numeric=True)`.
pub fn match_numeric_end(completion: &str, target: &str) -> MatchOutcome {
    let v = completion.trim().to_lowercase();
    let t = target.trim().to_lowercase();
    if py_isnumeric(&t) {
        let v = strip_numeric_punctuation(&v);
        let t = normalize_number(&strip_numeric_punctuation(&t));
        static WS: OnceLock<Regex> = OnceLock::new();
        let words: Vec<&str> = re(&WS, r"\s+").split(&v).collect();
        // The last word that looks like a number, else the last word.
        let word = words.iter().rev().find(|w| py_isnumeric(&w.replace('.', ""))).or(words.last()).copied().unwrap_or("");
        let answer = normalize_number(word);
        let correct = answer.ends_with(&t);
        MatchOutcome { answer, correct }
    } else {
        // Non-numeric targets (e.g. "-3", "1,000") take inspect's text path.
        let answer = completion.trim().to_string();
        let correct = strip_punctuation(&v).ends_with(strip_punctuation(&t));
        MatchOutcome { answer, correct }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_g_format() {
        assert_eq!(format_g5(18.0), "18");
        assert_eq!(format_g5(0.5), "0.5");
        assert_eq!(format_g5(123456.0), "1.2346e+05");
        assert_eq!(format_g5(99999.5), "1e+05");
        assert_eq!(format_g5(0.0001), "0.0001");
        assert_eq!(format_g5(0.00001), "1e-05");
        assert_eq!(format_g5(1.234567), "1.2346");
    }

    #[test]
    fn last_number_with_punctuation() {
        assert!(match_numeric_end("so the total is $1,234.", "1234").correct);
        assert!(match_numeric_end("ANSWER: **18**", "18").correct);
        assert!(match_numeric_end("ANSWER: 18.0", "18").correct);
        assert!(!match_numeric_end("ANSWER: 18\nactually 19", "18").correct);
        assert_eq!(match_numeric_end("no number here", "5").answer, "here");
    }

    #[test]
    fn endswith_quirk_is_kept() {
        assert!(match_numeric_end("ANSWER: 170", "70").correct);
    }

    #[test]
    fn negative_targets_use_text_path() {
        assert!(match_numeric_end("ANSWER: -3", "-3").correct);
        assert!(!match_numeric_end("ANSWER: 4", "-3").correct);
    }

    /// The reference's suffix rule applies to the number inspect reads from
    /// a word Python's `float()` rejects: `2½` is 2.5, which ends with `5`.
    #[test]
    fn unicode_numbers_follow_the_suffix_rule() {
        assert_eq!(match_numeric_end("ANSWER: 2½", "5"), MatchOutcome { answer: "2.5".into(), correct: true });
        assert!(!match_numeric_end("ANSWER: 2½", "2").correct);
        assert!(match_numeric_end("so x = 5²", "25").correct);
        assert!(match_numeric_end("الجواب ١٨", "18").correct);
        assert!(match_numeric_end("ANSWER: Ⅻ", "12").correct);
        // Unreadable for inspect too: kept as written, so it cannot match.
        assert_eq!(match_numeric_end("ANSWER: ½½", "1").answer, "½½");
    }

    #[test]
    fn boxed_is_unwrapped() {
        assert_eq!(strip_boxed(r"so \boxed{70}."), "so 70.");
    }
}
