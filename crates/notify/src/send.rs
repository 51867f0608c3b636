//! Delivers the outbox over SMTP: claims due mails with a lease, sends each exactly as
//! queued, and records the result — sent; deferred with exponential backoff after a
//! transient failure (4xx, no connection, TLS, timeout); failed, on the ticket too,
//! after a permanent one (5xx) or too many attempts.

use std::collections::HashMap;
use std::time::Duration;

use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use postdesk_core::mailbox::Security;
use postdesk_core::outgoing::{DeliverySettings, SmtpAuth, SmtpSettings};
use postdesk_core::settings::Helpdesk;
use postdesk_store::{RegisteredHelpdesk, Store, StoreError};
use tokio::sync::watch;

type Transport = AsyncSmtpTransport<Tokio1Executor>;

/// The SMTP settings cannot be used as they are.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("{0}")]
    Credential(String),
    #[error("cannot read the CA file {path}: {message}")]
    CaFile {
        path: std::path::PathBuf,
        message: String,
    },
    #[error("TLS setup: {0}")]
    Tls(lettre::transport::smtp::Error),
}

/// The password (or XOAUTH2 access token) for the helpdesk's SMTP login, fetched now.
/// With `auth = "xoauth2"` and no token configured for SMTP, the OAuth2 settings of the
/// helpdesk's IMAP mailbox for the same account are used (and refreshed). Never logged.
pub async fn smtp_password(
    store: &Store,
    helpdesk: &Helpdesk,
) -> Result<Option<String>, SetupError> {
    let Some(smtp) = &helpdesk.outgoing.smtp else {
        return Ok(None);
    };
    let credential =
        |e: postdesk_credentials::CredentialError| SetupError::Credential(e.to_string());
    let configured = postdesk_credentials::optional_secret(
        &smtp.password,
        &smtp.password_env,
        &smtp.password_file,
        "smtp.password",
    )
    .map_err(credential)?;
    if configured.is_some() || smtp.auth != SmtpAuth::Xoauth2 {
        return Ok(configured.map(|s| s.expose().to_string()));
    }
    let mailboxes = &helpdesk.settings.mailboxes;
    let Some(mailbox) = postdesk_credentials::oauth_mailbox(mailboxes, smtp.user.as_deref()) else {
        return Err(SetupError::Credential(
            "smtp: auth = \"xoauth2\" needs a token (password…) or an IMAP mailbox of the same user with [helpdesk.mailbox.oauth2]".into(),
        ));
    };
    let oauth2 = mailbox
        .oauth2
        .as_ref()
        .expect("oauth_mailbox returns OAuth2 mailboxes");
    let token = postdesk_credentials::access_token(
        store,
        &helpdesk.settings.name,
        &mailbox.display_name(),
        oauth2,
    )
    .await
    .map_err(credential)?;
    Ok(Some(token.expose().to_string()))
}

/// The EHLO name: the sender's domain.
fn hello_name(from: &str) -> ClientId {
    match from.rsplit_once('@') {
        Some((_, domain)) if !domain.is_empty() => ClientId::Domain(domain.to_string()),
        _ => ClientId::Domain("localhost".into()),
    }
}

/// An SMTP transport for `smtp`, sending as `from`.
pub fn transport(
    smtp: &SmtpSettings,
    from: &str,
    password: Option<String>,
) -> Result<Transport, SetupError> {
    let tls = match smtp.security {
        Security::None => Tls::None,
        security => {
            let mut params = TlsParameters::builder(smtp.host.clone())
                .dangerous_accept_invalid_certs(smtp.accept_invalid_certs);
            if let Some(path) = &smtp.ca_file {
                let pem = std::fs::read(path).map_err(|e| SetupError::CaFile {
                    path: path.clone(),
                    message: e.to_string(),
                })?;
                let cert = Certificate::from_pem(&pem).map_err(|e| SetupError::CaFile {
                    path: path.clone(),
                    message: e.to_string(),
                })?;
                params = params.add_root_certificate(cert);
            }
            let params = params.build_rustls().map_err(SetupError::Tls)?;
            if security == Security::Tls {
                Tls::Wrapper(params)
            } else {
                Tls::Required(params)
            }
        }
    };
    let mut builder = Transport::builder_dangerous(smtp.host.clone())
        .port(smtp.port())
        .tls(tls)
        .timeout(Some(Duration::from_secs(smtp.timeout_secs)))
        .hello_name(hello_name(from));
    if let Some(user) = &smtp.user {
        let password = password.unwrap_or_default();
        builder = builder
            .credentials(Credentials::new(user.clone(), password))
            .authentication(match smtp.auth {
                SmtpAuth::Password => vec![Mechanism::Plain, Mechanism::Login],
                SmtpAuth::Xoauth2 => vec![Mechanism::Xoauth2],
            });
    }
    Ok(builder.build())
}

