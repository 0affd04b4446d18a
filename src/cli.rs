//! Command-line interface.

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "guildhall",
    version,
    about = "Self-hosted Discord bot and dashboard daemon"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon (the default).
    Serve,
    /// Apply pending database migrations, or revert the latest one.
    Migrate {
        /// Revert the most recently applied migration instead.
        #[arg(long)]
        revert: bool,
    },
    /// Print the effective configuration (secrets as ***) and exit.
    CheckConfig,
    /// Manage dashboard users.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user with one global role.
    Create {
        #[arg(long)]
        username: String,
        #[arg(long)]
        role: String,
        /// Read the password from standard input (required, so it never shows in `ps`).
        #[arg(long, required = true)]
        password_stdin: bool,
    },
}
