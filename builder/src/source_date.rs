//! The one time every output of a build carries (tar mtimes, the build-date property, the
//! times of the files in the appliance's filesystems), chosen by one rule:
//!
//! 1. `--source-date-epoch SECONDS`, when given;
//! 2. else the `SOURCE_DATE_EPOCH` environment variable, when set and not blank: a whole
//!    number of seconds since 1970-01-01 00:00 UTC (anything else is an error, never a
//!    silent fallback);
//! 3. else the newest modification time among the command's input files.
//!
//! Never the clock: building the same inputs twice gives the same bytes.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

/// The environment variable of the reproducible-builds specification.
pub const VARIABLE: &str = "SOURCE_DATE_EPOCH";

/// Why no time could be chosen.
#[derive(Debug, thiserror::Error)]
pub enum SourceDateError {
    #[error(
        "{VARIABLE}={value:?} is not a number of seconds since 1970-01-01 00:00 UTC: expected \
         digits only, e.g. the output of `git log -1 --format=%ct`"
    )]
    Invalid { value: String },
    #[error("cannot read the modification time of {path}: {source}")]
    Input {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("there is no input file to take the time from: set {VARIABLE}")]
    NoInput,
}

/// The chosen time and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceDate {
    /// Seconds since 1970-01-01 00:00 UTC.
    pub seconds: u64,
    pub origin: Origin,
}

/// Which step of the rule chose the time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// `--source-date-epoch`.
    Option,
    /// `SOURCE_DATE_EPOCH`.
    Environment,
    /// The modification time of this input, the newest.
    NewestInput(PathBuf),
}

/// Applies the rule: `given` (the command-line option), else `SOURCE_DATE_EPOCH`, else the
/// newest modification time among `inputs`.
pub fn source_date<P: AsRef<Path>>(
    given: Option<u64>,
    inputs: &[P],
) -> Result<SourceDate, SourceDateError> {
    from(given, std::env::var_os(VARIABLE), inputs)
}

/// The rule with the environment's value passed in (testable without touching the
/// process's environment).
fn from<P: AsRef<Path>>(
    given: Option<u64>,
    environment: Option<OsString>,
    inputs: &[P],
) -> Result<SourceDate, SourceDateError> {
    if let Some(seconds) = given {
        return Ok(SourceDate {
            seconds,
            origin: Origin::Option,
        });
    }
    if let Some(seconds) = environment.as_ref().map(parse).transpose()?.flatten() {
        return Ok(SourceDate {
            seconds,
            origin: Origin::Environment,
        });
    }
    newest_mtime(inputs)
}

/// A `SOURCE_DATE_EPOCH` value: `None` when blank (as if unset).
fn parse(value: &OsString) -> Result<Option<u64>, SourceDateError> {
    let invalid = || SourceDateError::Invalid {
        value: value.to_string_lossy().into_owned(),
    };
    let text = value.to_str().ok_or_else(invalid)?.trim();
    if text.is_empty() {
        return Ok(None);
    }
    if !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid());
    }
    text.parse().map(Some).map_err(|_| invalid())
}

/// The newest modification time among `inputs` (a time before 1970 counts as 0).
fn newest_mtime<P: AsRef<Path>>(inputs: &[P]) -> Result<SourceDate, SourceDateError> {
    let mut newest: Option<SourceDate> = None;
    for path in inputs {
        let path = path.as_ref();
        let modified = std::fs::metadata(path)
            .and_then(|m| m.modified())
            .map_err(|source| SourceDateError::Input {
                path: path.to_path_buf(),
                source,
            })?;
        let seconds = modified
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO)
            .as_secs();
        if newest.as_ref().is_none_or(|n| seconds > n.seconds) {
            newest = Some(SourceDate {
                seconds,
                origin: Origin::NewestInput(path.to_path_buf()),
            });
        }
    }
    newest.ok_or(SourceDateError::NoInput)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn file_with_mtime(dir: &Path, name: &str, seconds: u64) -> PathBuf {
        let path = dir.join(name);
        let file = std::fs::File::create(&path).unwrap();
        file.set_modified(UNIX_EPOCH + Duration::from_secs(seconds))
            .unwrap();
        path
    }

    #[test]
    fn the_option_wins_then_the_environment_then_the_newest_input() {
        let dir = tempfile::tempdir().unwrap();
        let old = file_with_mtime(dir.path(), "old", 1_400_000_000);
        let new = file_with_mtime(dir.path(), "new", 1_600_000_000);
        let inputs = [&old, &new, &old];
        let env = Some(OsString::from("1700000000"));
        assert_eq!(from(Some(5), env.clone(), &inputs).unwrap().seconds, 5);
        let chosen = from(None, env, &inputs).unwrap();
        assert_eq!(chosen.seconds, 1_700_000_000);
        assert_eq!(chosen.origin, Origin::Environment);
        let chosen = from(None, None, &inputs).unwrap();
        assert_eq!(chosen.seconds, 1_600_000_000);
        assert_eq!(chosen.origin, Origin::NewestInput(new.clone()));
        // Blank is unset.
        let blank = Some(OsString::from("  "));
        assert_eq!(from(None, blank, &inputs).unwrap().seconds, 1_600_000_000);
    }

    #[test]
    fn an_invalid_value_names_the_variable_and_what_is_expected() {
        let inputs: [&Path; 0] = [];
        for bad in ["yesterday", "-1", "+5", "1.5", "99999999999999999999999"] {
            let err = from(None, Some(OsString::from(bad)), &inputs).unwrap_err();
            let text = err.to_string();
            assert!(
                text.contains(&format!("SOURCE_DATE_EPOCH={bad:?}")),
                "{text}"
            );
            assert!(text.contains("seconds since 1970"), "{text}");
        }
    }

    #[test]
    fn a_missing_input_is_named() {
        let missing = Path::new("/nonexistent/disk.raw");
        let err = from(None, None, &[missing]).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/disk.raw"), "{err}");
        let none: [&Path; 0] = [];
        assert!(matches!(
            from(None, None, &none),
            Err(SourceDateError::NoInput)
        ));
    }
}
