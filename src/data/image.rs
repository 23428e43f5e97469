//! Image operations of §3.4's (and §4.2's) data pipeline, one copy each: decoding a JPEG or PNG
//! under size limits, resizing to a shorter side, cropping, and laying pixels out as [3, H, W]
//! planes. The transforms (scale augmentation, 10-crop, multi-scale views) are built from these.
use anyhow::{anyhow, bail, Context, Result};
use fast_image_resize as fir;
use image::RgbImage;
use std::fs;
use std::path::Path;
use tch::{Device, Tensor};

/// Longest image side accepted, in pixels.
pub const MAX_SIDE: u32 = 1 << 15;

/// Most pixels accepted in one image (8192×8192; 192 MiB as RGB). ImageNet's largest photos have
/// a fifth of that.
pub const MAX_PIXELS: u64 = 1 << 26;

/// Largest image file read, in bytes.
pub const MAX_FILE_BYTES: u64 = 256 << 20;

/// Refuses image sizes past [`MAX_SIDE`] or [`MAX_PIXELS`], before anything is decoded.
pub fn check_dims(path: &Path, (w, h): (u32, u32)) -> Result<()> {
    if w == 0 || h == 0 || w > MAX_SIDE || h > MAX_SIDE || w as u64 * h as u64 > MAX_PIXELS {
        bail!(
            "{}: {w}x{h} pixels, outside the accepted image sizes (1 to {MAX_SIDE} pixels a \
             side, at most {MAX_PIXELS} pixels in all)",
            path.display()
        );
    }
    Ok(())
}

fn unreadable(path: &Path, e: impl std::fmt::Display) -> anyhow::Error {
    let why = e.to_string().replace(['\n', '\r'], " ");
    anyhow!("{}: not a readable JPEG/PNG image ({why})", path.display())
}

/// A JPEG or PNG (recognised by content, not by name) decoded to RGB. The file size and the
/// dimensions in the header are checked ([`MAX_FILE_BYTES`], [`check_dims`]) before any pixel is
/// decoded, and the decoder runs under the same limits.
pub fn decode_rgb(path: &Path) -> Result<image::RgbImage> {
    let len = fs::metadata(path)
        .with_context(|| format!("cannot read {}", path.display()))?
        .len();
    if len > MAX_FILE_BYTES {
        bail!(
            "{}: {len} bytes, larger than any accepted image ({MAX_FILE_BYTES} bytes)",
            path.display()
        );
    }
    let bytes = fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    if bytes.starts_with(&[0xFF, 0xD8]) && !jpeg_is_whole(&bytes) {
        bail!(
            "{}: a truncated JPEG (its data end before the end-of-image marker: an interrupted \
             copy or download?); refusing it rather than decoding the missing part as grey",
            path.display()
        );
    }
    let reader = || {
        image::ImageReader::new(std::io::Cursor::new(&bytes[..]))
            .with_guessed_format()
            .map_err(|e| unreadable(path, e))
    };
    let dims = reader()?
        .into_dimensions()
        .map_err(|e| unreadable(path, e))?;
    check_dims(path, dims)?;
    let mut r = reader()?;
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    r.limits(limits);
    Ok(r.decode().map_err(|e| unreadable(path, e))?.into_rgb8())
}

/// Whether a JPEG's bytes reach its end-of-image marker (EOI) after its scans, as a decoder that
/// refuses truncated files (libjpeg under PIL) requires; the decoder used here fills a truncated
/// scan with grey instead. The segments before the first scan are skipped by their lengths (an
/// EXIF thumbnail's own markers are inside one); in entropy-coded data a 0xFF byte is followed
/// by 0x00 (stuffing), a restart marker or fill, so any other marker is real: EOI ends the image,
/// the others (the tables and scans of a progressive JPEG) are segments with a length.
pub(crate) fn jpeg_is_whole(b: &[u8]) -> bool {
    let seg_len = |i: usize| {
        b.get(i..i + 2)
            .map(|l| u16::from_be_bytes([l[0], l[1]]) as usize)
    };
    let mut i = 2;
    while i + 1 < b.len() {
        if b[i] != 0xFF {
            // Entropy-coded data, or stray bytes between segments (which libjpeg skips too).
            i += 1;
            continue;
        }
        match b[i + 1] {
            0xD9 => return true,
            0x00 | 0xFF | 0xD0..=0xD7 | 0x01 => i += if b[i + 1] == 0xFF { 1 } else { 2 },
            _ => {
                let Some(len) = seg_len(i + 2).filter(|&l| l >= 2) else {
                    return false;
                };
                // A scan's header is a segment too; its entropy-coded data follow it.
                i += 2 + len;
            }
        }
    }
    false
}

