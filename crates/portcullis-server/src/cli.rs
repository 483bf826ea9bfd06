//! `portcullis serve | migrate | user create | user import | keys list|rotate|revoke`. Every subcommand
//! reads the same settings from the environment.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::config::{Config, SigningConfig};
use crate::{app, auth, telemetry};

#[derive(Parser, Debug)]
#[command(name = "portcullis", version, about = "JWT authentication server")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the server (the default).
    Serve,
    /// Create or upgrade the database schema, then exit.
    Migrate,
    /// Manage accounts.
    #[command(subcommand)]
    User(UserCommand),
    /// Inspect signing keys.
    #[command(subcommand)]
    Keys(KeysCommand),
}

#[derive(Subcommand, Debug)]
enum UserCommand {
    /// Create an account (the way to make the first admin).
    Create {
        #[arg(long)]
        email: String,
        #[arg(long)]
        password: String,
        /// Display name; defaults to the part of the e-mail before the @.
        #[arg(long)]
        name: Option<String>,
        /// An extra role besides `user`, e.g. `admin`; may be repeated.
        #[arg(long = "role")]
        roles: Vec<String>,
    },
    /// Import accounts exported from another system (e.g. the Go design):
    /// e-mail, name and a bcrypt hash per line, as JSON lines or CSV with a
    /// header. Existing e-mails are skipped, so a file can be imported
    /// again; bad lines are reported with their numbers and the rest goes
    /// on. Users sign in with their old passwords, re-hashed to argon2id on
    /// their first login.
    Import {
        file: std::path::PathBuf,
        /// `jsonl` or `csv`; by default from the file's extension.
        #[arg(long)]
        format: Option<ImportFormat>,
        /// Mark the imported addresses as verified (the old system checked
        /// them).
        #[arg(long)]
        verified: bool,
    },
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum ImportFormat {
    Jsonl,
    Csv,
}

#[derive(Subcommand, Debug)]
enum KeysCommand {
    /// One key a line: kid, alg, state, created, signing from, retire after.
    List,
    /// Publish a new key now; it signs after the JWKS cache lifetime (or at
    /// once with --now), and older keys retire when their tokens expire.
    Rotate {
        #[arg(long)]
        now: bool,
    },
    /// Remove a leaked key at once: it leaves the JWKS, its tokens stop
    /// verifying on every instance, and the revocations feed carries it.
    Revoke {
        /// Key ids are base64url: one in 32 starts with `-`, which must
        /// still be taken as the id, not as an option.
        #[arg(allow_hyphen_values = true)]
        kid: String,
    },
}

pub fn run() -> ExitCode {
    // One crypto provider for every rustls user in the process (STACK.md).
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let cli = Cli::parse();
    let config = match Config::from_process_env() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("portcullis: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    let command = cli.command.unwrap_or(Command::Serve);
    telemetry::init(config.log_format, !matches!(command, Command::Serve));
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("portcullis: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(dispatch(command, config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("portcullis: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn dispatch(command: Command, config: Config) -> anyhow::Result<()> {
    match command {
        Command::Serve => app::serve(config).await,
        Command::Migrate => {
            app::open_store(&config).await?.close().await;
            println!("database is up to date");
            Ok(())
        }
        Command::User(UserCommand::Create {
            email,
            password,
            name,
            roles,
        }) => {
            let auth = app::build_auth(&config, crate::auth::limits::Limiter::new(None)).await?;
            let name = name.unwrap_or_else(|| {
                let email = email.trim().to_lowercase();
                email.split('@').next().unwrap_or_default().to_owned()
            });
            let mut all_roles = vec!["user".to_owned()];
            all_roles.extend(roles.into_iter().filter(|r| r != "user"));
            let user = auth
                .create_user(&email, &password, &name, all_roles)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("{}\t{}\t{}", user.id, user.email, user.roles.join(","));
            auth.store.close().await;
            Ok(())
        }
        Command::User(UserCommand::Import {
            file,
            format,
            verified,
        }) => {
            let format = match format {
                Some(ImportFormat::Csv) => auth::import::Format::Csv,
                Some(ImportFormat::Jsonl) => auth::import::Format::JsonLines,
                None if file
                    .extension()
                    .is_some_and(|e| e.eq_ignore_ascii_case("csv")) =>
                {
                    auth::import::Format::Csv
                }
                None => auth::import::Format::JsonLines,
            };
            let auth = app::build_auth(&config, crate::auth::limits::Limiter::new(None)).await?;
            let summary = crate::import::run(&auth, &file, format, verified).await;
            auth.store.close().await;
            let summary = summary?;
            println!(
                "imported {}, skipped {} (already there), failed {}",
                summary.imported, summary.skipped, summary.failed
            );
            if summary.failed > 0 {
                anyhow::bail!(
                    "{} line(s) could not be imported (see above)",
                    summary.failed
                );
            }
            Ok(())
        }
        Command::Keys(KeysCommand::Rotate { now }) => {
            let SigningConfig::Stored(alg) = config.signing else {
                anyhow::bail!(
                    "JWT_SECRET is set: HS256 secrets are rotated with JWT_SECRET_PREVIOUS, not here"
                );
            };
            let store = app::open_store(&config).await?;
            let sealer = app::master_key(&config)?.sealer(auth::keys::KEY_SEALING_LABEL)?;
            let record = auth::keys::rotate(
                &store,
                alg,
                &sealer,
                OffsetDateTime::now_utc(),
                now,
                config.access_ttl,
            )
            .await?;
            println!(
                "{}\t{}",
                record.kid,
                record.signing_from.format(&Rfc3339).unwrap_or_default()
            );
            store.close().await;
            Ok(())
        }
        Command::Keys(KeysCommand::Revoke { kid }) => {
            let auth = app::build_auth(&config, crate::auth::limits::Limiter::new(None)).await?;
            auth.admin_revoke_key(&kid)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("{kid}\trevoked");
            auth.store.close().await;
            Ok(())
        }
        Command::Keys(KeysCommand::List) => {
            let store = app::open_store(&config).await?;
            let keys = auth::keys::list(&store, OffsetDateTime::now_utc()).await?;
            let date = |t: OffsetDateTime| t.format(&Rfc3339).unwrap_or_default();
            for key in keys {
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}",
                    key.kid,
                    key.alg,
                    key.state,
                    date(key.created_at),
                    date(key.signing_from),
                    key.retire_after.map(date).unwrap_or_else(|| "-".into()),
                );
            }
            store.close().await;
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_id_starting_with_a_hyphen_is_a_key_id() {
        let cli = Cli::try_parse_from(["portcullis", "keys", "revoke", "-1Tq9_x"]).expect("parsed");
        assert!(
            matches!(cli.command, Some(Command::Keys(KeysCommand::Revoke { kid })) if kid == "-1Tq9_x")
        );
    }
}
