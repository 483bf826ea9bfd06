//! Release builds of the server on x86_64 Linux are linked for a small idle
//! footprint:
//!
//! - the functions that start-up runs sit next to each other
//!   (`link-order.txt`, written by `bench/link-order.sh`): the kernel maps a
//!   binary's code 64 KiB around each page fault, so start-up code spread
//!   over the whole text kept most of it resident in an idle server. A
//!   list gone stale (other dependency versions, changed start-up code)
//!   still links, just without all of the gain. (The release profile's one
//!   codegen unit per crate keeps the listed names the same from build to
//!   build.)
//! - relative relocations are packed (DT_RELR): the dynamic loader reads
//!   all of `.rela.dyn` at start-up, 0.75 MB of it unpacked, and the pages
//!   stay resident. glibc understands the packed form from 2.36 on, so only
//!   where the build host's glibc does (a binary is run where it is built,
//!   or on a newer system).
//!
//! Only where rustc links with lld by default (x86_64-unknown-linux-gnu
//! since Rust 1.90) and no other linker is configured: the flags are lld's.
//! `PORTCULLIS_LINK_ORDER=0` builds without either, for comparison.

use std::env;
use std::path::Path;
use std::process::Command;

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
    if !wanted {
        return;
    }
    let link_arg = |arg: &str| println!("cargo:rustc-link-arg-bin=portcullis={arg}");
    let list = Path::new(&var("CARGO_MANIFEST_DIR")).join("link-order.txt");
    if list.is_file() {
        link_arg(&format!("-Wl,--symbol-ordering-file={}", list.display()));
        link_arg("-Wl,--no-warn-symbol-ordering");
    }
    if glibc_reads_packed_relocations() {
        link_arg("-Wl,-z,pack-relative-relocs");
    }
}

/// `getconf GNU_LIBC_VERSION` prints `glibc 2.36`; anything else (musl, no
/// getconf) keeps the classic relocations.
fn glibc_reads_packed_relocations() -> bool {
    let Ok(output) = Command::new("getconf").arg("GNU_LIBC_VERSION").output() else {
        return false;
    };
    let text = String::from_utf8_lossy(&output.stdout);
    let mut numbers = text
        .trim()
        .strip_prefix("glibc ")
        .unwrap_or_default()
        .split('.')
        .map(|part| part.parse::<u32>().unwrap_or(0));
    let version = (numbers.next().unwrap_or(0), numbers.next().unwrap_or(0));
    version >= (2, 36)
}
