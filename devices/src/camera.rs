//! Frame sources behind one trait: a V4L2 camera ([`V4l2Source`], through the `v4l` crate), a
//! replay of image files or a flight recording ([`ReplaySource`]), and an emulated camera serving
//! raw buffers through the V4L2 source's conversion ([`BufferCamera`], for benches and tests). The
//! pixel-format negotiation and conversions are pure functions ([`choose_format`],
//! [`yuyv_to_rgb`], [`decode_mjpeg`]) tested on byte buffers, since no virtual camera can be loaded
//! on a build machine.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// One RGB8 frame (packed, row-major). The buffer is reused by sources that can.
#[derive(Debug, Clone, Default)]
pub struct Frame {
    /// Packed RGB8, `width × height × 3` bytes.
    pub rgb: Vec<u8>,
    /// Pixels per row.
    pub width: usize,
    /// Rows.
    pub height: usize,
    /// Frame counter of the source (gaps mean the source dropped frames).
    pub index: u64,
    /// Where it came from (file name, or the device and its sequence number).
    pub origin: String,
    /// When it was captured: the V4L2 buffer's timestamp, or when a replay delivered it.
    pub captured: Option<Instant>,
}

/// Why a source gave no frame; only `Setup` ends a run.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// A frame arrived damaged and was skipped; the source is still usable.
    #[error("corrupt frame from {origin}: {reason}")]
    Corrupt {
        /// The source and frame.
        origin: String,
        /// What was wrong with it.
        reason: String,
    },
    /// No frame within the timeout; the source is still usable (it may have been reopened).
    #[error("no frame from {origin} within {timeout:?}")]
    Timeout {
        /// The source.
        origin: String,
        /// How long was waited.
        timeout: Duration,
    },
    /// The device is gone; the caller reopens it with back-off.
    #[error("camera {origin} lost: {reason}")]
    Lost {
        /// The device.
        origin: String,
        /// Why it is considered gone.
        reason: String,
    },
    /// A replay has no more frames.
    #[error("end of replay {0}")]
    End(String),
    /// The source cannot be used as configured (format, size, missing directory).
    #[error("{0}")]
    Setup(String),
}

/// A source of RGB frames: a camera or a replay.
pub trait FrameSource: Send {
    /// Fills `frame` with the next frame, waiting at most `timeout`.
    fn next_frame(&mut self, frame: &mut Frame, timeout: Duration) -> Result<(), FrameError>;
    /// The source, for logs.
    fn describe(&self) -> String;
}

/// Pixel formats the camera path understands, in order of preference for a given purpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PixelFormat {
    /// YUYV 4:2:2.
    Yuyv,
    /// Motion JPEG.
    Mjpeg,
}

impl PixelFormat {
    /// The V4L2 fourcc.
    pub fn fourcc(self) -> [u8; 4] {
        match self {
            PixelFormat::Yuyv => *b"YUYV",
            PixelFormat::Mjpeg => *b"MJPG",
        }
    }
    /// The format of a V4L2 fourcc, if supported.
    pub fn from_fourcc(f: [u8; 4]) -> Option<Self> {
        match &f {
            b"YUYV" => Some(PixelFormat::Yuyv),
            b"MJPG" => Some(PixelFormat::Mjpeg),
            _ => None,
        }
    }
}

/// What the camera should deliver: `None` lets the negotiation choose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FormatPreference {
    /// YUYV if offered, else MJPEG.
    #[default]
    Auto,
    /// YUYV only.
    Yuyv,
    /// MJPEG only.
    Mjpeg,
}

/// Picks the pixel format to request from the fourccs a driver lists. YUYV is exact and cheap to
/// convert; MJPEG is what many USB cameras need for full resolution at 30 fps, so `auto` takes
/// YUYV when offered, else MJPEG.
pub fn choose_format(offered: &[[u8; 4]], pref: FormatPreference) -> Result<PixelFormat, String> {
    let has = |p: PixelFormat| offered.contains(&p.fourcc());
    let names = || offered.iter().map(|f| String::from_utf8_lossy(f).into_owned()).collect::<Vec<_>>().join(", ");
    let want = match pref {
        FormatPreference::Yuyv => vec![PixelFormat::Yuyv],
        FormatPreference::Mjpeg => vec![PixelFormat::Mjpeg],
        FormatPreference::Auto => vec![PixelFormat::Yuyv, PixelFormat::Mjpeg],
    };
    want.into_iter().find(|p| has(*p)).ok_or_else(|| {
        format!(
            "the camera offers [{}], none of which grasp-edge can convert for `{pref:?}` (YUYV or MJPG needed)",
            names()
        )
    })
}

