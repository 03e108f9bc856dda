//! Password policy after NIST SP 800-63B-4 for a single-factor password: at least
//! 15 characters (counted as Unicode code points), up to 128, any characters, no
//! composition rules, checked against a blocklist of common and context words.

pub const MIN_CHARS: usize = 15;
pub const MAX_CHARS: usize = 128;
/// Bounds the argon2 input whatever the character count.
pub const MAX_BYTES: usize = 1024;

const BLOCKLIST: &str = include_str!("common_passwords.txt");

/// Why a password is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Weakness {
    TooShort,
    TooLong,
    Repetitive,
    Common,
    /// Holds the email, the person's or the company's name.
    Personal,
}

impl Weakness {
    /// The reason in `language`, to follow "the password" / "le mot de passe".
    pub fn message(self, language: super::notifications::Language) -> String {
        use super::notifications::Language;
        match (self, language) {
            (Weakness::TooShort, Language::En) => format!("must be at least {MIN_CHARS} characters long"),
            (Weakness::TooShort, Language::Fr) => format!("doit compter au moins {MIN_CHARS} caractères"),
            (Weakness::TooLong, Language::En) => format!("must be at most {MAX_CHARS} characters long"),
            (Weakness::TooLong, Language::Fr) => format!("doit compter au plus {MAX_CHARS} caractères"),
            (Weakness::Repetitive, Language::En) => "is too repetitive".into(),
            (Weakness::Repetitive, Language::Fr) => "est trop répétitif".into(),
            (Weakness::Common, Language::En) => {
                "is too common; choose a longer passphrase of unrelated words".into()
            }
            (Weakness::Common, Language::Fr) => {
                "est trop courant : choisissez une phrase plus longue de mots sans rapport entre eux".into()
            }
            (Weakness::Personal, Language::En) => {
                "must not contain your email, your name or the company name".into()
            }
            (Weakness::Personal, Language::Fr) => {
                "ne doit contenir ni votre email, ni votre nom, ni celui de l'entreprise".into()
            }
        }
    }
}

/// The API's words (English).
impl std::fmt::Display for Weakness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message(super::notifications::Language::En))
    }
}

/// Why `password` is refused, or `None`. `context` holds words a guesser would
/// try first for this account: the email, the person's and company's names.
pub fn problem(password: &str, context: &[&str]) -> Option<Weakness> {
    let chars = password.chars().count();
    if chars < MIN_CHARS {
        return Some(Weakness::TooShort);
    }
    if chars > MAX_CHARS || password.len() > MAX_BYTES {
        return Some(Weakness::TooLong);
    }
    let lowered = password.to_lowercase();
    let mut distinct: Vec<char> = lowered.chars().collect();
    distinct.sort_unstable();
    distinct.dedup();
    if distinct.len() < 4 {
        return Some(Weakness::Repetitive);
    }
    let squeezed: String = lowered.chars().filter(|c| !c.is_whitespace()).collect();
    if BLOCKLIST
        .lines()
        .map(str::trim)
        .filter(|w| !w.is_empty() && !w.starts_with('#'))
        .any(|w| squeezed == w || (w.len() >= 10 && squeezed.contains(w)))
    {
        return Some(Weakness::Common);
    }
    for word in context {
        let word = word.trim().to_lowercase();
        let local = word.split('@').next().unwrap_or_default();
        for part in [word.as_str(), local] {
            if part.chars().count() >= 4 && squeezed.contains(&part.replace(' ', "")) {
                return Some(Weakness::Personal);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_passphrases_pass() {
        assert_eq!(problem("correct horse battery staple", &[]), None);
        assert_eq!(problem("żółta łódź pływa po jeziorze", &[]), None);
    }

    #[test]
    fn length_counts_code_points() {
        assert!(problem("short", &[]).is_some());
        assert!(problem(&"é".repeat(14), &[]).is_some());
        assert!(problem(&"ab€d".repeat(40), &[]).is_some());
    }

    #[test]
    fn repetition_and_common_passwords_fail() {
        assert!(problem("aaaaaaaaaaaaaaaaaaaa", &[]).is_some());
        assert!(problem("abababababababab", &[]).is_some());
        assert!(problem("123456789012345", &[]).is_some());
        assert!(problem("Password1234567!", &[]).is_some());
    }

    #[test]
    fn context_words_fail() {
        assert!(problem("jean.dupont-summer-2026", &["jean.dupont@acme.fr"]).is_some());
        assert!(problem("I love working at Acme Retail!", &["Acme Retail"]).is_some());
    }
}
