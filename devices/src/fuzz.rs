//! Fuzz targets for this crate's parsers (see `grasp-fuzz`): the grasp-line codec (both sides),
//! the Magician codec and frame decoding as the camera sources do it.

use crate::camera::{decode_image_file, yuyv_to_rgb};
use crate::dobot::codec::{encode, take_packet, Packet, SET_PTP_CMD};
use crate::grasp_line::codec::{encode_command, encode_reply, parse_command, parse_reply, Command, Reply};
use grasp_fuzz::mutated;
use proptest::prelude::*;

fn valid_lines() -> Vec<u8> {
    let mut v = encode_command(7, &Command::Track { x: 1.5, y: -2.0, z: 30.0, yaw: 45.0, opening: 20.0 }).into_bytes();
    v.extend(encode_reply(7, &Reply::Pos { x: 1.0, y: 2.0, z: 3.0, yaw: 4.0, opening: 5.0 }).into_bytes());
    v
}

fn jpeg() -> Vec<u8> {
    let img = image::RgbImage::from_fn(24, 16, |x, y| image::Rgb([(x * 9) as u8, (y * 13) as u8, 77]));
    let mut out = Vec::new();
    image::DynamicImage::ImageRgb8(img)
        .write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Jpeg)
        .unwrap();
    out
}

proptest! {
    #![proptest_config(grasp_fuzz::config())]

    #[test]
    fn fuzz_grasp_line_codec_both_sides(bytes in mutated(valid_lines())) {
        for line in bytes.split(|b| *b == b'\n') {
            let _ = parse_command(line);
            let _ = parse_reply(line);
        }
    }

    #[test]
    fn fuzz_magician_codec(bytes in mutated(encode(&Packet { id: SET_PTP_CMD, ctrl: 3, params: vec![2; 17] }))) {
        let mut buf = bytes;
        let mut n = 0;
        while let Some(r) = take_packet(&mut buf) {
            if let Ok(p) = r {
                prop_assert_eq!(take_packet(&mut encode(&p)), Some(Ok(p)), "a packet round-trips");
            }
            n += 1;
            prop_assert!(n < 1000, "take_packet must consume input");
        }
    }

    #[test]
    fn fuzz_frame_decoding(bytes in mutated(jpeg()), w in 0usize..40, h in 0usize..40, stride in 0usize..100) {
        if let Ok((rgb, w, h)) = decode_image_file(&bytes) {
            prop_assert_eq!(rgb.len(), w * h * 3);
        }
        let mut out = Vec::new();
        if yuyv_to_rgb(&bytes, w, h, stride, &mut out).is_ok() {
            prop_assert_eq!(out.len(), w * h * 3);
        }
    }
}
