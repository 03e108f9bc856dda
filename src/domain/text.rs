//! Bounds on the texts that a file or a request can make us store and show
//! again: warnings, reasons, row-error messages. A hostile or broken file must
//! not turn one line of a sync log into megabytes that every later page carries.

/// Longest single text kept (a warning, a reason, a row error's message).
pub const MAX_TEXT_CHARS: usize = 500;
/// Most warnings kept for one run; the rest are summarised in one more line.
pub const MAX_WARNINGS: usize = 20;

/// `str::trim`, answering at once for the usual value, one that begins and ends
/// with a printable ASCII character: `str::trim` decodes each end through a
/// generic Unicode searcher, a sixth of the time a re-sync spent checking its
/// 100,000 rows (each row's fields are trimmed several times).
pub fn trim(text: &str) -> &str {
    let printable_ascii = |byte: &u8| (b'!'..=b'~').contains(byte);
    match text.as_bytes() {
        [only] if printable_ascii(only) => text,
        [first, .., last] if printable_ascii(first) && printable_ascii(last) => text,
        _ => text.trim(),
    }
}

/// `text` cut to at most `max_chars` characters, saying how much was cut.
pub fn clip(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        None => text.to_string(),
        Some((cut, _)) => {
            let left = text[cut..].chars().count();
            format!("{}… ({left} more characters)", &text[..cut])
        }
    }
}

/// The first `max_items` texts, each clipped, and "… N more" for the rest.
pub fn bounded_list(texts: &[String], max_items: usize, max_chars: usize) -> Vec<String> {
    let mut kept: Vec<String> = texts
        .iter()
        .take(max_items)
        .map(|text| clip(text, max_chars))
        .collect();
    if texts.len() > max_items {
        kept.push(format!("… {} more", texts.len() - max_items));
    }
    kept
}

/// A run's warnings as they are stored and shown.
pub fn bounded_warnings(warnings: &[String]) -> Vec<String> {
    bounded_list(warnings, MAX_WARNINGS, MAX_TEXT_CHARS)
}

/// For an optional request field that, when sent, is a value: `null` is
/// refused (as the document's non-nullable type says), not taken for "left
/// out", which leaving the field out says. Use with `#[serde(default)]`.
pub fn given<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    T::deserialize(deserializer).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn short_texts_are_kept_whole() {
        assert_eq!(clip("ignored columns: a, b", 500), "ignored columns: a, b");
        assert_eq!(clip("", 0), "");
    }

    #[test]
    fn long_texts_say_what_was_cut() {
        assert_eq!(clip("abcdef", 3), "abc… (3 more characters)");
        assert_eq!(clip("éééé", 2), "éé… (2 more characters)");
    }

    #[test]
    fn long_lists_end_with_a_summary() {
        let texts: Vec<String> = (0..25).map(|i| format!("w{i}")).collect();
        let kept = bounded_list(&texts, 20, 10);
        assert_eq!(kept.len(), 21);
        assert_eq!(kept[20], "… 5 more");
    }

    #[test]
    fn trimming_removes_unicode_whitespace_at_either_end_only() {
        for (raw, trimmed) in [
            ("", ""),
            ("a", "a"),
            (" a", "a"),
            ("a\u{b}", "a"),
            ("\u{a0}é b\u{3000}", "é b"),
            ("é", "é"),
            ("\u{7f}x", "\u{7f}x"),
        ] {
            assert_eq!(trim(raw), trimmed, "{raw:?}");
        }
    }

    proptest! {
        #[test]
        fn trimming_agrees_with_the_standard_library(text in "\\PC{0,6}|[ -~\\s\u{85}\u{a0}\u{2000}-\u{200b}]{0,6}") {
            prop_assert_eq!(trim(&text), text.trim());
        }

        #[test]
        fn any_list_stays_within_its_bounds(
            texts in proptest::collection::vec(".{0,2000}", 0..60),
        ) {
            let kept = bounded_warnings(&texts);
            prop_assert!(kept.len() <= MAX_WARNINGS + 1);
            for text in &kept {
                // The note on what was cut adds a few dozen characters at most.
                prop_assert!(text.chars().count() <= MAX_TEXT_CHARS + 40);
            }
        }
    }
}
