//! Records the compiling rustc's version for the `machine:` line of `compare`.

fn main() {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned());
    if let Ok(out) = std::process::Command::new(rustc).arg("--version").output() {
        if out.status.success() {
            if let Ok(v) = String::from_utf8(out.stdout) {
                println!("cargo:rustc-env=SPINDLE_BENCHES_RUSTC_VERSION={}", v.trim());
            }
        }
    }
    println!("cargo:rerun-if-env-changed=RUSTC");
}
