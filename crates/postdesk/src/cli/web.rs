//! Starting the web UI beside the mailboxes (`postdesk serve`, `postdesk demo`), and
//! the metrics listener (`[metrics] listen`).

use std::net::SocketAddr;

use anyhow::Context;
use postdesk_app::App;
use postdesk_web::{AppState, WebSettings};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::Config;

/// Binds the UI's address (`listen` overrides the config) and serves until `stopped`.
pub async fn start(
    config: &Config,
    app: &App,
    listen: Option<&str>,
    stopped: watch::Receiver<bool>,
) -> anyhow::Result<(SocketAddr, JoinHandle<std::io::Result<()>>)> {
    let listen = listen.unwrap_or(&config.web.listen);
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {listen} for the web UI (is another program using that port?); \
             change `listen` in [web] or pass --listen"
            )
        })?;
    let address = listener.local_addr()?;
    let state = AppState::new(
        app.clone(),
        super::mailboxes::ImapControl::new(app.clone()),
        WebSettings {
            secure_cookies: config.web.secure_cookies,
            trusted_proxies: config.web.proxies(),
            ..WebSettings::default()
        },
    );
    let task = tokio::spawn(postdesk_web::serve(listener, state, stopped));
    Ok((address, task))
}

/// Binds `[metrics] listen`, when set, and serves `/metrics` there until `stopped`.
pub async fn start_metrics(
    config: &Config,
    app: &App,
    stopped: watch::Receiver<bool>,
) -> anyhow::Result<Option<JoinHandle<std::io::Result<()>>>> {
    let Some(listen) = &config.metrics.listen else {
        return Ok(None);
    };
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| {
            format!("cannot listen on {listen} for the metrics; change `listen` in [metrics]")
        })?;
    let address = listener.local_addr()?;
    super::logs::status(&format!("metrics on http://{address}/metrics"));
    Ok(Some(tokio::spawn(postdesk_web::operations::serve_metrics(
        listener,
        app.clone(),
        stopped,
    ))))
}
