//! The images of the thumbnails tests, made in the test: a gradient in any size and format,
//! and a decompression bomb written chunk by chunk.

use std::io::Cursor;

use image::{ImageFormat, Rgb, RgbImage};

/// A gradient, so that the codecs have something to compress.
pub(crate) fn picture(width: u32, height: u32) -> RgbImage {
    RgbImage::from_fn(width, height, |x, y| {
        Rgb([
            (x * 255 / width) as u8,
            (y * 255 / height) as u8,
            ((x + y) % 256) as u8,
        ])
    })
}

pub(crate) fn encoded(image: &RgbImage, format: ImageFormat) -> Vec<u8> {
    let mut bytes = Vec::new();
    image
        .write_to(&mut Cursor::new(&mut bytes), format)
        .expect("the test image encodes");
    bytes
}

/// A PNG of a few hundred bytes that declares 20000x20000 RGBA pixels (1.6 GB decoded) and
/// holds the data of a few zero rows: a decompression bomb's header on a file that is cheap
/// to send. Written chunk by chunk so that no encoder refuses it.
pub(crate) fn bomb() -> Vec<u8> {
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut header = Vec::new();
    header.extend_from_slice(&20_000u32.to_be_bytes());
    header.extend_from_slice(&20_000u32.to_be_bytes());
    header.extend_from_slice(&[8, 6, 0, 0, 0]); // 8 bits, RGBA, deflate, no filter, no interlace
    push_chunk(&mut png, b"IHDR", &header);
    // A zlib stream holding one stored block of zero bytes.
    let zeros = 1_000u16;
    let mut data = vec![0x78, 0x01, 0x01];
    data.extend_from_slice(&zeros.to_le_bytes());
    data.extend_from_slice(&(!zeros).to_le_bytes());
    data.extend(std::iter::repeat_n(0u8, usize::from(zeros)));
    // Adler-32 of n zero bytes: a = 1, b = n.
    data.extend_from_slice(&((u32::from(zeros) << 16) | 1).to_be_bytes());
    push_chunk(&mut png, b"IDAT", &data);
    push_chunk(&mut png, b"IEND", &[]);
    png
}

fn push_chunk(png: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    let length = u32::try_from(data.len()).expect("test chunks are small");
    png.extend_from_slice(&length.to_be_bytes());
    let start = png.len();
    png.extend_from_slice(kind);
    png.extend_from_slice(data);
    let crc = crc32(&png[start..]);
    png.extend_from_slice(&crc.to_be_bytes());
}

/// The CRC-32 of PNG chunks (ISO 3309), bit by bit: test files are small.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}
