use std::io::Read;
use std::process::ExitCode;

use clap::Parser;
use secrecy::SecretString;

use guildhall::actors::audit::{AuditActor, AuditLog};
use guildhall::auth::cache::AuthCache;
use guildhall::cli::{Cli, Command, UserCommand};
use guildhall::config::Settings;
use guildhall::domain::audit::AuditOrigin;
use guildhall::metrics::Metrics;
use guildhall::secrets::Secrets;
use guildhall::services::accounts::{AccountError, Accounts, NewAccount};
use guildhall::shared::invalidation::Bus;
use guildhall::shared::ratelimit::RateLimiter;
use guildhall::startup::{Application, StartupError};
use guildhall::store::{Store, seed};
use guildhall::telemetry;
use guildhall::types::{NewPassword, Username};

/// Bad configuration or usage: one clear line, exit code 2.
fn usage_error(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("guildhall: {message}");
    ExitCode::from(2)
}

fn failure(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("guildhall: {message}");
    ExitCode::FAILURE
}

#[actix_web::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let settings = match Settings::from_process_env() {
        Ok(s) => s,
        Err(e) => return usage_error(format_args!("configuration error: {e}")),
    };
    match cli.command.unwrap_or(Command::Serve) {
        Command::CheckConfig => {
            for line in settings.describe() {
                println!("{line}");
            }
            ExitCode::SUCCESS
        }
        Command::Serve => {
            telemetry::init(settings.log_format, &settings.log_filter);
            serve(settings).await
        }
        Command::Migrate { revert } => {
            telemetry::init(settings.log_format, &settings.log_filter);
            migrate(settings, revert).await
        }
        Command::User {
            command: UserCommand::Create { username, role, .. },
        } => {
            telemetry::init(settings.log_format, &settings.log_filter);
            create_user(settings, &username, &role).await
        }
    }
}

async fn serve(settings: Settings) -> ExitCode {
    match Application::build(settings).await {
        Ok(app) => match app.run_until_stopped().await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => failure(format_args!("server error: {e}")),
        },
        Err(StartupError::Config(e)) => usage_error(format_args!("configuration error: {e}")),
        Err(e) => failure(e),
    }
}

async fn migrate(settings: Settings, revert: bool) -> ExitCode {
    let store =
        match Store::connect(&settings.database_url, settings.database_max_connections).await {
            Ok(s) => s,
            Err(e) => return failure(format_args!("database: {e}")),
        };
    let result = if revert {
        store.revert_last_migration().await.map(|v| match v {
            Some(v) => println!("reverted migration {v}"),
            None => println!("no migration to revert"),
        })
    } else {
        store
            .migrate()
            .await
            .map(|()| println!("migrations applied"))
    };
    store.close().await;
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => failure(format_args!("database: {e}")),
    }
}

async fn create_user(settings: Settings, username: &str, role: &str) -> ExitCode {
    let username = match Username::parse(username) {
        Ok(u) => u,
        Err(e) => return usage_error(format_args!("--username: {e}")),
    };
    let mut raw = String::new();
    if let Err(e) = std::io::stdin().read_to_string(&mut raw) {
        return usage_error(format_args!(
            "--password-stdin: cannot read standard input: {e}"
        ));
    }
    let raw = raw.trim_end_matches(['\n', '\r']).to_owned();
    let password = match NewPassword::parse(SecretString::from(raw)) {
        Ok(p) => p,
        Err(e) => return usage_error(format_args!("password {e}")),
    };
    let store =
        match Store::connect(&settings.database_url, settings.database_max_connections).await {
            Ok(s) => s,
            Err(e) => return failure(format_args!("database: {e}")),
        };
    if let Err(e) = store.migrate().await {
        return failure(format_args!("database: {e}"));
    }
    if let Err(e) = seed::seed(&store).await {
        return failure(format_args!("database: {e}"));
    }
    let metrics = match Metrics::new(prometheus::Registry::new()) {
        Ok(m) => m,
        Err(e) => return failure(e),
    };
    let audit = AuditLog::new(actix::Actor::start(AuditActor::new(store.clone(), metrics)));
    let accounts = Accounts::new(
        store.clone(),
        audit,
        AuthCache::new(Bus::new(None)),
        RateLimiter::new(None),
        // Creating a user signs nothing: the daemon's keys stay where only the daemon reads them.
        Secrets::ephemeral(),
    );
    let how = NewAccount::Cli { role };
    let created = accounts
        .create_user(&username, password, how, &AuditOrigin::internal())
        .await;
    store.close().await;
    match created {
        Ok(user) => {
            println!(
                "created user `{username}` (id {}) with role `{role}`",
                user.id
            );
            ExitCode::SUCCESS
        }
        Err(AccountError::UnknownRole(_)) => usage_error(format_args!(
            "--role: role `{role}` does not exist (built-in roles: admin, moderator, viewer)"
        )),
        Err(AccountError::UsernameTaken(_)) => {
            failure(format_args!("user `{username}` already exists"))
        }
        Err(AccountError::Store(e)) => failure(format_args!("database: {e}")),
        Err(AccountError::Audit(e)) => failure(format_args!(
            "user created, but its audit entry failed: {e}"
        )),
        Err(
            e @ (AccountError::Internal(_)
            | AccountError::Unauthenticated
            | AccountError::UserOnly
            | AccountError::WrongCurrentPassword
            | AccountError::WrongPassword
            | AccountError::InvalidCode
            | AccountError::MfaAlreadyEnabled
            | AccountError::MfaNotStarted
            | AccountError::MfaNotEnabled
            | AccountError::RegistrationClosed
            | AccountError::InvalidInvite
            | AccountError::RateLimited { .. }),
        ) => failure(e),
    }
}
