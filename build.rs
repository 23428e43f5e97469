//! Build support: finds the libtorch of the PyPI wheel (see scripts/setup-libtorch.sh), gives the
//! binaries an rpath to it, makes sure libtorch_cuda stays linked, and compiles the small C++ shim
//! in csrc/ against the same headers.
use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    println!("cargo:rerun-if-changed=csrc/shim.cpp");
    let libtorch = match std::env::var("LIBTORCH") {
        Ok(p) => PathBuf::from(p),
        Err(_) => {
            panic!("LIBTORCH is not set: run scripts/setup-libtorch.sh (or use scripts/resnet)")
        }
    };
    let lib = libtorch.join("lib");
    let include = libtorch.join("include");
    if !lib.join("libtorch_cpu.so").exists() || !include.exists() {
        panic!(
            "libtorch not found at {}: run scripts/setup-libtorch.sh (installs torch==2.11.0 into .venv)",
            libtorch.display()
        );
    }
    // RUNPATH: LD_LIBRARY_PATH still wins, which is how the binary finds another copy of the
    // same libtorch on the GPU machine.
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display());
    // torch-sys links torch_cuda, but rustc passes --as-needed and nothing references its
    // symbols, so the CUDA backend would be silently dropped: force it to stay.
    if lib.join("libtorch_cuda.so").exists() {
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed,-ltorch_cuda,--as-needed");
        println!("cargo:rustc-cfg=has_torch_cuda");
    }
    println!("cargo:rustc-check-cfg=cfg(has_torch_cuda)");
    cc::Build::new()
        .cpp(true)
        .pic(true)
        .warnings(false)
        .include(&include)
        .include(include.join("torch/csrc/api/include"))
        .flag("-std=c++17")
        .flag("-D_GLIBCXX_USE_CXX11_ABI=1")
        .flag("-DGLOG_USE_GLOG_EXPORT")
        .file("csrc/shim.cpp")
        .compile("resnet_shim");
}
