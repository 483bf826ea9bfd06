//! `PORTCULLIS_URL=http://localhost:8080 PORT=3000 cargo run -p notes-service`

use portcullis_axum::Verifier;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let portcullis =
        std::env::var("PORTCULLIS_URL").unwrap_or_else(|_| "http://localhost:8080".into());
    let port = std::env::var("PORT").unwrap_or_else(|_| "3000".into());
    let verifier = Verifier::builder().discover(&portcullis).await?.start()?;
    let listener = tokio::net::TcpListener::bind(format!("127.0.0.1:{port}")).await?;
    println!("notes-service on http://127.0.0.1:{port}, trusting {portcullis}");
    axum::serve(listener, notes_service::router(verifier)).await?;
    Ok(())
}
