//! Byte links to an arm controller: a serial port (a real UART, a USB CDC device or a
//! pseudo-terminal) with a timeout on every read and write. The drivers in [`crate::grasp_line`] and
//! [`crate::dobot`] speak their protocols over any [`Link`], so tests and the simulator use the same code
//! as the robot.

use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

/// A bidirectional byte stream whose reads wait at most a given time.
pub trait Link: Send {
    /// Reads what is available, waiting at most `timeout`; `Ok(0)` when nothing arrived in time.
    fn read_timeout(&mut self, buf: &mut [u8], timeout: Duration) -> io::Result<usize>;
    /// Writes all bytes, failing after the link's write timeout.
    fn write_all_bytes(&mut self, bytes: &[u8]) -> io::Result<()>;
    /// Drops unread input (stale replies after a reconnect or a timeout).
    fn discard_input(&mut self) -> io::Result<()>;
    /// The port, for logs.
    fn describe(&self) -> String;
}

/// A serial port opened through `serialport` (exclusive, raw 8N1).
pub struct SerialLink {
    port: serialport::TTYPort,
    path: String,
    write_timeout: Duration,
}

impl SerialLink {
    /// Opens `path` at `baud`, 8N1, exclusive; writes time out after `write_timeout`.
    pub fn open(path: &str, baud: u32, write_timeout: Duration) -> io::Result<Self> {
        let port = serialport::new(path, baud).timeout(write_timeout).open_native().map_err(|e| {
            io::Error::new(io::Error::from(e.clone()).kind(), format!("cannot open serial port {path}: {e}"))
        })?;
        Ok(SerialLink { port, path: path.to_string(), write_timeout })
    }

    /// A link over an already open port (a pseudo-terminal's master side).
    pub fn from_port(port: serialport::TTYPort, write_timeout: Duration) -> Self {
        use serialport::SerialPort;
        let path = port.name().unwrap_or_else(|| "<pty>".into());
        SerialLink { port, path, write_timeout }
    }
}

/// A pseudo-terminal whose other end is at `path` (for the simulator and tests).
pub fn pty_pair() -> io::Result<(serialport::TTYPort, String)> {
    use serialport::SerialPort;
    let (master, slave) = serialport::TTYPort::pair().map_err(io::Error::from)?;
    let name = slave.name().ok_or_else(|| io::Error::other("pseudo-terminal without a name"))?;
    // The slave stays usable by path after this handle closes, as long as the master lives.
    drop(slave);
    Ok((master, name))
}

impl Link for SerialLink {
    fn read_timeout(&mut self, buf: &mut [u8], timeout: Duration) -> io::Result<usize> {
        use serialport::SerialPort;
        self.port.set_timeout(timeout.max(Duration::from_millis(1))).map_err(io::Error::from)?;
        match self.port.read(buf) {
            Ok(0) => {
                Err(io::Error::new(io::ErrorKind::BrokenPipe, format!("{}: end of file (port closed)", self.path)))
            }
            Ok(n) => Ok(n),
            Err(e) if e.kind() == io::ErrorKind::TimedOut || e.kind() == io::ErrorKind::WouldBlock => Ok(0),
            // A signal (SIGTERM while waiting for DONE) interrupts the wait; the link is fine, and
            // the caller must still be able to send STOP on it.
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(0),
            Err(e) => Err(e),
        }
    }

    fn write_all_bytes(&mut self, bytes: &[u8]) -> io::Result<()> {
        use serialport::SerialPort;
        self.port.set_timeout(self.write_timeout).map_err(io::Error::from)?;
        self.port.write_all(bytes)?;
        self.port.flush()
    }

    fn discard_input(&mut self) -> io::Result<()> {
        use serialport::SerialPort;
        self.port.clear(serialport::ClearBuffer::Input).map_err(io::Error::from)
    }

    fn describe(&self) -> String {
        self.path.clone()
    }
}

/// A link that is always disconnected (placeholder while a port is closed).
pub struct NullLink;

impl Link for NullLink {
    fn read_timeout(&mut self, _buf: &mut [u8], _timeout: Duration) -> io::Result<usize> {
        Err(io::Error::new(io::ErrorKind::NotConnected, "link closed"))
    }
    fn write_all_bytes(&mut self, _bytes: &[u8]) -> io::Result<()> {
        Err(io::Error::new(io::ErrorKind::NotConnected, "link closed"))
    }
    fn discard_input(&mut self) -> io::Result<()> {
        Ok(())
    }
    fn describe(&self) -> String {
        "closed link".into()
    }
}

/// Splits a byte stream into lines, enforcing a maximum length (longer runs are reported and dropped
/// up to the next newline, so one garbled burst cannot stall the link).
pub struct LineReader {
    buf: Vec<u8>,
    max: usize,
    overflowed: bool,
}

/// One event from [`LineReader::read_line`].
#[derive(Debug, PartialEq, Eq)]
pub enum LineEvent {
    /// A complete line, without its newline.
    Line(Vec<u8>),
    /// A run of bytes without newline longer than the maximum was dropped.
    Overflow,
    /// No complete line within the timeout.
    Timeout,
}

impl LineReader {
    /// A reader that drops lines longer than `max` bytes.
    pub fn new(max: usize) -> Self {
        LineReader { buf: Vec::with_capacity(max), max, overflowed: false }
    }

    /// The next complete line or overflow in the buffer, if any.
    fn take_line(&mut self) -> Option<LineEvent> {
        loop {
            match self.buf.iter().position(|b| *b == b'\n') {
                Some(nl) if self.overflowed => {
                    // The tail of an over-long run: drop it silently, it was reported once.
                    self.buf.drain(..=nl);
                    self.overflowed = false;
                }
                Some(nl) => return Some(LineEvent::Line(self.buf.drain(..=nl).collect())),
                None if self.buf.len() > self.max => {
                    self.buf.clear();
                    if !self.overflowed {
                        self.overflowed = true;
                        return Some(LineEvent::Overflow);
                    }
                    return None;
                }
                None => return None,
            }
        }
    }

    /// Reads until a full line, an overflow, or `timeout` passes.
    pub fn read_line(&mut self, link: &mut dyn Link, timeout: Duration) -> io::Result<LineEvent> {
        let deadline = Instant::now() + timeout;
        let mut chunk = [0u8; 256];
        loop {
            if let Some(ev) = self.take_line() {
                return Ok(ev);
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(LineEvent::Timeout);
            }
            let n = link.read_timeout(&mut chunk, deadline - now)?;
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Forgets buffered bytes.
    pub fn clear(&mut self) {
        self.buf.clear();
        self.overflowed = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A link that yields scripted chunks.
    struct Chunks(Vec<Vec<u8>>);
    impl Link for Chunks {
        fn read_timeout(&mut self, buf: &mut [u8], _t: Duration) -> io::Result<usize> {
            if self.0.is_empty() {
                return Ok(0);
            }
            let c = self.0.remove(0);
            buf[..c.len()].copy_from_slice(&c);
            Ok(c.len())
        }
        fn write_all_bytes(&mut self, _b: &[u8]) -> io::Result<()> {
            Ok(())
        }
        fn discard_input(&mut self) -> io::Result<()> {
            Ok(())
        }
        fn describe(&self) -> String {
            "chunks".into()
        }
    }

    #[test]
    fn lines_split_across_reads_and_overflow_is_dropped_once() {
        let mut link = Chunks(vec![
            b"1 AC".to_vec(),
            b"K *1234\n2 DONE".to_vec(),
            b" *0000\n".to_vec(),
            vec![b'x'; 200],
            vec![b'y'; 10],
            b"z\n3 ACK\n".to_vec(),
        ]);
        let mut r = LineReader::new(120);
        let t = Duration::from_millis(5);
        assert_eq!(r.read_line(&mut link, t).unwrap(), LineEvent::Line(b"1 ACK *1234\n".to_vec()));
        assert_eq!(r.read_line(&mut link, t).unwrap(), LineEvent::Line(b"2 DONE *0000\n".to_vec()));
        assert_eq!(r.read_line(&mut link, t).unwrap(), LineEvent::Overflow);
        assert_eq!(r.read_line(&mut link, t).unwrap(), LineEvent::Line(b"3 ACK\n".to_vec()));
        assert_eq!(r.read_line(&mut link, t).unwrap(), LineEvent::Timeout);
    }

    #[test]
    fn pty_carries_bytes_both_ways_and_reads_time_out() {
        let (master, path) = pty_pair().unwrap();
        let mut sim = SerialLink::from_port(master, Duration::from_millis(200));
        let mut host = SerialLink::open(&path, 115_200, Duration::from_millis(200)).unwrap();
        host.write_all_bytes(b"0 PING *0000\n").unwrap();
        let mut r = LineReader::new(120);
        assert_eq!(r.read_line(&mut sim, Duration::from_secs(2)).unwrap(), LineEvent::Line(b"0 PING *0000\n".to_vec()));
        let t0 = Instant::now();
        assert_eq!(r.read_line(&mut host, Duration::from_millis(50)).unwrap(), LineEvent::Timeout);
        assert!(t0.elapsed() < Duration::from_secs(2));
    }
}
