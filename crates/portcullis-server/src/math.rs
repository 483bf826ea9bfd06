//! The five C math functions the server calls, defined here in pure Rust
//! (the `libm` crate: musl's, which like glibc's are ARM's optimized
//! routines for these) so that the system's `libm.so` is never loaded.
//!
//! Loading it was the biggest piece of idle memory Go's binary does not
//! have: the dynamic loader runs the 21 IFUNC resolvers libm relocates for
//! itself, spread over its 460 KiB of code, and the kernel maps 64 KiB
//! around each fault: 0.6 MB of libm resident in an idle server (308 KiB
//! of code, 296 KiB of tables and symbols) for five functions
//! (BENCHMARKS.md). Callers: tokio's scheduler
//! statistics (`pow`), the Prometheus histograms' sketches (`exp`, `log1p`,
//! `log2`) and SQLite's FTS5 ranking (`log`). A definition in the binary
//! wins over the shared library's, and the linker (`--as-needed`) then
//! leaves libm out. glibc only: elsewhere the system's own are fine.
//!
//! Exporting an unmangled symbol is what the `unsafe_code` lint flags: two
//! definitions of one name would clash at link time. These are the only
//! ones, with the C signatures, and they call nothing but `libm`.
#![cfg(all(target_os = "linux", target_env = "gnu"))]
#![allow(unsafe_code)]

#[unsafe(no_mangle)]
pub extern "C" fn exp(x: f64) -> f64 {
    libm::exp(x)
}

#[unsafe(no_mangle)]
pub extern "C" fn log(x: f64) -> f64 {
    libm::log(x)
}

#[unsafe(no_mangle)]
pub extern "C" fn log1p(x: f64) -> f64 {
    libm::log1p(x)
}

#[unsafe(no_mangle)]
pub extern "C" fn log2(x: f64) -> f64 {
    libm::log2(x)
}

#[unsafe(no_mangle)]
pub extern "C" fn pow(x: f64, y: f64) -> f64 {
    libm::pow(x, y)
}

#[cfg(test)]
mod tests {
    /// `f64`'s methods compile to calls of these symbols: in this process
    /// they are the functions above, and must agree with the exact values.
    #[test]
    fn the_standard_float_methods_get_the_right_answers() {
        let close = |a: f64, b: f64| (a - b).abs() <= 2.0 * f64::EPSILON * b.abs().max(1.0);
        let x = std::hint::black_box(2.0_f64);
        assert!(close(x.exp(), std::f64::consts::E * std::f64::consts::E));
        assert!(close(x.ln(), std::f64::consts::LN_2));
        assert!(close((x - 1.0).ln_1p(), std::f64::consts::LN_2));
        assert!(close(x.log2(), 1.0));
        assert!(close(x.powf(0.5), std::f64::consts::SQRT_2));
        assert!(close(x.powf(10.0), 1024.0));
        assert!(std::hint::black_box(-1.0_f64).ln().is_nan());
        assert_eq!(std::hint::black_box(0.0_f64).ln(), f64::NEG_INFINITY);
    }

    /// This process links the server's code as the binary does: a new
    /// caller of another C math function (a dependency's `sin`, say) brings
    /// libm.so back, and its 0.6 MB with it. Define that one above too.
    #[test]
    fn libm_is_not_loaded() {
        let maps = std::fs::read_to_string("/proc/self/maps").expect("/proc/self/maps");
        assert!(
            !maps.contains("/libm.so"),
            "libm.so is mapped: some code calls a libm function math.rs does not define"
        );
    }
}
