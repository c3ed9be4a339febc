//! X6: a `CommandLine` may start with `<handler>:` to name the post-install
//! handler that runs it.

/// The handler that runs a command line without a prefix.
pub const DEFAULT_HANDLER: &str = "exec";

/// Splits a `CommandLine` into the handler name and the rest (leading
/// whitespace of the rest removed). A prefix is `[a-z0-9_-]+` directly
/// followed by `:`; a `:` followed by `\` or `/` is a drive letter or a URL
/// scheme (`c:\tools`, `http://`), not a prefix. Without a prefix the handler
/// is [`DEFAULT_HANDLER`] and the command line is returned unchanged.
pub fn route_command_line(command_line: &str) -> (&str, &str) {
    let trimmed = command_line.trim_start();
    if let Some(colon) = trimmed.find(':') {
        let (prefix, rest) = (&trimmed[..colon], &trimmed[colon + 1..]);
        let is_name = !prefix.is_empty()
            && prefix
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        let looks_like_path = rest.starts_with('\\') || rest.starts_with('/');
        if is_name && !looks_like_path {
            return (prefix, rest.trim_start());
        }
    }
    (DEFAULT_HANDLER, command_line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes() {
        for (input, handler, rest) in [
            (
                "archive: app.tar.gz /opt/app",
                "archive",
                "app.tar.gz /opt/app",
            ),
            ("archive:app.zip", "archive", "app.zip"),
            ("  exec: ./install.sh", "exec", "./install.sh"),
            ("my_vendor-2: x", "my_vendor-2", "x"),
            ("archive:", "archive", ""),
            ("./install.sh --yes", "exec", "./install.sh --yes"),
            ("C:\\foo\\setup.exe", "exec", "C:\\foo\\setup.exe"),
            ("c:\\foo\\setup.exe", "exec", "c:\\foo\\setup.exe"),
            ("/bin/sh -c 'a:b'", "exec", "/bin/sh -c 'a:b'"),
            ("sh -c 'a:b'", "exec", "sh -c 'a:b'"),
            ("Archive: x", "exec", "Archive: x"),
            ("http://x/y", "exec", "http://x/y"),
            (": x", "exec", ": x"),
            ("", "exec", ""),
        ] {
            assert_eq!(route_command_line(input), (handler, rest), "{input:?}");
        }
    }
}
