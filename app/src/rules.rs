//! Input rules for usernames and passwords, shared so the form and the server say the same.

pub const USERNAME_MIN: usize = 3;
pub const USERNAME_MAX: usize = 32;
pub const PASSWORD_MIN: usize = 8;
pub const PASSWORD_MAX: usize = 128;

/// Checks a username and returns it trimmed, or says in plain words what is wrong.
///
/// Usernames are 3-32 characters of ASCII letters, digits, `_`, `.` and `-`. They are
/// unique without regard to case; [`username_key`] gives the form used for that.
pub fn username(raw: &str) -> Result<&str, String> {
    let name = raw.trim();
    let len = name.chars().count();
    if !(USERNAME_MIN..=USERNAME_MAX).contains(&len) {
        return Err(format!(
            "Username must be {USERNAME_MIN} to {USERNAME_MAX} characters long (it is {len})."
        ));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
    {
        return Err(format!(
            "Username may contain only letters, digits, '_', '.' and '-' (not {bad:?})."
        ));
    }
    Ok(name)
}

/// The case-insensitive key under which a (valid) username is unique.
pub fn username_key(valid_username: &str) -> String {
    valid_username.to_ascii_lowercase()
}

/// Checks a password's length (in characters). Passwords are not trimmed.
pub fn password(raw: &str) -> Result<(), String> {
    let len = raw.chars().count();
    if len < PASSWORD_MIN {
        return Err(format!(
            "Password must be at least {PASSWORD_MIN} characters long."
        ));
    }
    if len > PASSWORD_MAX {
        return Err(format!(
            "Password must be at most {PASSWORD_MAX} characters long."
        ));
    }
    Ok(())
}

/// Checks a new account's password: its length, and that it is not the username (in any
/// case), which is the first thing anyone guesses.
pub fn new_password(username: &str, raw: &str) -> Result<(), String> {
    password(raw)?;
    if raw.trim().eq_ignore_ascii_case(username.trim()) {
        return Err("Choose a password that is not your username.".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_trimmed_and_checked() {
        assert_eq!(username("  ann.b-c_1 "), Ok("ann.b-c_1"));
        assert_eq!(username("abc"), Ok("abc"));
        assert_eq!(username(&"a".repeat(32)).map(str::len), Ok(32));
        assert!(username("ab").unwrap_err().contains("3 to 32"));
        assert!(username(&"a".repeat(33)).unwrap_err().contains("it is 33"));
        assert!(username("   ").is_err());
        assert!(username("ann smith").unwrap_err().contains("' '"));
        assert!(username("anné").is_err());
        assert!(username("ann<script>").is_err());
    }

    #[test]
    fn username_keys_ignore_case() {
        assert_eq!(username_key("Ann.B"), username_key("aNN.b"));
    }

    #[test]
    fn a_new_password_may_not_be_the_username() {
        assert!(
            new_password("ann.lee1", "ANN.LEE1")
                .unwrap_err()
                .contains("not your username")
        );
        assert!(new_password("ann.lee1", " ann.lee1 ").is_err());
        assert!(new_password("ann.lee1", "ann.lee12").is_ok());
        assert!(
            new_password("ann", "short")
                .unwrap_err()
                .contains("at least 8")
        );
    }

    #[test]
    fn password_lengths_count_characters() {
        assert!(password("1234567").is_err());
        assert!(password("12345678").is_ok());
        assert!(password(&"é".repeat(128)).is_ok());
        assert!(password(&"x".repeat(129)).is_err());
    }
}
