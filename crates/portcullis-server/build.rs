//! Release builds of the server on x86_64 Linux link the functions that
//! start-up runs next to each other (`link-order.txt`, written by
//! `bench/link-order.sh`): the kernel maps a binary's code 64 KiB around
//! each page fault, so start-up code spread over the whole text kept most
//! of it resident in an idle server (20 MB idle against 13 MB packed).
//!
//! Only where rustc links with lld by default (x86_64-unknown-linux-gnu
//! since Rust 1.90) and no other linker is configured: the flag is lld's.
//! A list gone stale (other dependency versions; some names also carry a
//! hash of the checkout's path) still links, just without all of the gain.
//! `PORTCULLIS_LINK_ORDER=0` builds without it, for comparison.

use std::env;
use std::path::Path;

fn main() {
    println!("cargo:rerun-if-changed=link-order.txt");
    println!("cargo:rerun-if-env-changed=PORTCULLIS_LINK_ORDER");
    let var = |name: &str| env::var(name).unwrap_or_default();
    let linker_configured =
        !var("RUSTC_LINKER").is_empty() || var("CARGO_ENCODED_RUSTFLAGS").contains("linker");
    let wanted = var("TARGET") == "x86_64-unknown-linux-gnu"
        && var("PROFILE") == "release"
        && var("PORTCULLIS_LINK_ORDER") != "0"
        && !linker_configured;
    let list = Path::new(&var("CARGO_MANIFEST_DIR")).join("link-order.txt");
    if wanted && list.is_file() {
        println!(
            "cargo:rustc-link-arg-bin=portcullis=-Wl,--symbol-ordering-file={}",
            list.display()
        );
        println!("cargo:rustc-link-arg-bin=portcullis=-Wl,--no-warn-symbol-ordering");
    }
}