/// Width and height of an image from its header, checked by [`check_dims`].
pub fn probe_size(path: &Path) -> Result<(u32, u32)> {
    let dims = image::ImageReader::open(path)
        .and_then(|r| r.with_guessed_format())
        .map_err(|e| unreadable(path, e))?
        .into_dimensions()
        .map_err(|e| unreadable(path, e))?;
    check_dims(path, dims)?;
    Ok(dims)
}

/// Writes an RGB image as [3, H, W] planes.
pub fn to_chw(img: &image::RgbImage, out: &mut [u8]) {
    let (w, h) = img.dimensions();
    let plane = (w * h) as usize;
    for (i, p) in img.pixels().enumerate() {
        out[i] = p[0];
        out[plane + i] = p[1];
        out[2 * plane + i] = p[2];
    }
}

/// Longest side over shorter side accepted for a streamed image: resizing the shorter side to
/// the largest scale (§3.4: 480) keeps the longer one within 16 × 480 pixels, so one absurd panorama (1×30000)
/// cannot make a resize allocate gigabytes.
pub const MAX_ASPECT: u32 = 16;

/// [`decode_rgb`] for streaming: also refuses aspect ratios past [`MAX_ASPECT`].
pub fn decode_streamable(path: &std::path::Path) -> Result<RgbImage> {
    let img = decode_rgb(path)?;
    let (w, h) = img.dimensions();
    if w.max(h) / w.min(h).max(1) > MAX_ASPECT {
        bail!(
            "{}: {w}x{h} pixels, a longer side more than {MAX_ASPECT} times the shorter one; \
             such an image cannot be resized to the 224x224 views of §3.4",
            path.display()
        );
    }
    Ok(img)
}

/// Size of an image of size `(w, h)` resized so that its shorter side is `s` (aspect kept).
pub fn resized_dims((w, h): (u32, u32), s: u32) -> (u32, u32) {
    if w <= h {
        (s, ((h as u64 * s as u64 + w as u64 / 2) / w as u64) as u32)
    } else {
        (((w as u64 * s as u64 + h as u64 / 2) / h as u64) as u32, s)
    }
}

/// The `crop`×`crop` crop at (`y`, `x`) of `img` resized to shorter side `s`, computed by resizing only
/// the source window that maps onto the crop (the exact, sub-pixel window of the full resize):
/// the view of `resize_shorter` then crop, at a fraction of the cost (for s = 480 the full
/// resize writes about 6 times as many pixels as the crop has).
pub fn scaled_crop(img: &RgbImage, s: u32, y: u32, x: u32, crop: u32) -> RgbImage {
    let (w, h) = img.dimensions();
    let (nw, nh) = resized_dims((w, h), s);
    let (fx, fy) = (w as f64 / nw as f64, h as f64 / nh as f64);
    let window = (
        x as f64 * fx,
        y as f64 * fy,
        crop as f64 * fx,
        crop as f64 * fy,
    );
    resize_window(img, window, (crop, crop))
}

/// Resizes so that the shorter side is `s` (bilinear, aspect kept).
pub fn resize_shorter(img: &RgbImage, s: u32) -> RgbImage {
    let (w, h) = img.dimensions();
    let (nw, nh) = resized_dims((w, h), s);
    if (nw, nh) == (w, h) {
        return img.clone();
    }
    resize_window(img, (0.0, 0.0, w as f64, h as f64), (nw, nh))
}

/// Resizes the whole image to `size` (bilinear, antialiased as [`resize_shorter`]); the same
/// image when the size is its own. Faster R-CNN's detection scale (`data::detection::transforms`).
pub fn resize_to(img: &RgbImage, size: (u32, u32)) -> RgbImage {
    let (w, h) = img.dimensions();
    if size == (w, h) {
        return img.clone();
    }
    resize_window(img, (0.0, 0.0, w as f64, h as f64), size)
}

