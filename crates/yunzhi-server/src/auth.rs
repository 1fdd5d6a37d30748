//! Credentials: password hashes (argon2id), bearer tokens and their digests,
//! and time-based one-time passwords (RFC 6238) for the second factor.

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;
use sm3::{Digest, Sm3};

/// Hashes a password with argon2id and a fresh salt, as a PHC string.
pub fn hash_password(password: &str) -> anyhow::Result<String> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("hashing a password failed: {e}"))
}

/// Whether `password` matches `hash`. A malformed hash never matches.
pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|h| Argon2::default().verify_password(password.as_bytes(), &h).is_ok())
}

/// [`verify_password`] on the blocking pool: argon2 is built to cost tens
/// of milliseconds of CPU, which on the async runtime would hold up every
/// other request and job on that thread.
pub async fn verify_password_off_runtime(password: &str, hash: &str) -> bool {
    let (password, hash) = (password.to_owned(), hash.to_owned());
    tokio::task::spawn_blocking(move || verify_password(&password, &hash)).await.unwrap_or(false)
}

/// A hash of no real password, verified against when the username is
/// unknown, so that a wrong username takes as long as a wrong password.
pub fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash_password("decoy-Password-1").unwrap_or_default())
}

/// `n` random bytes from the operating system.
pub fn random_bytes(n: usize) -> anyhow::Result<Vec<u8>> {
    let mut buf = vec![0u8; n];
    getrandom::fill(&mut buf).map_err(|e| anyhow::anyhow!("no randomness from the operating system: {e}"))?;
    Ok(buf)
}

/// A new bearer token: 256 random bits, URL-safe.
pub fn new_token() -> anyhow::Result<String> {
    Ok(data_encoding::BASE64URL_NOPAD.encode(&random_bytes(32)?))
}

/// What the store keeps of a token: its SM3 digest.
pub fn token_digest(token: &str) -> String {
    data_encoding::HEXLOWER.encode(&Sm3::digest(token.as_bytes()))
}

/// A new TOTP secret, base32 as authenticator apps expect it.
pub fn new_totp_secret() -> anyhow::Result<String> {
    Ok(data_encoding::BASE32_NOPAD.encode(&random_bytes(20)?))
}

/// The `otpauth://` URI an authenticator app scans.
pub fn totp_uri(secret: &str, username: &str) -> String {
    format!(
        "otpauth://totp/Yunzhi:{username}?secret={secret}&issuer=Yunzhi&algorithm=SHA1&digits=6&period=30"
    )
}

const TOTP_STEP: i64 = 30;

/// The 6-digit code for `secret` at Unix time `unix_seconds` (RFC 6238, HMAC-SHA1).
pub fn totp_code(secret: &[u8], unix_seconds: i64) -> String {
    hotp(secret, (unix_seconds.max(0) / TOTP_STEP) as u64, 6)
}

fn hotp(secret: &[u8], counter: u64, digits: u32) -> String {
    // HMAC accepts keys of any length, so this cannot fail.
    let Ok(mut mac) = <Hmac<Sha1> as KeyInit>::new_from_slice(secret) else {
        return String::new();
    };
    mac.update(&counter.to_be_bytes());
    let digest = mac.finalize().into_bytes();
    let offset = (digest[digest.len() - 1] & 0x0f) as usize;
    let binary = (u32::from(digest[offset] & 0x7f) << 24)
        | (u32::from(digest[offset + 1]) << 16)
        | (u32::from(digest[offset + 2]) << 8)
        | u32::from(digest[offset + 3]);
    format!("{:0width$}", binary % 10u32.pow(digits), width = digits as usize)
}

/// The time step whose code `code` is, for the base32 `secret` at
/// `unix_seconds`, allowing one step of clock drift either way; `None` when
/// it is none of them. The caller refuses a step already used (a replay).
pub fn verify_totp(secret_base32: &str, code: &str, unix_seconds: i64) -> Option<i64> {
    let secret = data_encoding::BASE32_NOPAD.decode(secret_base32.as_bytes()).ok()?;
    let code = code.trim();
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    [-TOTP_STEP, 0, TOTP_STEP]
        .iter()
        .map(|d| unix_seconds + d)
        .find(|t| constant_time_eq(totp_code(&secret, *t).as_bytes(), code.as_bytes()))
        .map(|t| t.max(0) / TOTP_STEP)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totp_matches_the_rfc_6238_sha1_test_vectors() {
        // RFC 6238 Appendix B: the 20-byte ASCII secret, 8 digits; we show 6,
        // which are the last 6 of the 8.
        let secret = b"12345678901234567890";
        for (t, eight) in
            [(59, "94287082"), (1111111109, "07081804"), (1234567890, "89005924"), (2000000000, "69279037")]
        {
            assert_eq!(hotp(secret, (t / 30) as u64, 8), eight);
            assert_eq!(totp_code(secret, t), eight[2..]);
        }
    }

    #[test]
    fn a_totp_code_from_the_previous_step_is_still_accepted() {
        let secret = new_totp_secret().unwrap();
        let raw = data_encoding::BASE32_NOPAD.decode(secret.as_bytes()).unwrap();
        let code = totp_code(&raw, 1_000_000);
        assert_eq!(verify_totp(&secret, &code, 1_000_000 + 30), Some(1_000_000 / 30));
        assert_eq!(verify_totp(&secret, &code, 1_000_000 + 95), None);
    }

    #[test]
    fn a_password_verifies_against_its_own_hash_only() {
        let h = hash_password("Qingpu-2026-cloud").unwrap();
        assert!(verify_password("Qingpu-2026-cloud", &h));
        assert!(!verify_password("Qingpu-2026-Cloud", &h));
        assert!(!verify_password("anything", "not a hash"));
    }

    #[test]
    fn tokens_are_random_and_stored_only_as_digests() {
        let a = new_token().unwrap();
        assert_ne!(a, new_token().unwrap());
        assert_eq!(token_digest(&a).len(), 64);
        assert_ne!(token_digest(&a), a);
    }
}
