//! The configuration file: one TOML file, checked so that every error names the
//! file, the line and the key, and says what is allowed. An error about a secret
//! (a password, a client secret, a token) never quotes its value.

use std::path::{Path, PathBuf};

use postdesk_core::config_issue::ConfigIssue;
use postdesk_core::outgoing::DeliverySettings;
use postdesk_core::settings::{Helpdesk, HelpdeskSettings};
use serde::Deserialize;

/// The file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    /// Attachments and other files; relative paths are relative to the config file.
    #[serde(default = "default_data_dir")]
    data_dir: PathBuf,
    /// Default `sqlite://<data_dir>/postdesk.db`.
    database_url: Option<String>,
    /// Whether commands bring the schema up to date themselves. Default: yes on SQLite
    /// (one process owns the file), no on PostgreSQL (run `postdesk db migrate` once,
    /// before the new version's instances start).
    auto_migrate: Option<bool>,
    /// Larger mails are kept raw and put in the failed queue.
    #[serde(default = "default_max_mail_mb")]
    max_mail_mb: u64,
    /// Mails per database transaction during import.
    #[serde(default = "default_batch_size")]
    batch_size: usize,
    #[serde(rename = "helpdesk", default)]
    helpdesks: Vec<HelpdeskSettings>,
    /// `[outgoing]`: the global switch and the sender's timing.
    #[serde(default)]
    outgoing: DeliverySettings,
    /// `[web]`: the agents' web UI and REST API served by `postdesk serve`.
    #[serde(default)]
    web: WebConfig,
    /// `[instances]`: how several `serve` instances share the mailboxes.
    #[serde(default)]
    instances: InstancesConfig,
    /// `[metrics]`: where `postdesk serve` answers Prometheus (issue 19).
    #[serde(default)]
    metrics: MetricsConfig,
    /// The umask for the files postdesk creates (octal, e.g. "027"); none: "077", so
    /// the data folder is 0700 and its files 0600 (they hold password hashes, raw mail
    /// and OAuth tokens).
    umask: Option<String>,
}

/// `[web]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebConfig {
    /// Address and port the UI listens on.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// Mark session cookies `Secure`: set when agents reach the UI over HTTPS
    /// (usually through a reverse proxy that terminates TLS).
    #[serde(default)]
    pub secure_cookies: bool,
    /// Serve the UI from `postdesk serve` at all.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Reverse proxies (addresses or networks, e.g. "127.0.0.1", "10.0.0.0/8") whose
    /// `X-Forwarded-For` names the client. Without them the header is ignored and the
    /// sign-in limits count the proxy's address.
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
}

/// `[instances]`
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstancesConfig {
    /// How long a mailbox's lease lasts without renewal: a dead instance keeps its
    /// mailboxes this long at most.
    #[serde(default = "default_lease_secs")]
    pub lease_secs: u64,
    /// How often the holder renews, and others try to take a lease held elsewhere.
    #[serde(default = "default_renew_secs")]
    pub renew_secs: u64,
}

impl Default for InstancesConfig {
    fn default() -> Self {
        Self {
            lease_secs: default_lease_secs(),
            renew_secs: default_renew_secs(),
        }
    }
}

impl InstancesConfig {
    pub fn leases(&self) -> postdesk_app::leases::LeaseSettings {
        postdesk_app::leases::LeaseSettings {
            length: std::time::Duration::from_secs(self.lease_secs),
            renew_every: std::time::Duration::from_secs(self.renew_secs),
        }
    }
}

fn default_lease_secs() -> u64 {
    postdesk_app::leases::LeaseSettings::default()
        .length
        .as_secs()
}
fn default_renew_secs() -> u64 {
    postdesk_app::leases::LeaseSettings::default()
        .renew_every
        .as_secs()
}

impl Default for WebConfig {
    fn default() -> Self {
        Self {
            listen: default_listen(),
            secure_cookies: false,
            enabled: true,
            trusted_proxies: Vec::new(),
        }
    }
}

