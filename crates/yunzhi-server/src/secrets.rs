//! Secrets at rest (second-factor seeds now, platform credentials later),
//! sealed with SM4-GCM (GB/T 32907 in GCM mode, as RFC 8998 specifies it).
//!
//! The key lives outside the database — in `YUNZHI_SECRET_KEY` or a key
//! file in the data folder, readable by its owner only — so a copy of the
//! database alone reveals no secret. Each sealed value is bound to what it
//! belongs to (the additional data, e.g. `totp:<username>`), so a sealed
//! value moved to another row does not open.

use std::path::Path;

use aes_gcm::AesGcm;
use aes_gcm::aead::consts::U12;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use sm4::Sm4;

type Sm4Gcm = AesGcm<Sm4, U12>;

const PREFIX: &str = "sm4gcm1:";

pub struct SecretBox {
    cipher: Sm4Gcm,
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBox(..)")
    }
}

impl SecretBox {
    pub fn new(key: [u8; 16]) -> SecretBox {
        SecretBox { cipher: Sm4Gcm::new(&key.into()) }
    }

    /// The key from `YUNZHI_SECRET_KEY` (32 hex digits) when set, else from
    /// `DIR/secret.key`, made on first use with owner-only permissions.
    /// Several servers on one database must share the key: set the variable.
    pub fn load_or_create(data_dir: &Path) -> anyhow::Result<[u8; 16]> {
        if let Ok(hex) = std::env::var("YUNZHI_SECRET_KEY") {
            return parse_key(hex.trim())
                .ok_or_else(|| anyhow::anyhow!("YUNZHI_SECRET_KEY must be 32 hexadecimal digits"));
        }
        let path = data_dir.join("secret.key");
        if path.exists() {
            let text = std::fs::read_to_string(&path)?;
            return parse_key(text.trim()).ok_or_else(|| {
                anyhow::anyhow!("{} does not hold a key of 32 hexadecimal digits", path.display())
            });
        }
        std::fs::create_dir_all(data_dir)?;
        let key: [u8; 16] =
            crate::auth::random_bytes(16)?.try_into().map_err(|_| anyhow::anyhow!("short randomness"))?;
        write_private(&path, &data_encoding::HEXLOWER.encode(&key))?;
        tracing::info!(path = %path.display(), "made the key that seals secrets at rest; back it up with the database");
        Ok(key)
    }

    /// Seals `plain` for `context`.
    pub fn seal(&self, plain: &[u8], context: &str) -> anyhow::Result<String> {
        let nonce: [u8; 12] =
            crate::auth::random_bytes(12)?.try_into().map_err(|_| anyhow::anyhow!("short randomness"))?;
        let sealed = self
            .cipher
            .encrypt(&nonce.into(), Payload { msg: plain, aad: context.as_bytes() })
            .map_err(|_| anyhow::anyhow!("sealing failed"))?;
        let mut out = nonce.to_vec();
        out.extend(sealed);
        Ok(format!("{PREFIX}{}", data_encoding::BASE64.encode(&out)))
    }

    /// Opens what [`SecretBox::seal`] sealed for the same `context`.
    pub fn open(&self, sealed: &str, context: &str) -> anyhow::Result<Vec<u8>> {
        let body = sealed.strip_prefix(PREFIX).ok_or_else(|| anyhow::anyhow!("not a sealed secret"))?;
        let raw = data_encoding::BASE64.decode(body.as_bytes())?;
        if raw.len() < 12 + 16 {
            anyhow::bail!("a sealed secret too short to open");
        }
        let (nonce, ct) = raw.split_at(12);
        let nonce: [u8; 12] = nonce.try_into().map_err(|_| anyhow::anyhow!("bad nonce"))?;
        self.cipher
            .decrypt(&nonce.into(), Payload { msg: ct, aad: context.as_bytes() })
            .map_err(|_| anyhow::anyhow!("the secret does not open with this key and context"))
    }
}

fn parse_key(hex: &str) -> Option<[u8; 16]> {
    data_encoding::HEXLOWER_PERMISSIVE.decode(hex.as_bytes()).ok()?.try_into().ok()
}

#[cfg(unix)]
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()
}

#[cfg(not(unix))]
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    std::fs::write(path, text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        data_encoding::HEXUPPER.decode(s.as_bytes()).unwrap()
    }

    #[test]
    fn sm4_gcm_matches_the_rfc_8998_test_vector() {
        // RFC 8998, Appendix A.1 (SM4-GCM).
        let cipher = Sm4Gcm::new_from_slice(&hex("0123456789ABCDEFFEDCBA9876543210")).unwrap();
        let nonce: [u8; 12] = hex("00001234567800000000ABCD").try_into().unwrap();
        let aad = hex("FEEDFACEDEADBEEFFEEDFACEDEADBEEFABADDAD2");
        let plain = hex(
            "AAAAAAAAAAAAAAAABBBBBBBBBBBBBBBBCCCCCCCCCCCCCCCCDDDDDDDDDDDDDDDDEEEEEEEEEEEEEEEEFFFFFFFFFFFFFFFF\
             EEEEEEEEEEEEEEEEAAAAAAAAAAAAAAAA",
        );
        let out = cipher.encrypt(&nonce.into(), Payload { msg: &plain, aad: &aad }).unwrap();
        let expected = hex(
            "17F399F08C67D5EE19D0DC9969C4BB7D5FD46FD3756489069157B282BB200735D82710CA5C22F0CCFA7CBF93D496AC15\
             A56834CBCF98C397B4024A2691233B8D83DE3541E4C2B58177E065A9BF7B62EC",
        );
        assert_eq!(out, expected);
    }

    #[test]
    fn a_sealed_secret_opens_only_with_its_key_and_context() {
        let b = SecretBox::new([7; 16]);
        let sealed = b.seal(b"JBSWY3DPEHPK3PXP", "totp:admin").unwrap();
        assert!(sealed.starts_with(PREFIX));
        assert!(!sealed.contains("JBSWY3DP"));
        assert_eq!(b.open(&sealed, "totp:admin").unwrap(), b"JBSWY3DPEHPK3PXP");
        assert!(b.open(&sealed, "totp:other").is_err(), "moved to another account, it does not open");
        assert!(SecretBox::new([8; 16]).open(&sealed, "totp:admin").is_err());
        assert_ne!(sealed, b.seal(b"JBSWY3DPEHPK3PXP", "totp:admin").unwrap(), "a fresh nonce each time");
    }

    #[test]
    fn the_key_file_is_made_once_with_owner_only_permissions() {
        let dir = std::env::temp_dir().join(format!("yunzhi-key-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let first = SecretBox::load_or_create(&dir).unwrap();
        assert_eq!(SecretBox::load_or_create(&dir).unwrap(), first);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.join("secret.key")).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::remove_dir_all(&dir).ok();
    }
}
