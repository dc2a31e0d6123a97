//! Compiles proto/batch.proto with protox (no protoc needed) into prost types.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/batch.proto");
    let descriptors = protox::compile(["proto/batch.proto"], ["proto"])?;
    prost_build::Config::new()
        .btree_map(["."])
        .compile_fds(descriptors)?;
    Ok(())
}
