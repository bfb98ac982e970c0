//! The `postdesk` command: `serve`, `user create`, `inspect FILE.eml`.

use std::io::Write as _;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use postdesk::{Application, Settings};
use postdesk_core::model::Role;
use postdesk_store::NewUser;

#[derive(Parser)]
#[command(
    name = "postdesk",
    version,
    about = "A shared email inbox as a live queue of conversations"
)]
struct Cli {
    #[command(subcommand)]
    command: Commands,
}

#[derive(Subcommand)]
enum Commands {
    /// Run the server: web app, IMAP readers, outbox (and the SMTP ingress when enabled).
    Serve {
        #[command(flatten)]
        settings: Settings,
    },
    /// Manage users.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Parse an email file and print what postdesk sees in it, as JSON, with its sender's DKIM,
    /// SPF and DMARC verdicts checked against DNS now (`temperror` when DNS does not answer).
    Inspect {
        /// The .eml file ("-" for standard input).
        file: PathBuf,
        /// DNS servers for the sender checks, as for `serve` (e.g. 127.0.0.1:5353), or "off".
        /// Default: the system's resolver.
        #[arg(long, env = "POSTDESK_DNS")]
        dns: Option<String>,
    },
    /// Print the OpenAPI 3.1 document of the HTTP API (what `GET /api/v1/openapi.json`
    /// answers), e.g. for a client generator.
    Openapi,
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create a user.
    Create {
        /// Login name (letters, digits, '.', '_', '-').
        #[arg(long)]
        username: String,
        /// Password (at least 8 characters).
        #[arg(long, env = "POSTDESK_NEW_USER_PASSWORD", hide_env_values = true)]
        password: String,
        /// Role; repeat for several (admin, manager, agent).
        #[arg(long = "role", default_value = "agent")]
        roles: Vec<String>,
        /// Display name (default: the username).
        #[arg(long)]
        name: Option<String>,
        /// Email address.
        #[arg(long, default_value = "")]
        email: String,
        #[command(flatten)]
        settings: Settings,
    },
}

/// Sets up the log on standard error: filtered by `POSTDESK_LOG`, in the human format or, with
/// `POSTDESK_LOG_FORMAT=json`, one JSON object per line (for a log collector). Either way every
/// line goes through the redaction of secrets.
fn init_tracing() -> anyhow::Result<()> {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("POSTDESK_LOG")
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    let format = std::env::var("POSTDESK_LOG_FORMAT").unwrap_or_default();
    match format.trim().to_ascii_lowercase().as_str() {
        "" | "text" => tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(postdesk::redact::stderr)
            .init(),
        "json" => tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter)
            .with_writer(postdesk::redact::stderr_json)
            .init(),
        other => anyhow::bail!(
            "POSTDESK_LOG_FORMAT must be \"text\" (the default) or \"json\", not {other:?}"
        ),
    }
    Ok(())
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    postdesk::tls::install_crypto_provider();
    match run(Cli::parse()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("postdesk: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Commands::Serve { settings } => serve(settings).await,
        Commands::User {
            command:
                UserCommand::Create {
                    username,
                    password,
                    roles,
                    name,
                    email,
                    settings,
                },
        } => {
            let roles = roles
                .iter()
                .map(|r| Role::parse(r))
                .collect::<Result<Vec<_>, _>>()?;
            anyhow::ensure!(
                password.chars().count() >= 8,
                "The password must have at least 8 characters"
            );
            let store = postdesk::app::open_store(&settings).await?;
            let user = store
                .create_user(&NewUser {
                    name: name.unwrap_or_else(|| username.clone()),
                    username,
                    email,
                    password_hash: postdesk::password::hash_async(password).await?,
                    roles,
                })
                .await?;
            println!(
                "Created user {} (id {}) with roles {:?}",
                user.username, user.id, user.roles
            );
            Ok(())
        }
        Commands::Openapi => {
            println!("{}", postdesk::web::openapi::document_json());
            Ok(())
        }
        Commands::Inspect { file, dns } => {
            let bytes = if file.as_os_str() == "-" {
                let mut buf = Vec::new();
                std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf)?;
                buf
            } else {
                std::fs::read(&file).with_context(|| format!("Cannot read {}", file.display()))?
            };
            let mut json = postdesk_mail::inspect(&bytes);
            let dns = postdesk::sender_auth::Dns::parse(dns.as_deref().unwrap_or_default())
                .map_err(anyhow::Error::msg)?;
            if let Some(fields) = json.as_object_mut()
                && !fields.contains_key("error")
            {
                fields.insert(
                    "auth".to_owned(),
                    serde_json::to_value(inspect_sender(&dns, &bytes).await)?,
                );
            }
            let mut out = std::io::stdout().lock();
            serde_json::to_writer_pretty(&mut out, &json)?;
            writeln!(out)?;
            Ok(())
        }
    }
}

/// The sender verdicts of a saved email, read as if fetched over IMAP (its trace fields are the
/// receiving server's). DNS that cannot even be set up gives `temperror`, as a DNS server that
/// does not answer does: inspecting never fails on it.
async fn inspect_sender(
    dns: &postdesk::sender_auth::Dns,
    bytes: &[u8],
) -> Option<postdesk_core::model::SenderAuth> {
    use postdesk_core::model::{AuthResult, SenderAuth};
    use postdesk_mail::envelope::Arrival;
    match postdesk::sender_auth::Verifier::new(dns) {
        Ok(verifier) => verifier.verify(bytes, Arrival::Imap).await,
        Err(e) => {
            eprintln!("postdesk: {e:#}");
            Some(SenderAuth {
                dkim: AuthResult::TempError,
                spf: AuthResult::TempError,
                dmarc: AuthResult::TempError,
                from_domain: String::new(),
                aligned: false,
            })
        }
    }
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    init_tracing()?;
    let app = Application::build(settings).await?;
    let addr = app.local_addr();
    println!("postdesk is running at http://{addr}/");
    if let Some(smtp) = app.smtp_addr() {
        println!("Receiving mail for the inboxes over SMTP on {smtp}");
    }
    println!("Data folder: {}", app.state().settings.data_dir.display());
    if let Some(password) = &app.first_admin_password {
        println!();
        println!("First start: created the admin user.");
        println!("  username: {}", postdesk::app::FIRST_ADMIN);
        println!("  password: {password}");
        println!("This password is shown only once; change it after logging in.");
    }
    std::io::stdout().flush()?;
    app.run_until(async {
        stop_signal().await;
        tracing::info!("Shutting down");
    })
    .await
}

/// Ctrl-C (SIGINT), or SIGTERM (what systemd, Docker and Kubernetes send): postdesk stops
/// gracefully, handing its inboxes over to the other nodes at once.
async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
