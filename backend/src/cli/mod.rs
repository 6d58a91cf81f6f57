//! The `fundtrail` command line: run the service (`init`, `serve`, `demo`), sign and send
//! as an org (`org`, `key`, `token`, `program`, `recipients`, `account`, `import`, `budget`,
//! `allocate`, `disburse`, `reverse`), read (`entries`, `balance`, `statement`) and check
//! (`verify`, `export`, `reconcile`).
//!
//! Client commands sign on this machine with the org's private key (`--key`); the server
//! never sees it. One file per command group: `ledger.rs` (entries and balances),
//! `registry.rs` (orgs, keys, tokens, programs, recipients), `statements.rs` (bank accounts
//! and statements), `operator.rs` (the commands that open a database, and keygen);
//! `output.rs` holds the printing convention every command follows.

mod ledger;
mod operator;
mod output;
mod registry;
mod statements;

pub use operator::{export, verify_copy};

use crate::client::Client;
use crate::config;
use crate::crypto::SigningKey;
use crate::domain::{EntryKind, Granularity, RecipientStatus, Role};
use crate::error::{AppError, AppResult};
use clap::builder::PossibleValue;
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(name = "fundtrail", version, about = "Welfare money on a signed, hash-chained ledger", long_about = None)]
pub struct Cli {
    /// Database file of the commands that open one (init, serve, demo, verify, export,
    /// reconcile, statement recheck), as their own --db gives it [default: $FUNDTRAIL_DB, else
    /// data/fundtrail.db].
    #[arg(long, value_name = "PATH")]
    pub db: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create the database, master key, operator org, key and first admin token.
    Init(operator::Init),
    /// Serve the API.
    Serve(operator::Serve),
    /// Load the demo fixtures into the database (initialising it if needed). Does nothing twice.
    Demo(operator::Demo),
    /// Generate an Ed25519 key for an org; prints the public key to register.
    Keygen(operator::Keygen),
    /// Print the OpenAPI document.
    Openapi,
    /// Check the whole chain: links, hashes, signatures, conservation. Exit 1 on failure.
    Verify(operator::Verify),
    /// Export the whole ledger as JSON Lines (orgs, programs, keys, submissions, entries) for
    /// independent verification (docs/verify_export.py).
    Export(operator::Export),
    /// Reconcile: where money is stuck, missing or misdirected, node by node, with evidence.
    /// Runs on the database directly (an inspector's copy gives the same report as the
    /// server), or as a job on --server. Left out, --program, --period and --org mean all of
    /// them.
    Reconcile(operator::Reconcile),
    /// Import a bank statement (CSV incl. GBK Chinese bank exports, Excel .xlsx/.xls,
    /// camt.053/054, MT940) for one of your org's registered accounts: signs the file's SHA-256
    /// and uploads it; the server matches its rows to your payments. A file with a bad row, or
    /// a statement that does not add up from its opening to its closing balance, is refused
    /// whole. With --dry-run, only read it and show what it holds and every problem, sending
    /// nothing anywhere.
    Import(statements::Import),
    /// Program bank accounts.
    #[command(subcommand)]
    Account(statements::AccountCommand),
    /// Imported statements.
    #[command(subcommand)]
    Statement(statements::StatementCommand),
    /// Orgs (admin).
    #[command(subcommand)]
    Org(registry::OrgCommand),
    /// Signing keys.
    #[command(subcommand)]
    Key(registry::KeyCommand),
    /// API tokens.
    #[command(subcommand)]
    Token(registry::TokenCommand),
    /// Programs (finance bureau).
    #[command(subcommand)]
    Program(registry::ProgramCommand),
    /// The recipient registry (local office).
    #[command(subcommand)]
    Recipients(registry::RecipientsCommand),
    /// Record a budget your bureau received (finance bureau owning the program).
    Budget(ledger::Budget),
    /// Pass money you hold to an org directly below you.
    Allocate(ledger::Allocate),
    /// Pay recipients from a roster CSV, in signed batches.
    Disburse(ledger::Disburse),
    /// Reverse (void) an entry you wrote that nothing has drawn on.
    Reverse(ledger::Reverse),
    /// List entries, oldest first.
    Entries(ledger::Entries),
    /// Balances per org and program.
    Balance(ledger::Balances),
}

/// How to reach the server, for commands that only read.
#[derive(Args, Debug, Clone)]
pub struct Remote {
    /// Server base URL.
    #[arg(
        long,
        env = "FUNDTRAIL_SERVER",
        default_value = "http://127.0.0.1:8080"
    )]
    pub server: String,
    /// API token of your org.
    #[arg(long, env = "FUNDTRAIL_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

impl Remote {
    fn client(&self) -> AppResult<Client> {
        let token = self
            .token
            .clone()
            .ok_or_else(|| AppError::unauthorized("give --token or set FUNDTRAIL_TOKEN"))?;
        Ok(Client::new(&self.server, Some(token.trim().to_string())))
    }
}

/// How to reach the server and sign as an org, for commands that write.
#[derive(Args, Debug, Clone)]
pub struct Signer {
    #[command(flatten)]
    pub remote: Remote,
    /// Your org's private key file (from `fundtrail keygen`).
    #[arg(long, env = "FUNDTRAIL_KEY", value_name = "FILE")]
    pub key: Option<PathBuf>,
}

impl Signer {
    fn client(&self) -> AppResult<Client> {
        self.remote.client()
    }
    fn signing_key(&self) -> AppResult<SigningKey> {
        let path = self.key.as_ref().ok_or_else(|| {
            AppError::unauthorized("give --key or set FUNDTRAIL_KEY (your org's private key file)")
        })?;
        SigningKey::load(path).map_err(AppError::unauthorized)
    }
}

/// `--db` of a command that opens the database file itself.
#[derive(Args, Debug, Clone, Default)]
pub struct DbArg {
    /// The SQLite database file; its directory holds master.key and statement-files/
    /// [default: $FUNDTRAIL_DB, else data/fundtrail.db].
    #[arg(long = "db", value_name = "PATH")]
    pub db: Option<PathBuf>,
}

/// The database a command opens: its own `--db`, else the one before the command, else
/// `FUNDTRAIL_DB`, else the default. `explicit` says whether anyone named it.
pub(crate) struct DbPath {
    pub path: PathBuf,
    pub explicit: bool,
}

impl DbArg {
    fn resolve(&self, top: Option<&Path>) -> DbPath {
        let named = self
            .db
            .clone()
            .or_else(|| top.map(Path::to_path_buf))
            .or_else(|| {
                std::env::var_os("FUNDTRAIL_DB")
                    .filter(|v| !v.is_empty())
                    .map(PathBuf::from)
            });
        DbPath {
            explicit: named.is_some(),
            path: named.unwrap_or_else(|| PathBuf::from(config::DB_PATH_DEFAULT)),
        }
    }
}

// Command-line values are checked by clap, which lists the allowed ones in its error
// (`--role county` → "possible values: admin, finance_bureau, …"), instead of reaching the
// server as JSON it refuses.
macro_rules! value_enum {
    ($ty:ty, [$($v:expr),+ $(,)?]) => {
        impl ValueEnum for $ty {
            fn value_variants<'a>() -> &'a [Self] {
                &[$($v),+]
            }
            fn to_possible_value(&self) -> Option<PossibleValue> {
                Some(PossibleValue::new(self.as_str()))
            }
        }
    };
}
value_enum!(
    Role,
    [
        Role::Admin,
        Role::FinanceBureau,
        Role::LocalOffice,
        Role::Inspector
    ]
);
value_enum!(
    EntryKind,
    [
        EntryKind::Budget,
        EntryKind::Allocation,
        EntryKind::Disbursement,
        EntryKind::Reversal,
        EntryKind::Confirmation,
        EntryKind::Return,
    ]
);
value_enum!(
    RecipientStatus,
    [
        RecipientStatus::Active,
        RecipientStatus::Suspended,
        RecipientStatus::Deceased
    ]
);
value_enum!(
    Granularity,
    [Granularity::Month, Granularity::Quarter, Granularity::Year]
);
value_enum!(
    crate::reconcile::Format,
    [
        crate::reconcile::Format::Json,
        crate::reconcile::Format::Csv,
        crate::reconcile::Format::Html
    ]
);

impl ValueEnum for crate::reconcile::render::Lang {
    fn value_variants<'a>() -> &'a [Self] {
        use crate::reconcile::render::Lang;
        &[Lang::ZhCn, Lang::En]
    }
    fn to_possible_value(&self) -> Option<PossibleValue> {
        use crate::reconcile::render::Lang;
        Some(match self {
            Lang::ZhCn => PossibleValue::new("zh-CN").aliases(["zh", "zh_cn"]),
            Lang::En => PossibleValue::new("en"),
        })
    }
}

/// Runs the CLI; returns the process exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            output::print_error(&e);
            ExitCode::FAILURE
        }
    }
}

/// Runs one parsed command.
pub fn run(cli: Cli) -> AppResult<ExitCode> {
    let top = cli.db.as_deref();
    if top.is_some() && !opens_database(&cli.command) {
        return Err(AppError::invalid(
            "db",
            "--db is for the commands that open a database (init, serve, demo, verify, export, \
             reconcile, statement recheck); this one talks to a server (--server)",
        ));
    }
    match cli.command {
        Command::Init(a) => operator::init(a, top),
        Command::Serve(a) => operator::serve(a, top),
        Command::Demo(a) => operator::demo(a, top),
        Command::Keygen(a) => operator::keygen(a),
        Command::Openapi => {
            print!("{}", crate::api::openapi_json());
            Ok(ExitCode::SUCCESS)
        }
        Command::Verify(a) => operator::verify(a, top),
        Command::Export(a) => operator::export_command(a, top),
        Command::Reconcile(a) => operator::reconcile(a, top),
        Command::Import(a) => statements::import(a),
        Command::Account(c) => statements::account(c),
        Command::Statement(c) => statements::statement(c, top),
        Command::Org(c) => registry::org(c),
        Command::Key(c) => registry::key(c),
        Command::Token(c) => registry::token(c),
        Command::Program(c) => registry::program(c),
        Command::Recipients(c) => registry::recipients(c),
        Command::Budget(a) => ledger::budget(a),
        Command::Allocate(a) => ledger::allocate(a),
        Command::Disburse(a) => ledger::disburse(a),
        Command::Reverse(a) => ledger::reverse(a),
        Command::Entries(a) => ledger::entries(a),
        Command::Balance(a) => ledger::balance(a),
    }
}

fn opens_database(c: &Command) -> bool {
    matches!(
        c,
        Command::Init(_)
            | Command::Serve(_)
            | Command::Demo(_)
            | Command::Verify(_)
            | Command::Export(_)
            | Command::Reconcile(_)
            | Command::Statement(statements::StatementCommand::Recheck { .. })
    )
}

fn today() -> String {
    chrono::Local::now().date_naive().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    /// Every subcommand and every argument, by path (`statement show --status`).
    fn walk(cmd: &clap::Command, path: &str, visit: &mut dyn FnMut(&str, &clap::Command)) {
        visit(path, cmd);
        for sub in cmd.get_subcommands() {
            walk(sub, &format!("{path} {}", sub.get_name()), visit);
        }
    }

    #[test]
    fn the_command_tree_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn every_subcommand_and_argument_has_help() {
        let mut cmd = Cli::command();
        cmd.build();
        let mut missing = Vec::new();
        let mut seen = 0;
        walk(&cmd, "fundtrail", &mut |path, c| {
            if c.get_about().is_none() && c.get_long_about().is_none() {
                missing.push(path.to_string());
            }
            for a in c.get_arguments() {
                seen += 1;
                if a.get_help().is_none() && a.get_long_help().is_none() {
                    missing.push(format!("{path} {}", a.get_id()));
                }
            }
        });
        assert!(seen > 100, "walked only {seen} arguments");
        assert!(missing.is_empty(), "without help: {missing:#?}");
    }

    #[test]
    fn db_is_offered_only_where_a_database_is_opened() {
        let mut with_db = Vec::new();
        walk(&Cli::command(), "fundtrail", &mut |path, c| {
            if c.get_arguments().any(|a| a.get_long() == Some("db")) {
                with_db.push(path.to_string());
            }
        });
        with_db.sort();
        assert_eq!(
            with_db,
            [
                "fundtrail",
                "fundtrail demo",
                "fundtrail export",
                "fundtrail init",
                "fundtrail reconcile",
                "fundtrail serve",
                "fundtrail statement recheck",
                "fundtrail verify",
            ]
        );
    }

    #[test]
    fn a_db_before_a_server_command_is_refused() {
        let cli = Cli::parse_from(["fundtrail", "--db", "x.db", "org", "list"]);
        let e = run(cli).unwrap_err();
        assert_eq!(e.first.field.as_deref(), Some("db"));
    }

    #[test]
    fn typed_values_are_checked_with_the_allowed_ones_listed() {
        let e = Cli::try_parse_from([
            "fundtrail",
            "org",
            "create",
            "X1",
            "--name",
            "x",
            "--role",
            "county",
        ])
        .unwrap_err();
        let text = e.to_string();
        assert_eq!(e.kind(), clap::error::ErrorKind::InvalidValue, "{text}");
        assert!(
            text.contains("local_office") && text.contains("finance_bureau"),
            "{text}"
        );
        for bad in [
            vec!["fundtrail", "entries", "--kind", "payment"],
            vec!["fundtrail", "reconcile", "--format", "pdf"],
            vec!["fundtrail", "reconcile", "--lang", "fr"],
            vec!["fundtrail", "import", "f.csv", "--format", "xls-icbc"],
            vec!["fundtrail", "statement", "show", "1", "--status", "lost"],
            vec![
                "fundtrail",
                "recipients",
                "status",
                "R1",
                "--status",
                "dead",
                "--date",
                "2026-01-01",
            ],
        ] {
            let e = Cli::try_parse_from(&bad).unwrap_err();
            assert_eq!(e.kind(), clap::error::ErrorKind::InvalidValue, "{bad:?}");
            assert!(e.to_string().contains("possible values"), "{bad:?}: {e}");
        }
        let ok = Cli::try_parse_from(["fundtrail", "reconcile", "--lang", "zh"]);
        assert!(ok.is_ok());
    }
}
