//! The released agent builds, known by the SM3 digest of their binaries:
//! an agent whose report carries another digest is taken as tampered with
//! (`agent_tampered`). The operator keeps them in a text file in the form
//! digest tools print — a digest, spaces, the file's name — one build a
//! line; `#` starts a comment. `yunzhi agent-digest FILE…` prints such lines.

use std::io::Read;
use std::path::Path;

use sm3::{Digest, Sm3};

/// The SM3 digest of a file, as lowercase hexadecimal (what an agent
/// reports of its own binary).
pub fn digest_of_file(path: &Path) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sm3::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(data_encoding::HEXLOWER.encode(&hasher.finalize()))
}

/// The digests a releases file lists, or the first line that is not one,
/// by its number.
pub fn parse(text: &str) -> Result<Vec<String>, String> {
    let mut digests = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        let Some(digest) = line.split_whitespace().next() else { continue };
        // Digest tools mark a binary file with a `*` before its name; the
        // digest itself is always the first word.
        let digest = digest.to_ascii_lowercase();
        if digest.len() != 64 || !digest.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!(
                "line {}: «{digest}» is not an SM3 digest (64 hexadecimal digits, as `yunzhi agent-digest` prints)",
                i + 1
            ));
        }
        if !digests.contains(&digest) {
            digests.push(digest);
        }
    }
    if digests.is_empty() {
        return Err("it lists no build: one SM3 digest a line, as `yunzhi agent-digest` prints".into());
    }
    Ok(digests)
}

/// Reads and checks a releases file.
pub fn load(path: &Path) -> anyhow::Result<Vec<String>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("reading the agent releases file {}: {e}", path.display()))?;
    parse(&text).map_err(|e| anyhow::anyhow!("the agent releases file {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ABC: &str = "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0";

    #[test]
    fn a_files_digest_is_its_sm3_in_lowercase_hex() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("abc");
        std::fs::write(&path, b"abc").unwrap();
        // GB/T 32905-2016's first example.
        assert_eq!(digest_of_file(&path).unwrap(), ABC);
    }

    #[test]
    fn a_releases_file_lists_digests_with_names_comments_and_blank_lines() {
        let upper = ABC.to_ascii_uppercase();
        let text = format!(
            "# 2026-12 builds\n{ABC}  yunzhi-agent-x86_64\n\n{upper} *yunzhi-agent-x86_64\n{}\n",
            "0".repeat(64)
        );
        assert_eq!(parse(&text).unwrap(), vec![ABC.to_owned(), "0".repeat(64)]);
    }

    #[test]
    fn a_line_that_is_not_a_digest_is_named_by_its_number() {
        let err = parse(&format!("{ABC}  a\nyunzhi-agent-x86_64 {ABC}\n")).unwrap_err();
        assert!(err.starts_with("line 2: «yunzhi-agent-x86_64» is not an SM3 digest"), "{err}");
        assert!(parse("# nothing yet\n").unwrap_err().contains("lists no build"));
    }
}
