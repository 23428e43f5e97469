//! Build support: finds the libtorch of the PyPI wheel (see scripts/setup-libtorch.sh), gives the
//! binaries an rpath to it, makes sure libtorch_cuda stays linked, and compiles the small C++ shim
//! in csrc/ against the same headers: `shim.cpp` always, and the CUDA-graph part `graph.cpp` when
//! libtorch has its CUDA backend and the CUDA runtime headers are found (the PyPI wheel brings
//! them as the `nvidia-cuda-runtime` package beside torch: `site-packages/nvidia/cu13/include` for
//! CUDA 13, `nvidia/cuda_runtime/include` for CUDA 12), else the stand-in `graph_stub.cpp`; and
//! the c10d part `dist.cpp` (TCPStore, ProcessGroupGloo) always, against the stand-in gloo
//! headers of `csrc/gloo_standin` (-isystem), with `dist_nccl.cpp` (ProcessGroupNCCL) when the
//! CUDA headers, NCCL's `nccl.h` and CCCL's `<nv/target>` are found, else `dist_nccl_stub.cpp`.
use std::path::{Path, PathBuf};

fn main() {
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    for f in [
        "csrc/shim.cpp",
        "csrc/graph.cpp",
        "csrc/graph_stub.cpp",
        "csrc/dist.h",
        "csrc/dist.cpp",
        "csrc/dist_nccl.cpp",
        "csrc/dist_nccl_stub.cpp",
        "csrc/gloo_standin",
    ] {
        println!("cargo:rerun-if-changed={f}");
    }
    println!("cargo:rerun-if-env-changed=CUDA_HOME");
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
    let has_cuda = lib.join("libtorch_cuda.so").exists();
    if has_cuda {
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed,-ltorch_cuda,--as-needed");
        println!("cargo:rustc-cfg=has_torch_cuda");
    }
    println!("cargo:rustc-check-cfg=cfg(has_torch_cuda)");
    println!("cargo:rustc-check-cfg=cfg(has_cuda_graph)");
    let mut shim = shim_build(&include);
    shim.file("csrc/shim.cpp");
    shim.compile("resnet_shim");
    let cuda_include = if has_cuda {
        cuda_include_dirs(&libtorch)
    } else {
        None
    };
    let mut graph = shim_build(&include);
    match &cuda_include {
        Some(dirs) => {
            for dir in dirs {
                graph.include(dir);
            }
            graph.file("csrc/graph.cpp");
            // graph.cpp calls into c10_cuda (streams, allocator) and torch_cuda (CUDAGraph).
            println!("cargo:rustc-link-search=native={}", lib.display());
            println!("cargo:rustc-link-arg=-Wl,--no-as-needed,-lc10_cuda,--as-needed");
            println!("cargo:rustc-cfg=has_cuda_graph");
        }
        None => {
            if has_cuda {
                println!(
                    "cargo:warning=CUDA runtime headers (with crt/host_config.h) not found beside \
                     {} (nvidia/*/include, triton) nor in $CUDA_HOME/include: building without \
                     CUDA graphs (run.cuda_graph)",
                    libtorch.display()
                );
            }
            graph.file("csrc/graph_stub.cpp");
        }
    }
    graph.compile("resnet_graph");
    dist_build(&libtorch, &include, cuda_include.as_deref());
}

/// The c10d shim: `dist.cpp` with Gloo, and NCCL's translation unit or its stub. One library, so
/// dist.cpp's call into the NCCL unit resolves whatever order the linker sees them in.
fn dist_build(libtorch: &Path, include: &Path, cuda_include: Option<&[PathBuf]>) {
    println!("cargo:rustc-check-cfg=cfg(has_nccl)");
    let mut dist = shim_build(include);
    dist.flag("-DUSE_C10D_GLOO")
        .flag("-isystem")
        .flag("csrc/gloo_standin")
        .file("csrc/dist.cpp");
    match cuda_include.and_then(|dirs| nccl_include_dirs(libtorch, dirs)) {
        Some(dirs) => {
            dist.flag("-DUSE_C10D_NCCL");
            for dir in &dirs {
                dist.include(dir);
            }
            dist.file("csrc/dist_nccl.cpp");
            println!("cargo:rustc-link-arg=-Wl,--no-as-needed,-lc10_cuda,--as-needed");
            println!("cargo:rustc-cfg=has_nccl");
        }
        None => {
            if cuda_include.is_some() {
                println!(
                    "cargo:warning=NCCL's nccl.h (nvidia/nccl/include beside torch) or CCCL's \
                     <nv/target> (pip nvidia-cuda-cccl==13.0.85, see scripts/setup-libtorch.sh) \
                     not found: building without NCCL (run.dist_backend = nccl is an error)"
                );
            }
            dist.file("csrc/dist_nccl_stub.cpp");
        }
    }
    dist.compile("resnet_dist");
}

