//! Generates the client side of the gateway's API from the workspace's `proto/` (protox: pure Rust,
//! no protoc), so users of this crate need no build script.
use std::path::Path;

const PROTO_DIR: &str = "../../proto";
const PROTO: &str = "cloudtrail/gateway/v1/cloudtrail.proto";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed={PROTO_DIR}");
    let fds = protox::Compiler::new([Path::new(PROTO_DIR)])?
        .include_imports(true)
        .open_file(PROTO)?
        .file_descriptor_set();
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(false)
        .compile_fds(fds)?;
    Ok(())
}
