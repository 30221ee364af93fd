//! Durations (`10h`, `1h30m`, `45s`) and sizes (`64G`, `512M`) as people write them.

use std::time::Duration;

/// `10h`, `30m`, `45s`, `1h30m`, `90` (seconds).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if let Ok(n) = s.parse::<u64>() {
        return Ok(Duration::from_secs(n));
    }
    let mut total = 0u64;
    let mut num = String::new();
    let mut seen_unit = false;
    for ch in s.chars() {
        if ch.is_ascii_digit() {
            num.push(ch);
            continue;
        }
        let mult = match ch {
            'd' => 86_400,
            'h' => 3_600,
            'm' => 60,
            's' => 1,
            _ => return Err(format!("unknown unit `{ch}` in duration `{s}` (use d, h, m, s: e.g. `10h` or `1h30m`)")),
        };
        let n: u64 = num.parse().map_err(|_| format!("missing number before `{ch}` in duration `{s}`"))?;
        total = total.saturating_add(n.saturating_mul(mult));
        num.clear();
        seen_unit = true;
    }
    if !num.is_empty() || !seen_unit {
        return Err(format!("duration `{s}` needs a unit after every number (e.g. `10h`, `1h30m`, `45s`)"));
    }
    Ok(Duration::from_secs(total))
}

/// `64G`, `512M`, `2T`, `1024` (bytes). Binary units (G = 2^30).
pub fn parse_memory(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num.parse().map_err(|_| format!("memory `{s}` must be a number with an optional unit (e.g. `64G`)"))?;
    let mult: u64 = match unit.trim_end_matches(['i', 'B']) {
        "" => 1,
        "K" | "k" => 1 << 10,
        "M" => 1 << 20,
        "G" => 1 << 30,
        "T" => 1 << 40,
        u => return Err(format!("unknown memory unit `{u}` in `{s}` (use K, M, G or T)")),
    };
    n.checked_mul(mult).ok_or_else(|| format!("memory `{s}` is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn durations() {
        assert_eq!(parse_duration("10h").unwrap().as_secs(), 36_000);
        assert_eq!(parse_duration("1h30m").unwrap().as_secs(), 5_400);
        assert_eq!(parse_duration("90").unwrap().as_secs(), 90);
        assert!(parse_duration("10x").is_err());
        assert!(parse_duration("h").is_err());
        assert!(parse_duration("1h30").is_err());
    }
    #[test]
    fn memory() {
        assert_eq!(parse_memory("64G").unwrap(), 64 << 30);
        assert_eq!(parse_memory("512MiB").unwrap(), 512 << 20);
        assert!(parse_memory("lots").is_err());
    }
}
