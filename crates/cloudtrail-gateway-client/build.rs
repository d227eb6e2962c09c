//! Generates the client side of the gateway's API from the workspace's `proto/` (protox: pure Rust,
//! no protoc), so users of this crate need no build script; and, from the same descriptors, the
//! list of unary RPCs with whether each is a mutation (its request has a `request_id`), so that a
//! new RPC needs no line here.
use std::{fmt::Write, path::Path};

const PROTO_DIR: &str = "../../proto";
const PROTO: &str = "cloudtrail/gateway/v1/cloudtrail.proto";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed={PROTO_DIR}");
    let fds = protox::Compiler::new([Path::new(PROTO_DIR)])?
        .include_imports(true)
        .open_file(PROTO)?
        .file_descriptor_set();
    let rpcs = unary_rpcs(&fds)?;
    std::fs::write(Path::new(&std::env::var("OUT_DIR")?).join("rpcs.rs"), rpcs)?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(false)
        .compile_fds(fds)?;
    Ok(())
}

/// `reads!`, `writes!` and `unary_rpcs!` over the service's unary methods.
fn unary_rpcs(fds: &prost_types::FileDescriptorSet) -> Result<String, std::fmt::Error> {
    let short = |name: &str| name.rsplit('.').next().unwrap_or(name).to_owned();
    let fields = |message: &str| -> Vec<String> {
        fds.file
            .iter()
            .flat_map(|f| f.message_type.iter())
            .find(|m| m.name() == message)
            .map(|m| m.field.iter().map(|f| f.name().to_owned()).collect())
            .unwrap_or_default()
    };
    let (mut reads, mut writes, mut methods) = (String::new(), String::new(), String::new());
    let service = fds
        .file
        .iter()
        .flat_map(|f| f.service.iter())
        .find(|s| s.name() == "CloudTrailService");
    for method in service.iter().flat_map(|s| s.method.iter()) {
        if method.server_streaming() || method.client_streaming() {
            continue; // streams have their own methods
        }
        let (input, output) = (short(method.input_type()), short(method.output_type()));
        let list = if fields(&input).iter().any(|f| f == "request_id") {
            &mut writes
        } else {
            &mut reads
        };
        writeln!(list, "    {input},")?;
        writeln!(
            methods,
            "    {}({input}) -> {output};",
            snake(method.name())
        )?;
    }
    Ok(format!(
        "reads!(\n{reads});\nwrites!(\n{writes});\nunary_rpcs! {{\n{methods}}}\n"
    ))
}

/// `GetTrailStatus` → `get_trail_status`, as tonic names the client's methods.
fn snake(name: &str) -> String {
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}
