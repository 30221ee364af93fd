//! File names in a hub listing are data from the network: a hostile hub or
//! mirror chooses them. Only plain relative paths become paths.

use std::path::PathBuf;

/// Longest file name accepted (the hub's own limit is far below).
const NAME_MAX: usize = 1024;

/// `name` as a path below the model's directory, if it is a plain relative
/// path: no leading `/`, no `.` or `..` or empty component, no backslash,
/// NUL or other control character.
pub fn safe_relative(name: &str) -> Option<PathBuf> {
    if name.is_empty() || name.len() > NAME_MAX || name.starts_with('/') || name.contains('\\') {
        return None;
    }
    let ok = |c: &str| !c.is_empty() && c != "." && c != ".." && !c.chars().any(char::is_control);
    name.split('/').all(ok).then(|| PathBuf::from(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_relative_paths_pass() {
        for good in ["config.json", "model.safetensors", "tokenizer/vocab.json", "a b/c.d"] {
            assert_eq!(safe_relative(good), Some(PathBuf::from(good)), "{good}");
        }
        for bad in ["", "/etc/passwd", "../x", "a/../../x", "a/./b", "./a", "a//b", "a/", "..", ".", "a\\..\\b", "a\0b", "a\nb"] {
            assert_eq!(safe_relative(bad), None, "{bad:?}");
        }
    }
}
