//! A small notes service that knows nothing of passwords or sessions:
//! Portcullis signs users in, `portcullis-axum` tells this service who is
//! asking. Notes live in memory, per user.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use portcullis_axum::{AuthLayer, Claims, RequireRole, Verifier};
use serde::{Deserialize, Serialize};

portcullis_axum::role!(Admin = "admin");

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Note {
    pub id: usize,
    pub text: String,
}

#[derive(Debug, Deserialize)]
pub struct NewNote {
    pub text: String,
}

/// Notes by user id (`sub`).
type Notes = Arc<Mutex<HashMap<String, Vec<Note>>>>;

/// The whole service: every route behind the auth layer.
pub fn router(verifier: Verifier) -> Router {
    Router::new()
        .route("/notes", get(list).post(add))
        .route("/admin/stats", get(stats))
        .with_state(Notes::default())
        .layer(AuthLayer::new(verifier))
}

async fn list(State(notes): State<Notes>, user: Claims) -> Json<Vec<Note>> {
    let notes = notes.lock().unwrap_or_else(|p| p.into_inner());
    Json(notes.get(&user.sub).cloned().unwrap_or_default())
}

async fn add(
    State(notes): State<Notes>,
    user: Claims,
    Json(new): Json<NewNote>,
) -> (StatusCode, Json<Note>) {
    let mut notes = notes.lock().unwrap_or_else(|p| p.into_inner());
    let mine = notes.entry(user.sub.clone()).or_default();
    let note = Note {
        id: mine.len() + 1,
        text: new.text,
    };
    mine.push(note.clone());
    (StatusCode::CREATED, Json(note))
}

#[derive(Debug, Serialize)]
pub struct Stats {
    pub users: usize,
    pub notes: usize,
}

async fn stats(State(notes): State<Notes>, _: RequireRole<Admin>) -> Json<Stats> {
    let notes = notes.lock().unwrap_or_else(|p| p.into_inner());
    Json(Stats {
        users: notes.len(),
        notes: notes.values().map(Vec::len).sum(),
    })
}