/// Converts a YUYV 4:2:2 buffer (BT.601 limited range, as UVC cameras send) to packed RGB8.
/// `data` must hold at least `width*height*2` bytes (a driver's `bytesused`); `stride` is the
/// bytes per row (≥ 2·width).
///
/// The conversion is `yuvutils-rs`'s vectorised one (AVX2, SSE4.1 or NEON; 0.07 ms for 480×480
/// against 0.45 ms for the scalar formula on this project's bench machine). It computes in 6-bit
/// fixed point: within 3 levels of the exact BT.601 formula for every Y ≥ 16 with U and V in the
/// legal 16–240 (a +0.6 % gain on luma), up to 19 levels below black (Y < 16) with extreme
/// chroma, which a sensor does not send. [`yuyv_to_rgb_exact`] is the exact formula, the
/// reference the tests hold it to.
pub fn yuyv_to_rgb(data: &[u8], width: usize, height: usize, stride: usize, out: &mut Vec<u8>) -> Result<(), String> {
    let stride = check_yuyv(data, width, height, stride)?;
    out.resize(width * height * 3, 0);
    if height == 0 || width == 0 {
        return Ok(());
    }
    let convert = |yuy: &[u8], rows: usize, rgb: &mut [u8]| -> Result<(), String> {
        let size = |v: usize| u32::try_from(v).map_err(|_| format!("YUYV frame {width}x{height} is too large"));
        let image =
            yuvutils_rs::YuvPackedImage { yuy, yuy_stride: size(width * 2)?, width: size(width)?, height: size(rows)? };
        yuvutils_rs::yuyv422_to_rgb(
            &image,
            rgb,
            size(width * 3)?,
            yuvutils_rs::YuvRange::Limited,
            yuvutils_rs::YuvStandardMatrix::Bt601,
        )
        .map_err(|e| format!("YUYV frame {width}x{height}: {e}"))
    };
    // yuvutils 0.8 takes only unpadded buffers (its size check ignores the stride): a padded
    // one goes row by row.
    if stride == width * 2 {
        return convert(&data[..width * height * 2], height, out);
    }
    for (row, rgb) in out.chunks_exact_mut(width * 3).enumerate() {
        convert(&data[row * stride..row * stride + width * 2], 1, rgb)?;
    }
    Ok(())
}

/// The size checks of a YUYV buffer; returns the effective stride.
fn check_yuyv(data: &[u8], width: usize, height: usize, stride: usize) -> Result<usize, String> {
    if !width.is_multiple_of(2) {
        return Err(format!("YUYV width {width} is odd"));
    }
    let stride = stride.max(width * 2);
    let need = stride * (height.saturating_sub(1)) + width * 2;
    if data.len() < need {
        return Err(format!("YUYV frame {width}x{height} needs {need} bytes, got {} (truncated)", data.len()));
    }
    Ok(stride)
}

/// [`yuyv_to_rgb`] by the exact BT.601 limited-range formula in 8-bit fixed point (within one
/// level of the real-valued formula): the reference its vectorised conversion is tested against.
pub fn yuyv_to_rgb_exact(
    data: &[u8],
    width: usize,
    height: usize,
    stride: usize,
    out: &mut Vec<u8>,
) -> Result<(), String> {
    let stride = check_yuyv(data, width, height, stride)?;
    out.resize(width * height * 3, 0);
    let clamp = |v: i32| v.clamp(0, 255) as u8;
    for row in 0..height {
        let src = &data[row * stride..row * stride + width * 2];
        let dst = &mut out[row * width * 3..(row + 1) * width * 3];
        for (px, chunk) in src.chunks_exact(4).enumerate() {
            let (y0, u, y1, v) = (chunk[0] as i32, chunk[1] as i32 - 128, chunk[2] as i32, chunk[3] as i32 - 128);
            for (k, y) in [y0, y1].into_iter().enumerate() {
                // Fixed-point BT.601: 298/256 ≈ 1.164, 409/256 ≈ 1.596, …
                let c = 298 * (y - 16);
                let o = (2 * px + k) * 3;
                dst[o] = clamp((c + 409 * v + 128) >> 8);
                dst[o + 1] = clamp((c - 100 * u - 208 * v + 128) >> 8);
                dst[o + 2] = clamp((c + 516 * u + 128) >> 8);
            }
        }
    }
    Ok(())
}

/// Packed RGB8 → YUYV 4:2:2 (BT.601 limited range, each pair's chroma from the pair's mean), the
/// inverse of [`yuyv_to_rgb`] up to chroma subsampling: what a UVC camera would send for an image
/// (tests and the pipeline bench's emulated camera). `width` must be even.
pub fn rgb_to_yuyv(rgb: &[u8], width: usize, height: usize) -> Result<Vec<u8>, String> {
    if !width.is_multiple_of(2) || rgb.len() != width * height * 3 {
        return Err(format!("RGB buffer of {} bytes is not an even-width {width}x{height} image", rgb.len()));
    }
    let to_u8 = |v: f32| v.round().clamp(0.0, 255.0) as u8;
    Ok(rgb
        .chunks_exact(6)
        .flat_map(|pair| {
            let px = |i: usize| (pair[3 * i] as f32, pair[3 * i + 1] as f32, pair[3 * i + 2] as f32);
            let luma = |(r, g, b): (f32, f32, f32)| 16.0 + 0.256_788 * r + 0.504_129 * g + 0.097_906 * b;
            let ((r0, g0, b0), (r1, g1, b1)) = (px(0), px(1));
            let (r, g, b) = ((r0 + r1) / 2.0, (g0 + g1) / 2.0, (b0 + b1) / 2.0);
            let u = 128.0 - 0.148_223 * r - 0.290_993 * g + 0.439_216 * b;
            let v = 128.0 + 0.439_216 * r - 0.367_788 * g - 0.071_427 * b;
            [to_u8(luma(px(0))), to_u8(u), to_u8(luma(px(1))), to_u8(v)]
        })
        .collect())
}

