//! Turning wire values into words for people.

/// An RFC 3339 instant in the reader's local time (in the browser), e.g.
/// "23/11/2026, 18:39:31". Elsewhere, and for anything unparseable, the text as given.
pub fn local_time(rfc3339: &str) -> String {
    #[cfg(feature = "hydrate")]
    {
        let date = js_sys::Date::new(&wasm_bindgen::JsValue::from_str(rfc3339));
        if !date.get_time().is_nan() {
            return String::from(
                date.to_locale_string("default", &wasm_bindgen::JsValue::UNDEFINED),
            );
        }
    }
    rfc3339.to_owned()
}

/// A whole number of seconds in words, in the largest unit that divides it: "30 minutes",
/// "1 hour", "90 seconds".
pub fn duration(secs: u64) -> String {
    let (count, unit) = match secs {
        s if s >= 3600 && s % 3600 == 0 => (s / 3600, "hour"),
        s if s >= 60 && s % 60 == 0 => (s / 60, "minute"),
        s => (s, "second"),
    };
    let plural = if count == 1 { "" } else { "s" };
    format!("{count} {unit}{plural}")
}

/// A short description of a User-Agent, e.g. "Chrome 156 on Linux".
pub fn browser_summary(user_agent: Option<&str>) -> String {
    let Some(ua) = user_agent.filter(|ua| !ua.trim().is_empty()) else {
        return "an unknown browser".into();
    };
    // Order matters: Edge and Chrome both say "Chrome/", Chrome and Safari both "Safari/".
    let browser = [
        ("Edg/", "Edge"),
        ("Firefox/", "Firefox"),
        ("Chrome/", "Chrome"),
        ("Version/", "Safari"),
    ]
    .iter()
    .find_map(|(token, name)| {
        let at = ua.find(token)? + token.len();
        let major: String = ua[at..].chars().take_while(char::is_ascii_digit).collect();
        Some(if major.is_empty() {
            (*name).to_owned()
        } else {
            format!("{name} {major}")
        })
    });
    let os = [
        ("Android", "Android"),
        ("iPhone", "iPhone"),
        ("iPad", "iPad"),
        ("Windows", "Windows"),
        ("Mac OS X", "macOS"),
        ("CrOS", "ChromeOS"),
        ("Linux", "Linux"),
    ]
    .iter()
    .find(|(token, _)| ua.contains(token))
    .map(|(_, name)| *name);
    match (browser, os) {
        (Some(b), Some(o)) => format!("{b} on {o}"),
        (Some(b), None) => b,
        (None, Some(o)) => format!("a browser on {o}"),
        (None, None) => "an unrecognised client".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_in_their_largest_whole_unit() {
        assert_eq!(duration(1), "1 second");
        assert_eq!(duration(90), "90 seconds");
        assert_eq!(duration(120), "2 minutes");
        assert_eq!(duration(1800), "30 minutes");
        assert_eq!(duration(3600), "1 hour");
        assert_eq!(duration(5400), "90 minutes");
        assert_eq!(duration(43200), "12 hours");
    }

    #[test]
    fn summarises_common_browsers() {
        let chrome = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36";
        assert_eq!(browser_summary(Some(chrome)), "Chrome 156 on Linux");
        let edge = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36 Edg/130.0.0.0";
        assert_eq!(browser_summary(Some(edge)), "Edge 130 on Windows");
        let firefox =
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 14.1; rv:133.0) Gecko/20100101 Firefox/133.0";
        assert_eq!(browser_summary(Some(firefox)), "Firefox 133 on macOS");
        assert_eq!(
            browser_summary(Some("curl/8.5.0")),
            "an unrecognised client"
        );
        assert_eq!(browser_summary(None), "an unknown browser");
    }

    #[test]
    fn off_the_browser_times_are_shown_as_given() {
        assert_eq!(
            local_time("2026-11-23T17:39:31.123Z"),
            "2026-11-23T17:39:31.123Z"
        );
    }
}