/// The source window (left, top, width, height; fractional) of `img` resized to `size` with the
/// bilinear tent filter widened by the downscale factor (antialiased, as PIL's and torchvision's
/// bilinear resize and the image crate's `Triangle`), by `fast_image_resize`: SIMD (AVX2/SSE4.1
/// where the CPU has them) on fixed-point weights. Measured on the Imagewoof photographs with
/// `resnet data bench --stream`, 1 core (results/bench/loader_imagewoof.md): +5 % for the whole
/// §3.4 training transform over the image crate's float resize (257–297 vs 248–282 images/s);
/// the larger gain was elsewhere (the flip and the in-place float ops of `data::stream`:
/// 905–963 images/s, ~4× torchvision + PIL). Decoding (zune-jpeg, on par with PIL's
/// libjpeg-turbo: 1,441–1,556 images/s) is now the floor; libjpeg-turbo's DCT-domain scaling
/// would not apply (a 320 px shorter side scaled to 256–480 is never at most half the source).
fn resize_window(img: &RgbImage, window: (f64, f64, f64, f64), size: (u32, u32)) -> RgbImage {
    let (w, h) = img.dimensions();
    let src = fir::images::ImageRef::new(w, h, img.as_raw(), fir::PixelType::U8x3)
        .expect("an RgbImage holds w*h*3 bytes");
    let mut dst = fir::images::Image::new(size.0, size.1, fir::PixelType::U8x3);
    let (left, top, cw, ch) = window;
    let opts = fir::ResizeOptions::new()
        .resize_alg(fir::ResizeAlg::Convolution(fir::FilterType::Bilinear))
        .crop(
            left.clamp(0.0, w as f64),
            top.clamp(0.0, h as f64),
            cw.min(w as f64 - left).max(1e-3),
            ch.min(h as f64 - top).max(1e-3),
        );
    fir::Resizer::new()
        .resize(&src, &mut dst, &opts)
        .expect("same pixel type, non-empty images");
    RgbImage::from_raw(size.0, size.1, dst.into_vec()).expect("size.0*size.1*3 bytes")
}

/// Copies the `size`×`size` window at (`y`, `x`) into `out` as [3, size, size] planes.
pub fn crop_chw(img: &RgbImage, y: u32, x: u32, size: u32, out: &mut [u8]) {
    let plane = (size * size) as usize;
    let raw = img.as_raw();
    let w = img.width() as usize;
    for r in 0..size as usize {
        let row = ((y as usize + r) * w + x as usize) * 3;
        for c in 0..size as usize {
            let p = row + 3 * c;
            let o = r * size as usize + c;
            out[o] = raw[p];
            out[plane + o] = raw[p + 1];
            out[2 * plane + o] = raw[p + 2];
        }
    }
}

/// Mirrors [3, `size`, `size`] planes left to right in place (the §3.4 horizontal flip).
pub fn mirror_chw(planes: &mut [u8], size: usize) {
    for row in planes.chunks_exact_mut(size) {
        row.reverse();
    }
}

/// An image as a new buffer of [3, H, W] planes ([`to_chw`]).
pub fn chw_planes(img: &RgbImage) -> Vec<u8> {
    let mut out = vec![0u8; 3 * img.width() as usize * img.height() as usize];
    to_chw(img, &mut out);
    out
}

/// [N, 3, H, W] uint8 images (any device) as host images.
pub fn to_rgb_images(images: &Tensor) -> Vec<RgbImage> {
    let (n, _, h, w) = images.size4().expect("a 4-d image batch");
    let hwc = images
        .to_device(Device::Cpu)
        .permute([0, 2, 3, 1])
        .contiguous();
    let raw: Vec<u8> = Vec::try_from(hwc.view([-1])).expect("uint8 images");
    let per = (h * w * 3) as usize;
    (0..n as usize)
        .map(|i| {
            RgbImage::from_raw(w as u32, h as u32, raw[i * per..(i + 1) * per].to_vec())
                .expect("buffer of the image's size")
        })
        .collect()
}
