//! The grasp-line protocol (`devices/PROTOCOL.md`): the pure [`codec`], the host [`driver`] and a
//! simulated controller ([`sim`]) with fault injection, the arm of the demo, tests and HIL tier 1.

pub mod codec;
pub mod driver;
pub mod sim;

pub use driver::{LineArm, LineTiming};
