//! `--env FILE`: an OVF environment document on disk.

use std::path::PathBuf;

use super::{EnvSource, Fetched, SourceError};

pub struct File {
    path: PathBuf,
}

impl File {
    pub fn new(path: PathBuf) -> Self {
        File { path }
    }
}

impl EnvSource for File {
    fn describe(&self) -> String {
        format!("file {}", self.path.display())
    }

    fn fetch(&mut self) -> Result<Option<Fetched>, SourceError> {
        match std::fs::read(&self.path) {
            Ok(bytes) => Ok(Some(Fetched {
                bytes,
                description: self.describe(),
            })),
            Err(e) => Err(SourceError::new(
                self.describe(),
                format!("cannot read it: {e}; expected a readable OVF environment document"),
            )),
        }
    }
}
