//! Delivers notifications beyond the in-app inbox: to a generic webhook and
//! by e-mail (SMTP), when those are configured.
//!
//! The notifications table is the outbox: a notification is written in the
//! transaction of the change it tells of, and the courier sends it
//! afterwards, retrying with backoff, so a mail server that is down loses
//! nothing and delays no approval.

use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use lettre::message::Mailbox;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use sm3::Sm3;
use tokio::sync::watch;
use yunzhi_store::Outgoing;

use crate::state::AppState;

/// Attempts before a notification is given up on (its error stays visible).
const MAX_ATTEMPTS: i64 = 12;
const POLL: Duration = Duration::from_secs(3);

/// A generic webhook: every notification POSTed as JSON.
pub struct Webhook {
    pub url: String,
    /// When set, each POST carries `X-Yunzhi-Signature: hmac-sm3=<hex>` of its body.
    pub secret: Option<String>,
    client: reqwest::Client,
}

impl Webhook {
    pub fn new(url: &str, secret: Option<String>) -> anyhow::Result<Webhook> {
        install_tls();
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            anyhow::bail!("the webhook URL must start with http:// or https://, not `{url}`");
        }
        let client = reqwest::Client::builder().timeout(Duration::from_secs(15)).build()?;
        Ok(Webhook { url: url.to_owned(), secret, client })
    }
}

/// E-mail through an SMTP relay.
pub struct Smtp {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl Smtp {
    /// `url` as `smtp://user:pass@host:587?tls=required`, `smtps://host:465`
    /// or plain `smtp://host:25` for a relay inside the e-gov network.
    pub fn new(url: &str, from: &str) -> anyhow::Result<Smtp> {
        install_tls();
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|e| anyhow::anyhow!("the SMTP URL `{url}` is not understood: {e}"))?
            .timeout(Some(Duration::from_secs(20)))
            .build();
        let from = from.parse().map_err(|e| anyhow::anyhow!("the sender `{from}` is not an address: {e}"))?;
        Ok(Smtp { transport, from })
    }
}

/// The channels configured; both may be absent (in-app only).
#[derive(Default)]
pub struct Channels {
    pub webhook: Option<Webhook>,
    pub smtp: Option<Smtp>,
}

impl Channels {
    pub fn any(&self) -> bool {
        self.webhook.is_some() || self.smtp.is_some()
    }
}

/// rustls needs one process-wide crypto provider; ring is ours. Anything
/// in the process that makes TLS clients (the courier, tests) calls this first.
pub fn install_tls() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

pub fn signature(secret: &str, body: &[u8]) -> String {
    // HMAC takes keys of any length.
    let mut mac =
        <Hmac<Sm3> as KeyInit>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(body);
    format!("hmac-sm3={}", data_encoding::HEXLOWER.encode(&mac.finalize().into_bytes()))
}

pub fn spawn(state: AppState, mut stop: watch::Receiver<bool>) -> tokio::task::JoinHandle<()> {
    // Only what is told from now on goes out; a newly configured channel
    // does not flood its recipients with the past.
    let since = state.now().as_millisecond();
    tokio::spawn(async move {
        loop {
            match round(&state, since).await {
                Ok(n) if n > 0 => continue,
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "the courier could not reach the store"),
            }
            tokio::select! {
                _ = tokio::time::sleep(POLL) => {}
                _ = stop.changed() => return,
            }
        }
    })
}

/// Sends what is due; returns how many it handled.
async fn round(state: &AppState, since: i64) -> anyhow::Result<usize> {
    let now = state.now().as_millisecond();
    let due = state.store.outbox(since, now, 50).await?;
    for out in &due {
        let result = deliver(&state.channels, out).await;
        let mut tx = state.store.begin().await?;
        match result {
            Ok(()) => tx.mark_delivered(out.notification.id, state.now().as_millisecond()).await?,
            Err(e) => {
                let attempts = out.attempts + 1;
                // 2 s, 4 s, 8 s … about 34 minutes at the last attempt.
                let retry =
                    (attempts < MAX_ATTEMPTS).then(|| now + 2_000 * (1i64 << (attempts - 1).clamp(0, 10)));
                tracing::warn!(notification = out.notification.id, attempts, error = %e, "delivery failed");
                tx.delivery_failed(out.notification.id, &e.to_string(), retry).await?;
            }
        }
        tx.commit().await?;
    }
    Ok(due.len())
}

async fn deliver(channels: &Channels, out: &Outgoing) -> anyhow::Result<()> {
    let n = &out.notification;
    if let Some(hook) = &channels.webhook {
        let body = serde_json::to_vec(&serde_json::json!({
            "id": n.id,
            "kind": n.kind,
            "title": n.title,
            "body": n.body,
            "link": n.link,
            "user": out.username,
            "created_at": n.created_at.to_string(),
        }))?;
        let mut req = hook
            .client
            .post(&hook.url)
            .header("content-type", "application/json")
            .header("idempotency-key", format!("notification-{}", n.id));
        if let Some(secret) = &hook.secret {
            req = req.header("x-yunzhi-signature", signature(secret, &body));
        }
        let resp = req.body(body).send().await?;
        if !resp.status().is_success() {
            anyhow::bail!("the webhook answered {}", resp.status());
        }
    }
    if let (Some(smtp), Some(to)) = (&channels.smtp, &out.email) {
        let to: Mailbox = to.parse().map_err(|e| anyhow::anyhow!("{to} is not an address: {e}"))?;
        let text = match &n.link {
            Some(link) => format!("{}\n\n{}\n", n.body, link),
            None => format!("{}\n", n.body),
        };
        let mail = Message::builder().from(smtp.from.clone()).to(to).subject(&n.title).body(text)?;
        smtp.transport.send(mail).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_webhook_signature_is_an_hmac_sm3_of_the_body() {
        let a = signature("s3cret", b"{}");
        assert!(a.starts_with("hmac-sm3=") && a.len() == 9 + 64);
        assert_ne!(a, signature("other", b"{}"));
        assert_ne!(a, signature("s3cret", b"{ }"));
    }
}
