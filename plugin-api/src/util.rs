//! Small helpers plugins share: UTC civil times and wildcard matching.

use std::time::{SystemTime, UNIX_EPOCH};

/// Formats a time as the protocol's UTC civil time `YYYY-MM-DD hh:mm:ss`;
/// `None` before 1970 or after 9999.
pub fn civil_time_utc(time: SystemTime) -> Option<String> {
    let secs = time.duration_since(UNIX_EPOCH).ok()?.as_secs();
    let days = i64::try_from(secs / 86_400).ok()?;
    let rem = secs % 86_400;
    // Howard Hinnant's days-to-civil.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    if year > 9999 {
        return None;
    }
    Some(format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    ))
}

/// Matches `name` against a `FileFilterItem` pattern: `*` any run of
/// characters, `?` exactly one, case-insensitive (as on Windows CE).
pub fn wildcard_match(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().flat_map(char::to_lowercase).collect();
    let n: Vec<char> = name.chars().flat_map(char::to_lowercase).collect();
    let (mut pi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, ni));
                pi += 1;
            }
            Some(&c) if c == '?' || c == n[ni] => {
                pi += 1;
                ni += 1;
            }
            _ => match star {
                Some((sp, sn)) => {
                    pi = sp + 1;
                    ni = sn + 1;
                    star = Some((sp, sn + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// Splits a command line into words like a POSIX shell does, without any
/// expansion: whitespace separates words, `'...'` is literal, `"..."` allows
/// `\"`, `\\`, `\$` and `\``, and a backslash outside quotes escapes the next
/// character. Returns `None` for an unterminated quote or a trailing backslash.
pub fn split_command_line(line: &str) -> Option<Vec<String>> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next()? {
                        '\'' => break,
                        c => word.push(c),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next()? {
                        '"' => break,
                        '\\' => match chars.next()? {
                            c @ ('"' | '\\' | '$' | '`') => word.push(c),
                            '\n' => {}
                            c => {
                                word.push('\\');
                                word.push(c);
                            }
                        },
                        c => word.push(c),
                    }
                }
            }
            '\\' => {
                in_word = true;
                match chars.next()? {
                    '\n' => {}
                    c => word.push(c),
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Some(words)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn civil_times() {
        assert_eq!(
            civil_time_utc(UNIX_EPOCH).as_deref(),
            Some("1970-01-01 00:00:00")
        );
        let t = UNIX_EPOCH + Duration::from_secs(1_110_792_600);
        assert_eq!(civil_time_utc(t).as_deref(), Some("2005-03-14 09:30:00"));
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(civil_time_utc(leap).as_deref(), Some("2000-02-29 00:00:00"));
    }

    #[test]
    fn shell_words() {
        let split = |s: &str| split_command_line(s);
        assert_eq!(
            split("a b  c"),
            Some(vec!["a".into(), "b".into(), "c".into()])
        );
        assert_eq!(split("  "), Some(vec![]));
        assert_eq!(
            split("'a b' \"c \\\"d\""),
            Some(vec!["a b".into(), "c \"d".into()])
        );
        assert_eq!(split("a\\ b ''"), Some(vec!["a b".into(), "".into()]));
        assert_eq!(
            split("sh -c 'echo $HOME'"),
            Some(vec!["sh".into(), "-c".into(), "echo $HOME".into()])
        );
        assert_eq!(split("'open"), None);
        assert_eq!(split("x\\"), None);
    }

    #[test]
    fn wildcards() {
        for (p, n, want) in [
            ("*.exe", "VIEWER.EXE", true),
            ("*.exe", "viewer.exe.bak", false),
            ("*", "", true),
            ("?", "", false),
            ("a?c", "abc", true),
            ("a?c", "ac", false),
            ("*a*b*", "xxaYYbzz", true),
            ("*.so", "libx.so", true),
            ("lib*.so.?", "libc.so.6", true),
            ("", "x", false),
        ] {
            assert_eq!(wildcard_match(p, n), want, "{p} vs {n}");
        }
    }
}