impl WebConfig {
    /// `trusted_proxies`, as checked when the file was loaded.
    pub fn proxies(&self) -> Vec<postdesk_web::auth::TrustedProxy> {
        self.trusted_proxies
            .iter()
            .filter_map(|p| p.parse().ok())
            .collect()
    }
}

/// `[metrics]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// Address and port of `/metrics` (Prometheus text format), a listener of its own
    /// that asks for no sign-in: keep it where only the monitoring reaches. None: no
    /// metrics listener.
    pub listen: Option<String>,
}

fn default_listen() -> String {
    "127.0.0.1:8080".into()
}
fn default_true() -> bool {
    true
}

fn default_data_dir() -> PathBuf {
    "postdesk-data".into()
}
fn default_max_mail_mb() -> u64 {
    50
}
fn default_batch_size() -> usize {
    postdesk_pipeline::Options::default().batch_size
}

/// The configuration, checked and ready to use.
#[derive(Debug, Clone)]
pub struct Config {
    pub data_dir: PathBuf,
    pub database_url: String,
    /// See `auto_migrate` in the config file.
    pub auto_migrate: bool,
    pub max_mail_bytes: usize,
    pub batch_size: usize,
    pub helpdesks: Vec<Helpdesk>,
    pub outgoing: DeliverySettings,
    pub web: WebConfig,
    pub instances: InstancesConfig,
    pub metrics: MetricsConfig,
    /// The umask files are created with (see [`Config::apply_umask`]).
    pub umask: u32,
}

/// Files postdesk creates are readable by its own user only, unless `umask` says otherwise.
const DEFAULT_UMASK: u32 = 0o077;

/// A problem in the config file, located as precisely as the file allows.
#[derive(Debug, thiserror::Error)]
#[error("{}{}: {issue}", path.display(), issue.line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct ConfigError {
    pub path: PathBuf,
    pub issue: ConfigIssue,
}

/// Places a [`ConfigIssue`] in the config text. The issue type is core's, whose checks
/// know keys but not files; finding a key's line needs the TOML text, which only
/// this module has.
trait Locate {
    /// Finds the line of a key dotted from the top of the file.
    fn located(self, text: &str) -> Self;
    /// Places a key dotted from a `[[helpdesk]]` table in the `index`-th one: finds its
    /// line there and writes it `helpdesk.<key>`.
    fn in_helpdesk(self, text: &str, index: usize) -> Self;
}

impl Locate for ConfigIssue {
    fn located(mut self, text: &str) -> Self {
        if let Some(key) = &self.key {
            self.line = locate(text, &key.split('.').collect::<Vec<_>>());
        }
        self
    }

    fn in_helpdesk(self, text: &str, index: usize) -> Self {
        match &self.key {
            Some(key) => {
                let line = locate_in_helpdesk(text, index, key);
                self.within("helpdesk").at_line(line)
            }
            None => self,
        }
    }
}

