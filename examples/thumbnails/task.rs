//! The CPU work of the thumbnails service as one task: image bytes in, PNG bytes out.
//!
//! Decoding untrusted images is the work a server most wants out of its own process: a
//! decoder can be made to allocate whatever the file declares, or to run long. The task keeps
//! the decoder's own limits on by default; a job may turn them off (`decoder_limits: false`)
//! so that whatever runs the task (a worker process with a memory cap and a deadline) is what
//! stops a decompression bomb. The service decides when that is allowed (see `service`).
//!
//! Trade-off: the job carries the whole body, so the subprocess strategy copies it to a worker
//! and the thumbnail back; in exchange the decoder never touches the server's memory.

use std::io::Cursor;

use image::imageops::FilterType;
use image::{DynamicImage, ImageDecoder, ImageError, ImageFormat, ImageReader, Limits};
use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

/// The widest thumbnail served.
pub(crate) const MAX_WIDTH: u32 = 2048;

/// The tallest thumbnail served: a very tall image at a large width is refused, not made.
pub(crate) const MAX_HEIGHT: u32 = 8192;

/// What the decoder may allocate for one image while its limits are on: a 6000x4000 RGB
/// photo needs 72 MiB.
pub(crate) const DECODER_MAX_ALLOC: u64 = 128 * 1024 * 1024;

/// The widest or tallest image decoded while the decoder's limits are on.
pub(crate) const DECODER_MAX_SIDE: u32 = 16_384;

/// One thumbnail to make.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct ThumbnailJob {
    /// The request body: a PNG or JPEG file.
    pub(crate) image: ByteBuf,
    /// The thumbnail's width in pixels; the height keeps the aspect ratio.
    pub(crate) width: u32,
    /// Whether the decoder enforces [`DECODER_MAX_ALLOC`] and [`DECODER_MAX_SIDE`] itself.
    pub(crate) decoder_limits: bool,
}

/// Why an image got no thumbnail: the input's fault, each with a one-line reason.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Rejected {
    /// Not a PNG or JPEG file at all.
    NotAnImage(String),
    /// A PNG or JPEG that does not decode: truncated or corrupt.
    Corrupt(String),
    /// The image, or the thumbnail asked for, is larger than this service makes.
    TooLarge(String),
}

impl Rejected {
    /// The reason, for the reply.
    pub(crate) fn reason(&self) -> &str {
        match self {
            Rejected::NotAnImage(reason)
            | Rejected::Corrupt(reason)
            | Rejected::TooLarge(reason) => reason,
        }
    }
}

ythread::task! {
    /// Decodes a PNG or JPEG, resizes it to the job's width and encodes the result as PNG.
    /// The cost grows with the file's size (a proxy for its pixels, known before decoding).
    pub(crate) fn thumbnail(job: ThumbnailJob) -> Result<ByteBuf, Rejected>
        where cost_grows_with(job.image.len())
    {
        make_thumbnail(&job).map(ByteBuf::from)
    }
}

fn make_thumbnail(job: &ThumbnailJob) -> Result<Vec<u8>, Rejected> {
    if job.width == 0 || job.width > MAX_WIDTH {
        return Err(Rejected::TooLarge(format!(
            "width {} is out of range; ask for 1 to {MAX_WIDTH}",
            job.width
        )));
    }
    let image = decode(&job.image, job.decoder_limits)?;
    let height = scaled_height(image.width(), image.height(), job.width)?;
    let resized = image.resize_exact(job.width, height, FilterType::Triangle);
    let mut png = Vec::new();
    resized
        .write_to(&mut Cursor::new(&mut png), ImageFormat::Png)
        .map_err(|e| {
            Rejected::Corrupt(format!(
                "the thumbnail could not be encoded: {}",
                one_line(&e)
            ))
        })?;
    Ok(png)
}

fn decode(bytes: &[u8], limits_on: bool) -> Result<DynamicImage, Rejected> {
    let reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| Rejected::Corrupt(format!("the image could not be read: {e}")))?;
    match reader.format() {
        Some(ImageFormat::Png | ImageFormat::Jpeg) => {}
        _ => {
            return Err(Rejected::NotAnImage(
                "the body is not a PNG or JPEG image; send one".to_owned(),
            ));
        }
    }
    let mut decoder = reader.into_decoder().map_err(corrupt)?;
    let (width, height) = decoder.dimensions();
    let limits = if limits_on {
        let mut limits = Limits::default();
        limits.max_image_width = Some(DECODER_MAX_SIDE);
        limits.max_image_height = Some(DECODER_MAX_SIDE);
        limits.max_alloc = Some(DECODER_MAX_ALLOC);
        limits
    } else {
        Limits::no_limits()
    };
    decoder
        .set_limits(limits)
        .map_err(|e| too_large(width, height, &e))?;
    DynamicImage::from_decoder(decoder).map_err(|e| match e {
        ImageError::Limits(_) => too_large(width, height, &e),
        other => corrupt(other),
    })
}

/// The thumbnail's height for `width`, keeping the aspect ratio (at least one pixel).
fn scaled_height(from_width: u32, from_height: u32, width: u32) -> Result<u32, Rejected> {
    let from_width = u64::from(from_width.max(1));
    let scaled = (u64::from(from_height) * u64::from(width) + from_width / 2) / from_width;
    match u32::try_from(scaled.max(1)) {
        Ok(height) if height <= MAX_HEIGHT => Ok(height),
        _ => Err(Rejected::TooLarge(format!(
            "a {width} pixel wide thumbnail of this image would be {scaled} pixels tall, more \
             than {MAX_HEIGHT}; ask for a smaller width"
        ))),
    }
}

fn corrupt(error: ImageError) -> Rejected {
    Rejected::Corrupt(format!("the image does not decode: {}", one_line(&error)))
}

fn too_large(width: u32, height: u32, error: &ImageError) -> Rejected {
    Rejected::TooLarge(format!(
        "the image declares {width}x{height} pixels, more than this server decodes \
         (at most {DECODER_MAX_SIDE} pixels a side and {} MiB): {}",
        DECODER_MAX_ALLOC >> 20,
        one_line(error)
    ))
}

/// An error's text on one line, without a trailing period.
fn one_line(error: &dyn std::fmt::Display) -> String {
    let text = error.to_string();
    let joined = text.split_whitespace().collect::<Vec<_>>().join(" ");
    joined.trim_end_matches('.').to_owned()
}
