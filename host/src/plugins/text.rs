//! Text a plugin hands the host that ends up in the host's log or journal —
//! log messages and fields, error messages, drop reasons, sink names. It is
//! shown escaped, so a newline or a terminal escape in it cannot start a
//! line that looks like the host's own, and cut to a bounded length.

use std::fmt::Write;

/// `text` with control characters escaped (`\n`, `\r`, `\t`, `\u{1b}`, …),
/// cut to at most `max` bytes (an ellipsis marks the cut).
pub fn shown(text: &str, max: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max));
    push(&mut out, text, max);
    out
}

/// Append `text` to `out` as [`shown`] would, within `max` bytes of `out`'s
/// total; whether it had to be cut.
pub fn push(out: &mut String, text: &str, max: usize) -> bool {
    const CUT: &str = "…";
    let mut escaped = String::new();
    for c in text.chars() {
        escaped.clear();
        match c {
            '\n' => escaped.push_str("\\n"),
            '\r' => escaped.push_str("\\r"),
            '\t' => escaped.push_str("\\t"),
            '\\' => escaped.push_str("\\\\"),
            c if c.is_control() => {
                let _ = write!(escaped, "\\u{{{:x}}}", c as u32);
            }
            c => escaped.push(c),
        }
        if out.len() + escaped.len() + CUT.len() > max {
            out.push_str(CUT);
            return true;
        }
        out.push_str(&escaped);
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_cannot_start_a_line() {
        let forged = "ok\n2099-01-01T00:00:00Z ERROR vestibule::admin: rotated\r\u{1b}[2J\u{7}";
        let shown = shown(forged, 1024);
        assert!(!shown.chars().any(char::is_control), "{shown}");
        assert_eq!(
            shown,
            "ok\\n2099-01-01T00:00:00Z ERROR vestibule::admin: rotated\\r\\u{1b}[2J\\u{7}"
        );
        assert_eq!(super::shown("a\\nb", 64), "a\\\\nb", "a backslash is escaped too");
    }

    #[test]
    fn cut_to_the_limit_at_a_character_boundary() {
        assert_eq!(shown("short", 64), "short");
        let cut = shown(&"é".repeat(100), 21);
        assert!(cut.len() <= 21, "{}", cut.len());
        assert!(cut.ends_with('…'));
        let cut = shown(&"\n".repeat(100), 16);
        assert_eq!(cut, "\\n\\n\\n\\n\\n\\n…", "an escape is never split");
    }
}
