//! The grasp-line arm protocol codec (specified in `devices/PROTOCOL.md`): pure functions from
//! messages to lines and back, shared by the host driver ([`super::LineArm`]) and the simulated
//! controller ([`super::sim`]) so both ends cannot drift apart.
//!
//! A line is `<seq> <VERB>[ <arg>]* *<CRC>\n`, ASCII, at most [`MAX_LINE`] bytes; CRC is
//! CRC-16/CCITT-FALSE (catalogue name CRC-16/IBM-3740) over every byte before ` *`, as 4 upper-case
//! hex digits.

use std::fmt::Write as _;

/// Longest line either side may send, newline included; longer input is a framing error.
pub const MAX_LINE: usize = 120;
/// Protocol version sent in HELLO; a controller answers `NAK VERSION` to any other.
pub const PROTOCOL_VERSION: u32 = 1;

const CRC16: crc::Crc<u16> = crc::Crc::<u16>::new(&crc::CRC_16_IBM_3740);

/// The checksum of a line body (the bytes before ` *`).
pub fn crc16(body: &[u8]) -> u16 {
    CRC16.checksum(body)
}

/// Host → controller commands. Lengths in mm, angles in degrees, in the robot base frame.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Start a session: the controller halts, clears its queue and accepts any next sequence.
    Hello {
        /// Protocol version the host speaks.
        version: u32,
    },
    /// Queued Cartesian move of the tool centre point; DONE when reached.
    Move {
        /// Forward, mm.
        x: f64,
        /// Left, mm.
        y: f64,
        /// Up, mm.
        z: f64,
        /// Yaw, degrees.
        yaw: f64,
    },
    /// Queued gripper opening (0 = closed); DONE when reached.
    Grip {
        /// Gripper opening, mm (0 closes).
        opening: f64,
    },
    /// Queued move to the controller's home pose; DONE when reached.
    Home,
    /// Stream mode: replace the servo target (not queued, no DONE).
    Track {
        /// Forward, mm.
        x: f64,
        /// Left, mm.
        y: f64,
        /// Up, mm.
        z: f64,
        /// Yaw, degrees.
        yaw: f64,
        /// Gripper opening, mm.
        opening: f64,
    },
    /// Halt now and clear the queue; bypasses the queue.
    Stop,
    /// Heartbeat; the controller halts when none arrives within its heartbeat timeout.
    Ping,
    /// Position query, answered with POS.
    Where,
}

/// Controller → host replies and events.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// Accepted (queued, or done at once).
    Ack,
    /// Refused, with the reason.
    Nak(NakCode),
    /// The queued motion of command `seq` has finished.
    Done,
    /// Answer to [`Command::Where`].
    Pos {
        /// Forward, mm.
        x: f64,
        /// Left, mm.
        y: f64,
        /// Up, mm.
        z: f64,
        /// Yaw, degrees.
        yaw: f64,
        /// Gripper opening, mm.
        opening: f64,
    },
}

/// Why a controller refused a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NakCode {
    /// The line's CRC did not match (the sequence number may itself be damaged).
    Crc,
    /// Unknown verb or malformed arguments.
    Syntax,
    /// Target outside the controller's own limits.
    Range,
    /// Motion queue full; retry later.
    Busy,
    /// No HELLO yet, or a HELLO with an unsupported version.
    Session,
}

impl NakCode {
    /// Every code, in protocol order.
    pub const ALL: [NakCode; 5] = [NakCode::Crc, NakCode::Syntax, NakCode::Range, NakCode::Busy, NakCode::Session];
    /// The code as written on the line.
    pub fn as_str(self) -> &'static str {
        match self {
            NakCode::Crc => "CRC",
            NakCode::Syntax => "SYNTAX",
            NakCode::Range => "RANGE",
            NakCode::Busy => "BUSY",
            NakCode::Session => "SESSION",
        }
    }
    /// Whether resending the same line can succeed.
    pub fn is_transient(self) -> bool {
        matches!(self, NakCode::Crc | NakCode::Busy)
    }
}

