//! Sets `cfg(lazy_pages)` for a split wasm build: `cargo leptos build --split` (or `watch
//! --split`) links the wasm with `--emit-relocs`, which its splitter needs. Lazily loaded
//! pages work only in such a build (an unsplit wasm imports a module that does not exist),
//! so a plain `cargo leptos watch` gets them as ordinary pages. Should cargo-leptos ever
//! split differently, this falls back to ordinary pages: larger, never broken.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(lazy_pages)");
    println!("cargo::rerun-if-env-changed=CARGO_ENCODED_RUSTFLAGS");
    let wasm = std::env::var("CARGO_CFG_TARGET_ARCH").is_ok_and(|arch| arch == "wasm32");
    let split = std::env::var("CARGO_ENCODED_RUSTFLAGS").is_ok_and(|flags| {
        flags
            .split('\x1f')
            .any(|flag| flag.contains("--emit-relocs"))
    });
    if wasm && split {
        println!("cargo::rustc-cfg=lazy_pages");
    }
}
