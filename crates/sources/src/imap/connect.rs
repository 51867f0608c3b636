//! Reaching an IMAP server: TCP, implicit TLS or STARTTLS (rustls on ring), login.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use postdesk_core::mailbox::{MailboxSettings, SaslMechanism, Secret, Security};
use postdesk_store::tls::AcceptAnyCertificate;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore, pki_types::ServerName};

use super::ImapError;

/// Every network operation is bounded by this.
pub const TIMEOUT: Duration = Duration::from_secs(30);

pub type Session = async_imap::Session<ImapStream>;

/// A plaintext or TLS connection, one type for async-imap.
#[derive(Debug)]
pub enum ImapStream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl AsyncRead for ImapStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Self::Tls(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for ImapStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Self::Tls(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_flush(cx),
            Self::Tls(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Self::Tls(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

pub(super) async fn timed<T, E>(
    what: &str,
    fut: impl Future<Output = Result<T, E>>,
) -> Result<T, ImapError>
where
    E: std::fmt::Display,
{
    match tokio::time::timeout(TIMEOUT, fut).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(ImapError::Protocol(format!("{what}: {e}"))),
        Err(_) => Err(ImapError::Timeout(what.to_string())),
    }
}

/// Connects, secures and logs in. Each failure says which step failed and what to check.
pub async fn open(
    settings: &MailboxSettings,
    credential: &Credential,
) -> Result<Session, ImapError> {
    let client = connect(settings).await?;
    login(client, settings, credential).await
}

/// What a mailbox logs in with.
pub enum Credential {
    Password(Secret),
    /// An OAuth2 access token, sent with SASL XOAUTH2 or OAUTHBEARER.
    Bearer {
        token: Secret,
        mechanism: SaslMechanism,
    },
}

pub async fn login(
    client: async_imap::Client<ImapStream>,
    settings: &MailboxSettings,
    credential: &Credential,
) -> Result<Session, ImapError> {
    let result = match credential {
        Credential::Password(password) => {
            tokio::time::timeout(TIMEOUT, client.login(&settings.user, password.expose())).await
        }
        Credential::Bearer { token, mechanism } => {
            let sasl = super::oauth::Bearer::new(settings, *mechanism, token);
            let name = super::oauth::mechanism_name(*mechanism);
            tokio::time::timeout(TIMEOUT, client.authenticate(name, sasl)).await
        }
    };
    match result {
        Err(_) => Err(ImapError::Timeout("login".into())),
        Ok(Err((e, _client))) => Err(ImapError::Login {
            user: settings.user.clone(),
            reason: e.to_string(),
        }),
        Ok(Ok(session)) => Ok(session),
    }
}

/// TCP and TLS up to the point where the server waits for a login.
pub async fn connect(
    settings: &MailboxSettings,
) -> Result<async_imap::Client<ImapStream>, ImapError> {
    let address = format!("{}:{}", settings.host, settings.port());
    let tcp = match tokio::time::timeout(TIMEOUT, TcpStream::connect(&address)).await {
        Err(_) => {
            return Err(ImapError::Connect {
                address,
                reason: "timed out".into(),
            });
        }
        Ok(Err(e)) => {
            return Err(ImapError::Connect {
                address,
                reason: e.to_string(),
            });
        }
        Ok(Ok(tcp)) => tcp,
    };
    tcp.set_nodelay(true).ok();
    match settings.security {
        Security::None => greet(ImapStream::Plain(tcp)).await,
        Security::Tls => greet(ImapStream::Tls(Box::new(tls(settings, tcp).await?))).await,
        Security::Starttls => {
            let mut client = greet(ImapStream::Plain(tcp)).await?;
            timed(
                "STARTTLS",
                client.run_command_and_check_ok("STARTTLS", None),
            )
            .await
            .map_err(|e| {
                ImapError::Tls(format!(
                    "the server refused STARTTLS ({e}); use security = \"tls\" or check the port"
                ))
            })?;
            let ImapStream::Plain(tcp) = client.into_inner() else {
                unreachable!("STARTTLS starts from plaintext")
            };
            Ok(async_imap::Client::new(ImapStream::Tls(Box::new(
                tls(settings, tcp).await?,
            ))))
        }
    }
}

async fn greet(stream: ImapStream) -> Result<async_imap::Client<ImapStream>, ImapError> {
    let mut client = async_imap::Client::new(stream);
    match tokio::time::timeout(TIMEOUT, client.read_response()).await {
        Err(_) => Err(ImapError::Timeout("waiting for the server greeting".into())),
        Ok(Err(e)) => Err(ImapError::Protocol(format!("no greeting: {e}"))),
        Ok(Ok(None)) => Err(ImapError::Protocol(
            "the server closed the connection before greeting".into(),
        )),
        Ok(Ok(Some(_))) => Ok(client),
    }
}

async fn tls(
    settings: &MailboxSettings,
    tcp: TcpStream,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, ImapError> {
    let config = client_config(settings)?;
    let name = ServerName::try_from(settings.host.clone()).map_err(|e| {
        ImapError::Tls(format!(
            "`{}` is not a valid TLS server name: {e}",
            settings.host
        ))
    })?;
    match tokio::time::timeout(
        TIMEOUT,
        TlsConnector::from(Arc::new(config)).connect(name, tcp),
    )
    .await
    {
        Err(_) => Err(ImapError::Timeout("TLS handshake".into())),
        Ok(Err(e)) => Err(ImapError::Tls(format!(
            "TLS handshake with {} failed: {e}. Check the port and security setting, or set ca_file for a private CA",
            settings.host
        ))),
        Ok(Ok(stream)) => Ok(stream),
    }
}

fn client_config(settings: &MailboxSettings) -> Result<ClientConfig, ImapError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| ImapError::Tls(e.to_string()))?;
    // `accept_invalid_certs = true`, asked for in the configuration: signatures are
    // still checked, the chain and the name are not.
    if settings.accept_invalid_certs {
        return Ok(builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate::new(provider)))
            .with_no_client_auth());
    }
    let mut roots = RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = &settings.ca_file {
        let pem = std::fs::read(path)
            .map_err(|e| ImapError::Tls(format!("cannot read ca_file {}: {e}", path.display())))?;
        let mut found = 0;
        for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
            let cert =
                cert.map_err(|e| ImapError::Tls(format!("ca_file {}: {e}", path.display())))?;
            roots
                .add(cert)
                .map_err(|e| ImapError::Tls(format!("ca_file {}: {e}", path.display())))?;
            found += 1;
        }
        if found == 0 {
            return Err(ImapError::Tls(format!(
                "ca_file {} holds no PEM certificate",
                path.display()
            )));
        }
    }
    Ok(builder.with_root_certificates(roots).with_no_client_auth())
}
