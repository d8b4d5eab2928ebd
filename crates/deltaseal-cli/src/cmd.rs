//! One module per subcommand.

pub mod apply;
pub mod diff;
pub mod inspect;
pub mod keygen;
pub mod release;
pub mod vectors;
pub mod verify;