impl Config {
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            path: path.to_path_buf(),
            // The advice follows the cause, so the cause is part of the message.
            issue: ConfigIssue::unkeyed(format!(
                "cannot read the config file: {e}. Create one with `postdesk init {}`",
                path.display()
            )),
        })?;
        Self::parse(path, &text)
    }

    /// Checks `text`, the file at `path` (relative paths in it are relative to its folder).
    pub fn parse(path: &Path, text: &str) -> Result<Self, ConfigError> {
        let base = path.parent().unwrap_or(Path::new("."));
        Self::check(text, base).map_err(|issue| ConfigError {
            path: path.to_path_buf(),
            issue,
        })
    }

    fn check(text: &str, base: &Path) -> Result<Self, ConfigIssue> {
        let file: ConfigFile = toml::from_str(text).map_err(|e| {
            let line = e.span().map(|span| line_of(text, span.start));
            // The key whose value is wrong, and whether that value is a secret: then
            // neither the span (the value itself) nor anything quoted is shown.
            let secret = e
                .span()
                .and_then(|span| key_before(text, span.start))
                .filter(|k| is_secret_key(k));
            let key = match &secret {
                Some(key) => Some(key.to_string()),
                None => e
                    .span()
                    .map(|span| text[span].trim().to_string())
                    .filter(|k| !k.is_empty() && k.len() < 60),
            };
            let message = e.message().trim_end().to_string();
            let message = if secret.is_some() {
                without_quoted_values(&message)
            } else {
                message
            };
            let message = match key {
                Some(key) if !message.contains(&key) => format!("`{key}`: {message}"),
                _ => message,
            };
            // Inside a `[[helpdesk.rule]]`, say which rule.
            let message = match line.and_then(|l| rule_at_line(text, l)) {
                Some(name) => format!("in rule {name:?}: {message}"),
                None => message,
            };
            ConfigIssue::unkeyed(message).at_line(line)
        })?;
        if file.helpdesks.is_empty() {
            return Err(ConfigIssue::unkeyed(
                "no `[[helpdesk]]` is configured; add one (see `postdesk init`)",
            ));
        }
        if file.max_mail_mb == 0 {
            return Err(ConfigIssue::unkeyed("max_mail_mb must be 1 or more")
                .at_line(locate(text, &["max_mail_mb"])));
        }
        if !(1..=10_000).contains(&file.batch_size) {
            return Err(
                ConfigIssue::unkeyed("batch_size must be between 1 and 10000")
                    .at_line(locate(text, &["batch_size"])),
            );
        }
        if file.web.listen.parse::<std::net::SocketAddr>().is_err() {
            return Err(ConfigIssue::new(
                "web.listen",
                format!(
                    "`{}` is not an address and port, like \"127.0.0.1:8080\" or \"[::]:8080\"",
                    file.web.listen
                ),
            )
            .located(text));
        }
        let instances = file.instances;
        if !(1..=3600).contains(&instances.renew_secs) {
            return Err(ConfigIssue::new(
                "instances.renew_secs",
                "must be between 1 and 3600 (seconds)",
            )
            .located(text));
        }
        if instances.lease_secs < 2 * instances.renew_secs || instances.lease_secs > 86_400 {
            return Err(ConfigIssue::new(
                "instances.lease_secs",
                format!(
                    "must be at least twice renew_secs ({}) so that one late renewal does not lose the lease, and at most 86400",
                    instances.renew_secs
                ),
            )
            .located(text));
        }
        if let Some(listen) = &file.metrics.listen
            && listen.parse::<std::net::SocketAddr>().is_err()
        {
            return Err(ConfigIssue::new(
                "metrics.listen",
                format!(
                    "`{listen}` is not an address and port, like \"127.0.0.1:9187\" or \"[::1]:9187\""
                ),
            )
            .located(text));
        }
        if let Err(issue) = file.outgoing.check() {
            return Err(issue.within("outgoing").located(text));
        }
        let mut helpdesks = Vec::new();
        for (index, mut settings) in file.helpdesks.into_iter().enumerate() {
            read_templates(&mut settings, base).map_err(|issue| issue.in_helpdesk(text, index))?;
            read_holidays(&mut settings, base).map_err(|issue| issue.in_helpdesk(text, index))?;
            let mut hd = settings
                .compile()
                .map_err(|issue| issue.in_helpdesk(text, index))?;
            if helpdesks
                .iter()
                .any(|h: &Helpdesk| h.settings.name.eq_ignore_ascii_case(&hd.settings.name))
            {
                return Err(ConfigIssue::new(
                    "name",
                    format!("`{}` is used twice; names must be unique", hd.settings.name),
                )
                .in_helpdesk(text, index));
            }
            hd.outgoing.delivery = file.outgoing.clone();
            helpdesks.push(hd);
        }
        let names: Vec<&str> = helpdesks.iter().map(|h| h.settings.name.as_str()).collect();
        for (index, hd) in helpdesks.iter().enumerate() {
            check_routes(hd, &names).map_err(|issue| issue.in_helpdesk(text, index))?;
        }
        for proxy in &file.web.trusted_proxies {
            if let Err(problem) = proxy.parse::<postdesk_web::auth::TrustedProxy>() {
                return Err(ConfigIssue::new("web.trusted_proxies", problem).located(text));
            }
        }
        let umask = match &file.umask {
            None => DEFAULT_UMASK,
            Some(u) => u32::from_str_radix(u.trim(), 8)
                .ok()
                .filter(|u| *u <= 0o777)
                .ok_or_else(|| {
                    ConfigIssue::new(
                        "umask",
                        format!("`{u}` is not an octal umask like \"077\" or \"027\""),
                    )
                    .located(text)
                })?,
        };
        let data_dir = base.join(&file.data_dir);
        let database_url = file
            .database_url
            .unwrap_or_else(|| format!("sqlite://{}", data_dir.join("postdesk.db").display()));
        let auto_migrate = file
            .auto_migrate
            .unwrap_or_else(|| database_url.starts_with("sqlite:"));
        Ok(Self {
            data_dir,
            database_url,
            auto_migrate,
            max_mail_bytes: (file.max_mail_mb as usize).saturating_mul(1024 * 1024),
            batch_size: file.batch_size,
            helpdesks,
            outgoing: file.outgoing,
            web: file.web,
            instances,
            metrics: file.metrics,
            umask,
        })
    }

    /// Sets the process's umask to the configured one, before any file is created:
    /// the data folder then gets 0700 and the database, its journal and the
    /// attachments 0600 (with the default "077").
    pub fn apply_umask(&self) {
        // SAFETY: umask only sets the process's file mode mask; it cannot fail.
        unsafe {
            libc::umask(self.umask as libc::mode_t);
        }
    }

    /// Warnings for the data folder, the database and the attachments when users other
    /// than postdesk's may read them (`postdesk check-config`, `postdesk check`).
    pub fn permission_warnings(&self) -> Vec<String> {
        use std::os::unix::fs::PermissionsExt;
        let mut paths = vec![self.data_dir.clone()];
        if let Some(db) = self
            .database_url
            .strip_prefix("sqlite://")
            .map(|p| PathBuf::from(p.split('?').next().unwrap_or(p)))
        {
            for suffix in ["", "-wal", "-shm"] {
                let mut name = db.clone().into_os_string();
                name.push(suffix);
                paths.push(name.into());
            }
        }
        // The attachments and raw mails under the data folder, a level or two deep.
        let mut folders = vec![(self.data_dir.clone(), 0)];
        while let Some((folder, depth)) = folders.pop() {
            let Ok(entries) = std::fs::read_dir(&folder) else {
                continue;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                if path.is_dir() && depth < 3 {
                    folders.push((path.clone(), depth + 1));
                }
                if !paths.contains(&path) {
                    paths.push(path);
                }
            }
        }
        let mut warnings = Vec::new();
        for path in paths {
            let Ok(meta) = std::fs::metadata(&path) else {
                continue;
            };
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o004 != 0 {
                warnings.push(format!(
                    "{} is readable by every user of this machine (mode {mode:03o}); it holds \
                     password hashes, raw mails or OAuth tokens: `chmod {} {}`",
                    path.display(),
                    if meta.is_dir() { "700" } else { "600" },
                    path.display()
                ));
            }
        }
        warnings
    }
}

