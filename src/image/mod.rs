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
