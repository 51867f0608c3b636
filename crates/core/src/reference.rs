//! Ticket references in subjects: `[HD#1234]`, `[Ticket#1234]`, `[Ticket ID : 1483]`,
//! RT's `[example.com #1234]`…
//!
//! A format is literal text with one `{number}` placeholder. Whitespace in a
//! format matches any run of whitespace (or none), letters match case-insensitively,
//! so `[Ticket ID : {number}]` also recognises `TT15 [ticket id:1483]`.

use crate::id::TicketNumber;

use regex::Regex;
use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum ReferenceFormatError {
    #[error("`{0}` has no `{{number}}` placeholder; write e.g. `[HD#{{number}}]`")]
    NoPlaceholder(String),
    #[error("`{0}` has more than one `{{number}}` placeholder")]
    SeveralPlaceholders(String),
    #[error("`{0}` has no text around `{{number}}`; a bare number would match any digits")]
    BareNumber(String),
}

/// How a helpdesk writes its ticket reference and which forms it recognises.
#[derive(Debug, Clone)]
pub struct ReferenceFormat {
    write: String,
    recognise: Regex,
}

const PLACEHOLDER: &str = "{number}";

impl ReferenceFormat {
    /// `write` is the form put in outgoing subjects; `also_recognise` are other forms
    /// accepted in incoming subjects (e.g. the format of a previous helpdesk).
    pub fn new(write: &str, also_recognise: &[String]) -> Result<Self, ReferenceFormatError> {
        let mut alternatives = vec![pattern_for(write)?];
        for format in also_recognise {
            alternatives.push(pattern_for(format)?);
        }
        let recognise = Regex::new(&format!("(?i){}", alternatives.join("|")))
            .expect("escaped literal alternatives always compile");
        Ok(Self {
            write: write.to_string(),
            recognise,
        })
    }

    /// The reference for ticket `number`, as written in outgoing subjects.
    pub fn render(&self, number: TicketNumber) -> String {
        self.write.replace(PLACEHOLDER, &number.to_string())
    }

    /// Whether `text` holds a reference in one of the recognised forms.
    pub fn is_referenced(&self, text: &str) -> bool {
        self.recognise.is_match(text)
    }

    /// Every ticket number referenced in `subject`, in order of appearance.
    pub fn find_all(&self, subject: &str) -> Vec<TicketNumber> {
        self.recognise
            .captures_iter(subject)
            .filter_map(|caps| caps.iter().skip(1).flatten().next())
            .filter_map(|m| m.as_str().parse().ok())
            .collect()
    }
}

fn pattern_for(format: &str) -> Result<String, ReferenceFormatError> {
    let mut pieces = format.split(PLACEHOLDER);
    let (before, after) = match (pieces.next(), pieces.next(), pieces.next()) {
        (Some(before), Some(after), None) => (before, after),
        (_, None, _) => return Err(ReferenceFormatError::NoPlaceholder(format.to_string())),
        _ => {
            return Err(ReferenceFormatError::SeveralPlaceholders(
                format.to_string(),
            ));
        }
    };
    if before.trim().is_empty() && after.trim().is_empty() {
        return Err(ReferenceFormatError::BareNumber(format.to_string()));
    }
    // Without trailing text, a word boundary keeps `12` from matching inside `123abc`.
    let after = if after.is_empty() {
        r"\b".to_string()
    } else {
        literal(after)
    };
    Ok(format!(r"{}(\d{{1,18}}){}", literal(before), after))
}

/// Escapes a literal piece, letting whitespace match any (or no) whitespace.
fn literal(piece: &str) -> String {
    let mut out = String::new();
    let mut in_space = false;
    for c in piece.chars() {
        if c.is_whitespace() {
            if !in_space {
                out.push_str(r"\s*");
            }
            in_space = true;
        } else {
            in_space = false;
            out.push_str(&regex::escape(&c.to_string()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numbers(f: &ReferenceFormat, subject: &str) -> Vec<i64> {
        f.find_all(subject)
            .into_iter()
            .map(TicketNumber::get)
            .collect()
    }

    fn format(write: &str, others: &[&str]) -> ReferenceFormat {
        let others: Vec<String> = others.iter().map(|s| s.to_string()).collect();
        ReferenceFormat::new(write, &others).unwrap()
    }

    #[test]
    fn default_form_round_trips() {
        let f = format("[HD#{number}]", &[]);
        assert_eq!(f.render(TicketNumber::new(1234)), "[HD#1234]");
        assert_eq!(numbers(&f, "Re: AW: [HD#1234] printer"), vec![1234]);
        assert_eq!(numbers(&f, "[hd#77]"), vec![77]);
        assert_eq!(numbers(&f, "HD#1234 without brackets"), Vec::<i64>::new());
    }

    #[test]
    fn common_foreign_forms_are_recognised() {
        let f = format(
            "[HD#{number}]",
            &[
                "[Ticket#{number}]",
                "[Ticket ID : {number}]",
                "[example.com #{number}]",
            ],
        );
        assert_eq!(numbers(&f, "Re: [Ticket#1234] x"), vec![1234]);
        assert_eq!(
            numbers(&f, "Re: TT15 [Ticket ID : 1483] Problem"),
            vec![1483]
        );
        assert_eq!(numbers(&f, "Re: TT15 [ticket id:1483] Problem"), vec![1483]);
        assert_eq!(numbers(&f, "[example.com #99] disk full"), vec![99]);
        assert_eq!(numbers(&f, "[other.org #99] disk full"), Vec::<i64>::new());
    }

    #[test]
    fn only_text_around_the_number_counts() {
        let f = format("Ticket {number}", &[]);
        assert_eq!(numbers(&f, "Ticket 12"), vec![12]);
        assert_eq!(numbers(&f, "Ticket 123abc"), Vec::<i64>::new());
    }

    #[test]
    fn bad_formats_are_refused() {
        assert!(matches!(
            ReferenceFormat::new("[HD#]", &[]),
            Err(ReferenceFormatError::NoPlaceholder(_))
        ));
        assert!(matches!(
            ReferenceFormat::new("{number}-{number}", &[]),
            Err(ReferenceFormatError::SeveralPlaceholders(_))
        ));
        assert!(matches!(
            ReferenceFormat::new(" {number} ", &[]),
            Err(ReferenceFormatError::BareNumber(_))
        ));
    }

    #[test]
    fn huge_numbers_do_not_overflow() {
        let f = format("[HD#{number}]", &[]);
        assert_eq!(
            numbers(&f, "[HD#99999999999999999999999]"),
            Vec::<i64>::new()
        );
    }
}