/// Decodes one MJPEG frame into packed RGB8, checking it has the negotiated size.
pub fn decode_mjpeg(data: &[u8], width: usize, height: usize, out: &mut Vec<u8>) -> Result<(), String> {
    check_jpeg_complete(data)?;
    let img = image::load_from_memory_with_format(data, image::ImageFormat::Jpeg)
        .map_err(|e| format!("bad JPEG ({} bytes): {e}", data.len()))?;
    if img.width() as usize != width || img.height() as usize != height {
        return Err(format!("JPEG is {}x{}, negotiated {width}x{height}", img.width(), img.height()));
    }
    let rgb = img.into_rgb8();
    out.clear();
    out.extend_from_slice(rgb.as_raw());
    Ok(())
}

/// A JPEG must end with its end-of-image marker (FF D9; zero padding after it, as some UVC cameras
/// send, is allowed). The decoder fills a truncated JPEG with grey without an error, and a half
/// image gives different grasps: it is a corrupt frame, never a frame.
pub fn check_jpeg_complete(data: &[u8]) -> Result<(), String> {
    let end = data.iter().rposition(|b| *b != 0).map_or(0, |i| i + 1);
    if data.len() < 4 || data[..2] != [0xFF, 0xD8] {
        return Err(format!("not a JPEG ({} bytes, no start-of-image marker)", data.len()));
    }
    if data[..end].ends_with(&[0xFF, 0xD9]) {
        Ok(())
    } else {
        Err(format!("truncated JPEG ({} bytes, no end-of-image marker)", data.len()))
    }
}

/// Decodes an image file (PNG or JPEG) to packed RGB8 as every frame source and `detect` do:
/// returns (pixels, width, height), or why the file is not a usable frame.
pub fn decode_image_file(bytes: &[u8]) -> Result<(Vec<u8>, usize, usize), String> {
    if bytes.starts_with(&[0xFF, 0xD8]) {
        check_jpeg_complete(bytes)?;
    }
    let img = image::load_from_memory(bytes).map_err(|e| e.to_string())?.into_rgb8();
    let (w, h) = (img.width() as usize, img.height() as usize);
    if w == 0 || h == 0 {
        return Err(format!("empty image ({w}x{h})"));
    }
    Ok((img.into_raw(), w, h))
}

/// Converts one captured buffer (`bytesused` bytes of it) in format `fmt` to RGB.
pub fn convert(
    fmt: PixelFormat,
    data: &[u8],
    width: usize,
    height: usize,
    stride: usize,
    out: &mut Vec<u8>,
) -> Result<(), String> {
    match fmt {
        PixelFormat::Yuyv => yuyv_to_rgb(data, width, height, stride, out),
        PixelFormat::Mjpeg => decode_mjpeg(data, width, height, out),
    }
}

/// CLOCK_MONOTONIC now, the clock of V4L2 buffer timestamps (UVC drivers set
/// `V4L2_BUF_FLAG_TIMESTAMP_MONOTONIC`).
fn monotonic_now() -> Duration {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes one timespec into the valid pointer it is given.
    if unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) } != 0 {
        return Duration::ZERO;
    }
    Duration::new(ts.tv_sec.max(0) as u64, ts.tv_nsec.clamp(0, 999_999_999) as u32)
}

/// The instant a buffer stamped `sec`.`usec` on CLOCK_MONOTONIC was captured, given that clock's
/// `mono_now` at `now`. A missing (zero), future or implausibly old stamp (> 10 s) gives `now`:
/// an unknown capture time is never reported as an old one.
pub fn buffer_instant(sec: i64, usec: i64, mono_now: Duration, now: Instant) -> Instant {
    if sec <= 0 && usec <= 0 {
        return now;
    }
    let stamp = Duration::new(sec.max(0) as u64, (usec.clamp(0, 999_999) * 1000) as u32);
    match mono_now.checked_sub(stamp) {
        Some(age) if age <= Duration::from_secs(10) => now.checked_sub(age).unwrap_or(now),
        _ => now,
    }
}

/// Camera settings.
#[derive(Debug, Clone)]
pub struct V4l2Settings {
    /// The device node.
    pub device: PathBuf,
    /// Requested width, pixels.
    pub width: u32,
    /// Requested height, pixels.
    pub height: u32,
    /// Requested frames per second.
    pub fps: u32,
    /// Requested pixel format.
    pub format: FormatPreference,
}

/// A V4L2 capture device. A capture timeout recreates the stream (v4l 0.14 answers the retry with
/// EINVAL otherwise); a vanished device is reported as `Lost` and reopened by [`V4l2Source::next_frame`]
/// on later calls, at most once per second.
pub struct V4l2Source {
    settings: V4l2Settings,
    open: Option<OpenCamera>,
    next_reopen: Instant,
    /// Frames skipped because the driver flagged them or they did not decode.
    pub corrupt_frames: u64,
}

