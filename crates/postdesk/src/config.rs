//! The configuration file: one TOML file, checked so that every error names the
//! file, the line and the key, and says what is allowed.

use std::path::{Path, PathBuf};

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
    /// Larger mails are kept raw and put in the failed queue.
    #[serde(default = "default_max_mail_mb")]
    max_mail_mb: u64,
    /// Mails per database transaction during import.
    #[serde(default = "default_batch_size")]
    batch_size: usize,
    #[serde(rename = "helpdesk", default)]
    helpdesks: Vec<HelpdeskSettings>,
}

fn default_data_dir() -> PathBuf {
    "postdesk-data".into()
}
fn default_max_mail_mb() -> u64 {
    50
}
fn default_batch_size() -> usize {
    256
}

/// The configuration, checked and ready to use.
#[derive(Debug, Clone)]
pub struct Config {
    pub data_dir: PathBuf,
    pub database_url: String,
    pub max_mail_bytes: usize,
    pub batch_size: usize,
    pub helpdesks: Vec<Helpdesk>,
}

/// A problem in the config file, located as precisely as the file allows.
#[derive(Debug, thiserror::Error)]
#[error("{}{}: {message}", path.display(), line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct ConfigError {
    pub path: PathBuf,
    pub line: Option<usize>,
    pub message: String,
}

impl Config {
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            path: path.to_path_buf(),
            line: None,
            message: format!(
                "cannot read the config file: {e}. Create one with `postdesk init {}`",
                path.display()
            ),
        })?;
        Self::parse(path, &text)
    }

    pub fn parse(path: &Path, text: &str) -> Result<Self, ConfigError> {
        let error = |line, message| ConfigError {
            path: path.to_path_buf(),
            line,
            message,
        };
        let file: ConfigFile = toml::from_str(text).map_err(|e| {
            let line = e.span().map(|span| line_of(text, span.start));
            let key = e
                .span()
                .map(|span| text[span].trim().to_string())
                .filter(|k| !k.is_empty() && k.len() < 60);
            let message = e.message().trim_end().to_string();
            let message = match key {
                Some(key) if !message.contains(&key) => format!("`{key}`: {message}"),
                _ => message,
            };
            error(line, message)
        })?;
        if file.helpdesks.is_empty() {
            return Err(error(
                None,
                "no `[[helpdesk]]` is configured; add one (see `postdesk init`)".into(),
            ));
        }
        if file.max_mail_mb == 0 {
            return Err(error(
                locate(text, &["max_mail_mb"]),
                "max_mail_mb must be 1 or more".into(),
            ));
        }
        if !(1..=10_000).contains(&file.batch_size) {
            return Err(error(
                locate(text, &["batch_size"]),
                "batch_size must be between 1 and 10000".into(),
            ));
        }
        let mut helpdesks = Vec::new();
        for (index, settings) in file.helpdesks.into_iter().enumerate() {
            let hd = settings.compile().map_err(|e| {
                let line = locate_in_helpdesk(text, index, &e.key);
                error(line, format!("helpdesk.{}: {}", e.key, e.message))
            })?;
            if helpdesks
                .iter()
                .any(|h: &Helpdesk| h.settings.name.eq_ignore_ascii_case(&hd.settings.name))
            {
                let line = locate_in_helpdesk(text, index, "name");
                return Err(error(
                    line,
                    format!(
                        "helpdesk.name: `{}` is used twice; names must be unique",
                        hd.settings.name
                    ),
                ));
            }
            helpdesks.push(hd);
        }
        let base = path.parent().unwrap_or(Path::new("."));
        let data_dir = base.join(&file.data_dir);
        let database_url = file
            .database_url
            .unwrap_or_else(|| format!("sqlite://{}", data_dir.join("postdesk.db").display()));
        Ok(Self {
            data_dir,
            database_url,
            max_mail_bytes: (file.max_mail_mb as usize).saturating_mul(1024 * 1024),
            batch_size: file.batch_size,
            helpdesks,
        })
    }
}

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

/// Line of `key` (dotted for nested tables) in the `index`-th `[[helpdesk]]`, or of that table's header.
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
    for part in key.split('.') {
        let toml::de::DeValue::Table(t) = value.get_ref() else {
            break;
        };
        let Some((k, v)) = t.iter().find(|(k, _)| k.get_ref() == part) else {
            break;
        };
        span = k.span();
        value = v;
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
