/work/main/probe/no-std/target/release/deps/cfg_if-5dd68e0bf2a1e291.d: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/cfg-if-1.0.5/src/lib.rs

/work/main/probe/no-std/target/release/deps/libcfg_if-5dd68e0bf2a1e291.rlib: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/cfg-if-1.0.5/src/lib.rs

/work/main/probe/no-std/target/release/deps/libcfg_if-5dd68e0bf2a1e291.rmeta: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/cfg-if-1.0.5/src/lib.rs

/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/cfg-if-1.0.5/src/lib.rs:
