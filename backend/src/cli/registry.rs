//! The registry's commands: orgs, their keys and tokens, programs, and recipients.

use super::ledger::{file_errors, items_to_lines};
use super::output::{or_dash, print_json, warn_unknown_columns, Table};
use super::{Remote, Signer};
use crate::domain::{parse_date, Granularity, RecipientStatus, Role};
use crate::error::{AppError, AppResult, ErrorCode, Problem};
use crate::ledger::verify::KeyView;
use crate::roster::read_registrations;
use crate::service::orgs::{IssuedToken, OrgView};
use crate::service::programs::ProgramView;
use crate::service::recipients::{RecipientView, Registered, Resolved, REGISTER_BATCH_MAX};
use crate::statements::mask_account;
use clap::Subcommand;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Subcommand, Debug)]
pub enum OrgCommand {
    /// Register an org (admin).
    Create {
        #[command(flatten)]
        signer: Signer,
        /// The org's code: 2-32 of A-Z, 0-9, - and _.
        code: String,
        /// Its name, for people (e.g. 城关镇人民政府).
        #[arg(long)]
        name: String,
        /// What it is, which decides what it may write.
        #[arg(long, value_enum)]
        role: Role,
        /// Code of the org directly above it (money flows down this tree).
        #[arg(long)]
        parent: Option<String>,
        /// The org's public key (base64, as `keygen` prints it).
        #[arg(long)]
        public_key: Option<String>,
        /// Print the org registered as JSON.
        #[arg(long)]
        json: bool,
    },
    /// List orgs.
    List {
        #[command(flatten)]
        remote: Remote,
        /// Print the orgs as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum KeyCommand {
    /// Register a public key for an org (admin, or the org to rotate).
    Add {
        #[command(flatten)]
        signer: Signer,
        /// The org the key signs for.
        org: String,
        /// The public key (base64, as `keygen` prints it).
        #[arg(long)]
        public_key: String,
        /// Print the key registered as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Retire a key from now on (entries it signed keep verifying).
    Retire {
        #[command(flatten)]
        signer: Signer,
        /// The org the key signs for.
        org: String,
        /// The key's id, as `keygen` and `key add` print it.
        key_id: String,
        /// Print the retired key as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum TokenCommand {
    /// Issue an API token for an org (admin, or the org itself). Prints it once.
    Create {
        #[command(flatten)]
        signer: Signer,
        /// The org the token acts as.
        org: String,
        /// What the token is for, e.g. the clerk or script that uses it.
        #[arg(long)]
        label: String,
        /// Print the token issued (id, org, label, token) as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum ProgramCommand {
    /// Register a program (finance bureau).
    Create {
        #[command(flatten)]
        signer: Signer,
        /// The program's code: 2-32 of A-Z, 0-9, - and _, e.g. DIBAO-2026.
        code: String,
        /// Its name, for people (e.g. 城乡低保).
        #[arg(long)]
        name: String,
        /// The fiscal year its periods lie in.
        #[arg(long)]
        fiscal_year: i32,
        /// What a recipient is due per period by default, e.g. 780.00.
        #[arg(long)]
        standard_amount: String,
        /// How the year is divided into payment periods.
        #[arg(long, value_enum, default_value = "month")]
        period_granularity: Granularity,
        /// ISO 4217 currency.
        #[arg(long, default_value = "CNY")]
        currency: String,
        /// Print the program registered as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum RecipientsCommand {
    /// Register recipients from a CSV: name/姓名, id_number/身份证号, bank_account/银行账号,
    /// and optionally bank_name/开户行, status/状态, status_date/状态日期, entitlement/核定金额.
    Register {
        #[command(flatten)]
        signer: Signer,
        /// The CSV file; other columns are named and not used.
        #[arg(long)]
        csv: PathBuf,
        /// Print each row's pseudonym with its line as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Set a recipient's status (home office): suspended or deceased from a date, or active.
    /// Payments dated on or after that day are refused.
    Status {
        #[command(flatten)]
        signer: Signer,
        /// The recipient's pseudonym (or give --id-number).
        #[arg(required_unless_present = "id_number", conflicts_with = "id_number")]
        pseudonym: Option<String>,
        /// The recipient's ID number, resolved to the pseudonym among your recipients.
        #[arg(long)]
        id_number: Option<String>,
        /// The new status.
        #[arg(long, value_enum)]
        status: RecipientStatus,
        /// The day it took effect, YYYY-MM-DD (needed unless active).
        #[arg(long)]
        date: Option<String>,
        /// Print the recipient as it now stands as JSON.
        #[arg(long)]
        json: bool,
    },
    /// The pseudonym of each ID number among your office's recipients (local office).
    Resolve {
        #[command(flatten)]
        remote: Remote,
        /// An ID number to resolve (repeat for several).
        #[arg(long = "id-number", required = true, value_name = "ID")]
        id_numbers: Vec<String>,
        /// Print each ID number with its pseudonym (null if none) as JSON.
        #[arg(long)]
        json: bool,
    },
}

pub(super) fn org(c: OrgCommand) -> AppResult<ExitCode> {
    match c {
        OrgCommand::Create {
            signer,
            code,
            name,
            role,
            parent,
            public_key,
            json: json_out,
        } => {
            let has_key = public_key.is_some();
            let o: OrgView = signer.client()?.post_signed(
                "/api/v1/orgs",
                &signer.signing_key()?,
                json!({"code": code, "name": name, "role": role, "parent": parent, "public_key": public_key}),
            )?;
            if json_out {
                print_json(&o);
            } else {
                println!(
                    "created org {} ({}, {}) under {}{}",
                    o.code,
                    o.name,
                    o.role,
                    o.parent.as_deref().unwrap_or("no parent"),
                    if has_key {
                        ", with its public key"
                    } else {
                        "; no key yet: `fundtrail key add`"
                    }
                );
            }
        }
        OrgCommand::List {
            remote,
            json: json_out,
        } => {
            let orgs: Vec<OrgView> = remote.client()?.get("/api/v1/orgs", &[])?;
            if json_out {
                print_json(&orgs);
            } else {
                let mut t = Table::new(&["code", "role", "parent", "name"]);
                for o in orgs {
                    t.row(vec![o.code, o.role.to_string(), or_dash(o.parent), o.name]);
                }
                t.print();
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_key(k: &KeyView, what: &str, json_out: bool) {
    if json_out {
        print_json(k);
    } else {
        println!(
            "{what} key {} of {}: valid from {} until {}",
            k.key_id,
            k.org,
            k.valid_from,
            k.valid_until.as_deref().unwrap_or("retired")
        );
    }
}

pub(super) fn key(c: KeyCommand) -> AppResult<ExitCode> {
    match c {
        KeyCommand::Add {
            signer,
            org,
            public_key,
            json: json_out,
        } => {
            let k: KeyView = signer.client()?.post_signed(
                &format!("/api/v1/orgs/{org}/keys"),
                &signer.signing_key()?,
                json!({ "public_key": public_key }),
            )?;
            print_key(&k, "registered", json_out);
        }
        KeyCommand::Retire {
            signer,
            org,
            key_id,
            json: json_out,
        } => {
            let k: KeyView = signer.client()?.post_signed(
                &format!("/api/v1/orgs/{org}/keys/{key_id}/retire"),
                &signer.signing_key()?,
                json!({}),
            )?;
            print_key(&k, "retired", json_out);
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub(super) fn token(c: TokenCommand) -> AppResult<ExitCode> {
    let TokenCommand::Create {
        signer,
        org,
        label,
        json: json_out,
    } = c;
    let t: IssuedToken = signer.client()?.post_signed(
        &format!("/api/v1/orgs/{org}/tokens"),
        &signer.signing_key()?,
        json!({ "label": label }),
    )?;
    if json_out {
        print_json(&t);
    } else {
        println!(
            "issued token {} for {} ({}); store it now, it is not shown again:",
            t.id, t.org, t.label
        );
        println!("{}", t.token);
    }
    Ok(ExitCode::SUCCESS)
}

pub(super) fn program(c: ProgramCommand) -> AppResult<ExitCode> {
    let ProgramCommand::Create {
        signer,
        code,
        name,
        fiscal_year,
        standard_amount,
        period_granularity,
        currency,
        json: json_out,
    } = c;
    let p: ProgramView = signer.client()?.post_signed(
        "/api/v1/programs",
        &signer.signing_key()?,
        json!({"code": code, "name": name, "fiscal_year": fiscal_year, "currency": currency,
               "standard_amount": standard_amount, "period_granularity": period_granularity}),
    )?;
    if json_out {
        print_json(&p);
    } else {
        println!(
            "registered program {} ({}), fiscal year {}, {} {} per {}, owned by {}",
            p.code,
            p.name,
            p.fiscal_year,
            p.standard_amount,
            p.currency,
            p.period_granularity,
            p.owner
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub(super) fn recipients(c: RecipientsCommand) -> AppResult<ExitCode> {
    match c {
        RecipientsCommand::Register {
            signer,
            csv,
            json: json_out,
        } => register(&signer, &csv, json_out),
        RecipientsCommand::Status {
            signer,
            pseudonym,
            id_number,
            status,
            date,
            json: json_out,
        } => {
            if status != RecipientStatus::Active {
                match date.as_deref() {
                    None => {
                        return Err(AppError::invalid(
                            "date",
                            format!("a {status} recipient needs --date, the day it took effect"),
                        ))
                    }
                    Some(d) if parse_date(d).is_none() => {
                        return Err(AppError::invalid(
                            "date",
                            format!("--date `{d}` is not a date in the form YYYY-MM-DD"),
                        ))
                    }
                    Some(_) => {}
                }
            }
            let client = signer.client()?;
            let key = signer.signing_key()?;
            let pseudonym = match (pseudonym, id_number) {
                (Some(p), _) => p,
                (None, Some(id)) => resolve(&client, std::slice::from_ref(&id))?
                    .pseudonyms
                    .into_iter()
                    .next()
                    .flatten()
                    .ok_or_else(|| {
                        AppError::new(
                            ErrorCode::UnknownRecipient,
                            format!(
                                "this ID number is not a registered recipient of {}",
                                key.org
                            ),
                        )
                        .field("id_number")
                    })?,
                // clap requires one of the two.
                (None, None) => {
                    return Err(AppError::invalid(
                        "pseudonym",
                        "give the pseudonym or --id-number",
                    ))
                }
            };
            let date = date.filter(|_| status != RecipientStatus::Active);
            let v: RecipientView = client.post_signed(
                &format!("/api/v1/recipients/{pseudonym}/status"),
                &key,
                json!({ "status": status, "status_date": date }),
            )?;
            if json_out {
                print_json(&v);
            } else {
                println!(
                    "recipient {} of {} is now {}{}",
                    v.pseudonym,
                    v.home_office,
                    v.status,
                    v.status_date
                        .as_deref()
                        .map(|d| format!(" as of {d}"))
                        .unwrap_or_default()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        RecipientsCommand::Resolve {
            remote,
            id_numbers,
            json: json_out,
        } => {
            let r = resolve(&remote.client()?, &id_numbers)?;
            let pairs: Vec<(String, Option<String>)> =
                id_numbers.into_iter().zip(r.pseudonyms).collect();
            if json_out {
                let list: Vec<Value> = pairs
                    .iter()
                    .map(|(id, p)| json!({"id_number": id, "pseudonym": p}))
                    .collect();
                print_json(&json!({ "recipients": list }));
            } else {
                let mut t = Table::new(&["id_number", "pseudonym"]);
                for (id, p) in &pairs {
                    t.row(vec![
                        id.clone(),
                        p.clone()
                            .unwrap_or_else(|| "(not one of your recipients)".into()),
                    ]);
                }
                t.print();
            }
            let unknown: Vec<Problem> = pairs
                .iter()
                .filter(|(_, p)| p.is_none())
                .map(|(id, _)| Problem {
                    error: ErrorCode::UnknownRecipient,
                    // Masked: error output lands in terminals, logs and tickets.
                    message: format!(
                        "--id-number {}: not a registered recipient of your office",
                        mask_account(id)
                    ),
                    field: Some("id_number".into()),
                    item: None,
                    location: None,
                })
                .collect();
            if unknown.is_empty() {
                Ok(ExitCode::SUCCESS)
            } else {
                Err(AppError::batch(unknown))
            }
        }
    }
}

/// The server's `resolve`, its refusals naming the `--id-number` given rather than an item.
fn resolve(client: &crate::client::Client, ids: &[String]) -> AppResult<Resolved> {
    client
        .post_json("/api/v1/recipients/resolve", &json!({ "id_numbers": ids }))
        .map_err(|mut e| {
            for p in e.problems.iter_mut().chain(std::iter::once(&mut *e.first)) {
                if let Some(id) = p.item.and_then(|i| ids.get(i)) {
                    p.message = format!("--id-number {}: {}", mask_account(id), p.message);
                    p.item = None;
                    p.field = Some("id_number".into());
                }
            }
            e
        })
}

/// `recipients register`: the file in requests of at most [`REGISTER_BATCH_MAX`] rows, each
/// all or nothing; refusals name the file's lines.
fn register(signer: &Signer, csv: &PathBuf, json_out: bool) -> AppResult<ExitCode> {
    let file = std::fs::File::open(csv)
        .map_err(|e| AppError::invalid("csv", format!("cannot open {}: {e}", csv.display())))?;
    let read = read_registrations(std::io::BufReader::new(file))
        .map_err(|errors| file_errors(csv, errors))?;
    warn_unknown_columns(
        csv,
        &read.columns.unknown,
        "name/姓名, id_number/身份证号, bank_account/银行账号, bank_name/开户行, status/状态, \
         status_date/状态日期, entitlement/核定金额",
    );
    let client = signer.client()?;
    let key = signer.signing_key()?;
    let mut done: Vec<Value> = Vec::with_capacity(read.rows.len());
    let summary = |done: &[Value], complete: bool| {
        json!({
            "csv": csv,
            "unknown_columns": read.columns.unknown,
            "ignored_columns": read.columns.ignored,
            "registered": done.len(),
            "complete": complete,
            "recipients": done,
        })
    };
    for chunk in read.rows.chunks(REGISTER_BATCH_MAX) {
        let items: Vec<_> = chunk.iter().map(|r| &r.item).collect();
        let lines: Vec<u64> = chunk.iter().map(|r| r.line).collect();
        let out: Registered =
            match client.post_signed("/api/v1/recipients", &key, json!({ "recipients": items })) {
                Ok(out) => out,
                Err(mut e) => {
                    items_to_lines(&mut e, &lines, &format!("{} line", csv.display()));
                    if json_out {
                        print_json(&summary(&done, false));
                    }
                    if let (Some(first), Some(last)) = (done.first(), done.last()) {
                        eprintln!(
                            "{} recipients were registered (lines {}-{}); nothing from line {} on",
                            done.len(),
                            first["line"],
                            last["line"],
                            lines[0]
                        );
                    } else {
                        eprintln!("nothing was registered");
                    }
                    return Err(e);
                }
            };
        done.extend(
            lines
                .iter()
                .zip(out.pseudonyms)
                .map(|(line, p)| json!({"line": line, "pseudonym": p})),
        );
    }
    if json_out {
        print_json(&summary(&done, true));
    } else {
        let at = match (read.rows.first(), read.rows.last()) {
            (Some(a), Some(b)) => format!(" (lines {}-{})", a.line, b.line),
            _ => String::new(),
        };
        println!(
            "registered {} recipients from {}{at}; their pseudonyms: --json",
            done.len(),
            csv.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}
