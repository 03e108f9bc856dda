//! Email normalisation and a deliberately simple validity check: HR exports are
//! full of stray spaces and capitals, and an address is only truly checked by
//! delivering to it.

/// Trims and lower-cases the whole address. Local parts are case-sensitive in
/// theory (RFC 5321) but no mail system in use treats them so, and two accounts
/// differing only by case would be a support nightmare.
pub fn normalize(raw: &str) -> String {
    super::text::trim(raw).to_lowercase()
}

/// [`normalize`] without a copy when the address is already normal, as most are.
pub fn normalize_cow(raw: &str) -> std::borrow::Cow<'_, str> {
    let trimmed = super::text::trim(raw);
    if trimmed.is_ascii() && !trimmed.bytes().any(|b| b.is_ascii_uppercase()) {
        std::borrow::Cow::Borrowed(trimmed)
    } else {
        std::borrow::Cow::Owned(trimmed.to_lowercase())
    }
}

pub const MAX_LEN: usize = 254;

/// Why a (normalised) address is refused, or `None` when it is acceptable.
pub fn problem(email: &str) -> Option<&'static str> {
    if email.is_empty() {
        return Some("is required");
    }
    if email.len() > MAX_LEN {
        return Some("is longer than 254 characters");
    }
    let Some((local, domain)) = email.rsplit_once('@') else {
        return Some("must contain @");
    };
    if local.is_empty() || local.len() > 64 {
        return Some("has an empty or over-long local part");
    }
    if has_space_or_control(email) || local.contains('@') {
        return Some("contains spaces, control characters or several @");
    }
    if !domain.contains('.') || !domain.split('.').all(valid_label) {
        return Some("has an invalid domain");
    }
    None
}

// An import checks every row's address: ASCII addresses, nearly all of them,
// are checked byte by byte, without decoding characters.

fn has_space_or_control(text: &str) -> bool {
    if text.is_ascii() {
        text.bytes().any(|b| b <= b' ' || b == 0x7f)
    } else {
        text.chars().any(|c| c.is_whitespace() || c.is_control())
    }
}

fn valid_label(label: &str) -> bool {
    let kept = |b: u8| b.is_ascii_alphanumeric() || b == b'-';
    !label.is_empty()
        && label.len() <= 63
        && !label.starts_with('-')
        && !label.ends_with('-')
        && if label.is_ascii() {
            label.bytes().all(kept)
        } else {
            label.chars().all(|c| c.is_alphanumeric() || c == '-')
        }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The byte-wise paths agree with the character-wise checks they
        /// stand in for.
        #[test]
        fn the_bytewise_checks_agree_with_the_characterwise_ones(
            text in "[a-z0-9.@ \\t\\x00-\\x1f\\x7f-]{0,12}|[a-zé0-9\\u{a0}\\u{85}\\u{2028}-]{0,8}|\\PC{0,20}|.{0,20}"
        ) {
            prop_assert_eq!(
                has_space_or_control(&text),
                text.chars().any(|c| c.is_whitespace() || c.is_control())
            );
            prop_assert_eq!(
                valid_label(&text),
                !text.is_empty()
                    && text.len() <= 63
                    && !text.starts_with('-')
                    && !text.ends_with('-')
                    && text.chars().all(|c| c.is_alphanumeric() || c == '-')
            );
        }
    }

    #[test]
    fn the_borrowing_normalisation_agrees_with_the_copying_one() {
        for raw in [
            " jean@example.com",
            "Jean@Example.COM",
            "ǅemal@example.com",
            "ÉLODIE@exemple.fr",
            "plain@example.com",
        ] {
            assert_eq!(normalize_cow(raw), normalize(raw), "{raw}");
        }
    }

    #[test]
    fn normalizes_case_and_spaces() {
        assert_eq!(
            normalize("  Jean.Dupont@Example.COM "),
            "jean.dupont@example.com"
        );
    }

    #[test]
    fn accepts_ordinary_addresses() {
        for ok in [
            "a@b.fr",
            "jean.dupont+rh@magasin-12.example.com",
            "élodie@exemple.fr",
        ] {
            assert_eq!(problem(ok), None, "{ok}");
        }
    }

    #[test]
    fn refuses_broken_addresses() {
        for bad in [
            "", "plain", "@b.fr", "a@", "a@b", "a b@c.fr", "a@b..fr", "a@-b.fr", "a@b@c.fr",
        ] {
            assert!(problem(bad).is_some(), "{bad}");
        }
    }
}
