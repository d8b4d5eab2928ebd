/work/main/probe/no-std/target/release/deps/ed25519-2454235a5f653fe6.d: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/ed25519-3.0.0/src/lib.rs /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/ed25519-3.0.0/src/hex.rs /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/ed25519-3.0.0/src/../README.md

/work/main/probe/no-std/target/release/deps/libed25519-2454235a5f653fe6.rmeta: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/ed25519-3.0.0/src/lib.rs /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/ed25519-3.0.0/src/hex.rs /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/ed25519-3.0.0/src/../README.md

/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/ed25519-3.0.0/src/lib.rs:
/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/ed25519-3.0.0/src/hex.rs:
/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/ed25519-3.0.0/src/../README.md:
