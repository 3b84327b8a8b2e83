//! Configuration errors: where a value came from ([`Origin`]) and the one-line message that
//! names the option, the value, its origin and what was expected ([`ConfigError`]).

use std::fmt;
use std::path::PathBuf;

/// Where the effective value of an option comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// The built-in default.
    Default,
    /// A line of a config file.
    File {
        /// The config file.
        path: PathBuf,
        /// The line (1-based).
        line: usize,
    },
    /// An environment variable.
    Env(&'static str),
    /// A command-line flag, e.g. `--http-port`.
    Flag(String),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Default => f.write_str("the built-in default"),
            Origin::File { path, line } => write!(f, "file {} line {line}", path.display()),
            Origin::Env(var) => write!(f, "environment variable {var}"),
            Origin::Flag(flag) => write!(f, "flag {flag}"),
        }
    }
}

/// A configuration that cannot be used. [`Display`](fmt::Display) gives one line; the
/// process exits with [`ConfigError::exit_code`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// A value that has the wrong type or fails its check.
    Invalid {
        /// The option key, e.g. `http_port`.
        option: String,
        /// The value at fault, as written (quoted text or TOML).
        value: String,
        /// Where it comes from.
        origin: Origin,
        /// What was expected.
        expected: String,
    },
    /// A key of `[options]` that is no option.
    UnknownOption {
        /// The key.
        option: String,
        /// Its value, as written.
        value: String,
        /// Where it comes from.
        origin: Origin,
    },
    /// A config file that is not valid TOML or not laid out in sections.
    Syntax {
        /// The file.
        path: PathBuf,
        /// The line at fault, when known.
        line: Option<usize>,
        /// What is wrong and what was expected.
        message: String,
    },
    /// A config file that cannot be read.
    Unreadable {
        /// The file.
        path: PathBuf,
        /// How it was chosen (`flag --config`, `environment variable INPHMS_RC`...).
        origin: Origin,
        /// The system's reason.
        reason: String,
    },
    /// A command line that does not parse (unknown flag, missing value...).
    Usage {
        /// The parser's message.
        message: String,
    },
    /// `-h/--help` was given: not an error; the text goes to stdout and the exit code is 0.
    Help(String),
    /// `-s/--save` failed.
    Save {
        /// The file.
        path: PathBuf,
        /// The system's reason.
        reason: String,
    },
}

impl ConfigError {
    /// The exit code of a process stopped by this error: 0 for help, else 2.
    pub fn exit_code(&self) -> i32 {
        match self {
            ConfigError::Help(_) => 0,
            _ => 2,
        }
    }
}

/// `s` on one line.
fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Invalid {
                option,
                value,
                origin,
                expected,
            } => write!(
                f,
                "option {option}: invalid value {} from {origin}; expected {}",
                one_line(value),
                one_line(expected)
            ),
            ConfigError::UnknownOption {
                option,
                value,
                origin,
            } => write!(
                f,
                "unknown option {option} (value {}) from {origin}; expected one of the options listed by 'inphms-host server --help'",
                one_line(value)
            ),
            ConfigError::Syntax {
                path,
                line: Some(line),
                message,
            } => write!(
                f,
                "config file {} line {line}: {}",
                path.display(),
                one_line(message)
            ),
            ConfigError::Syntax {
                path,
                line: None,
                message,
            } => write!(f, "config file {}: {}", path.display(), one_line(message)),
            ConfigError::Unreadable {
                path,
                origin,
                reason,
            } => write!(
                f,
                "config file {} (from {origin}) doesn't exist or is not readable ({}); use -s/--save to generate it",
                path.display(),
                one_line(reason)
            ),
            ConfigError::Usage { message } => write!(
                f,
                "{}; see 'inphms-host server --help'",
                one_line(message)
            ),
            ConfigError::Help(text) => f.write_str(text),
            ConfigError::Save { path, reason } => write!(
                f,
                "couldn't write the config file {}: {}",
                path.display(),
                one_line(reason)
            ),
        }
    }
}

impl std::error::Error for ConfigError {}
