//! Generates Rust code for our .proto files. There is no `protoc` on the build machines:
//! protox parses the files into a descriptor set, which tonic-prost-build turns into code.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "dapr/proto/internals/v1/service_invocation.proto",
        "dapr/proto/operator/v1/operator.proto",
        "dapr/proto/sentry/v1/sentry.proto",
        "opentelemetry/proto/collector/trace/v1/trace_service.proto",
    ];
    let descriptors = protox::compile(files, ["."])?;
    tonic_prost_build::configure()
        // Common types are the official `dapr` crate's, so values pass between the public
        // API and the internal one without conversion.
        .extern_path(".dapr.proto.common.v1", "::dapr::dapr::proto::common::v1")
        .compile_fds(descriptors)?;
    println!("cargo:rerun-if-changed=dapr");
    println!("cargo:rerun-if-changed=opentelemetry");
    Ok(())
}
