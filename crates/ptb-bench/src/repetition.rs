//! `limit_repetitions` from the reference's Arena-Hard and HealthBench
//! scripts: answers stuck in a loop are cut to at most `max_reps` repeats
//! before the judge sees them, so the judge's verdicts (and the cost of
//! judging) depend on it.
//!
//! The reference's third pass uses a backreference regex,
//! `(.{min,max}?)\1{max_reps,}` with DOTALL, which the `regex` crate cannot
//! express; `limit_regex_patterns` reproduces Python's leftmost, lazy-unit,
//! greedy-repeat matching by hand.

pub const MAX_REPETITIONS: usize = 5;

/// Apply the three passes until nothing changes (at most 10 rounds).
pub fn limit_repetitions(text: &str, max_reps: usize) -> String {
    let mut text = text.to_string();
    for _ in 0..10 {
        let (t1, m1) = limit_consecutive_lines(&text, max_reps);
        let (t2, m2) = limit_block_patterns(&t1, max_reps);
        let (t3, m3) = limit_regex_patterns(&t2, max_reps);
        text = t3;
        if !(m1 || m2 || m3) {
            break;
        }
    }
    text
}

fn limit_consecutive_lines(txt: &str, max_reps: usize) -> (String, bool) {
    let lines: Vec<&str> = txt.split('\n').collect();
    let mut out: Vec<&str> = Vec::with_capacity(lines.len());
    let mut modified = false;
    let mut i = 0;
    while i < lines.len() {
        let mut j = i + 1;
        while j < lines.len() && lines[j] == lines[i] {
            j += 1;
        }
        let count = j - i;
        if count > max_reps {
            modified = true;
        }
        out.extend(std::iter::repeat_n(lines[i], count.min(max_reps)));
        i = j;
    }
    (out.join("\n"), modified)
}

/// Python's `str.strip()` truthiness and value.
fn stripped(s: &str) -> &str {
    s.trim()
}

fn limit_block_patterns(txt: &str, max_reps: usize) -> (String, bool) {
    let lines: Vec<&str> = txt.split('\n').collect();
    let n = lines.len();
    for block_size in 2..(n / 5 + 1).min(30) {
        let mut i = 0;
        while i + block_size <= n {
            let block = &lines[i..i + block_size];
            let mut count = 1;
            let mut j = i + block_size;
            while j + block_size <= n && &lines[j..j + block_size] == block {
                count += 1;
                j += block_size;
            }
            if count > max_reps {
                let mut out: Vec<&str> = lines[..i].to_vec();
                for _ in 0..max_reps {
                    out.extend_from_slice(block);
                }
                let remaining = &lines[j..];
                let partial = !remaining.is_empty()
                    && remaining.iter().enumerate().all(|(k, rem)| {
                        if k >= block.len() {
                            return false;
                        }
                        let b = block[k];
                        *rem == b || (!stripped(rem).is_empty() && b.starts_with(stripped(rem))) || (!stripped(b).is_empty() && rem.starts_with(stripped(b)))
                    });
                let last_end = if partial { n } else { j };
                out.extend_from_slice(&lines[last_end..]);
                return (out.join("\n"), true);
            }
            i += 1;
        }
    }
    (txt.to_string(), false)
}

/// One `re.sub(r"(.{lo,hi}?)\1{reps,}", unit * reps, txt, flags=DOTALL)`.
fn sub_repeats(chars: &[char], lo: usize, hi: usize, reps: usize) -> Option<Vec<char>> {
    let n = chars.len();
    let mut out = Vec::with_capacity(n);
    let mut changed = false;
    let mut i = 0;
    while i < n {
        let mut hit = None;
        // Lazy unit: the shortest length that is followed by >= reps copies.
        for len in lo..=hi {
            if i + len * (reps + 1) > n {
                break;
            }
            let unit = &chars[i..i + len];
            let mut copies = 0;
            let mut j = i + len;
            while j + len <= n && &chars[j..j + len] == unit {
                copies += 1;
                j += len;
            }
            if copies >= reps {
                hit = Some((len, j));
                break;
            }
        }
        match hit {
            Some((len, end)) => {
                for _ in 0..reps {
                    out.extend_from_slice(&chars[i..i + len]);
                }
                changed = true;
                i = end;
            }
            None => {
                out.push(chars[i]);
                i += 1;
            }
        }
    }
    changed.then_some(out)
}

fn limit_regex_patterns(txt: &str, max_reps: usize) -> (String, bool) {
    let mut chars: Vec<char> = txt.chars().collect();
    let mut modified = false;
    loop {
        let mut changed = false;
        for (lo, hi) in [(3, 30), (30, 60), (60, 120), (120, 250), (250, 500)] {
            if let Some(next) = sub_repeats(&chars, lo, hi, max_reps) {
                chars = next;
                changed = true;
                modified = true;
            }
        }
        if !changed {
            break;
        }
    }
    (chars.into_iter().collect(), modified)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consecutive_lines_are_capped() {
        let t = ["a"; 9].join("\n") + "\nb";
        assert_eq!(limit_repetitions(&t, 5), ["a"; 5].join("\n") + "\nb");
    }

    #[test]
    fn inline_loops_are_capped() {
        let t = format!("start {} end", "la la ".repeat(20));
        let out = limit_repetitions(&t, 5);
        assert!(out.len() < t.len());
        assert!(out.starts_with("start ") && out.ends_with(" end"));
    }

    #[test]
    fn normal_text_is_untouched() {
        let t = "A short poem.\n\nRoses are red,\nviolets are blue.";
        assert_eq!(limit_repetitions(t, 5), t);
    }
}