/// The include folders ProcessGroupNCCL.hpp needs beyond the CUDA runtime's: NCCL's (the wheel's
/// `nvidia-nccl` dependency, `site-packages/nvidia/nccl/include`) and one holding CCCL's
/// `nv/target` (the pip package nvidia-cuda-cccl installs it into `nvidia/cu13/include`; a CUDA
/// toolkit has it in `$CUDA_HOME/include`). None when either is missing.
fn nccl_include_dirs(libtorch: &Path, cuda: &[PathBuf]) -> Option<Vec<PathBuf>> {
    let torch = std::fs::canonicalize(libtorch).unwrap_or_else(|_| libtorch.to_path_buf());
    let nccl = torch.parent()?.join("nvidia/nccl/include");
    if !nccl.join("nccl.h").is_file() {
        return None;
    }
    let mut dirs = cuda.to_vec();
    dirs.push(nccl);
    if !dirs.iter().any(|d| d.join("nv/target").is_file()) {
        let mut toolkit = Vec::new();
        if let Ok(home) = std::env::var("CUDA_HOME") {
            toolkit.push(PathBuf::from(home).join("include"));
        }
        toolkit.push(PathBuf::from("/usr/local/cuda/include"));
        dirs.push(
            toolkit
                .into_iter()
                .find(|d| d.join("nv/target").is_file())?,
        );
    }
    Some(dirs)
}

/// The C++ build shared by both shim files: libtorch's headers, its ABI and C++ standard.
fn shim_build(include: &Path) -> cc::Build {
    let mut b = cc::Build::new();
    b.cpp(true)
        .pic(true)
        .warnings(false)
        .include(include)
        .include(include.join("torch/csrc/api/include"))
        .flag("-std=c++17")
        .flag("-D_GLIBCXX_USE_CXX11_ABI=1")
        .flag("-DGLOG_USE_GLOG_EXPORT");
    b
}

/// The include folders for the CUDA runtime headers: the folder holding `cuda_runtime_api.h`
/// beside the torch package (the wheel's `nvidia-cuda-runtime` dependency, so a fresh clone after
/// scripts/setup-libtorch.sh finds it), else `$CUDA_HOME/include`, else `/usr/local/cuda/include`.
///
/// Those wheel headers include `crt/host_config.h` and `crt/host_defines.h`, which live in the
/// separate `nvidia-cuda-crt` package that torch does not install. When they are missing, a
/// folder that has them is added after it: triton's copy of the CUDA headers (triton is a
/// dependency of the same torch wheel) or a CUDA toolkit's. They only hold host-compiler
/// configuration macros; every type and function still comes from the runtime folder.
fn cuda_include_dirs(libtorch: &Path) -> Option<Vec<PathBuf>> {
    let torch = std::fs::canonicalize(libtorch).unwrap_or_else(|_| libtorch.to_path_buf());
    let site = torch.parent().map(Path::to_path_buf);
    let mut runtime = Vec::new();
    if let Some(site) = &site {
        let nvidia = site.join("nvidia");
        // cu13 first (torch 2.11's default wheel), then cuda_runtime (CUDA 12 wheels), then any.
        runtime.push(nvidia.join("cu13/include"));
        runtime.push(nvidia.join("cuda_runtime/include"));
        if let Ok(entries) = std::fs::read_dir(&nvidia) {
            let mut others: Vec<PathBuf> = entries
                .filter_map(|e| e.ok().map(|e| e.path().join("include")))
                .collect();
            others.sort();
            runtime.extend(others);
        }
    }
    let mut toolkit = Vec::new();
    if let Ok(home) = std::env::var("CUDA_HOME") {
        toolkit.push(PathBuf::from(home).join("include"));
    }
    toolkit.push(PathBuf::from("/usr/local/cuda/include"));
    runtime.extend(toolkit.iter().cloned());
    let main = runtime
        .into_iter()
        .find(|d| d.join("cuda_runtime_api.h").is_file())?;
    let has_crt =
        |d: &Path| d.join("crt/host_config.h").is_file() && d.join("crt/host_defines.h").is_file();
    if has_crt(&main) {
        return Some(vec![main]);
    }
    let mut crt = Vec::new();
    if let Some(site) = &site {
        crt.push(site.join("triton/backends/nvidia/include"));
    }
    crt.extend(toolkit);
    let extra = crt.into_iter().find(|d| has_crt(d))?;
    Some(vec![main, extra])
}
