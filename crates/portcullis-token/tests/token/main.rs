//! Black-box tests of `portcullis-token` through its public API only.

mod attacks;
mod interop;
mod keys;
mod properties;
mod rfc_vectors;
mod support;
