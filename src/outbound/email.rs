//! Sends the email outbox over SMTP (lettre), one email at a time over a
//! pooled connection, and records each attempt; a mail server that is down
//! only delays emails, which wait for their next attempt in the database.

use std::sync::Arc;
use std::time::Duration;

use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::templates::{self, Invitation, Rendered};
use crate::config::{Config, SmtpSecurity};
use crate::service::emails::{self, Outgoing, Sent};
use crate::service::Services;
use crate::store;
use crate::AppError;

pub type Transport = AsyncSmtpTransport<Tokio1Executor>;

/// Emails taken from the outbox per round.
const BATCH: usize = 50;

/// The SMTP transport the configuration describes; `None` when email is off.
pub fn transport(config: &Config) -> Result<Option<Transport>, String> {
    let settings = &config.email;
    let Some(host) = settings.smtp_host.as_deref().map(str::trim) else {
        return Ok(None);
    };
    let tls = || -> Result<TlsParameters, String> {
        let mut parameters = TlsParameters::builder(host.to_string());
        if let Some(path) = &settings.smtp_ca_file {
            let pem = std::fs::read(path)
                .map_err(|e| format!("reading email.smtp_ca_file {}: {e}", path.display()))?;
            let certificate = Certificate::from_pem(&pem)
                .map_err(|e| format!("email.smtp_ca_file {}: {e}", path.display()))?;
            parameters = parameters.add_root_certificate(certificate);
        }
        parameters
            .build_rustls()
            .map_err(|e| format!("TLS settings for {host}: {e}"))
    };
    let tls = match settings.smtp_security {
        SmtpSecurity::Starttls => Tls::Required(tls()?),
        SmtpSecurity::Tls => Tls::Wrapper(tls()?),
        SmtpSecurity::None => Tls::None,
    };
    let mut builder = Transport::builder_dangerous(host)
        .tls(tls)
        .port(settings.smtp_port)
        .timeout(Some(Duration::from_secs(settings.timeout_secs.max(1))));
    if let Some(username) = &settings.smtp_username {
        let password = match config.smtp_password_path() {
            Some(path) => std::fs::read_to_string(&path)
                .map_err(|e| format!("reading the SMTP password file {}: {e}", path.display()))?
                .trim()
                .to_string(),
            None => String::new(),
        };
        builder = builder.credentials(Credentials::new(username.clone(), password));
    }
    Ok(Some(builder.build()))
}

fn message(config: &Config, to: &str, rendered: Rendered) -> Result<Message, String> {
    let from: Mailbox = config
        .email
        .from
        .parse()
        .map_err(|e| format!("email.from: {e}"))?;
    let to: Mailbox = to
        .parse()
        .map_err(|e| format!("the recipient {to:?} is not an address: {e}"))?;
    Message::builder()
        .from(from)
        .to(to)
        .subject(rendered.subject)
        .multipart(MultiPart::alternative_plain_html(
            rendered.text,
            rendered.html,
        ))
        .map_err(|e| format!("building the email: {e}"))
}

/// Sends one email now, outside the outbox: `enterprise-sync send-test-email`.
pub async fn send_test(config: &Config, to: &str) -> Result<(), String> {
    let transport = transport(config)?
        .ok_or("email is off: set email.smtp_host (see docs/configuration.md)")?;
    let host = config.email.smtp_host.clone().unwrap_or_default();
    let email = message(config, to, templates::test_email(&host))?;
    transport.send(email).await.map(|_| ()).map_err(|e| {
        format!(
            "the SMTP server {host}:{} said: {e}",
            config.email.smtp_port
        )
    })
}

pub fn spawn(svc: Arc<Services>, transport: Transport, stop: CancellationToken) -> JoinHandle<()> {
    tokio::spawn(async move {
        let wake = svc.outbound.email();
        let poll = Duration::from_millis(svc.config.email.poll_interval_ms.max(10));
        loop {
            let last_read = tokio::time::Instant::now();
            match send_due(&svc, &transport, &stop).await {
                Ok(0) | Err(_) => {}
                // A full batch: more may be due at once.
                Ok(n) if n == BATCH => continue,
                Ok(_) => {}
            }
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = wake.notified() => crate::service::outbox::gather_wakeups(last_read).await,
                _ = tokio::time::sleep(poll) => {}
            }
        }
    })
}

/// Sends what is due; returns how many emails were taken.
async fn send_due(
    svc: &Services,
    transport: &Transport,
    stop: &CancellationToken,
) -> Result<usize, AppError> {
    let now = svc.clock.now();
    let due = svc
        .db
        .read(move |conn| store::email_outbox::due(conn, now, BATCH).map_err(AppError::from))
        .await
        .inspect_err(|e| tracing::warn!(error = %e, "reading due emails failed"))?;
    let taken = due.len();
    for email in due {
        let attempt = async {
            match emails::prepare(svc, &email).await {
                Ok(outgoing) => deliver(svc, transport, &email.recipient, outgoing).await,
                Err(e) => Sent::Failed(format!("preparing the email failed: {e}")),
            }
        };
        // Shutting down does not wait for a slow mail server: the email stays
        // due and goes out after the restart.
        let sent = tokio::select! {
            sent = attempt => sent,
            _ = stop.cancelled() => break,
        };
        if let Err(e) = emails::record(svc, &email, sent).await {
            tracing::warn!(error = %e, "recording an email attempt failed");
        }
    }
    Ok(taken)
}

async fn deliver(svc: &Services, transport: &Transport, to: &str, outgoing: Outgoing) -> Sent {
    let rendered = match outgoing {
        Outgoing::Cancelled(why) => return Sent::Cancelled(why),
        Outgoing::Invitation {
            language,
            company,
            person,
            link,
            expires_at,
        } => templates::invitation(
            language,
            &Invitation {
                company: &company,
                person: &person,
                link: &link,
                expires_at,
            },
        ),
        Outgoing::PasswordReset {
            language,
            company,
            person,
            link,
            expires_at,
        } => templates::password_reset(
            language,
            &Invitation {
                company: &company,
                person: &person,
                link: &link,
                expires_at,
            },
        ),
        Outgoing::Alert {
            language,
            company,
            facts,
            base,
        } => templates::alert(language, &company, &facts, &base),
        Outgoing::Test => {
            templates::test_email(svc.config.email.smtp_host.as_deref().unwrap_or(""))
        }
    };
    let email = match message(&svc.config, to, rendered) {
        Ok(email) => email,
        Err(why) => return Sent::Refused(why),
    };
    match transport.send(email).await {
        Ok(_) => Sent::Delivered,
        Err(e) if e.is_permanent() => Sent::Refused(format!("the SMTP server refused it: {e}")),
        Err(e) => Sent::Failed(format!("sending failed: {e}")),
    }
}
