/work/main/probe/no-std/target/release/deps/rustc_version-804dcc7d55f42ff2.d: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/rustc_version-0.4.1/src/lib.rs

/work/main/probe/no-std/target/release/deps/librustc_version-804dcc7d55f42ff2.rlib: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/rustc_version-0.4.1/src/lib.rs

/work/main/probe/no-std/target/release/deps/librustc_version-804dcc7d55f42ff2.rmeta: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/rustc_version-0.4.1/src/lib.rs

/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/rustc_version-0.4.1/src/lib.rs:
