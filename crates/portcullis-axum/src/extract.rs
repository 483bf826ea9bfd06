//! Extractors for handlers behind [`crate::AuthLayer`].

use std::marker::PhantomData;
use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use crate::error::Rejection;

/// The verified claims of the request's token. Behind [`crate::AuthLayer`]
/// only; elsewhere it refuses (`401`), failing closed.
#[derive(Debug, Clone)]
pub struct Claims(pub Arc<portcullis_token::Claims>);

impl std::ops::Deref for Claims {
    type Target = portcullis_token::Claims;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Claims {
    type Rejection = Rejection;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Arc<portcullis_token::Claims>>()
            .cloned()
            .map(Claims)
            .ok_or(Rejection::MissingToken)
    }
}

/// A role name for [`RequireRole`]; define one with [`crate::role!`].
pub trait Role {
    const NAME: &'static str;
}

/// The claims, if the token carries role `R` (else `403 forbidden`).
#[derive(Debug, Clone)]
pub struct RequireRole<R: Role>(pub Arc<portcullis_token::Claims>, PhantomData<R>);

impl<R: Role> std::ops::Deref for RequireRole<R> {
    type Target = portcullis_token::Claims;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl<R: Role, S: Send + Sync> FromRequestParts<S> for RequireRole<R> {
    type Rejection = Rejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Claims(claims) = Claims::from_request_parts(parts, state).await?;
        if !claims.has_role(R::NAME) {
            return Err(Rejection::Forbidden(R::NAME));
        }
        Ok(Self(claims, PhantomData))
    }
}

/// Declares a [`Role`]: `portcullis_axum::role!(Admin = "admin");` then
/// `RequireRole<Admin>` in a handler's arguments.
#[macro_export]
macro_rules! role {
    ($name:ident = $value:literal) => {
        #[derive(Debug, Clone, Copy)]
        pub struct $name;

        impl $crate::Role for $name {
            const NAME: &'static str = $value;
        }
    };
}
