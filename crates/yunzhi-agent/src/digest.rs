//! The SM3 digest of the agent's own binary, sent with every report so the
//! server can spot a replaced or tampered agent (`agent_tampered` findings).

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use sm3::{Digest, Sm3};

/// Lowercase hex SM3 of a file, read in chunks so a large binary costs no
/// memory.
pub fn sm3_hex(path: &Path) -> io::Result<String> {
    let mut file = File::open(path)?;
    let mut hasher = Sm3::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_digest_is_lowercase_hex_sm3_of_the_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("abc");
        std::fs::write(&path, b"abc").expect("write");
        // GB/T 32905-2016, example 1.
        assert_eq!(
            sm3_hex(&path).expect("digest"),
            "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
        );
    }
}