/// A malformed line, with what was wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Longer than [`MAX_LINE`] bytes.
    #[error("line is {0} bytes, longer than the protocol's {MAX_LINE}")]
    TooLong(usize),
    /// A byte outside printable ASCII.
    #[error("line is not ASCII (byte 0x{byte:02X} at offset {offset})")]
    NotAscii {
        /// The byte.
        byte: u8,
        /// Its offset in the line.
        offset: usize,
    },
    /// No ` *CRC` trailer.
    #[error("no ` *CRC` trailer")]
    NoCrc,
    /// The CRC does not match the body.
    #[error("CRC mismatch: line says {said:04X}, body gives {computed:04X}")]
    CrcMismatch {
        /// The CRC on the line.
        said: u16,
        /// The CRC of the body.
        computed: u16,
    },
    /// The sequence number is not a number.
    #[error("bad sequence number `{0}`")]
    BadSeq(String),
    /// A verb the protocol does not have.
    #[error("unknown verb `{0}`")]
    UnknownVerb(String),
    /// The wrong number of arguments.
    #[error("`{verb}` takes {expected} argument(s), got {got}")]
    Arity {
        /// The verb.
        verb: String,
        /// Arguments it takes.
        expected: usize,
        /// Arguments given.
        got: usize,
    },
    /// An argument that is not a finite number.
    #[error("argument {index} of `{verb}` is not a finite number: `{text}`")]
    BadNumber {
        /// The verb.
        verb: String,
        /// Which argument (0-based).
        index: usize,
        /// Its text.
        text: String,
    },
}

fn push_num(out: &mut String, v: f64) {
    // Two decimals: 10 µm / 0.01° is below any hobby or industrial arm's repeatability.
    let _ = write!(out, " {:.2}", v);
}

fn finish(mut body: String) -> String {
    let crc = crc16(body.as_bytes());
    let _ = writeln!(body, " *{crc:04X}");
    body
}

/// Encodes one command line (newline included). Non-finite numbers must be refused before this
/// (the safety filter does); they would be rejected by the controller as `SYNTAX`.
pub fn encode_command(seq: u32, cmd: &Command) -> String {
    let mut s = format!("{seq} ");
    match cmd {
        Command::Hello { version } => {
            let _ = write!(s, "HELLO {version}");
        }
        Command::Move { x, y, z, yaw } => {
            s.push_str("MOVE");
            for v in [x, y, z, yaw] {
                push_num(&mut s, *v);
            }
        }
        Command::Grip { opening } => {
            s.push_str("GRIP");
            push_num(&mut s, *opening);
        }
        Command::Home => s.push_str("HOME"),
        Command::Track { x, y, z, yaw, opening } => {
            s.push_str("TRACK");
            for v in [x, y, z, yaw, opening] {
                push_num(&mut s, *v);
            }
        }
        Command::Stop => s.push_str("STOP"),
        Command::Ping => s.push_str("PING"),
        Command::Where => s.push_str("WHERE"),
    }
    finish(s)
}

/// The sequence number a line starts with, if it starts with one (for refusing a line whose CRC
/// holds but whose verb or arguments do not, under its own number).
pub fn leading_seq(line: &[u8]) -> Option<u32> {
    let end = line.iter().position(|b| *b == b' ')?;
    std::str::from_utf8(&line[..end]).ok()?.parse().ok()
}

/// Encodes one reply line (newline included).
pub fn encode_reply(seq: u32, reply: &Reply) -> String {
    let mut s = format!("{seq} ");
    match reply {
        Reply::Ack => s.push_str("ACK"),
        Reply::Nak(code) => {
            s.push_str("NAK ");
            s.push_str(code.as_str());
        }
        Reply::Done => s.push_str("DONE"),
        Reply::Pos { x, y, z, yaw, opening } => {
            s.push_str("POS");
            for v in [x, y, z, yaw, opening] {
                push_num(&mut s, *v);
            }
        }
    }
    finish(s)
}

/// Checks framing and CRC; returns the sequence number, the verb and its arguments.
fn split_line(line: &[u8]) -> Result<(u32, &str, Vec<&str>), ParseError> {
    if line.len() > MAX_LINE {
        return Err(ParseError::TooLong(line.len()));
    }
    if let Some(offset) =
        line.iter().position(|b| !b.is_ascii() || (b.is_ascii_control() && *b != b'\n' && *b != b'\r'))
    {
        return Err(ParseError::NotAscii { byte: line[offset], offset });
    }
    let text = std::str::from_utf8(line).expect("checked ASCII").trim_end_matches(['\n', '\r']);
    let star = text.rfind(" *").ok_or(ParseError::NoCrc)?;
    let (body, crc_text) = (&text[..star], &text[star + 2..]);
    if crc_text.len() != 4 {
        return Err(ParseError::NoCrc);
    }
    let said = u16::from_str_radix(crc_text, 16).map_err(|_| ParseError::NoCrc)?;
    let computed = crc16(body.as_bytes());
    if said != computed {
        return Err(ParseError::CrcMismatch { said, computed });
    }
    let mut words = body.split(' ');
    let seq_text = words.next().unwrap_or("");
    let seq = seq_text.parse::<u32>().map_err(|_| ParseError::BadSeq(seq_text.to_string()))?;
    let verb = words.next().unwrap_or("");
    Ok((seq, verb, words.collect()))
}