struct OpenCamera {
    // Field order matters: the stream must drop before the device.
    stream: v4l::io::mmap::Stream<'static>,
    _device: Box<v4l::Device>,
    format: PixelFormat,
    width: usize,
    height: usize,
    stride: usize,
}

impl V4l2Source {
    /// Opens and starts the device; the driver must accept the requested size.
    pub fn open(settings: V4l2Settings) -> Result<Self, FrameError> {
        let open = Self::open_device(&settings)?;
        Ok(V4l2Source { settings, open: Some(open), next_reopen: Instant::now(), corrupt_frames: 0 })
    }

    fn origin(&self) -> String {
        self.settings.device.display().to_string()
    }

    fn open_device(s: &V4l2Settings) -> Result<OpenCamera, FrameError> {
        use v4l::video::Capture;
        let origin = s.device.display().to_string();
        let setup = |what: &str, e: std::io::Error| FrameError::Setup(format!("camera {origin}: {what}: {e}"));
        let device = Box::new(
            v4l::Device::with_path(&s.device)
                .map_err(|e| FrameError::Lost { origin: origin.clone(), reason: format!("cannot open: {e}") })?,
        );
        let offered: Vec<[u8; 4]> =
            device.enum_formats().map_err(|e| setup("listing formats", e))?.iter().map(|d| d.fourcc.repr).collect();
        let wanted =
            choose_format(&offered, s.format).map_err(|e| FrameError::Setup(format!("camera {origin}: {e}")))?;
        let mut fmt = device.format().map_err(|e| setup("reading the format", e))?;
        fmt.width = s.width;
        fmt.height = s.height;
        fmt.fourcc = v4l::FourCC::new(&wanted.fourcc());
        // Use what the driver actually set, which may differ from what was asked.
        let got = device.set_format(&fmt).map_err(|e| setup("setting the format", e))?;
        let format = PixelFormat::from_fourcc(got.fourcc.repr).ok_or_else(|| {
            FrameError::Setup(format!("camera {origin}: driver switched to unsupported format {}", got.fourcc))
        })?;
        if got.width != s.width || got.height != s.height {
            log::warn!("camera {origin}: asked {}x{}, driver gives {}x{}", s.width, s.height, got.width, got.height);
        }
        if s.fps > 0 {
            if let Err(e) = device.set_params(&v4l::video::capture::Parameters::with_fps(s.fps)) {
                log::warn!("camera {origin}: cannot set {} fps: {e}", s.fps);
            }
        }
        // SAFETY of the 'static: the stream borrows the boxed device, which lives in the same struct
        // and is dropped after it (field order), and the Box keeps its address fixed.
        let dev_ref: &'static v4l::Device = unsafe { &*(device.as_ref() as *const v4l::Device) };
        let stream = v4l::io::mmap::Stream::with_buffers(dev_ref, v4l::buffer::Type::VideoCapture, 4)
            .map_err(|e| setup("allocating buffers", e))?;
        log::info!("camera {origin}: {}x{} {:?}", got.width, got.height, format);
        Ok(OpenCamera {
            stream,
            _device: device,
            format,
            width: got.width as usize,
            height: got.height as usize,
            stride: got.stride as usize,
        })
    }
}

