//! POSIX shell quoting: one home for the rule every remote command relies on (template values
//! in `command` text, and every word the transport and the actions put on a command line).
//!
//! A value becomes exactly one shell word whatever it contains: `;`, `$(…)`, backticks,
//! quotes, newlines and globs lose their meaning inside single quotes, and a single quote itself
//! is written as `'\''` (close, escaped quote, reopen). Words made only of characters that no
//! POSIX shell treats specially stay bare so rendered commands read naturally
//! (`apt-get install nginx-1.2`, not `apt-get install 'nginx-1.2'`).

/// Whether `byte` may appear in a word left unquoted.
///
/// The set is Python's `shlex.quote` set minus `=`: a bare `NAME=value` in command position is
/// an environment assignment, not an argument, so a value containing `=` is always quoted.
fn is_safe(byte: u8) -> bool {
    byte.is_ascii_alphanumeric()
        || matches!(
            byte,
            b'_' | b'-' | b'.' | b'/' | b':' | b',' | b'@' | b'%' | b'+'
        )
}

/// Quotes `text` as one POSIX shell word.
///
/// The empty string becomes `''` (an empty argument, not no argument); text made only of
/// `[A-Za-z0-9_./:,@%+-]` is returned unchanged; anything else is wrapped in single quotes, with
/// each `'` written as `'\''`.
#[must_use]
pub fn shell_quote(text: &str) -> String {
    if !text.is_empty() && text.bytes().all(is_safe) {
        return text.to_owned();
    }
    let mut quoted = String::with_capacity(text.len() + 2);
    quoted.push('\'');
    for character in text.chars() {
        if character == '\'' {
            quoted.push_str("'\\''");
        } else {
            quoted.push(character);
        }
    }
    quoted.push('\'');
    quoted
}

#[cfg(test)]
mod tests {
    use super::shell_quote;

    #[test]
    fn quotes_every_shell_metacharacter() {
        let cases: &[(&str, &str)] = &[
            ("", "''"),
            ("abc", "abc"),
            ("abc-1.2/x", "abc-1.2/x"),
            ("7", "7"),
            ("-5", "-5"),
            ("true", "true"),
            ("user@host:/srv,a%b+c", "user@host:/srv,a%b+c"),
            ("x; rm -rf /", "'x; rm -rf /'"),
            ("; rm -rf /", "'; rm -rf /'"),
            ("$(id)", "'$(id)'"),
            ("`id`", "'`id`'"),
            ("$HOME", "'$HOME'"),
            ("it's", "'it'\\''s'"),
            ("'", "''\\'''"),
            ("\"quoted\"", "'\"quoted\"'"),
            ("a\nb", "'a\nb'"),
            ("two words", "'two words'"),
            ("*.log", "'*.log'"),
            ("~root", "'~root'"),
            ("PATH=/tmp", "'PATH=/tmp'"),
            ("a|b&c>d<e", "'a|b&c>d<e'"),
            ("{a,b}", "'{a,b}'"),
            ("tab\there", "'tab\there'"),
            ("back\\slash", "'back\\slash'"),
            ("héllo", "'héllo'"),
        ];
        for (input, expected) in cases {
            assert_eq!(shell_quote(input), *expected, "quoting {input:?}");
        }
    }

    /// The quoting is only right if a real shell gives back the original bytes as one word.
    #[test]
    fn a_real_shell_reads_back_the_original_word() {
        let inputs = [
            "",
            "plain",
            "x; rm -rf /",
            "$(id)",
            "`id`",
            "it's",
            "''",
            "a\nb\n",
            "\\",
            "*",
            "!bang",
            "PATH=/tmp",
            "mixed 'single' and \"double\"",
        ];
        for input in inputs {
            let script = format!("printf '%s' {}", shell_quote(input));
            let output = std::process::Command::new("/bin/sh")
                .arg("-c")
                .arg(&script)
                .output()
                .expect("/bin/sh runs");
            assert!(output.status.success(), "script {script:?} failed");
            assert_eq!(
                String::from_utf8_lossy(&output.stdout),
                input,
                "script {script:?}"
            );
        }
    }
}
