//! A short, human summary of the browser that signed in (`Firefox on
//! Windows`), kept with the session for `GET /bff/sessions`: never the raw
//! `User-Agent` (it is long, identifying, and attacker-chosen).
//!
//! Hand-written on purpose: the list only needs the browser family and the
//! operating system of the common browsers; a full user-agent database
//! (uap-core's regexes, woothee) would add hundreds of kilobytes for a
//! label. Anything unknown is "a browser" / "an unknown system", and the
//! output only ever holds words from the tables below.

/// Browser families, first match wins (Edge and Opera also say Chrome,
/// Chrome also says Safari).
const BROWSERS: &[(&str, &str)] = &[
    ("Edg/", "Edge"),
    ("OPR/", "Opera"),
    ("Firefox/", "Firefox"),
    ("Chromium/", "Chromium"),
    ("HeadlessChrome/", "Chrome"),
    ("Chrome/", "Chrome"),
    ("Safari/", "Safari"),
    ("curl/", "curl"),
];

/// Operating systems, first match wins (Android also says Linux).
const SYSTEMS: &[(&str, &str)] = &[
    ("Android", "Android"),
    ("iPhone", "iOS"),
    ("iPad", "iPadOS"),
    ("Windows", "Windows"),
    ("Mac OS X", "macOS"),
    ("CrOS", "ChromeOS"),
    ("Linux", "Linux"),
];

/// `Browser on System` for a `User-Agent` value; `None` without one.
pub(crate) fn summary(user_agent: Option<&str>) -> Option<String> {
    let ua = user_agent.filter(|u| !u.trim().is_empty())?;
    let ua = &ua[..ua.len().min(1024)];
    let find = |table: &[(&str, &'static str)]| {
        table
            .iter()
            .find(|(needle, _)| ua.contains(needle))
            .map(|(_, name)| *name)
    };
    Some(match (find(BROWSERS), find(SYSTEMS)) {
        (Some(b), Some(s)) => format!("{b} on {s}"),
        (Some(b), None) => b.to_owned(),
        (None, Some(s)) => format!("A browser on {s}"),
        (None, None) => "An unknown browser".to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::summary;

    #[test]
    fn common_browsers_are_named_and_nothing_is_copied() {
        let cases = [
            (
                "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
                "Chrome on Linux",
            ),
            (
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
                "Edge on Windows",
            ),
            (
                "Mozilla/5.0 (Macintosh; Intel Mac OS X 14.1; rv:132.0) Gecko/20100101 Firefox/132.0",
                "Firefox on macOS",
            ),
            (
                "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
                "Safari on iOS",
            ),
            (
                "Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 Chrome/131.0 Mobile Safari/537.36",
                "Chrome on Android",
            ),
            ("<script>alert(1)</script>", "An unknown browser"),
        ];
        for (ua, want) in cases {
            assert_eq!(summary(Some(ua)).as_deref(), Some(want), "{ua}");
        }
        assert_eq!(summary(None), None);
        assert_eq!(summary(Some("  ")), None);
    }
}
