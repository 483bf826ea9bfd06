//! Tokens verified by an independent implementation in another language:
//! PyJWT (PyPI, in the CI venv) with its JWKS client, for every asymmetric
//! algorithm Portcullis signs with.

use serde_json::Value;

use crate::helpers::{TestApp, Tokens};

const SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/interop/verify_with_pyjwt.py"
);

async fn pyjwt(python: &str, jwks_url: String, token: String) -> (bool, String) {
    let python = python.to_owned();
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(python)
            .arg(SCRIPT)
            .arg(jwks_url)
            .arg(token)
            .output()
            .expect("run python")
    })
    .await
    .expect("join");
    (
        output.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    )
}

#[tokio::test]
async fn pyjwt_verifies_portcullis_tokens_with_the_jwks() {
    let Some(python) =
        crate::helpers::tool_from_env("PORTCULLIS_TEST_PYTHON", "a Python with PyJWT")
    else {
        return;
    };
    for algorithm in ["EdDSA", "ES256", "RS256"] {
        let app = TestApp::spawn_with(&[("JWT_ALGORITHM", algorithm)]).await;
        let (email, body) = app.new_user().await;
        let tokens = Tokens::of(&body["tokens"]);
        let jwks = app.url("/.well-known/jwks.json");
        let (ok, out) = pyjwt(&python, jwks.clone(), tokens.access.clone()).await;
        assert!(ok, "{algorithm}: {out}");
        let claims: Value = serde_json::from_str(out.trim()).expect("claims");
        assert_eq!(claims["email"], email.as_str(), "{algorithm}");
        assert_eq!(claims["sub"], body["user"]["id"], "{algorithm}");
        // And it is not fooled either: one changed signature byte is refused.
        let mut tampered = tokens.access.clone().into_bytes();
        let last = tampered.len() - 2;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered).expect("ascii");
        let (ok, out) = pyjwt(&python, jwks, tampered).await;
        assert!(!ok && out.contains("refused"), "{algorithm}: {out}");
    }
}
