//! `sipprov user add|list|passwd|rm`: web console users, through `/api/v1/users`.
//!
//! A password is never an argument (it would sit in the shell history and in `ps`): it is asked
//! for twice on the terminal, without echo, or read from the first line of stdin with
//! `--password-stdin` (for scripts: `printf '%s\n' "$PW" | sipprov user add ops --role
//! operator --password-stdin`).

use std::io::{BufRead, IsTerminal, Write};

use reqwest::Method;
use sipprov_api::{AddUser, SetPassword, User, MIN_PASSWORD_LEN};

use crate::cli::{ApiArgs, UserCommand};
use crate::client::{segment, Body, Client};
use crate::output;

/// Runs one `sipprov user` command.
pub(crate) async fn command(cmd: UserCommand, api: &ApiArgs) -> Result<(), String> {
    match cmd {
        UserCommand::Add { name, role, password_stdin } => {
            let password = password(password_stdin)?;
            let body = Body::json(&AddUser { name, role, password })?;
            let user: User = Client::new(api)?.json(Method::POST, "/api/v1/users", Some(body)).await?;
            println!("user {} added ({})", user.name, user.role);
            Ok(())
        }
        UserCommand::List => {
            let users: Vec<User> = Client::new(api)?.json(Method::GET, "/api/v1/users", None).await?;
            for u in users {
                println!("{:<24} {:<10} created {}", u.name, u.role.as_str(), output::time(u.created_at));
            }
            Ok(())
        }
        UserCommand::Passwd { name, password_stdin } => {
            let password = password(password_stdin)?;
            let path = format!("/api/v1/users/{}/password", segment(&name));
            Client::new(api)?.call(Method::PUT, &path, Some(Body::json(&SetPassword { password })?)).await?;
            println!("password of {name} changed; the user's console sessions are closed");
            Ok(())
        }
        UserCommand::Rm { name } => {
            Client::new(api)?.call(Method::DELETE, &format!("/api/v1/users/{}", segment(&name)), None).await?;
            println!("user {name} removed");
            Ok(())
        }
    }
}

/// The new password: stdin's first line, or asked twice on the terminal.
fn password(from_stdin: bool) -> Result<String, String> {
    let password = if from_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| format!("cannot read the password from stdin: {e}"))?;
        line.trim_end_matches(['\n', '\r']).to_string()
    } else {
        if !std::io::stdin().is_terminal() {
            return Err("no terminal to ask for the password on: pass it on stdin with --password-stdin".into());
        }
        let first = ask("Password: ")?;
        let again = ask("Password again: ")?;
        if first != again {
            return Err("the two passwords differ".into());
        }
        first
    };
    if password.chars().count() < MIN_PASSWORD_LEN {
        return Err(format!("the password is too short: use at least {MIN_PASSWORD_LEN} characters"));
    }
    Ok(password)
}

/// Reads one line from the terminal with echo off.
fn ask(prompt: &str) -> Result<String, String> {
    eprint!("{prompt}");
    let _ = std::io::stderr().flush();
    let echo = NoEcho::new();
    let mut line = String::new();
    let read = std::io::stdin().lock().read_line(&mut line);
    drop(echo);
    eprintln!();
    read.map_err(|e| format!("cannot read the password: {e}"))?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}

/// Terminal echo switched off on stdin while it lives.
struct NoEcho(Option<libc::termios>);

impl NoEcho {
    fn new() -> NoEcho {
        // SAFETY: termios is plain data; tcgetattr fills it or fails, and then it is unused.
        let mut saved: libc::termios = unsafe { std::mem::zeroed() };
        // SAFETY: fd 0 is stdin; both calls only read or set terminal attributes.
        unsafe {
            if libc::tcgetattr(0, &mut saved) != 0 {
                return NoEcho(None);
            }
            let mut quiet = saved;
            quiet.c_lflag &= !libc::ECHO;
            if libc::tcsetattr(0, libc::TCSANOW, &quiet) != 0 {
                return NoEcho(None);
            }
        }
        NoEcho(Some(saved))
    }
}

impl Drop for NoEcho {
    fn drop(&mut self) {
        if let Some(saved) = self.0 {
            // SAFETY: restores the attributes read in `new` on the same descriptor.
            unsafe {
                libc::tcsetattr(0, libc::TCSANOW, &saved);
            }
        }
    }
}
