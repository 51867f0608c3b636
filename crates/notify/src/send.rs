//! Delivers the outbox over SMTP: claims due mails with a lease, sends each exactly as
//! queued, and records the result — sent; deferred with exponential backoff after a
//! transient failure (4xx, no connection, TLS, timeout); failed, on the ticket too,
//! after a permanent one (5xx) or too many attempts.
//!
//! The transport is a seam, as lettre's stub transport is: [`deliver_due_with`] takes a
//! [`Connector`]; [`Smtp`] is the real one, and the unit tests below drive the claim,
//! retry and backoff bookkeeping with a scripted one against a real store.

use postdesk_core::id::{HelpdeskId, OutboxId};
use std::collections::HashMap;
use std::time::Duration;

use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use postdesk_core::error::{BoxError, chain};
use postdesk_core::mailbox::Security;
use postdesk_core::outgoing::{DeliverySettings, SmtpAuth, SmtpSettings};
use postdesk_core::settings::Helpdesk;
use postdesk_store::outbox::Claimed;
use postdesk_store::{RegisteredHelpdesk, Store, StoreError};
use tokio::sync::watch;

type Transport = AsyncSmtpTransport<Tokio1Executor>;

/// Carries a claimed mail to its server.
pub trait MailTransport: Send + Sync {
    fn send(&self, mail: &Claimed) -> impl Future<Output = Attempt> + Send;
}

/// Opens the transport for a helpdesk's SMTP settings, once per run and helpdesk.
pub trait Connector: Sync {
    type Transport: MailTransport;

    /// The transport sending as `from`; the error is why not (a mail then waits).
    fn connect(
        &self,
        store: &Store,
        helpdesk: &RegisteredHelpdesk,
        smtp: &SmtpSettings,
        from: &str,
    ) -> impl Future<Output = Result<Self::Transport, String>> + Send;
}

/// The real transport: lettre over SMTP, with the helpdesk's login.
pub struct Smtp;

impl Connector for Smtp {
    type Transport = Transport;

    async fn connect(
        &self,
        store: &Store,
        helpdesk: &RegisteredHelpdesk,
        smtp: &SmtpSettings,
        from: &str,
    ) -> Result<Transport, String> {
        // The reason a mail waits is kept as text in the outbox: with every cause.
        let password = smtp_password(store, &helpdesk.config)
            .await
            .map_err(|e| chain(&e))?;
        transport(smtp, from, password).map_err(|e| chain(&e))
    }
}

impl MailTransport for Transport {
    async fn send(&self, mail: &Claimed) -> Attempt {
        send_one(self, mail).await
    }
}

