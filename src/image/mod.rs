//! Image formats in and out: OCI layouts, OCI archives, `docker save` archives (legacy and
//! Docker 25+), verified on the way in and written atomically and deterministically.
pub mod config;
mod compress;
mod read;
mod source;
pub mod transport;
mod unpack;
mod write;

pub use compress::Compression;
pub use transport::{ImageName, Transport};
pub use read::{open, Image, LayerBlob, OpenOptions, Platform, SourceKind};
pub use unpack::{unpack, LayerStat, Unpacked};
pub use write::{build_layer, write_image, Format, LayerOut, OutputImage};

/// A full filesystem reported deep in a stage (as text, without a path) becomes an I/O
/// error on `dir`, the directory the step was writing, so the CLI can say which filesystem
/// is full and how much the step needed.
pub(crate) fn full_at(e: crate::error::Error, dir: &std::path::Path) -> crate::error::Error {
    let text = e.to_string();
    for code in [libc::ENOSPC, libc::EDQUOT] {
        if text.contains(&format!("(os error {code})")) {
            return crate::error::Error::io(dir, std::io::Error::from_raw_os_error(code));
        }
    }
    e
}