/// How one delivery attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    Sent,
    /// Tried again later.
    Deferred(String),
    /// Given up: on the ticket, `postdesk outbox retry` sends it again.
    Failed(String),
    /// Sending is switched off: kept, never sent.
    Suppressed,
}

/// A 5xx reply is the mail's fault, except authentication replies (530–539): those
/// are our configuration's, and the mail waits until it is fixed.
fn classify(e: &lettre::transport::smtp::Error) -> (bool, String) {
    let code = e.status().map(|c| c.to_string());
    let auth = code.as_deref().is_some_and(|c| c.starts_with("53"));
    let permanent = e.is_permanent() && !auth;
    (permanent, e.to_string())
}

/// What one run of the sender did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Delivered {
    pub sent: usize,
    pub deferred: usize,
    pub failed: usize,
    pub suppressed: usize,
}

impl std::fmt::Display for Delivered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} sent, {} to be retried, {} failed, {} suppressed",
            self.sent, self.deferred, self.failed, self.suppressed
        )
    }
}

/// Sends every mail due when called (or only mail `only`), in batches.
pub async fn deliver_due(
    store: &Store,
    helpdesks: &[RegisteredHelpdesk],
    delivery: &DeliverySettings,
    only: Option<i64>,
) -> Result<Delivered, StoreError> {
    let mut done = Delivered::default();
    let mut transports: HashMap<i64, Result<Transport, String>> = HashMap::new();
    // Only what was due when this run started: a mail deferred during the run is
    // not tried again by it (its retry may come due while a slow server is tried).
    let started = postdesk_store::now();
    loop {
        let claimed = store
            .outbox_claim(only, started, delivery.lease_secs, 20)
            .await?;
        if claimed.is_empty() {
            return Ok(done);
        }
        for mail in claimed {
            let hd = helpdesks.iter().find(|h| h.id == mail.helpdesk_id);
            let attempt = if !delivery.enabled {
                Attempt::Suppressed
            } else {
                match hd.and_then(|h| h.config.outgoing.smtp.as_ref().map(|s| (h, s))) {
                    None => Attempt::Deferred(
                        "the helpdesk has no [helpdesk.smtp] in the configuration".into(),
                    ),
                    Some((h, smtp)) => {
                        let transport = match transports.entry(h.id) {
                            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                            std::collections::hash_map::Entry::Vacant(e) => {
                                let made = match smtp_password(store, &h.config).await {
                                    Ok(password) => transport(smtp, &mail.envelope_from, password),
                                    Err(e) => Err(e),
                                };
                                e.insert(made.map_err(|e| e.to_string()))
                            }
                        };
                        match transport {
                            Err(e) => Attempt::Deferred(e.clone()),
                            Ok(t) => send_one(t, &mail).await,
                        }
                    }
                }
            };
            let attempts = u32::try_from(mail.attempts)
                .unwrap_or(u32::MAX)
                .saturating_add(1);
            match attempt {
                Attempt::Sent => {
                    store.outbox_mark_sent(mail.id).await?;
                    done.sent += 1;
                }
                Attempt::Suppressed => {
                    store.outbox_suppress(mail.id).await?;
                    done.suppressed += 1;
                }
                Attempt::Deferred(e) if attempts < delivery.max_attempts => {
                    tracing::warn!(id = mail.id, attempts, error = %e, "outgoing mail deferred");
                    let next = postdesk_store::now() + delivery.backoff(attempts) as i64;
                    store.outbox_defer(mail.id, next, &e).await?;
                    done.deferred += 1;
                }
                Attempt::Deferred(e) => {
                    let e = format!("{e} (gave up after {attempts} attempts)");
                    tracing::warn!(id = mail.id, error = %e, "outgoing mail failed");
                    store.outbox_fail(mail.id, &e).await?;
                    done.failed += 1;
                }
                Attempt::Failed(e) => {
                    tracing::warn!(id = mail.id, error = %e, "outgoing mail failed");
                    store.outbox_fail(mail.id, &e).await?;
                    done.failed += 1;
                }
            }
            if only.is_some() {
                return Ok(done);
            }
        }
    }
}

