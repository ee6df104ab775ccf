//! The passwords attackers try first, refused at registration.
//!
//! The list is the part of Django's `common-passwords.txt` (20,000 most common passwords,
//! lowercased, by Royce Williams; BSD-3-Clause, see `server/data/LICENSE.django`) that our
//! length rule lets through: 8 characters or more, most common first.

use std::collections::HashSet;
use std::sync::LazyLock;

static COMMON: LazyLock<HashSet<&'static str>> = LazyLock::new(|| {
    include_str!("../../data/common-passwords.txt")
        .lines()
        .collect()
});

/// Whether `password` is on the list, whatever its case.
pub fn is_common(password: &str) -> bool {
    COMMON.contains(password.to_lowercase().as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_holds_thousands_of_passwords_the_length_rule_lets_through() {
        assert!(COMMON.len() > 5_000, "{}", COMMON.len());
        let source = include_str!("../../data/common-passwords.txt");
        for line in source.lines() {
            assert!(
                (app::rules::PASSWORD_MIN..=app::rules::PASSWORD_MAX)
                    .contains(&line.chars().count()),
                "{line:?} could never pass the length rule: it need not be listed"
            );
            assert_eq!(line, line.to_lowercase(), "the list is lower case");
        }
    }

    #[test]
    fn common_passwords_are_found_whatever_their_case() {
        assert!(is_common("password123"));
        assert!(is_common("PassWord123"));
        assert!(is_common("qwertyuiop"));
        assert!(!is_common("correct horse battery"));
        assert!(!is_common("password1234567890-not-common"));
    }
}
