//! uid → user name, from `/etc/passwd`, cached (re-read when the file changes).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

/// The file is checked for changes at most this often.
const RECHECK: Duration = Duration::from_secs(30);

/// Resolves user ids to names through a passwd-format file.
#[derive(Debug)]
pub struct UserNames {
    path: PathBuf,
    names: HashMap<u32, String>,
    mtime: Option<SystemTime>,
    checked: Option<Instant>,
}

impl Default for UserNames {
    fn default() -> Self {
        Self::new("/etc/passwd")
    }
}

impl UserNames {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        UserNames {
            path: path.into(),
            names: HashMap::new(),
            mtime: None,
            checked: None,
        }
    }

    /// The name of `uid`, if the file has it.
    pub fn name(&mut self, uid: u32) -> Option<String> {
        self.refresh();
        self.names.get(&uid).cloned()
    }

    fn refresh(&mut self) {
        if self.checked.is_some_and(|t| t.elapsed() < RECHECK) {
            return;
        }
        self.checked = Some(Instant::now());
        let mtime = std::fs::metadata(&self.path)
            .and_then(|m| m.modified())
            .ok();
        if mtime.is_some() && mtime == self.mtime {
            return;
        }
        self.mtime = mtime;
        self.names = read_passwd(&self.path);
    }
}

fn read_passwd(path: &Path) -> HashMap<u32, String> {
    match std::fs::read_to_string(path) {
        Ok(text) => parse_passwd(&text),
        Err(e) => {
            tracing::debug!(path = %path.display(), "cannot read: {e}");
            HashMap::new()
        }
    }
}

/// `name:password:uid:gid:gecos:home:shell` lines; comments and broken lines are skipped.
pub fn parse_passwd(text: &str) -> HashMap<u32, String> {
    let mut names = HashMap::new();
    for line in text.lines() {
        if line.starts_with('#') {
            continue;
        }
        let mut fields = line.split(':');
        let (Some(name), Some(_), Some(uid)) = (fields.next(), fields.next(), fields.next()) else {
            continue;
        };
        if let Ok(uid) = uid.parse::<u32>()
            && !name.is_empty()
        {
            names.entry(uid).or_insert_with(|| name.to_owned());
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_passwd() {
        let m = parse_passwd(
            "root:x:0:0:root:/root:/bin/bash\n# comment\nbroken\nalice:x:1000:1000:Alice,,,:/home/alice:/bin/bash\ntoor:x:0:0::/:/bin/sh\n",
        );
        assert_eq!(m.get(&0).map(String::as_str), Some("root"));
        assert_eq!(m.get(&1000).map(String::as_str), Some("alice"));
        assert_eq!(m.len(), 2);
    }

    #[test]
    fn resolves_from_file() {
        let mut u = UserNames::default();
        assert_eq!(u.name(0).as_deref(), Some("root"));
    }
}
