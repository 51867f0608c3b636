//! Errors as they travel up: [`BoxError`], the cause an internal error keeps (instead
//! of its text), [`Context`], what was being done when it came, and [`chain`], an
//! error and its causes in one line, for a log or a column that keeps a reason.

use std::error::Error;

/// Any error, kept with its own `source` chain.
pub type BoxError = Box<dyn Error + Send + Sync>;

/// What was being done, with the error that stopped it as its source.
#[derive(Debug, thiserror::Error)]
#[error("{context}")]
pub struct Context {
    context: String,
    #[source]
    source: BoxError,
}

impl Context {
    pub fn new(context: impl Into<String>, source: impl Into<BoxError>) -> Self {
        Self {
            context: context.into(),
            source: source.into(),
        }
    }
}

/// `error: cause: cause…`. A cause whose text the line holds already is left out:
/// some errors repeat their source's text in their own.
pub fn chain(error: &dyn Error) -> String {
    let mut line = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        source = cause.source();
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chain_is_said_once() {
        let io = std::io::Error::other("disk full");
        let e = Context::new("cannot write the blob", Context::new("in /data", io));
        assert_eq!(chain(&e), "cannot write the blob: in /data: disk full");
        let repeated = Context::new(
            "disk full (os error 28)",
            std::io::Error::other("disk full"),
        );
        assert_eq!(chain(&repeated), "disk full (os error 28)");
    }
}