fn numbers<const N: usize>(verb: &str, args: &[&str]) -> Result<[f64; N], ParseError> {
    if args.len() != N {
        return Err(ParseError::Arity { verb: verb.to_string(), expected: N, got: args.len() });
    }
    let mut out = [0.0; N];
    for (i, a) in args.iter().enumerate() {
        out[i] = a.parse::<f64>().ok().filter(|v| v.is_finite()).ok_or_else(|| ParseError::BadNumber {
            verb: verb.to_string(),
            index: i + 1,
            text: a.to_string(),
        })?;
    }
    Ok(out)
}

/// Parses a command line (controller side).
pub fn parse_command(line: &[u8]) -> Result<(u32, Command), ParseError> {
    let (seq, verb, args) = split_line(line)?;
    let cmd = match verb {
        "HELLO" => {
            if args.len() != 1 {
                return Err(ParseError::Arity { verb: verb.into(), expected: 1, got: args.len() });
            }
            let version = args[0].parse().map_err(|_| ParseError::BadNumber {
                verb: verb.into(),
                index: 1,
                text: args[0].into(),
            })?;
            Command::Hello { version }
        }
        "MOVE" => {
            let [x, y, z, yaw] = numbers::<4>(verb, &args)?;
            Command::Move { x, y, z, yaw }
        }
        "GRIP" => {
            let [opening] = numbers::<1>(verb, &args)?;
            Command::Grip { opening }
        }
        "TRACK" => {
            let [x, y, z, yaw, opening] = numbers::<5>(verb, &args)?;
            Command::Track { x, y, z, yaw, opening }
        }
        "HOME" | "STOP" | "PING" | "WHERE" => {
            numbers::<0>(verb, &args)?;
            match verb {
                "HOME" => Command::Home,
                "STOP" => Command::Stop,
                "PING" => Command::Ping,
                _ => Command::Where,
            }
        }
        other => return Err(ParseError::UnknownVerb(other.to_string())),
    };
    Ok((seq, cmd))
}

/// Parses a reply line (host side).
pub fn parse_reply(line: &[u8]) -> Result<(u32, Reply), ParseError> {
    let (seq, verb, args) = split_line(line)?;
    let reply = match verb {
        "ACK" => {
            numbers::<0>(verb, &args)?;
            Reply::Ack
        }
        "DONE" => {
            numbers::<0>(verb, &args)?;
            Reply::Done
        }
        "NAK" => {
            if args.len() != 1 {
                return Err(ParseError::Arity { verb: verb.into(), expected: 1, got: args.len() });
            }
            let code = NakCode::ALL
                .into_iter()
                .find(|c| c.as_str() == args[0])
                .ok_or_else(|| ParseError::UnknownVerb(format!("NAK {}", args[0])))?;
            Reply::Nak(code)
        }
        "POS" => {
            let [x, y, z, yaw, opening] = numbers::<5>(verb, &args)?;
            Reply::Pos { x, y, z, yaw, opening }
        }
        other => return Err(ParseError::UnknownVerb(other.to_string())),
    };
    Ok((seq, reply))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn crc_is_ccitt_false() {
        // The catalogue check value of CRC-16/IBM-3740 (a.k.a. CCITT-FALSE).
        assert_eq!(crc16(b"123456789"), 0x29B1);
    }

    #[test]
    fn known_lines() {
        let line = encode_command(7, &Command::Move { x: 250.0, y: -12.5, z: 40.0, yaw: 90.0 });
        assert!(line.starts_with("7 MOVE 250.00 -12.50 40.00 90.00 *"), "{line}");
        assert!(line.ends_with('\n'));
        assert_eq!(line.len(), "7 MOVE 250.00 -12.50 40.00 90.00 *XXXX\n".len());
        assert_eq!(encode_reply(3, &Reply::Nak(NakCode::Busy)), format!("3 NAK BUSY *{:04X}\n", crc16(b"3 NAK BUSY")));
        assert_eq!(parse_reply(encode_reply(9, &Reply::Done).as_bytes()).unwrap(), (9, Reply::Done));
    }

    #[test]
    fn damaged_lines_are_refused_with_the_reason() {
        let good = encode_command(12, &Command::Grip { opening: 35.0 });
        let flipped = good.replacen("35", "36", 1);
        assert!(matches!(parse_command(flipped.as_bytes()), Err(ParseError::CrcMismatch { .. })));
        assert_eq!(parse_command(b"12 GRIP 35.00\n"), Err(ParseError::NoCrc));
        let body = "12 GRIP nan";
        let nan = format!("{body} *{:04X}\n", crc16(body.as_bytes()));
        assert!(matches!(parse_command(nan.as_bytes()), Err(ParseError::BadNumber { index: 1, .. })));
        let body = "12 FLY 1";
        let unknown = format!("{body} *{:04X}\n", crc16(body.as_bytes()));
        assert_eq!(parse_command(unknown.as_bytes()), Err(ParseError::UnknownVerb("FLY".into())));
        let body = "12 MOVE 1 2 3";
        let short = format!("{body} *{:04X}\n", crc16(body.as_bytes()));
        assert_eq!(
            parse_command(short.as_bytes()),
            Err(ParseError::Arity { verb: "MOVE".into(), expected: 4, got: 3 })
        );
        assert!(matches!(parse_reply(b"1 ACK *00\xff\n"), Err(ParseError::NotAscii { byte: 0xFF, offset: 9 })));
        assert!(matches!(parse_reply(&[b'1'; 200]), Err(ParseError::TooLong(200))));
    }

    fn arb_command() -> impl Strategy<Value = Command> {
        let n = || -2000.0..2000.0f64;
        prop_oneof![
            (0u32..5).prop_map(|version| Command::Hello { version }),
            (n(), n(), n(), -180.0..180.0f64).prop_map(|(x, y, z, yaw)| Command::Move { x, y, z, yaw }),
            (0.0..200.0f64).prop_map(|opening| Command::Grip { opening }),
            (n(), n(), n(), -180.0..180.0f64, 0.0..200.0f64).prop_map(|(x, y, z, yaw, opening)| Command::Track {
                x,
                y,
                z,
                yaw,
                opening
            }),
            Just(Command::Home),
            Just(Command::Stop),
            Just(Command::Ping),
            Just(Command::Where),
        ]
    }

    fn close(a: &Command, b: &Command) -> bool {
        // Numbers travel with two decimals.
        let r = |v: f64| (v * 100.0).round();
        match (a, b) {
            (Command::Move { x, y, z, yaw }, Command::Move { x: x2, y: y2, z: z2, yaw: w2 }) => {
                [r(*x) == r(*x2), r(*y) == r(*y2), r(*z) == r(*z2), r(*yaw) == r(*w2)].iter().all(|b| *b)
            }
            (Command::Grip { opening }, Command::Grip { opening: o2 }) => (opening - o2).abs() <= 0.005 + 1e-9,
            (Command::Track { x, opening, .. }, Command::Track { x: x2, opening: o2, .. }) => {
                (x - x2).abs() <= 0.005 + 1e-9 && (opening - o2).abs() <= 0.005 + 1e-9
            }
            _ => a == b,
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 500, rng_seed: proptest::test_runner::RngSeed::Fixed(20261126), ..ProptestConfig::default() })]
        #[test]
        fn commands_round_trip(seq in any::<u32>(), cmd in arb_command()) {
            let line = encode_command(seq, &cmd);
            prop_assert!(line.len() <= MAX_LINE);
            let (s2, c2) = parse_command(line.as_bytes()).unwrap();
            prop_assert_eq!(s2, seq);
            prop_assert!(close(&cmd, &c2), "{:?} vs {:?}", cmd, c2);
            // Re-encoding the parsed command gives the same bytes: the controller can echo and log exactly.
            prop_assert_eq!(encode_command(seq, &c2), line);
        }

        #[test]
        fn any_single_byte_corruption_is_detected(seq in any::<u32>(), cmd in arb_command(), pos in any::<prop::sample::Index>(), bit in 0u8..7) {
            let line = encode_command(seq, &cmd).into_bytes();
            let body_len = line.len() - 1; // keep the newline
            let i = pos.index(body_len);
            let mut bad = line.clone();
            bad[i] ^= 1 << bit;
            if bad != line {
                // Either a framing/CRC error, or (never) a silently different command.
                match parse_command(&bad) {
                    Err(_) => {}
                    Ok((s2, c2)) => prop_assert!(s2 == seq && c2 == parse_command(&line).unwrap().1, "corruption accepted: {:?}", String::from_utf8_lossy(&bad)),
                }
            }
        }

        #[test]
        fn replies_round_trip(seq in any::<u32>(), code in prop::sample::select(NakCode::ALL.to_vec()), x in -2000.0..2000.0f64) {
            for reply in [Reply::Ack, Reply::Done, Reply::Nak(code), Reply::Pos { x, y: 1.0, z: 2.0, yaw: 3.0, opening: 4.0 }] {
                let line = encode_reply(seq, &reply);
                let (s2, r2) = parse_reply(line.as_bytes()).unwrap();
                prop_assert_eq!(s2, seq);
                prop_assert_eq!(encode_reply(seq, &r2), line);
            }
        }
    }
}
