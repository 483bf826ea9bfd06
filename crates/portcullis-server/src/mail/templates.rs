//! Mail texts: built in, each overridable by an operator with files
//! `<kind>.subject`, `<kind>.txt` and `<kind>.html` in `MAIL_TEMPLATES_DIR`.
//! Placeholders: `{{name}}`, `{{email}}`, `{{link}}`, `{{device}}`; values
//! are HTML-escaped in HTML bodies.

use std::path::PathBuf;

use super::Mail;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    PasswordReset,
    VerifyEmail,
    ConfirmEmailChange,
    EmailChangedNotice,
    PasswordChangedNotice,
    NewSignInNotice,
}

impl Kind {
    fn file_stem(self) -> &'static str {
        match self {
            Self::PasswordReset => "password_reset",
            Self::VerifyEmail => "verify_email",
            Self::ConfirmEmailChange => "confirm_email_change",
            Self::EmailChangedNotice => "email_changed",
            Self::PasswordChangedNotice => "password_changed",
            Self::NewSignInNotice => "new_sign_in",
        }
    }

    /// (subject, text) built in; the HTML body wraps the text.
    fn default_text(self) -> (&'static str, &'static str) {
        match self {
            Self::PasswordReset => (
                "Reset your password",
                "Hello {{name}},\n\nsomeone asked to reset the password of {{email}}. To choose a new one, open this link within an hour:\n\n{{link}}\n\nIf it was not you, ignore this mail: your password stays as it is.\n",
            ),
            Self::VerifyEmail => (
                "Confirm your e-mail address",
                "Hello {{name}},\n\nplease confirm that {{email}} is your address by opening this link:\n\n{{link}}\n",
            ),
            Self::ConfirmEmailChange => (
                "Confirm your new e-mail address",
                "Hello {{name}},\n\nto make {{email}} the address of your account, open this link within a day:\n\n{{link}}\n\nIf you did not ask for this, ignore this mail.\n",
            ),
            Self::EmailChangedNotice => (
                "Your e-mail address is being changed",
                "Hello {{name}},\n\nsomeone signed in to your account asked to change its address to {{email}}. If that was not you, reset your password now.\n",
            ),
            Self::PasswordChangedNotice => (
                "Your password was changed",
                "Hello {{name}},\n\nthe password of {{email}} was just changed. If that was not you, reset your password now: {{link}}\n",
            ),
            Self::NewSignInNotice => (
                "New sign-in to your account",
                "Hello {{name}},\n\nyour account {{email}} was just signed in to from a new device ({{device}}). If that was not you, change your password.\n",
            ),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct Templates {
    dir: Option<PathBuf>,
}

fn escape_html(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

fn fill(template: &str, values: &[(&str, &str)], html: bool) -> String {
    values
        .iter()
        .fold(template.to_owned(), |text, (key, value)| {
            let value = if html {
                escape_html(value)
            } else {
                (*value).to_owned()
            };
            text.replace(&format!("{{{{{key}}}}}"), &value)
        })
}

impl Templates {
    pub fn new(dir: Option<PathBuf>) -> Self {
        Self { dir }
    }

    fn overridden(&self, kind: Kind, extension: &str) -> Option<String> {
        let path = self
            .dir
            .as_ref()?
            .join(format!("{}.{extension}", kind.file_stem()));
        std::fs::read_to_string(path).ok()
    }

    /// The mail of `kind` for `to`, with `values` filled in.
    pub fn render(&self, kind: Kind, to: &str, values: &[(&str, &str)]) -> Mail {
        let (subject, text) = kind.default_text();
        let subject = self
            .overridden(kind, "subject")
            .unwrap_or_else(|| subject.to_owned());
        let text_template = self
            .overridden(kind, "txt")
            .unwrap_or_else(|| text.to_owned());
        let html = match self.overridden(kind, "html") {
            Some(template) => fill(&template, values, true),
            None => format!(
                "<!doctype html><html><body><pre style=\"font-family:sans-serif;white-space:pre-wrap\">{}</pre></body></html>",
                fill(text, values, true)
            ),
        };
        Mail {
            to: to.to_owned(),
            subject: fill(subject.trim(), values, false),
            text: fill(&text_template, values, false),
            html,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_filled_and_escaped_in_html() {
        let mail = Templates::default().render(
            Kind::PasswordReset,
            "a@example.com",
            &[
                ("name", "<Ada>"),
                ("email", "a@example.com"),
                ("link", "https://x/account#reset=t"),
            ],
        );
        assert!(mail.text.contains("Hello <Ada>,"));
        assert!(mail.html.contains("Hello &lt;Ada&gt;,"));
        assert!(mail.text.contains("https://x/account#reset=t"));
        assert!(!mail.text.contains("{{"));
    }

    #[test]
    fn an_operator_can_override_a_template() {
        let dir =
            std::env::temp_dir().join(format!("portcullis-templates-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("dir");
        std::fs::write(dir.join("verify_email.txt"), "Bonjour {{name}} : {{link}}").expect("write");
        std::fs::write(dir.join("verify_email.subject"), "Vérifiez votre adresse\n")
            .expect("write");
        let mail = Templates::new(Some(dir.clone())).render(
            Kind::VerifyEmail,
            "a@example.com",
            &[("name", "Ada"), ("link", "L")],
        );
        assert_eq!(mail.text, "Bonjour Ada : L");
        assert_eq!(mail.subject, "Vérifiez votre adresse");
        std::fs::remove_dir_all(dir).expect("cleanup");
    }
}
