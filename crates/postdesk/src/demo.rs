//! `postdesk demo`: a config, a small Maildir of real-looking mail, an import, the tickets.

use std::path::Path;

use anyhow::Context;

use crate::cli;

const MAILS: &[(&str, &str)] = &[
    (
        "01-new-request.eml",
        include_str!("../demo/01-new-request.eml"),
    ),
    (
        "02-colleague-reply.eml",
        include_str!("../demo/02-colleague-reply.eml"),
    ),
    (
        "03-out-of-office.eml",
        include_str!("../demo/03-out-of-office.eml"),
    ),
    (
        "04-stranger-guesses-number.eml",
        include_str!("../demo/04-stranger-guesses-number.eml"),
    ),
    (
        "05-html-with-attachments.eml",
        include_str!("../demo/05-html-with-attachments.eml"),
    ),
    (
        "06-reply-by-in-reply-to.eml",
        include_str!("../demo/06-reply-by-in-reply-to.eml"),
    ),
    (
        "07-from-our-own-address.eml",
        include_str!("../demo/07-from-our-own-address.eml"),
    ),
];

const CONFIG: &str = r#"# Written by `postdesk demo`. See `postdesk init` for every option.
data_dir = "data"

[[helpdesk]]
name = "Support"
addresses = ["support@example.com"]
reference_format = "[HD#{number}]"

[helpdesk.organizations]
"acme.example" = "ACME"
"#;

pub async fn run(dir: &Path, serve: bool, listen: Option<&str>) -> anyhow::Result<()> {
    let maildir = dir.join("Maildir");
    for sub in ["new", "cur", "tmp"] {
        std::fs::create_dir_all(maildir.join(sub))
            .with_context(|| format!("cannot create {}", maildir.display()))?;
    }
    let config_path = dir.join("postdesk.toml");
    if !config_path.exists() {
        std::fs::write(&config_path, CONFIG)?;
    }
    for (name, text) in MAILS {
        let path = maildir.join("new").join(name);
        if !path.exists() {
            // Mail travels with CRLF line ends.
            std::fs::write(&path, text.replace('\n', "\r\n"))?;
        }
    }
    println!("Config:  {}", config_path.display());
    println!(
        "Mails:   {} ({} sample mails)\n",
        maildir.display(),
        MAILS.len()
    );

    let (config, app) = cli::open(&config_path, None).await?;
    let summary = cli::import::import(&app, std::slice::from_ref(&maildir), true).await?;
    println!("\n{summary}\n");
    let store = app.store();
    let tickets = store.list_tickets(&Default::default()).await?;
    print!("{}", cli::tickets::render_list(&tickets));
    for t in tickets.iter().rev() {
        println!("\n{}", "═".repeat(78));
        print!(
            "{}",
            cli::tickets::render_ticket(&store.ticket(Some(&t.helpdesk), t.number).await?, false)
        );
    }
    println!("\n{}", "═".repeat(78));
    println!("Database: {}", config.database_url);
    println!(
        "Try:      postdesk --config {} tickets show 1",
        config_path.display()
    );
    println!("Run the demo again: nothing is imported twice.");
    if serve {
        serve_ui(&config, &app, listen).await?;
    }
    app.store().close().await;
    Ok(())
}

/// Serves the web UI with an `admin` agent whose password is new on every run.
async fn serve_ui(
    config: &crate::config::Config,
    app: &postdesk_app::App,
    listen: Option<&str>,
) -> anyhow::Result<()> {
    let password = postdesk_web::new_token()[..16].to_string();
    let hash = postdesk_web::hash_password(&password)?;
    app.store()
        .save_agent(
            "admin",
            Some("admin@example.com"),
            postdesk_store::access::Role::Admin,
            Some(&hash),
            &[],
        )
        .await?;
    let signal = cli::serve::StopSignal::listen()?;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let (address, web) = cli::web::start(config, app, listen, stopped).await?;
    println!("\n{}", "═".repeat(78));
    println!("The web UI is running: open http://{address}/ and sign in");
    println!("  name:     admin");
    println!("  password: {password}");
    println!("Stop it with Ctrl-C.");
    signal.wait().await;
    stop.send(true).ok();
    web.await??;
    Ok(())
}
