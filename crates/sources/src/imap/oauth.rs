//! SASL XOAUTH2 and OAUTHBEARER with an access token from `postdesk_credentials`.

use postdesk_core::mailbox::{MailboxSettings, SaslMechanism, Secret};

/// The SASL exchange: the initial response, then an empty answer to an error challenge.
pub struct Bearer {
    initial: Option<String>,
}

impl Bearer {
    pub fn new(settings: &MailboxSettings, mechanism: SaslMechanism, token: &Secret) -> Self {
        let token = token.expose();
        let user = &settings.user;
        let initial = match mechanism {
            SaslMechanism::Xoauth2 => format!("user={user}\x01auth=Bearer {token}\x01\x01"),
            SaslMechanism::Oauthbearer => format!(
                "n,a={},\x01host={}\x01port={}\x01auth=Bearer {token}\x01\x01",
                user.replace('=', "=3D").replace(',', "=2C"),
                settings.host,
                settings.port()
            ),
        };
        Self {
            initial: Some(initial),
        }
    }
}

impl async_imap::Authenticator for Bearer {
    type Response = String;

    fn process(&mut self, _challenge: &[u8]) -> String {
        self.initial.take().unwrap_or_default()
    }
}

pub fn mechanism_name(mechanism: SaslMechanism) -> &'static str {
    match mechanism {
        SaslMechanism::Xoauth2 => "XOAUTH2",
        SaslMechanism::Oauthbearer => "OAUTHBEARER",
    }
}