async fn send_one(transport: &Transport, mail: &postdesk_store::outbox::Claimed) -> Attempt {
    let parse = |a: &str| a.parse::<lettre::Address>();
    let from = match parse(&mail.envelope_from) {
        Ok(a) => a,
        Err(e) => return Attempt::Failed(format!("sender `{}`: {e}", mail.envelope_from)),
    };
    let to: Result<Vec<_>, _> = mail.recipients.iter().map(|r| parse(r)).collect();
    let envelope = match to.map(|to| lettre::address::Envelope::new(Some(from), to)) {
        Ok(Ok(e)) => e,
        Ok(Err(e)) => return Attempt::Failed(format!("envelope: {e}")),
        Err(e) => return Attempt::Failed(format!("recipient: {e}")),
    };
    match transport.send_raw(&envelope, &mail.raw).await {
        Ok(_) => Attempt::Sent,
        Err(e) => match classify(&e) {
            (true, e) => Attempt::Failed(e),
            (false, e) => Attempt::Deferred(e),
        },
    }
}

/// `postdesk serve`'s sender: delivers what is due every `poll_secs` until `stop` turns true.
pub async fn run(
    store: Store,
    helpdesks: Vec<RegisteredHelpdesk>,
    delivery: DeliverySettings,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        match deliver_due(&store, &helpdesks, &delivery, None).await {
            Ok(d) if d != Delivered::default() => tracing::info!(%d, "outbox"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "outbox: database error; trying again"),
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(delivery.poll_secs)) => {}
            _ = stop.changed() => {}
        }
        if *stop.borrow() {
            return;
        }
    }
}

/// One step of `postdesk check` for SMTP.
#[derive(Debug)]
pub struct Step {
    pub name: &'static str,
    pub result: Result<String, String>,
}

/// DNS, TCP, then greeting + TLS + login as the sender would do them.
pub async fn check(
    smtp: &SmtpSettings,
    from: &str,
    password: Result<Option<String>, SetupError>,
) -> Vec<Step> {
    let mut steps = Vec::new();
    let port = smtp.port();
    let addrs = match tokio::net::lookup_host((smtp.host.as_str(), port)).await {
        Ok(a) => a.collect::<Vec<_>>(),
        Err(e) => {
            steps.push(Step {
                name: "DNS",
                result: Err(format!("{}: {e}", smtp.host)),
            });
            return steps;
        }
    };
    steps.push(Step {
        name: "DNS",
        result: Ok(format!(
            "{} → {}",
            smtp.host,
            addrs
                .iter()
                .map(|a| a.ip().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )),
    });
    let timeout = Duration::from_secs(smtp.timeout_secs);
    let tcp = tokio::time::timeout(timeout, tokio::net::TcpStream::connect(&addrs[..])).await;
    match tcp {
        Ok(Ok(_)) => steps.push(Step {
            name: "TCP",
            result: Ok(format!("connected to port {port}")),
        }),
        Ok(Err(e)) => {
            steps.push(Step {
                name: "TCP",
                result: Err(format!("port {port}: {e}")),
            });
            return steps;
        }
        Err(_) => {
            steps.push(Step {
                name: "TCP",
                result: Err(format!(
                    "port {port}: no answer within {}s",
                    smtp.timeout_secs
                )),
            });
            return steps;
        }
    }
    let what = match (smtp.security, smtp.user.is_some()) {
        (Security::None, false) => "greeting",
        (Security::None, true) => "greeting and login",
        (_, false) => "greeting and TLS",
        (_, true) => "greeting, TLS and login",
    };
    let result = match password.and_then(|p| transport(smtp, from, p)) {
        Err(e) => Err(e.to_string()),
        Ok(t) => match t.test_connection().await {
            Ok(true) => Ok(format!("{what} OK ({:?})", smtp.security)),
            Ok(false) => Err("the server did not answer NOOP".into()),
            Err(e) => Err(e.to_string()),
        },
    };
    steps.push(Step {
        name: "SMTP",
        result,
    });
    steps
}