/// The key assigned on the line at `offset` (a value's position): `password` in
/// `password = 47114711` and in `smtp = { password = 47114711 }`.
fn key_before(text: &str, offset: usize) -> Option<&str> {
    let before = &text[..offset.min(text.len())];
    let line = before.rsplit('\n').next()?;
    let assignment = line.rsplit_once('=')?.0;
    let key = assignment
        .rsplit(['{', ','])
        .next()?
        .trim()
        .trim_matches(['"', '\'']);
    (!key.is_empty()).then_some(key)
}

/// Keys whose values are secrets (their `_env` and `_file` forms name where they are).
fn is_secret_key(key: &str) -> bool {
    let last = key.rsplit('.').next().unwrap_or(key);
    matches!(
        last,
        "password" | "client_secret" | "refresh_token" | "access_token" | "secret" | "token"
    )
}

/// The message with every `quoted` part left out (serde quotes the value it refused).
fn without_quoted_values(message: &str) -> String {
    let mut out = String::new();
    let mut quoted = false;
    for part in message.split('`') {
        if !quoted {
            out.push_str(part);
        }
        quoted = !quoted;
    }
    out.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace(" ,", ",")
}

/// Reads the template files of `[helpdesk.notifications.templates]` (relative to the
/// config file) and the SMTP `ca_file`/`password_file` paths made relative to it too.
/// The issue's key is dotted from the `[[helpdesk]]` table.
fn read_templates(settings: &mut HelpdeskSettings, base: &Path) -> Result<(), ConfigIssue> {
    let n = &mut settings.notifications;
    for (event, file) in &n.templates {
        let path = base.join(file);
        let text = std::fs::read_to_string(&path).map_err(|e| {
            ConfigIssue::new(
                format!("notifications.templates.{event}"),
                format!("cannot read {}: {e}", path.display()),
            )
        })?;
        n.template_texts.insert(event.clone(), text);
    }
    if let Some(smtp) = &mut settings.smtp {
        for file in [&mut smtp.ca_file, &mut smtp.password_file]
            .into_iter()
            .flatten()
        {
            *file = base.join(&*file);
        }
    }
    Ok(())
}

