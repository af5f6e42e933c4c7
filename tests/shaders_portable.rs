//! Every shader the crate compiles (`fisherflow::kernels::all_shaders()`: files with their
//! preludes, storage-generic ones in f32 and f16) must parse, validate, and translate to SPIR-V
//! (Vulkan), MSL (Metal) and HLSL (DX12) through naga: our proof that the kernels are portable.
//! Every file under `shaders/` must be part of one of them.

use std::path::PathBuf;

/// Every `.wgsl` file under `shaders/`, subfolders included.
fn shader_files() -> Vec<PathBuf> {
    fn walk(dir: &std::path::Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).expect("shaders/ exists") {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|e| e == "wgsl") {
                out.push(p);
            }
        }
    }
    let mut files = Vec::new();
    walk(
        &PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("shaders"),
        &mut files,
    );
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
    // The shaders as the crate compiles them: files composed with their preludes, storage-
    // generic ones in f32 and in f16.
    let shaders = fisherflow::kernels::all_shaders();
    let mut failures = Vec::new();
    for s in &shaders {
        if let Err(e) = translate(s.name, s.source) {
            failures.push(format!("{}: {e}", s.name));
        }
    }
    assert!(
        failures.is_empty(),
        "shaders failing portability:\n{}",
        failures.join("\n")
    );
    let f16 = shaders
        .iter()
        .filter(|s| s.source.contains("enable f16"))
        .count();
    assert_eq!(f16, 3, "one f16 variant per storage-generic shader");
    // Every file under shaders/ is part of some compiled shader, so none escapes the check.
    for f in shader_files() {
        let text = std::fs::read_to_string(&f).unwrap();
        assert!(
            shaders.iter().any(|s| s.source.contains(&text)),
            "{} is not part of any shader in fisherflow::kernels::all_shaders()",
            f.display()
        );
    }
    eprintln!(
        "{} shaders ({f16} of them f16 variants) translate to SPIR-V, MSL and HLSL",
        shaders.len()
    );
}

#[test]
fn a_broken_shader_is_caught() {
    // The checker itself must be able to fail: an undefined identifier and a type error.
    let bad = "@compute @workgroup_size(1) fn main() { let x: f32 = y + 1u; }";
    assert!(translate("bad.wgsl", bad).is_err());
}
