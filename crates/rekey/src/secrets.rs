//! Reading passwords from a person: a no-echo prompt on a terminal, else lines on stdin.
//! Never from arguments (they show in `ps` and shell history).

use std::io::{BufRead, IsTerminal};

use rekey_core::Password;

/// Read a password. On a terminal: prompt without echo (and confirm if asked). Otherwise read one
/// line from stdin, dropping only the line ending (passwords are byte-exact).
pub fn read(prompt: &str, confirm: bool) -> std::io::Result<Password> {
    if std::io::stdin().is_terminal() {
        let first = Password::new(rpassword::prompt_password(prompt)?);
        if confirm {
            let again = Password::new(rpassword::prompt_password("Repeat it: ")?);
            if again != first {
                return Err(std::io::Error::other("the two entries differ"));
            }
        }
        return Ok(first);
    }
    let mut line = zeroize::Zeroizing::new(String::new());
    if std::io::stdin().lock().read_line(&mut line)? == 0 {
        return Err(std::io::Error::other("no password on stdin"));
    }
    let value = line
        .strip_suffix('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .unwrap_or(&line)
        .to_owned();
    Ok(Password::new(value))
}