// --- Deadlines (issue 18) ---
/// Reads `[helpdesk.sla] holidays_file` (relative to the config file). The issue's key
/// is dotted from the `[[helpdesk]]` table.
fn read_holidays(settings: &mut HelpdeskSettings, base: &Path) -> Result<(), ConfigIssue> {
    let Some(sla) = &mut settings.sla else {
        return Ok(());
    };
    if let Some(file) = &sla.holidays_file {
        let path = base.join(file);
        let text = std::fs::read_to_string(&path).map_err(|e| {
            ConfigIssue::new(
                "sla.holidays_file",
                format!("cannot read {}: {e}", path.display()),
            )
        })?;
        sla.holidays_file = Some(path);
        sla.holidays_text = Some(text);
    }
    Ok(())
}
// --- end of deadlines ---

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())]
        .bytes()
        .filter(|&b| b == b'\n')
        .count()
        + 1
}

/// Line of the value at `path` (table keys), if the file has it.
fn locate(text: &str, path: &[&str]) -> Option<usize> {
    let root = toml::de::DeTable::parse(text).ok()?;
    let mut span = root.span();
    let mut table = root.get_ref();
    for (i, key) in path.iter().enumerate() {
        let (k, v) = table.iter().find(|(k, _)| k.get_ref() == key)?;
        span = k.span();
        if i + 1 < path.len() {
            match v.get_ref() {
                toml::de::DeValue::Table(t) => table = t,
                _ => return None,
            }
        }
    }
    Some(line_of(text, span.start))
}

