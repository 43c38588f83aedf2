//! Recruiter accounts: password rules and hashing, and the `viva user` commands.
//!
//! Passwords are hashed with argon2id (the `argon2` crate's defaults, OWASP's recommended
//! parameters) into PHC strings, which carry their own salt and parameters, so stronger
//! settings later still verify old hashes.

use std::io::BufRead;

use anyhow::Context;
use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use viva_store::{NewUser, Role, Store};

use crate::cli::{RoleArg, UserAddArgs};
use crate::config::Config;

/// Shorter passwords are refused: with the login limits a 10-character password is out of
/// reach of online guessing, and offline it costs an argon2id hash per guess.
pub const MIN_PASSWORD_CHARS: usize = 10;
/// Longer passwords are refused before hashing, so nobody makes the server hash megabytes.
pub const MAX_PASSWORD_BYTES: usize = 1024;
/// Emails longer than this are refused (RFC 5321's limit on a forward path).
pub const MAX_EMAIL_BYTES: usize = 254;

/// Why a password or email was refused, said to the person typing it.
pub fn check_password(password: &str) -> Result<(), String> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(format!(
            "the password must have at least {MIN_PASSWORD_CHARS} characters"
        ));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(format!(
            "the password must have at most {MAX_PASSWORD_BYTES} bytes"
        ));
    }
    Ok(())
}

/// Whether `email` looks like an address: something@something, no spaces, bounded.
pub fn check_email(email: &str) -> Result<(), String> {
    let email = email.trim();
    let shaped = email
        .split_once('@')
        .is_some_and(|(local, domain)| !local.is_empty() && !domain.is_empty());
    if !shaped || email.chars().any(char::is_whitespace) {
        return Err(format!("{email:?} is not an email address"));
    }
    if email.len() > MAX_EMAIL_BYTES {
        return Err(format!(
            "the email must have at most {MAX_EMAIL_BYTES} bytes"
        ));
    }
    Ok(())
}

/// The PHC string of `password`'s argon2id hash under a fresh salt.
pub fn hash_password(password: &str) -> anyhow::Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|err| anyhow::anyhow!("cannot hash the password: {err}"))
}

/// Whether `password` matches the stored PHC string. A malformed hash matches nothing.
pub fn verify_password(password: &str, phc: &str) -> bool {
    if password.len() > MAX_PASSWORD_BYTES {
        return false;
    }
    PasswordHash::new(phc).is_ok_and(|hash| {
        Argon2::default()
            .verify_password(password.as_bytes(), &hash)
            .is_ok()
    })
}

impl From<RoleArg> for Role {
    fn from(role: RoleArg) -> Role {
        match role {
            RoleArg::Admin => Role::Admin,
            RoleArg::Recruiter => Role::Recruiter,
            RoleArg::Viewer => Role::Viewer,
        }
    }
}

/// `viva user add`.
pub async fn add(config: &Config, args: &UserAddArgs) -> anyhow::Result<()> {
    check_email(&args.email).map_err(anyhow::Error::msg)?;
    let password = if args.password_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("cannot read the password from standard input")?;
        line.trim_end_matches(['\r', '\n']).to_owned()
    } else {
        let first = rpassword::prompt_password(format!("Password for {}: ", args.email))
            .context("cannot read the password (no terminal? use --password-stdin)")?;
        check_password(&first).map_err(anyhow::Error::msg)?;
        let again = rpassword::prompt_password("Same password again: ")
            .context("cannot read the password")?;
        anyhow::ensure!(
            first == again,
            "the two passwords differ; nothing was created"
        );
        first
    };
    check_password(&password).map_err(anyhow::Error::msg)?;
    let store = open_store(config).await?;
    let user = store
        .create_user(NewUser {
            email: args.email.clone(),
            password_hash: hash_password(&password)?,
            role: args.role.into(),
        })
        .await?;
    println!("created {} ({})", user.email, user.role.as_str());
    Ok(())
}

/// `viva user list`.
pub async fn list(config: &Config) -> anyhow::Result<()> {
    let store = open_store(config).await?;
    for user in store.users().await? {
        println!(
            "{}\t{}\t{}",
            user.email,
            user.role.as_str(),
            user.created_at
        );
    }
    Ok(())
}

async fn open_store(config: &Config) -> anyhow::Result<Store> {
    Ok(Store::open(&config.server.database_url(), &config.server.data_dir).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_its_password_only() {
        let hash = hash_password("correct horse battery").unwrap();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(verify_password("correct horse battery", &hash));
        assert!(!verify_password("correct horse batterY", &hash));
        assert!(!verify_password("correct horse battery", "not a hash"));
        assert_ne!(
            hash,
            hash_password("correct horse battery").unwrap(),
            "fresh salt"
        );
    }

    #[test]
    fn short_long_and_odd_inputs_are_refused_with_a_reason() {
        assert!(check_password("short").unwrap_err().contains("at least 10"));
        assert!(
            check_password(&"x".repeat(2000))
                .unwrap_err()
                .contains("at most")
        );
        assert_eq!(check_password("ten chars!"), Ok(()));
        assert_eq!(check_email("ada@example.com"), Ok(()));
        for bad in ["ada", "@example.com", "ada@", "a da@example.com"] {
            assert!(check_email(bad).is_err(), "{bad}");
        }
    }
}
