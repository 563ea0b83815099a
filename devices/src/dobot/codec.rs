//! The Dobot Magician packet codec (pure).
//!
//! Packet: `AA AA len id ctrl params… checksum`, `len` = 2 + params, checksum = two's complement of
//! the byte sum of id, ctrl and params. `ctrl` bit 0 = write, bit 1 = queued. Queued commands are
//! answered with their 64-bit queue index; completion is polled with GET_QUEUED_CMD_CURRENT_INDEX.

/// Read the current pose (x, y, z, r and the joint angles).
pub const GET_POSE: u8 = 10;
/// Go to the home pose (queued).
pub const SET_HOME_CMD: u8 = 31;
/// Suction cup on/off.
pub const END_EFFECTOR_SUCTION_CUP: u8 = 62;
/// Gripper: enable byte, then grip byte (1 closes).
pub const END_EFFECTOR_GRIPPER: u8 = 63;
/// Joint-space PTP speeds.
pub const PTP_JOINT_PARAMS: u8 = 80;
/// Cartesian PTP speeds.
pub const PTP_COORDINATE_PARAMS: u8 = 81;
/// Jump (lift) height of PTP jumps.
pub const PTP_JUMP_PARAMS: u8 = 82;
/// Common PTP speed and acceleration ratios.
pub const PTP_COMMON_PARAMS: u8 = 83;
/// A PTP move: mode byte, then x, y, z, r as f32.
pub const SET_PTP_CMD: u8 = 84;
/// Start executing the command queue.
pub const QUEUED_CMD_START_EXEC: u8 = 240;
/// Stop executing the queue after the current command.
pub const QUEUED_CMD_STOP_EXEC: u8 = 241;
/// Stop executing the queue now.
pub const QUEUED_CMD_FORCE_STOP_EXEC: u8 = 242;
/// Empty the command queue.
pub const QUEUED_CMD_CLEAR: u8 = 245;
/// Index of the last queued command executed.
pub const GET_QUEUED_CMD_CURRENT_INDEX: u8 = 246;
/// PTP mode 2: linear move to a Cartesian point (MOVL_XYZ).
pub const PTP_MOVL_XYZ: u8 = 2;
/// `ctrl` bit 0: a write (set) rather than a read.
pub const CTRL_WRITE: u8 = 0x01;
/// `ctrl` bit 1: queued rather than immediate.
pub const CTRL_QUEUED: u8 = 0x02;
/// Longest `len` byte of any Magician message (the largest, GET_POSE's reply, has 2 + 32).
pub const MAX_LEN: u8 = 64;

/// One Magician message (request or reply).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    /// Command id.
    pub id: u8,
    /// [`CTRL_WRITE`] and [`CTRL_QUEUED`] bits.
    pub ctrl: u8,
    /// Parameters, little-endian.
    pub params: Vec<u8>,
}

/// A damaged packet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PacketError {
    /// The checksum byte does not match.
    #[error("bad checksum 0x{got:02X} (expected 0x{want:02X}) in packet id {id}")]
    Checksum {
        /// Command id.
        id: u8,
        /// Checksum received.
        got: u8,
        /// Checksum computed.
        want: u8,
    },
    /// The length byte is impossible.
    #[error("length byte {0} is below 2")]
    Length(u8),
}

/// Two's complement of the byte sum of id, ctrl and params.
pub fn checksum(id: u8, ctrl: u8, params: &[u8]) -> u8 {
    let sum = params.iter().fold(id.wrapping_add(ctrl), |a, b| a.wrapping_add(*b));
    sum.wrapping_neg()
}

/// The bytes of a packet, header and checksum included.
pub fn encode(f: &Packet) -> Vec<u8> {
    let mut out = vec![0xAA, 0xAA, (2 + f.params.len()) as u8, f.id, f.ctrl];
    out.extend_from_slice(&f.params);
    out.push(checksum(f.id, f.ctrl, &f.params));
    out
}

/// Extracts the next packet from a byte buffer, dropping garbage before the header. Returns `None`
/// when more bytes are needed; `Some(Err)` for a damaged packet (its bytes are consumed).
pub fn take_packet(buf: &mut Vec<u8>) -> Option<Result<Packet, PacketError>> {
    loop {
        let start = buf.windows(2).position(|w| w == [0xAA, 0xAA])?;
        buf.drain(..start);
        if buf.len() < 3 {
            return None;
        }
        let len = buf[2];
        if !(2..=MAX_LEN).contains(&len) {
            // Not a header (e.g. the second AA of garbage before the real one): resync one byte on.
            buf.drain(..1);
            if len < 2 {
                return Some(Err(PacketError::Length(len)));
            }
            continue;
        }
        let total = 3 + len as usize + 1;
        if buf.len() < total {
            return None;
        }
        let (id, ctrl, params) = (buf[3], buf[4], buf[5..total - 1].to_vec());
        let (got, want) = (buf[total - 1], checksum(id, ctrl, &params));
        if got != want {
            // Resync one byte on: a damaged packet must not swallow the next one's header.
            buf.drain(..1);
            return Some(Err(PacketError::Checksum { id, got, want }));
        }
        buf.drain(..total);
        return Some(Ok(Packet { id, ctrl, params }));
    }
}

pub(crate) fn f32s(params: &[u8]) -> Vec<f32> {
    params.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
}
