//! Generates the policy protocol types (package tero.policy.v1) and the PolicyService gRPC
//! client and server from the .proto files under proto/, in pure Rust (no protoc).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "proto/tero/policy/v1/policy.proto",
        "proto/tero/policy/v1/shared.proto",
        "proto/tero/policy/v1/log.proto",
        "proto/tero/policy/v1/metric.proto",
        "proto/tero/policy/v1/trace.proto",
        "proto/tero/policy/v1/extension.proto",
    ];
    for f in &files {
        println!("cargo:rerun-if-changed={f}");
    }
    println!("cargo:rerun-if-changed=proto/opentelemetry/proto/common/v1/common.proto");
    let descriptors = protox::compile(files, ["proto"])?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        // KeyValue is the OpenTelemetry type the rest of Weir uses.
        .extern_path(
            ".opentelemetry.proto.common.v1",
            "::opentelemetry_proto::tonic::common::v1",
        )
        .compile_fds(descriptors)?;
    Ok(())
}