/// The SMTP settings cannot be used as they are.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(transparent)]
    Credential(#[from] postdesk_credentials::CredentialError),
    /// No token to use: nothing in the configuration says where one comes from.
    #[error("{0}")]
    NoCredential(String),
    #[error("cannot read the CA file {path}")]
    CaFile {
        path: std::path::PathBuf,
        #[source]
        source: BoxError,
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
    let configured = postdesk_credentials::optional_secret(
        &smtp.password,
        &smtp.password_env,
        &smtp.password_file,
        "smtp.password",
    )?;
    if configured.is_some() || smtp.auth != SmtpAuth::Xoauth2 {
        return Ok(configured.map(|s| s.expose().to_string()));
    }
    let mailboxes = &helpdesk.settings.mailboxes;
    let Some(mailbox) = postdesk_credentials::oauth_mailbox(mailboxes, smtp.user.as_deref()) else {
        return Err(SetupError::NoCredential(
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
    .await?;
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
                let ca_file = |e: BoxError| SetupError::CaFile {
                    path: path.clone(),
                    source: e,
                };
                let pem = std::fs::read(path).map_err(|e| ca_file(e.into()))?;
                let cert = Certificate::from_pem(&pem).map_err(|e| ca_file(e.into()))?;
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
    (permanent, chain(e))
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

/// Sends every mail due when called (or only mail `only`), in batches, over SMTP.
pub async fn deliver_due(
    store: &Store,
    helpdesks: &[RegisteredHelpdesk],
    delivery: &DeliverySettings,
    only: Option<OutboxId>,
) -> Result<Delivered, StoreError> {
    deliver_due_with(&Smtp, store, helpdesks, delivery, only).await
}

/// [`deliver_due`] through the transports `connector` opens.
pub async fn deliver_due_with<C: Connector>(
    connector: &C,
    store: &Store,
    helpdesks: &[RegisteredHelpdesk],
    delivery: &DeliverySettings,
    only: Option<OutboxId>,
) -> Result<Delivered, StoreError> {
    let mut done = Delivered::default();
    let mut transports: HashMap<HelpdeskId, Result<C::Transport, String>> = HashMap::new();
    let mut api_transports: HashMap<HelpdeskId, Result<crate::api_send::ApiTransport, String>> =
        HashMap::new();
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
            } else if let Some(h) = hd.filter(|h| h.config.outgoing.send.is_some()) {
                // `[helpdesk.send]`: the Graph or Gmail API (issue 20).
                let transport = match api_transports.entry(h.id) {
                    std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                    std::collections::hash_map::Entry::Vacant(e) => {
                        e.insert(crate::api_send::connect(store, h).await)
                    }
                };
                match transport {
                    Err(e) => Attempt::Deferred(e.clone()),
                    Ok(t) => t.send(&mail).await,
                }
            } else {
                match hd.and_then(|h| h.config.outgoing.smtp.as_ref().map(|s| (h, s))) {
                    None => Attempt::Deferred(
                        "the helpdesk has no [helpdesk.smtp] in the configuration".into(),
                    ),
                    Some((h, smtp)) => {
                        let transport = match transports.entry(h.id) {
                            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                            std::collections::hash_map::Entry::Vacant(e) => e.insert(
                                connector.connect(store, h, smtp, &mail.envelope_from).await,
                            ),
                        };
                        match transport {
                            Err(e) => Attempt::Deferred(e.clone()),
                            Ok(t) => t.send(&mail).await,
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
                    tracing::warn!(id = mail.id.get(), attempts, error = %e, "outgoing mail deferred");
                    let next = postdesk_store::now() + delivery.backoff(attempts) as i64;
                    store.outbox_defer(mail.id, next, &e).await?;
                    done.deferred += 1;
                }
                Attempt::Deferred(e) => {
                    let e = format!("{e} (gave up after {attempts} attempts)");
                    tracing::warn!(id = mail.id.get(), error = %e, "outgoing mail failed");
                    store.outbox_fail(mail.id, &e).await?;
                    done.failed += 1;
                }
                Attempt::Failed(e) => {
                    tracing::warn!(id = mail.id.get(), error = %e, "outgoing mail failed");
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

async fn send_one(transport: &Transport, mail: &Claimed) -> Attempt {
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

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use postdesk_core::outgoing::{Event, OutboxStatus};
    use postdesk_core::settings::HelpdeskSettings;
    use postdesk_store::outbox::{self, NewOutgoing};

    use super::*;

    /// Answers each send with the next scripted attempt and records what it was given.
    struct Scripted {
        answers: Mutex<Vec<Attempt>>,
        sent: Mutex<Vec<OutboxId>>,
        refuse_connect: Option<String>,
    }

    impl Scripted {
        fn new(answers: Vec<Attempt>) -> Self {
            Self {
                answers: Mutex::new(answers),
                sent: Mutex::new(Vec::new()),
                refuse_connect: None,
            }
        }
    }

    impl MailTransport for &Scripted {
        async fn send(&self, mail: &Claimed) -> Attempt {
            self.sent.lock().unwrap().push(mail.id);
            self.answers.lock().unwrap().remove(0)
        }
    }

    impl<'s> Connector for &'s Scripted {
        type Transport = &'s Scripted;

        async fn connect(
            &self,
            _: &Store,
            _: &RegisteredHelpdesk,
            _: &SmtpSettings,
            _: &str,
        ) -> Result<&'s Scripted, String> {
            match &self.refuse_connect {
                Some(why) => Err(why.clone()),
                None => Ok(*self),
            }
        }
    }

    async fn desk(mails: usize) -> (tempfile::TempDir, Store, Vec<RegisteredHelpdesk>) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("p.db").display());
        let store = Store::open(&url, dir.path()).await.unwrap();
        let settings: HelpdeskSettings = toml::from_str(
            "name = \"Support\"\naddresses = [\"support@example.com\"]\n\
             [smtp]\nhost = \"127.0.0.1\"\nsecurity = \"none\"\n",
        )
        .unwrap();
        let helpdesks = store
            .register_helpdesks(&[settings.compile().unwrap()])
            .await
            .unwrap();
        let helpdesk_id = helpdesks[0].id;
        store
            .transaction(move |tx| {
                for n in 0..mails {
                    let message_id = format!("m{n}@example.com");
                    outbox::queue(
                        tx,
                        &NewOutgoing {
                            helpdesk_id,
                            ticket_id: None,
                            intake_id: None,
                            entry_id: None,
                            kind: Event::Alert,
                            message_id: &message_id,
                            envelope_from: "support@example.com",
                            recipients: &["alice@example.org".to_string()],
                            subject: "Hello",
                            raw: b"Subject: Hello\r\n\r\nHi\r\n",
                            suppressed: false,
                        },
                    )?;
                }
                Ok::<_, StoreError>(())
            })
            .await
            .unwrap();
        (dir, store, helpdesks)
    }

    fn delivery(max_attempts: u32) -> DeliverySettings {
        DeliverySettings {
            max_attempts,
            retry_base_secs: 60,
            ..DeliverySettings::default()
        }
    }

    #[tokio::test]
    async fn sent_deferred_and_failed_mails_are_recorded_as_such() {
        let (_dir, store, helpdesks) = desk(3).await;
        let stub = Scripted::new(vec![
            Attempt::Sent,
            Attempt::Deferred("421 try later".into()),
            Attempt::Failed("550 no such user".into()),
        ]);
        let done = deliver_due_with(&&stub, &store, &helpdesks, &delivery(5), None)
            .await
            .unwrap();
        assert_eq!(
            done,
            Delivered {
                sent: 1,
                deferred: 1,
                failed: 1,
                suppressed: 0
            }
        );
        let rows = store.outbox_rows(None, 10).await.unwrap();
        let by_id = |id: OutboxId| rows.iter().find(|r| r.id == id).unwrap();
        let ids = stub.sent.lock().unwrap().clone();
        assert_eq!(by_id(ids[0]).status, OutboxStatus::Sent);
        let deferred = by_id(ids[1]);
        assert_eq!(deferred.status, OutboxStatus::Queued);
        assert_eq!(deferred.attempts, 1);
        assert_eq!(deferred.last_error.as_deref(), Some("421 try later"));
        // The first retry waits the base delay.
        let wait = deferred.next_attempt_at - postdesk_store::now();
        assert!((55..=60).contains(&wait), "{wait}");
        assert_eq!(by_id(ids[2]).status, OutboxStatus::Failed);
        // The deferred mail is not due yet: a second run sends nothing.
        let again = deliver_due_with(&&stub, &store, &helpdesks, &delivery(5), None)
            .await
            .unwrap();
        assert_eq!(again, Delivered::default());
    }

    #[tokio::test]
    async fn a_mail_deferred_too_often_is_given_up() {
        let (_dir, store, helpdesks) = desk(1).await;
        let mut stub = Scripted::new(Vec::new());
        stub.refuse_connect = Some("connection refused".into());
        for attempt in 1..=3 {
            // Make it due again, as the backoff would after its wait.
            let id = store.outbox_rows(None, 1).await.unwrap()[0].id;
            store.outbox_defer(id, 0, "waiting").await.unwrap();
            let done = deliver_due_with(&&stub, &store, &helpdesks, &delivery(8), None)
                .await
                .unwrap();
            assert_eq!(done.deferred, 1, "attempt {attempt}");
        }
        let row = &store.outbox_rows(None, 1).await.unwrap()[0];
        // Each defer above counted an attempt too: 3 by the test, 3 by the sender.
        assert_eq!((row.status, row.attempts), (OutboxStatus::Queued, 6));
        let id = row.id;
        store.outbox_defer(id, 0, "waiting").await.unwrap();
        let done = deliver_due_with(&&stub, &store, &helpdesks, &delivery(8), None)
            .await
            .unwrap();
        assert_eq!(done.failed, 1);
        let row = store.outbox_row(id).await.unwrap();
        assert_eq!(row.status, OutboxStatus::Failed);
        assert!(
            row.last_error
                .as_deref()
                .unwrap()
                .contains("connection refused (gave up after 8 attempts)"),
            "{:?}",
            row.last_error
        );
    }

    #[test]
    fn backoff_doubles_up_to_an_hour() {
        let d = delivery(10);
        let waits: Vec<u64> = (1..=8).map(|n| d.backoff(n)).collect();
        assert_eq!(waits, [60, 120, 240, 480, 960, 1920, 3600, 3600]);
    }
}
