//! Every WGSL file under `shaders/` must parse, validate, and translate to SPIR-V (Vulkan),
//! MSL (Metal) and HLSL (DX12) through naga: our proof that the kernels are portable.

use std::path::PathBuf;

fn shader_files() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("shaders");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("shaders/ exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "wgsl"))
        .collect();
    files.sort();
    files
}

fn translate(name: &str, source: &str) -> Result<(), String> {
    let module = naga::front::wgsl::parse_str(source)
        .map_err(|e| format!("parse: {}", e.emit_to_string(source)))?;
    let uses_f16 = source.contains("enable f16");
    let mut caps = naga::valid::Capabilities::default() | naga::valid::Capabilities::SUBGROUP;
    if uses_f16 {
        caps |= naga::valid::Capabilities::SHADER_FLOAT16;
    }
    let info = naga::valid::Validator::new(naga::valid::ValidationFlags::all(), caps)
        .subgroup_stages(naga::valid::ShaderStages::COMPUTE)
        .subgroup_operations(naga::valid::SubgroupOperationSet::all())
        .validate(&module)
        .map_err(|e| format!("validate: {}", e.emit_to_string(source)))?;
    if module.entry_points.is_empty() {
        return Err(format!("{name} has no entry point"));
    }

    let spv_opts = naga::back::spv::Options::default();
    naga::back::spv::write_vec(&module, &info, &spv_opts, None)
        .map_err(|e| format!("SPIR-V: {e}"))?;

    let msl_opts = naga::back::msl::Options {
        lang_version: (2, 4),
        ..Default::default()
    };
    naga::back::msl::write_string(&module, &info, &msl_opts, &Default::default())
        .map_err(|e| format!("MSL: {e}"))?;

    let hlsl_opts = naga::back::hlsl::Options {
        shader_model: if uses_f16 {
            naga::back::hlsl::ShaderModel::V6_2
        } else {
            naga::back::hlsl::ShaderModel::V6_0
        },
        ..Default::default()
    };
    let mut out = String::new();
    naga::back::hlsl::Writer::new(&mut out, &hlsl_opts, &Default::default())
        .write(&module, &info, None)
        .map_err(|e| format!("HLSL: {e}"))?;
    Ok(())
}

#[test]
fn every_shader_translates_to_spirv_msl_and_hlsl() {
    let files = shader_files();
    assert!(!files.is_empty(), "no shaders found");
    let mut failures = Vec::new();
    for f in &files {
        let src = std::fs::read_to_string(f).unwrap();
        let name = f.file_name().unwrap().to_string_lossy().to_string();
        if let Err(e) = translate(&name, &src) {
            failures.push(format!("{name}: {e}"));
        }
    }
    assert!(
        failures.is_empty(),
        "shaders failing portability:\n{}",
        failures.join("\n")
    );
    eprintln!("{} shaders translate to SPIR-V, MSL and HLSL", files.len());
}

#[test]
fn f16_variants_translate_too() {
    use fisherflow::kernels::{storage_generic_shaders, Precision};
    let mut failures = Vec::new();
    for g in storage_generic_shaders() {
        for p in [Precision::F32, Precision::F16] {
            let s = g.shader(p);
            assert_eq!(
                s.source.contains("enable f16"),
                p == Precision::F16,
                "{}: the header was not swapped",
                s.name
            );
            if let Err(e) = translate(s.name, s.source) {
                failures.push(format!("{}: {e}", s.name));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn a_broken_shader_is_caught() {
    // The checker itself must be able to fail: an undefined identifier and a type error.
    let bad = "@compute @workgroup_size(1) fn main() { let x: f32 = y + 1u; }";
    assert!(translate("bad.wgsl", bad).is_err());
}
