//! Link flags so the binary finds libtorch (and libtorch_cuda) without LD_LIBRARY_PATH.

fn main() {
    // torch-sys (`links = "tch"`) exports its library dir as DEP_TCH_LIBTORCH_LIB, but only to
    // crates that depend on it directly, which is why torch-sys is in Cargo.toml.
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    if let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        println!("cargo:rustc-link-arg=-Wl,-rpath={lib}");
    }
    // Without --no-as-needed the linker drops libtorch_cuda (no symbol is referenced directly),
    // and CUDA silently disappears on GPU machines (tch-rs issue 980).
    println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
    println!("cargo:rustc-link-arg=-ltorch");
}
