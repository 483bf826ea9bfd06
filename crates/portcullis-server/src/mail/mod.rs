//! Outgoing mail: SMTP (lettre) or, without `SMTP_URL`, `.eml` files in
//! `$DATA_DIR/outbox/`. Mail leaves from a background task, so SMTP latency
//! never shows in a response's timing (which would also tell an observer
//! whether an account exists).

mod templates;

use std::path::{Path, PathBuf};

use lettre::message::header::ContentType;
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use tokio::sync::mpsc;

pub use templates::{Kind, Templates};

/// One message to send.
#[derive(Debug, Clone)]
pub struct Mail {
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
}

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("SMTP_URL: {0}")]
    SmtpUrl(String),
    #[error("MAIL_FROM: {0}")]
    From(String),
    #[error("outbox {path}: {source}")]
    Outbox {
        path: String,
        source: std::io::Error,
    },
}

enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Outbox(AsyncFileTransport<Tokio1Executor>),
}

/// Hands mail to the background sender; never waits for delivery.
#[derive(Debug, Clone)]
pub struct Mailer {
    queue: mpsc::Sender<Mail>,
}

/// How many messages may wait for the sender before new ones are dropped
/// (with a log line): a mail server outage must not grow memory forever.
const QUEUE: usize = 1024;

impl Mailer {
    /// SMTP when `smtp_url` is set, else the outbox under `data_dir`.
    pub fn start(smtp_url: Option<&str>, from: &str, data_dir: &Path) -> Result<Self, MailError> {
        let from: Mailbox = from.parse().map_err(|e| MailError::From(format!("{e}")))?;
        let transport = match smtp_url {
            Some(url) => Transport::Smtp(
                AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
                    .map_err(|e| MailError::SmtpUrl(e.to_string()))?
                    .build(),
            ),
            None => {
                let outbox: PathBuf = data_dir.join("outbox");
                std::fs::create_dir_all(&outbox).map_err(|source| MailError::Outbox {
                    path: outbox.display().to_string(),
                    source,
                })?;
                tracing::warn!(outbox = %outbox.display(), "SMTP_URL is not set: mail is written to the outbox, not sent");
                Transport::Outbox(AsyncFileTransport::new(outbox))
            }
        };
        let (queue, mut incoming) = mpsc::channel::<Mail>(QUEUE);
        tokio::spawn(async move {
            while let Some(mail) = incoming.recv().await {
                let message = match build(&from, &mail) {
                    Ok(message) => message,
                    Err(e) => {
                        tracing::error!(error = %e, "a mail could not be built");
                        continue;
                    }
                };
                let sent = match &transport {
                    Transport::Smtp(smtp) => smtp
                        .send(message)
                        .await
                        .map(|_| ())
                        .map_err(|e| e.to_string()),
                    Transport::Outbox(files) => files
                        .send(message)
                        .await
                        .map(|_| ())
                        .map_err(|e| e.to_string()),
                };
                if let Err(e) = sent {
                    tracing::warn!(error = %e, subject = %mail.subject, "sending mail failed");
                }
            }
        });
        Ok(Self { queue })
    }

    pub fn send(&self, mail: Mail) {
        if self.queue.try_send(mail).is_err() {
            tracing::warn!("the mail queue is full; a message was dropped");
        }
    }
}

fn build(from: &Mailbox, mail: &Mail) -> Result<Message, String> {
    let to: Mailbox = mail.to.parse().map_err(|e| format!("recipient: {e}"))?;
    Message::builder()
        .from(from.clone())
        .to(to)
        .subject(mail.subject.clone())
        .multipart(
            MultiPart::alternative()
                .singlepart(
                    SinglePart::builder()
                        .header(ContentType::TEXT_PLAIN)
                        .body(mail.text.clone()),
                )
                .singlepart(
                    SinglePart::builder()
                        .header(ContentType::TEXT_HTML)
                        .body(mail.html.clone()),
                ),
        )
        .map_err(|e| e.to_string())
}
