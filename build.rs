//! Compiles the proto with protox (pure Rust, no protoc needed) and writes the descriptor set that the
//! reflection service serves, so grpcurl can `list` and `describe` with the proto's comments.
use std::{env, fs, path::PathBuf};

const PROTO: &str = "proto/cloudtrail/gateway/v1/cloudtrail.proto";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    let fds = protox::Compiler::new(["proto"])?
        .include_source_info(true)
        .include_imports(true)
        .open_file(PROTO)?
        .file_descriptor_set();

    let out = PathBuf::from(env::var("OUT_DIR")?);
    fs::write(
        out.join("cloudtrail_descriptor.bin"),
        prost::Message::encode_to_vec(&fds),
    )?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        // Unimplemented defaults let benchmarks serve a minimal subset of the service.
        .generate_default_stubs(true)
        .compile_fds(fds)?;
    Ok(())
}
