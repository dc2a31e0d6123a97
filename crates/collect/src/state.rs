//! Small JSON state files in the agent's state directory (offsets, cursors, baselines),
//! written atomically (temporary file + rename).

use std::fs;
use std::io::{self, Write};
use std::path::Path;

use serde::Serialize;
use serde::de::DeserializeOwned;

/// Reads a JSON state file. A missing file is `Ok(None)`; a corrupt one is logged and treated
/// as missing (the collector starts fresh rather than not at all).
pub fn load<T: DeserializeOwned>(path: &Path) -> io::Result<Option<T>> {
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    match serde_json::from_slice(&bytes) {
        Ok(v) => Ok(Some(v)),
        Err(e) => {
            tracing::warn!(path = %path.display(), "corrupt state file ignored: {e}");
            Ok(None)
        }
    }
}

/// Writes `value` as JSON to `path` atomically: a crash leaves the old or the new file.
pub fn save<T: Serialize>(path: &Path, value: &T) -> io::Result<()> {
    let bytes = serde_json::to_vec(value).map_err(io::Error::other)?;
    let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(".tmp");
    let tmp = path.with_file_name(tmp_name);
    {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
    }
    fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_missing_and_corrupt() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let p = dir.path().join("s.json");
        assert_eq!(load::<Vec<u32>>(&p).ok().flatten(), None);
        save(&p, &vec![1u32, 2]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(load::<Vec<u32>>(&p).ok().flatten(), Some(vec![1, 2]));
        fs::write(&p, b"{not json").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(load::<Vec<u32>>(&p).ok().flatten(), None);
    }
}
