//! Reading a new password without putting it on the command line.

use crate::cli::PasswordSource;
use anyhow::{Context, bail};
use cusax_account::Password;
use std::io::BufRead;

/// Reads a password from stdin, a file, or an interactive prompt (asked twice).
pub fn read(src: &PasswordSource) -> anyhow::Result<Password> {
    let pw = if src.password_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("reading the password from stdin")?;
        first_line(&line)
    } else if let Some(path) = &src.password_file {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the password from {}", path.display()))?;
        first_line(&text)
    } else {
        let a = rpassword::prompt_password("Password: ").context("prompting for the password")?;
        let b = rpassword::prompt_password("Again: ").context("prompting for the password")?;
        if a != b {
            bail!("the two passwords differ");
        }
        a
    };
    if pw.is_empty() {
        bail!("empty password");
    }
    Ok(Password::new(pw))
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or_default().to_owned()
}