/// Every helpdesk `hd`'s rules hand mail to must be among `names`. The issue's key is
/// dotted from the `[[helpdesk]]` table.
fn check_routes(hd: &Helpdesk, names: &[&str]) -> Result<(), ConfigIssue> {
    for (r, rule) in hd.settings.rules.iter().enumerate() {
        for (a, action) in rule.actions.iter().enumerate() {
            let Some(target) = &action.set.helpdesk else {
                continue;
            };
            if !names.iter().any(|n| n.eq_ignore_ascii_case(target.trim())) {
                return Err(ConfigIssue::new(
                    format!("rule[{r}].actions[{a}].helpdesk"),
                    format!(
                        "in rule {:?}: no helpdesk named `{}` is configured; the helpdesks are {}",
                        rule.name.trim(),
                        target.trim(),
                        names.join(", ")
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// Name of the `[[helpdesk.rule]]` that `line` (from 1) belongs to, if any: found
/// from the table headers above it, so it works while the file does not deserialise.
fn rule_at_line(text: &str, line: usize) -> Option<String> {
    let mut helpdesk: Option<usize> = None;
    let mut rule: Option<usize> = None;
    let mut rules_seen = 0;
    for l in text.lines().take(line) {
        let l = l.trim_start();
        if !l.starts_with('[') {
            continue;
        }
        let header: String = l
            .split('#')
            .next()
            .unwrap_or("")
            .chars()
            .filter(|c| !matches!(c, '[' | ']' | '"' | '\'') && !c.is_whitespace())
            .collect();
        match header.as_str() {
            "helpdesk" => {
                helpdesk = Some(helpdesk.map_or(0, |h| h + 1));
                rule = None;
                rules_seen = 0;
            }
            "helpdesk.rule" => {
                rule = Some(rules_seen);
                rules_seen += 1;
            }
            h if h.starts_with("helpdesk.rule.") => {}
            _ => rule = None,
        }
    }
    let (helpdesk, rule) = (helpdesk?, rule?);
    let root = toml::de::DeTable::parse(text).ok()?;
    let (_, helpdesks) = root
        .get_ref()
        .iter()
        .find(|(k, _)| k.get_ref() == "helpdesk")?;
    let toml::de::DeValue::Array(list) = helpdesks.get_ref() else {
        return None;
    };
    let toml::de::DeValue::Table(hd) = list.get(helpdesk)?.get_ref() else {
        return None;
    };
    let (_, rules) = hd.iter().find(|(k, _)| k.get_ref() == "rule")?;
    let toml::de::DeValue::Array(rules) = rules.get_ref() else {
        return None;
    };
    let toml::de::DeValue::Table(rule) = rules.get(rule)?.get_ref() else {
        return None;
    };
    let (_, name) = rule.iter().find(|(k, _)| k.get_ref() == "name")?;
    match name.get_ref() {
        toml::de::DeValue::String(name) => Some(name.to_string()),
        _ => None,
    }
}

/// Line of `key` in the `index`-th `[[helpdesk]]`, or of the nearest enclosing
/// table found. `key` is dotted for nested tables, with `[n]` for array positions:
/// `attachments.allowed_types`, `rule[1].conditions[0].op`.
fn locate_in_helpdesk(text: &str, index: usize, key: &str) -> Option<usize> {
    let root = toml::de::DeTable::parse(text).ok()?;
    let (_, helpdesks) = root
        .get_ref()
        .iter()
        .find(|(k, _)| k.get_ref() == "helpdesk")?;
    let toml::de::DeValue::Array(list) = helpdesks.get_ref() else {
        return None;
    };
    let entry = list.get(index)?;
    let mut span = entry.span();
    let mut value = entry;
    'parts: for part in key.split('.') {
        let mut pieces = part.split('[');
        let name = pieces.next().unwrap_or(part);
        let toml::de::DeValue::Table(t) = value.get_ref() else {
            break;
        };
        let Some((k, v)) = t.iter().find(|(k, _)| k.get_ref() == name) else {
            break;
        };
        span = k.span();
        value = v;
        for position in pieces {
            let Some(item) = position
                .trim_end_matches(']')
                .parse::<usize>()
                .ok()
                .and_then(|i| match value.get_ref() {
                    toml::de::DeValue::Array(list) => list.get(i),
                    _ => None,
                })
            else {
                break 'parts;
            };
            span = item.span();
            value = item;
        }
    }
    Some(line_of(text, span.start))
}

/// The commented example written by `postdesk init`.
pub const EXAMPLE: &str = include_str!("../postdesk.example.toml");

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(Path::new("/etc/postdesk.toml"), text)
    }

    #[test]
    fn the_example_is_valid() {
        let config = parse(EXAMPLE).unwrap();
        assert_eq!(config.helpdesks[0].settings.name, "Support");
        assert!(
            config
                .database_url
                .starts_with("sqlite:///etc/postdesk-data/")
        );
    }

    #[test]
    fn unknown_key_names_file_line_and_key() {
        let err = parse("[[helpdesk]]\nname = \"S\"\n\nreference_fromat = \"x\"\n").unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("/etc/postdesk.toml:4:"), "{text}");
        assert!(text.contains("reference_fromat"), "{text}");
        assert!(
            text.contains("reference_format"),
            "says what is allowed: {text}"
        );
    }

    #[test]
    fn bad_enum_value_says_what_is_allowed() {
        let err = parse("[[helpdesk]]\nname = \"S\"\nunknown_sender = \"drop\"\n").unwrap_err();
        let text = err.to_string();
        assert!(text.contains(":3:"), "{text}");
        assert!(
            text.contains("create-contact") && text.contains("default-contact"),
            "{text}"
        );
    }

    #[test]
    fn semantic_errors_point_at_their_key() {
        let err = parse("[[helpdesk]]\nname = \"A\"\n\n[[helpdesk]]\nname = \"B\"\nreference_format = \"[HD]\"\n").unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with("/etc/postdesk.toml:6: helpdesk.reference_format"),
            "{text}"
        );
        assert!(text.contains("{number}"), "{text}");

        let err = parse(
            "[[helpdesk]]\nname = \"A\"\n[helpdesk.attachments]\nallowed_types = [\"pdf\"]\n",
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .contains(":4: helpdesk.attachments.allowed_types"),
            "{err}"
        );

        let err = parse("[[helpdesk]]\nname = \"A\"\n[[helpdesk]]\nname = \"a\"\n").unwrap_err();
        assert!(err.to_string().contains(":4: helpdesk.name"), "{err}");
    }

    const RULES: &str = r#"[[helpdesk]]
name = "A"

[[helpdesk.rule]]
name = "first"
actions = [{ action = "create-ticket" }]

[[helpdesk.rule]]
name = "billing"
conditions = [
  { field = "subject", op = "contains", value = "x" },
  { field = "sender-domain", op = "equals", value = "acme.example" },
]
actions = [{ action = "set", helpdesk = "A", priority = "high" }]

[[helpdesk]]
name = "B"
"#;

    /// `RULES` with the first `from` replaced by `to`; the error's text.
    fn rules_error(from: &str, to: &str) -> String {
        assert!(RULES.contains(from), "{from}");
        parse(&RULES.replacen(from, to, 1)).unwrap_err().to_string()
    }

    #[test]
    fn rules_load_in_order() {
        let config = parse(RULES).unwrap();
        let names: Vec<&str> = config.helpdesks[0]
            .rules
            .rules()
            .iter()
            .map(|r| r.name.as_str())
            .collect();
        assert_eq!(names, ["first", "billing"]);
    }

    #[test]
    fn rule_errors_name_the_rule_and_its_line() {
        let cases = [
            (
                "op = \"equals\"",
                "op = \"contanis\"",
                ":12: helpdesk.rule[1].conditions[1].op: in rule \"billing\": unknown operator `contanis`",
            ),
            (
                "field = \"subject\"",
                "field = \"subjekt\"",
                ":11: helpdesk.rule[1].conditions[0].field: in rule \"billing\": unknown field `subjekt`",
            ),
            (
                "op = \"contains\", value = \"x\"",
                "op = \"regex\", value = \"(x\"",
                ":11: helpdesk.rule[1].conditions[0].value: in rule \"billing\": `(x` is not a valid regex",
            ),
            (
                "actions = [{ action = \"create-ticket\" }]",
                "",
                ":4: helpdesk.rule[0].actions: in rule \"first\": a rule needs at least one action",
            ),
            (
                "action = \"create-ticket\"",
                "action = \"forward\"",
                ":6: helpdesk.rule[0].actions[0].action: in rule \"first\": unknown action `forward`",
            ),
            (
                "helpdesk = \"A\"",
                "helpdesk = \"Billing\"",
                ":14: helpdesk.rule[1].actions[0].helpdesk: in rule \"billing\": no helpdesk named `Billing` is configured; the helpdesks are A, B",
            ),
        ];
        for (from, to, expected) in cases {
            let text = rules_error(from, to);
            assert!(text.contains(expected), "expected {expected:?} in:\n{text}");
        }
    }

    #[test]
    fn the_readme_rules_example_is_valid() {
        let readme = include_str!("../../../README.md");
        let section = &readme[readme
            .find("### Mail rules")
            .expect("README has the section")..];
        let start = section.find("```toml\n").expect("an example") + "```toml\n".len();
        let example = &section[start..start + section[start..].find("```").unwrap()];
        let config = parse(&format!("{example}\n[[helpdesk]]\nname = \"Billing\"\n")).unwrap();
        assert_eq!(config.helpdesks[0].rules.rules().len(), 4);
    }

    #[test]
    fn rule_syntax_errors_name_the_rule() {
        // Keys serde refuses: a misspelt key, a bad `match`.
        let text = rules_error("conditions = [", "condition = [");
        assert!(text.contains(":10:"), "{text}");
        assert!(text.contains("in rule \"billing\""), "{text}");
        assert!(text.contains("conditions"), "says what is allowed: {text}");
        let text = rules_error("name = \"first\"", "name = \"first\"\nmatch = \"some\"");
        assert!(
            text.contains(":6:") && text.contains("in rule \"first\""),
            "{text}"
        );
        assert!(text.contains("all") && text.contains("any"), "{text}");
        // Outside rules, no rule is named.
        let text = rules_error("name = \"B\"", "name = \"B\"\nreference_fromat = \"x\"");
        assert!(!text.contains("in rule"), "{text}");
    }

    #[test]
    fn an_issue_carries_its_key_and_line() {
        let err = parse("[[helpdesk]]\nname = \"A\"\n\n[[helpdesk]]\nname = \"B\"\nreference_format = \"[HD]\"\n").unwrap_err();
        assert_eq!(
            (err.issue.key.as_deref(), err.issue.line),
            (Some("helpdesk.reference_format"), Some(6))
        );
        let err = parse("[outgoing]\nmax_attempts = 0\n[[helpdesk]]\nname = \"A\"\n").unwrap_err();
        assert_eq!(
            (err.issue.key.as_deref(), err.issue.line),
            (Some("outgoing.max_attempts"), Some(2))
        );
        assert_eq!(
            err.to_string(),
            "/etc/postdesk.toml:2: outgoing.max_attempts: must be 1 or more"
        );
    }

    #[test]
    fn type_errors_on_secrets_do_not_show_the_secret() {
        for config in [
            "[[helpdesk]]\nname = \"A\"\n[helpdesk.smtp]\nhost = \"h\"\npassword = 47114711\n",
            "[[helpdesk]]\nname = \"A\"\n[[helpdesk.mailbox]]\nhost = \"h\"\nuser = \"u\"\npassword = 47114711.5\n",
            "[[helpdesk]]\nname = \"A\"\n[[helpdesk.mailbox]]\nhost = \"h\"\nuser = \"u\"\noauth2 = { token_url = \"https://t\", client_id = \"c\", client_secret = 47114711 }\n",
        ] {
            let text = parse(config).unwrap_err().to_string();
            assert!(!text.contains("47114711"), "{text}");
            assert!(text.contains("must be written as a string"), "{text}");
        }
        assert_eq!(
            without_quoted_values("invalid type: integer `4711`, expected a string"),
            "invalid type: integer, expected a string"
        );
        // Other keys still say what they got.
        let text = parse("[[helpdesk]]\nname = \"A\"\nfirst_ticket_number = \"x9\"\n")
            .unwrap_err()
            .to_string();
        assert!(text.contains("x9"), "{text}");
    }

    #[test]
    fn no_helpdesk_is_an_error() {
        assert!(parse("").unwrap_err().to_string().contains("[[helpdesk]]"));
    }

    #[test]
    fn syntax_error_has_a_line() {
        let err = parse("[[helpdesk]]\nname = \"A\n").unwrap_err();
        assert!(err.to_string().contains(":2"), "{err}");
    }
}
