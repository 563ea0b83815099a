//! The Dobot Magician's binary serial protocol: the pure packet [`codec`], the host [`driver`] and
//! a simulated Magician ([`sim`]) that the public `pydobot` package drives in a test.

pub mod codec;
pub mod driver;
pub mod sim;

pub use driver::MagicianArm;