impl FrameSource for V4l2Source {
    fn next_frame(&mut self, frame: &mut Frame, timeout: Duration) -> Result<(), FrameError> {
        use v4l::io::traits::CaptureStream;
        let origin = self.origin();
        if self.open.is_none() {
            if Instant::now() < self.next_reopen {
                std::thread::sleep(timeout.min(self.next_reopen - Instant::now()));
                return Err(FrameError::Timeout { origin, timeout });
            }
            self.next_reopen = Instant::now() + Duration::from_secs(1);
            self.open = Some(Self::open_device(&self.settings)?);
        }
        let cam = self.open.as_mut().expect("opened above");
        cam.stream.set_timeout(timeout);
        match cam.stream.next() {
            Ok((buf, meta)) => {
                let used = (meta.bytesused as usize).min(buf.len());
                frame.index = meta.sequence as u64;
                frame.captured =
                    Some(buffer_instant(meta.timestamp.sec, meta.timestamp.usec, monotonic_now(), Instant::now()));
                frame.origin = format!("{origin}#{}", meta.sequence);
                if meta.flags.contains(v4l::buffer::Flags::ERROR) {
                    self.corrupt_frames += 1;
                    return Err(FrameError::Corrupt { origin, reason: "driver flagged the buffer as damaged".into() });
                }
                let (fmt, w, h, stride) = (cam.format, cam.width, cam.height, cam.stride);
                match convert(fmt, &buf[..used], w, h, stride, &mut frame.rgb) {
                    Ok(()) => {
                        frame.width = w;
                        frame.height = h;
                        Ok(())
                    }
                    Err(reason) => {
                        self.corrupt_frames += 1;
                        Err(FrameError::Corrupt { origin, reason })
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                // v4l 0.14: a stream that timed out must be recreated.
                self.open = None;
                self.next_reopen = Instant::now();
                Err(FrameError::Timeout { origin, timeout })
            }
            Err(e) => {
                self.open = None;
                self.next_reopen = Instant::now() + Duration::from_secs(1);
                Err(FrameError::Lost { origin, reason: e.to_string() })
            }
        }
    }

    fn describe(&self) -> String {
        format!("V4L2 camera {}", self.origin())
    }
}

/// A camera emulated from pre-made raw buffers (YUYV or MJPEG), delivered in turn, looping, and
/// converted per frame by the same [`convert`] as [`V4l2Source`]: a frame costs the CPU what a
/// real camera's costs, less the driver's dequeue. For benches and tests; a frame's capture time
/// is when it was delivered.
pub struct BufferCamera {
    buffers: Vec<Vec<u8>>,
    format: PixelFormat,
    width: usize,
    height: usize,
    next: usize,
    index: u64,
}

impl BufferCamera {
    /// Raw buffers of one size in one format.
    pub fn new(format: PixelFormat, width: usize, height: usize, buffers: Vec<Vec<u8>>) -> Result<Self, FrameError> {
        if buffers.is_empty() {
            return Err(FrameError::Setup("an emulated camera needs at least one buffer".into()));
        }
        Ok(BufferCamera { buffers, format, width, height, next: 0, index: 0 })
    }

    /// The frames of a replay directory as a YUYV camera would send them (every frame must be
    /// readable and have the first one's size, with an even width).
    pub fn yuyv_of_replay(dir: &Path) -> Result<Self, FrameError> {
        let mut replay = ReplaySource::open(dir, 0.0, false)?;
        let (mut frame, mut buffers, mut size) = (Frame::default(), Vec::new(), None);
        loop {
            match replay.next_frame(&mut frame, Duration::ZERO) {
                Ok(()) => {}
                Err(FrameError::End(_)) => break,
                // A bench or test must not run on fewer frames than its directory holds unnoticed.
                Err(FrameError::Corrupt { origin, reason }) => {
                    return Err(FrameError::Setup(format!("{origin} cannot be emulated: {reason}")))
                }
                Err(e) => return Err(e),
            }
            let (w, h) = *size.get_or_insert((frame.width, frame.height));
            if (frame.width, frame.height) != (w, h) {
                return Err(FrameError::Setup(format!(
                    "{} is {}x{}, the replay's first frame {w}x{h}: one camera has one size",
                    frame.origin, frame.width, frame.height
                )));
            }
            buffers
                .push(rgb_to_yuyv(&frame.rgb, w, h).map_err(|e| FrameError::Setup(format!("{}: {e}", frame.origin)))?);
        }
        let (w, h) =
            size.ok_or_else(|| FrameError::Setup(format!("replay {} has no readable frame", dir.display())))?;
        Self::new(PixelFormat::Yuyv, w, h, buffers)
    }
}

impl FrameSource for BufferCamera {
    fn next_frame(&mut self, frame: &mut Frame, _timeout: Duration) -> Result<(), FrameError> {
        let buffer = &self.buffers[self.next];
        self.next = (self.next + 1) % self.buffers.len();
        self.index += 1;
        frame.index = self.index;
        frame.captured = Some(Instant::now());
        frame.origin = format!("emulated {} camera#{}", self.format.fourcc().escape_ascii(), self.index);
        convert(self.format, buffer, self.width, self.height, self.width * 2, &mut frame.rgb)
            .map_err(|reason| FrameError::Corrupt { origin: frame.origin.clone(), reason })?;
        (frame.width, frame.height) = (self.width, self.height);
        Ok(())
    }

    fn describe(&self) -> String {
        format!(
            "emulated {} camera, {}x{}, {} buffers",
            self.format.fourcc().escape_ascii(),
            self.width,
            self.height,
            self.buffers.len()
        )
    }
}

/// Image files played back in name order (a directory of PNG/JPEG frames, or the `frames/` of a
/// flight recording), at a fixed rate (0 = as fast as the pipeline runs), optionally looping.
pub struct ReplaySource {
    files: Vec<PathBuf>,
    next: usize,
    period: Duration,
    last: Option<Instant>,
    looping: bool,
    index: u64,
    dir: PathBuf,
    unreadable_in_row: usize,
}

impl ReplaySource {
    /// The frames of `dir` (or its `frames/`), at `fps` (0: as fast as asked).
    pub fn open(dir: &Path, fps: f64, looping: bool) -> Result<Self, FrameError> {
        let frames_dir = if dir.join("frames").is_dir() { dir.join("frames") } else { dir.to_path_buf() };
        let mut files: Vec<PathBuf> = std::fs::read_dir(&frames_dir)
            .map_err(|e| FrameError::Setup(format!("replay directory {}: {e}", frames_dir.display())))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                matches!(
                    p.extension().and_then(|e| e.to_str()).map(|e| e.to_ascii_lowercase()).as_deref(),
                    Some("png" | "jpg" | "jpeg")
                )
            })
            .collect();
        files.sort();
        if files.is_empty() {
            return Err(FrameError::Setup(format!(
                "replay directory {} holds no .png/.jpg frames",
                frames_dir.display()
            )));
        }
        let period = if fps > 0.0 { Duration::from_secs_f64(1.0 / fps) } else { Duration::ZERO };
        Ok(ReplaySource {
            files,
            next: 0,
            period,
            last: None,
            looping,
            index: 0,
            dir: frames_dir,
            unreadable_in_row: 0,
        })
    }

    /// Number of frame files.
    pub fn len(&self) -> usize {
        self.files.len()
    }

    /// Whether there are none (never true for an opened replay).
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }
}

impl FrameSource for ReplaySource {
    fn next_frame(&mut self, frame: &mut Frame, _timeout: Duration) -> Result<(), FrameError> {
        if self.next >= self.files.len() {
            if !self.looping {
                return Err(FrameError::End(self.dir.display().to_string()));
            }
            self.next = 0;
        }
        if let Some(last) = self.last {
            let due = last + self.period;
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
        }
        self.last = Some(Instant::now());
        let path = &self.files[self.next];
        self.next += 1;
        self.index += 1;
        frame.index = self.index;
        frame.origin = path.display().to_string();
        let decoded = std::fs::read(path).map_err(|e| e.to_string()).and_then(|bytes| decode_image_file(&bytes));
        let (rgb, width, height) = match decoded {
            Ok(d) => d,
            Err(reason) => {
                // A whole pass without one readable frame is a broken replay, not a run of bad luck.
                self.unreadable_in_row += 1;
                if self.unreadable_in_row >= self.files.len() {
                    return Err(FrameError::Setup(format!(
                        "replay {}: none of its {} frames is readable (the last: {}: {reason})",
                        self.dir.display(),
                        self.files.len(),
                        path.display()
                    )));
                }
                return Err(FrameError::Corrupt { origin: path.display().to_string(), reason });
            }
        };
        self.unreadable_in_row = 0;
        (frame.rgb, frame.width, frame.height) = (rgb, width, height);
        frame.captured = Some(self.last.unwrap_or_else(Instant::now));
        Ok(())
    }

    fn describe(&self) -> String {
        format!(
            "replay of {} ({} frames{})",
            self.dir.display(),
            self.files.len(),
            if self.looping { ", looping" } else { "" }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation_prefers_yuyv_and_names_what_is_offered() {
        assert_eq!(choose_format(&[*b"MJPG", *b"YUYV"], FormatPreference::Auto), Ok(PixelFormat::Yuyv));
        assert_eq!(choose_format(&[*b"MJPG", *b"YUYV"], FormatPreference::Mjpeg), Ok(PixelFormat::Mjpeg));
        assert_eq!(choose_format(&[*b"MJPG"], FormatPreference::Auto), Ok(PixelFormat::Mjpeg));
        let e = choose_format(&[*b"GREY", *b"NV12"], FormatPreference::Auto).unwrap_err();
        assert!(e.contains("GREY, NV12"), "{e}");
        assert!(choose_format(&[*b"MJPG"], FormatPreference::Yuyv).is_err());
    }

    #[test]
    fn yuyv_converts_known_colours() {
        // BT.601 limited range: Y=16 black, Y=235 white; (Y=81,U=90,V=240) is pure red.
        let data = [16u8, 128, 235, 128, 81, 90, 81, 240];
        // Pairs share chroma: first pair black/white, second pair red/red.
        let mut out = Vec::new();
        yuyv_to_rgb(&data, 4, 1, 8, &mut out).unwrap();
        assert_eq!(&out[0..3], &[0, 0, 0]);
        assert_eq!(&out[3..6], &[255, 255, 255]);
        for px in [&out[6..9], &out[9..12]] {
            assert!(px[0] >= 250 && px[1] <= 3 && px[2] <= 3, "red came out as {px:?}");
        }
    }

    /// A pseudo-random YUYV buffer; `legal`: Y ≥ 16 and U, V in 16–240 (what a sensor sends),
    /// else every value.
    fn noise_yuyv(height: usize, stride: usize, legal: bool) -> Vec<u8> {
        (0..stride * height)
            .map(|i| {
                let r = ((i as u32).wrapping_mul(2654435761) >> 11) as u8;
                match (legal, i % 2) {
                    (false, _) => r,
                    (true, 0) => 16 + r % 240,
                    (true, _) => 16 + r % 225,
                }
            })
            .collect()
    }

    /// The largest difference between the vectorised and the exact conversion.
    fn worst_level(data: &[u8], w: usize, h: usize, stride: usize) -> i32 {
        let (mut fast, mut exact) = (Vec::new(), Vec::new());
        yuyv_to_rgb(data, w, h, stride, &mut fast).unwrap();
        yuyv_to_rgb_exact(data, w, h, stride, &mut exact).unwrap();
        assert_eq!(fast.len(), exact.len());
        fast.iter().zip(&exact).map(|(a, b)| (*a as i32 - *b as i32).abs()).max().unwrap()
    }

    #[test]
    fn vectorised_yuyv_is_within_three_levels_of_the_exact_formula() {
        for (w, h, stride) in [(480, 480, 960), (640, 480, 1280), (34, 7, 80), (2, 1, 4), (64, 3, 160)] {
            let legal = noise_yuyv(h, stride, true);
            let worst = worst_level(&legal, w, h, stride);
            assert!(worst <= 3, "{w}x{h} stride {stride}: {worst} levels off");
            // Below black with extreme chroma (no sensor sends it) the 6-bit arithmetic is off by
            // up to 19 levels: bounded, never garbage.
            let any = noise_yuyv(h, stride, false);
            let worst = worst_level(&any, w, h, stride);
            assert!(worst <= 19, "{w}x{h} stride {stride}: {worst} levels off");
            // A padded buffer that stops at the last row's pixels converts that row too.
            let cut = stride * (h - 1) + w * 2;
            let (mut whole, mut short) = (Vec::new(), vec![7u8; w * h * 3]);
            yuyv_to_rgb(&legal, w, h, stride, &mut whole).unwrap();
            yuyv_to_rgb(&legal[..cut], w, h, stride, &mut short).unwrap();
            assert_eq!(short, whole, "{w}x{h} stride {stride}, unpadded last row");
        }
    }

    #[test]
    fn rgb_to_yuyv_and_back_keeps_the_image() {
        // Pairs of equal pixels lose nothing to chroma subsampling: only rounding remains.
        let (w, h) = (16, 4);
        let rgb: Vec<u8> = (0..w * h)
            .flat_map(|i| {
                let p = (i / 2) as u8;
                [p.wrapping_mul(13), 255 - p * 7, p.wrapping_mul(29)]
            })
            .collect();
        let yuyv = rgb_to_yuyv(&rgb, w, h).unwrap();
        assert_eq!(yuyv.len(), w * h * 2);
        let mut back = Vec::new();
        yuyv_to_rgb_exact(&yuyv, w, h, w * 2, &mut back).unwrap();
        let worst = back.iter().zip(&rgb).map(|(a, b)| (*a as i32 - *b as i32).abs()).max().unwrap();
        assert!(worst <= 2, "{worst} levels off");
        assert!(rgb_to_yuyv(&rgb[..3 * 15], 15, 1).is_err(), "odd width");
    }

    #[test]
    fn an_emulated_camera_converts_each_buffer_as_the_v4l2_source_does() {
        let (w, h) = (8, 2);
        let frames = [noise_yuyv(h, w * 2, true), vec![128u8; w * h * 2]];
        let mut cam = BufferCamera::new(PixelFormat::Yuyv, w, h, frames.to_vec()).unwrap();
        let mut frame = Frame::default();
        for i in 0..4 {
            cam.next_frame(&mut frame, Duration::ZERO).unwrap();
            let mut want = Vec::new();
            convert(PixelFormat::Yuyv, &frames[i % 2], w, h, w * 2, &mut want).unwrap();
            assert_eq!((frame.rgb.clone(), frame.width, frame.height, frame.index), (want, w, h, i as u64 + 1));
        }
        // A damaged buffer is a corrupt frame, not a frame.
        let mut bad = BufferCamera::new(PixelFormat::Yuyv, w, h, vec![vec![0; 5]]).unwrap();
        assert!(matches!(bad.next_frame(&mut frame, Duration::ZERO), Err(FrameError::Corrupt { .. })));
        assert!(BufferCamera::new(PixelFormat::Yuyv, w, h, vec![]).is_err());
        // From a replay: every frame converted, and an unreadable one named, never skipped.
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.jpg"), jpeg(32, 24)).unwrap();
        let mut cam = BufferCamera::yuyv_of_replay(dir.path()).unwrap();
        cam.next_frame(&mut frame, Duration::ZERO).unwrap();
        assert_eq!((frame.width, frame.height, frame.rgb.len()), (32, 24, 32 * 24 * 3));
        std::fs::write(dir.path().join("b.jpg"), b"not a jpeg").unwrap();
        let e = BufferCamera::yuyv_of_replay(dir.path()).err().expect("an unreadable frame is an error");
        assert!(e.to_string().contains("b.jpg"), "{e}");
    }

    #[test]
    fn yuyv_honours_stride_and_refuses_truncated_buffers() {
        // 2x2 frame, stride 8 (4 padding bytes per row).
        let data = [16u8, 128, 16, 128, 9, 9, 9, 9, 235, 128, 235, 128];
        let mut out = Vec::new();
        yuyv_to_rgb(&data, 2, 2, 8, &mut out).unwrap();
        assert_eq!(out, vec![0, 0, 0, 0, 0, 0, 255, 255, 255, 255, 255, 255]);
        let e = yuyv_to_rgb(&data[..10], 2, 2, 8, &mut out).unwrap_err();
        assert!(e.contains("truncated"), "{e}");
        assert!(yuyv_to_rgb(&data, 3, 1, 6, &mut out).is_err());
    }

    #[test]
    fn mjpeg_decodes_and_checks_its_size() {
        let img = image::RgbImage::from_fn(16, 8, |x, _| image::Rgb([(x * 16) as u8, 100, 50]));
        let mut jpeg = Vec::new();
        image::DynamicImage::ImageRgb8(img)
            .write_to(&mut std::io::Cursor::new(&mut jpeg), image::ImageFormat::Jpeg)
            .unwrap();
        let mut out = Vec::new();
        decode_mjpeg(&jpeg, 16, 8, &mut out).unwrap();
        assert_eq!(out.len(), 16 * 8 * 3);
        assert!((out[3 * 15] as i32 - 240).abs() < 12, "last column red {}", out[3 * 15]);
        assert!(decode_mjpeg(&jpeg, 32, 8, &mut out).unwrap_err().contains("negotiated 32x8"));
        assert!(decode_mjpeg(&jpeg[..jpeg.len() / 2], 16, 8, &mut out).is_err());
        assert!(decode_mjpeg(b"not a jpeg", 16, 8, &mut out).unwrap_err().contains("not a JPEG"));
    }

    #[test]
    fn replay_plays_in_name_order_skips_corrupt_files_and_ends() {
        let dir = tempfile::tempdir().unwrap();
        for (name, v) in [("b.png", 20u8), ("a.png", 10)] {
            image::RgbImage::from_pixel(4, 3, image::Rgb([v, v, v])).save(dir.path().join(name)).unwrap();
        }
        std::fs::write(dir.path().join("c.png"), b"not a png").unwrap();
        std::fs::write(dir.path().join("notes.txt"), b"ignored").unwrap();
        let mut src = ReplaySource::open(dir.path(), 0.0, false).unwrap();
        assert_eq!(src.len(), 3);
        let mut f = Frame::default();
        src.next_frame(&mut f, Duration::from_secs(1)).unwrap();
        assert_eq!((f.width, f.height, f.rgb[0]), (4, 3, 10));
        src.next_frame(&mut f, Duration::from_secs(1)).unwrap();
        assert_eq!(f.rgb[0], 20);
        assert!(matches!(src.next_frame(&mut f, Duration::from_secs(1)), Err(FrameError::Corrupt { .. })));
        assert!(matches!(src.next_frame(&mut f, Duration::from_secs(1)), Err(FrameError::End(_))));
        let empty = tempfile::tempdir().unwrap();
        assert!(
            matches!(ReplaySource::open(empty.path(), 0.0, false), Err(FrameError::Setup(m)) if m.contains("no .png"))
        );
    }

    fn jpeg(w: u32, h: u32) -> Vec<u8> {
        let img = image::RgbImage::from_fn(w, h, |x, y| image::Rgb([(x * 7) as u8, (y * 5) as u8, 90]));
        let mut out = Vec::new();
        image::DynamicImage::ImageRgb8(img)
            .write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Jpeg)
            .unwrap();
        out
    }

    #[test]
    fn a_truncated_jpeg_is_a_corrupt_frame_never_a_frame() {
        let whole = jpeg(32, 24);
        assert!(decode_image_file(&whole).is_ok());
        let mut padded = whole.clone();
        padded.extend_from_slice(&[0, 0, 0]);
        assert!(decode_image_file(&padded).is_ok(), "zero padding after EOI is what some cameras send");
        for cut in [whole.len() / 2, whole.len() - 1] {
            let e = decode_image_file(&whole[..cut]).unwrap_err();
            assert!(e.contains("truncated JPEG"), "{e}");
            let mut out = Vec::new();
            assert!(decode_mjpeg(&whole[..cut], 32, 24, &mut out).unwrap_err().contains("truncated"));
        }
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.jpg"), &whole[..whole.len() / 2]).unwrap();
        std::fs::write(dir.path().join("b.jpg"), &whole).unwrap();
        let mut src = ReplaySource::open(dir.path(), 0.0, false).unwrap();
        let mut f = Frame::default();
        assert!(
            matches!(src.next_frame(&mut f, Duration::ZERO), Err(FrameError::Corrupt { reason, .. }) if reason.contains("truncated"))
        );
        src.next_frame(&mut f, Duration::ZERO).unwrap();
        assert_eq!((f.width, f.height), (32, 24));
    }

    #[test]
    fn a_replay_without_one_readable_frame_is_a_setup_error_not_an_endless_loop() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["a.jpg", "b.png", "c.jpg"] {
            std::fs::write(dir.path().join(name), b"\xff\xd8 cut").unwrap();
        }
        let mut src = ReplaySource::open(dir.path(), 0.0, true).unwrap();
        let mut f = Frame::default();
        let outcomes: Vec<String> = (0..3)
            .map(|_| match src.next_frame(&mut f, Duration::ZERO) {
                Err(FrameError::Corrupt { .. }) => "corrupt".to_string(),
                Err(FrameError::Setup(m)) => m,
                other => format!("{other:?}"),
            })
            .collect();
        assert_eq!(&outcomes[..2], ["corrupt", "corrupt"]);
        assert!(outcomes[2].contains("none of its 3 frames is readable"), "{outcomes:?}");
    }

    #[test]
    fn buffer_timestamps_become_capture_instants() {
        let now = Instant::now();
        let mono = Duration::from_secs(1000);
        // Stamped 40 ms ago on the monotonic clock.
        let t = buffer_instant(999, 960_000, mono, now);
        assert_eq!(now - t, Duration::from_millis(40));
        // Unset, from the future, or absurdly old: unknown, reported as now.
        for (sec, usec) in [(0, 0), (1001, 0), (500, 0)] {
            assert_eq!(buffer_instant(sec, usec, mono, now), now, "{sec}.{usec}");
        }
    }
}
