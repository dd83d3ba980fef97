//! The error type: what stopped a validation run before it could give verdicts.
//!
//! Problems with individual files are never errors: they are
//! [`Verdict`](crate::Verdict)s. An [`Error`] means the run itself could not
//! proceed (a bad argument, an unreadable public keys file, a listing that
//! failed) and names the file or argument and the reason.

use std::fmt;
use std::path::PathBuf;

/// What went wrong, without the context of which file or argument.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// An argument is malformed or the arguments contradict each other.
    InvalidArgument,
    /// A time could not be parsed.
    InvalidTime,
    /// The public keys file could not be read or parsed.
    PublicKeys,
    /// There are no public keys at all, so nothing can be verified.
    NoPublicKeys,
    /// Listing objects in the store failed.
    List,
    /// Reading a local file or directory failed outside of a verdict.
    Io,
    /// Writing output failed.
    Output,
    /// The `--follow` state file could not be opened, read or written, or
    /// belongs to another selection or another running monitor.
    State,
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ErrorKind::InvalidArgument => "invalid argument",
            ErrorKind::InvalidTime => "invalid time",
            ErrorKind::PublicKeys => "cannot load public keys",
            ErrorKind::NoPublicKeys => "no public keys",
            ErrorKind::List => "cannot list objects",
            ErrorKind::Io => "I/O error",
            ErrorKind::Output => "cannot write output",
            ErrorKind::State => "follow state",
        })
    }
}

/// An error that stops a validation run: its [`ErrorKind`], the file, object
/// or argument it concerns (when there is one) and a human-readable reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    kind: ErrorKind,
    subject: Option<String>,
    reason: String,
}

impl Error {
    /// Creates an error of `kind` about `subject` (a path, an `s3://` URI or
    /// an argument name) for `reason`.
    pub fn new(kind: ErrorKind, subject: Option<String>, reason: impl Into<String>) -> Self {
        Error {
            kind,
            subject,
            reason: reason.into(),
        }
    }

    pub(crate) fn arg(name: &str, reason: impl Into<String>) -> Self {
        Error::new(ErrorKind::InvalidArgument, Some(name.to_string()), reason)
    }

    pub(crate) fn io(path: &std::path::Path, err: &std::io::Error) -> Self {
        Error::new(
            ErrorKind::Io,
            Some(path.display().to_string()),
            err.to_string(),
        )
    }

    pub(crate) fn keys(path: Option<&PathBuf>, reason: impl Into<String>) -> Self {
        Error::new(
            ErrorKind::PublicKeys,
            path.map(|p| p.display().to_string()),
            reason,
        )
    }

    pub(crate) fn output(err: &std::io::Error) -> Self {
        Error::new(ErrorKind::Output, None, err.to_string())
    }

    /// What went wrong.
    pub fn kind(&self) -> &ErrorKind {
        &self.kind
    }

    /// The file, object or argument the error concerns, if any.
    pub fn subject(&self) -> Option<&str> {
        self.subject.as_deref()
    }

    /// Why it went wrong.
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.subject {
            Some(s) => write!(f, "{}: {s}: {}", self.kind, self.reason),
            None => write!(f, "{}: {}", self.kind, self.reason),
        }
    }
}

impl std::error::Error for Error {}

impl From<std::io::Error> for Error {
    fn from(err: std::io::Error) -> Self {
        Error::output(&err)
    }
}
