//! The kernel layer's checks, over every kernel of the crate (`fisherflow::all_kernels()`):
//! - every shader, in every variant the crate compiles (f32/f16 storage, scalar/vec4 rows),
//!   parses, validates and translates to SPIR-V (Vulkan), MSL (Metal) and HLSL (DX12) through
//!   naga: our proof that the kernels are portable;
//! - every parameter struct has the layout of its WGSL twin (names, offsets, size), and so has
//!   every other uniform a kernel binds (`fisherflow::shared_uniforms()`);
//! - every kernel's bindings have the names and numbers its shader declares, each binding slot
//!   of a shader has one name, and the workgroup size matches the WGSL;
//! - the activation codes of `kernels::Activation` are the `ACT_*` constants of lib/act.wgsl,
//!   and `gpu::WG` is the `WG` of lib/grid.wgsl;
//! - every file under `shaders/` is part of some shader.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use fisherflow::gpu::{KernelDef, ParamsLayout, ShaderDef, Variant};
use fisherflow::kernels::Activation;

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

struct Compiled {
    module: naga::Module,
    info: naga::valid::ModuleInfo,
}

fn compile(name: &str, source: &str) -> Result<Compiled, String> {
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
    Ok(Compiled { module, info })
}

fn translate(name: &str, source: &str) -> Result<Compiled, String> {
    let c = compile(name, source)?;
    let (module, info) = (&c.module, &c.info);
    let uses_f16 = source.contains("enable f16");
    let spv_opts = naga::back::spv::Options::default();
    naga::back::spv::write_vec(module, info, &spv_opts, None)
        .map_err(|e| format!("SPIR-V: {e}"))?;
    let msl_opts = naga::back::msl::Options {
        lang_version: (2, 4),
        ..Default::default()
    };
    naga::back::msl::write_string(module, info, &msl_opts, &Default::default())
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
        .write(module, info, None)
        .map_err(|e| format!("HLSL: {e}"))?;
    Ok(c)
}

/// Every shader of every kernel with each of its variants, deduplicated by name.
fn shaders() -> Vec<(&'static ShaderDef, Variant)> {
    let mut seen = BTreeMap::new();
    for k in fisherflow::all_kernels() {
        for &v in k.shader.variants() {
            seen.entry((k.shader.name(), format!("{v:?}")))
                .or_insert((k.shader, v));
        }
    }
    seen.into_values().collect()
}

/// A WGSL struct: its name, `(name, offset)` of every member, and its size.
type WgslLayout = (String, Vec<(String, u32)>, u32);

/// The layout of a struct type.
fn struct_layout(module: &naga::Module, ty: naga::Handle<naga::Type>) -> Option<WgslLayout> {
    let t = &module.types[ty];
    match &t.inner {
        naga::TypeInner::Struct { members, span } => Some((
            t.name.clone().unwrap_or_default(),
            members
                .iter()
                .map(|m| (m.name.clone().unwrap_or_default(), m.offset))
                .collect(),
            *span,
        )),
        _ => None,
    }
}

fn compare_layout(what: &str, rust: &ParamsLayout, wgsl: &WgslLayout) -> Result<(), String> {
    let (name, members, span) = wgsl;
    if name != rust.name {
        return Err(format!(
            "{what}: the WGSL struct is {name}, the Rust type {}",
            rust.name
        ));
    }
    if *span as usize != rust.size {
        return Err(format!(
            "{what}: {name} is {span} bytes in WGSL and {} in Rust",
            rust.size
        ));
    }
    let real = |n: &str| !n.starts_with('_');
    let w: Vec<_> = members.iter().filter(|(n, _)| real(n)).collect();
    let r: Vec<_> = rust.fields.iter().filter(|f| real(f.name)).collect();
    if w.len() != r.len() {
        return Err(format!(
            "{what}: {name} has fields {w:?} in WGSL and {r:?} in Rust"
        ));
    }
    for ((wn, wo), f) in w.iter().zip(&r) {
        if wn != f.name || *wo as usize != f.offset {
            return Err(format!(
                "{what}: {name}.{wn} at byte {wo} in WGSL, {}.{} at byte {} in Rust",
                rust.name, f.name, f.offset
            ));
        }
    }
    Ok(())
}

/// The globals one entry point uses, by binding number.
fn entry_bindings(
    c: &Compiled,
    entry: &str,
) -> Option<BTreeMap<u32, naga::Handle<naga::GlobalVariable>>> {
    let idx = c.module.entry_points.iter().position(|e| e.name == entry)?;
    let info = c.info.get_entry_point(idx);
    let mut out = BTreeMap::new();
    for (h, g) in c.module.global_variables.iter() {
        if let Some(b) = &g.binding {
            if !info[h].is_empty() {
                assert_eq!(b.group, 0, "{entry}: every binding lives in group 0");
                out.insert(b.binding, h);
            }
        }
    }
    Some(out)
}

/// Check one kernel against its compiled shader.
fn check_kernel(
    k: &KernelDef,
    c: &Compiled,
    shared: &HashMap<&str, ParamsLayout>,
) -> Result<(), String> {
    let what = k.label();
    let ep = c
        .module
        .entry_points
        .iter()
        .find(|e| e.name == k.entry)
        .ok_or_else(|| format!("{what}: no such entry point"))?;
    let size: u32 = ep.workgroup_size.iter().product();
    if size != k.workgroup {
        return Err(format!(
            "{what}: workgroup size {:?} in WGSL, {} declared",
            ep.workgroup_size, k.workgroup
        ));
    }
    let used = entry_bindings(c, k.entry).unwrap();
    let mut want: Vec<u32> = k
        .bindings
        .iter()
        .map(|n| {
            k.shader
                .slot(n)
                .ok_or_else(|| format!("{what}: binding {n:?} is not a slot of the shader"))
        })
        .collect::<Result<_, _>>()?;
    if k.params.is_some() {
        want.push(0);
    }
    want.sort();
    let got: Vec<u32> = used.keys().copied().collect();
    if got != want {
        return Err(format!(
            "{what}: the entry point uses bindings {got:?}, the kernel binds {want:?}"
        ));
    }
    for (&b, &h) in &used {
        let g = &c.module.global_variables[h];
        let name = g.name.clone().unwrap_or_default();
        let is_uniform = matches!(g.space, naga::AddressSpace::Uniform);
        if b == 0 {
            let layout = struct_layout(&c.module, g.ty)
                .ok_or_else(|| format!("{what}: binding 0 is not a struct"))?;
            let rust = k.params.as_ref().unwrap();
            compare_layout(&what, rust, &layout)?;
        } else if is_uniform {
            let layout = struct_layout(&c.module, g.ty)
                .ok_or_else(|| format!("{what}: uniform {name} is not a struct"))?;
            let rust = shared.get(layout.0.as_str()).ok_or_else(|| {
                format!(
                    "{what}: uniform struct {} has no Rust twin in shared_uniforms()",
                    layout.0
                )
            })?;
            compare_layout(&what, rust, &layout)?;
        }
    }
    Ok(())
}

/// Every global at a binding other than 0 has the name of its slot.
fn check_slots(s: &ShaderDef, c: &Compiled) -> Result<(), String> {
    for (_, g) in c.module.global_variables.iter() {
        let Some(b) = &g.binding else { continue };
        if b.binding == 0 {
            continue;
        }
        let name = g.name.clone().unwrap_or_default();
        let slot = s.slot_names().get(b.binding as usize - 1);
        if slot != Some(&name.as_str()) {
            return Err(format!(
                "{}: binding {} is called {name} in WGSL but {:?} in the shader's slots",
                s.name(),
                b.binding,
                slot
            ));
        }
    }
    Ok(())
}

#[test]
fn every_kernel_matches_its_shader_and_translates_everywhere() {
    let shared: HashMap<&str, ParamsLayout> = fisherflow::shared_uniforms()
        .into_iter()
        .map(|l| (l.name, l))
        .collect();
    let mut compiled = HashMap::new();
    let mut failures = Vec::new();
    for (s, v) in shaders() {
        let src = s.shader(v).unwrap();
        match translate(src.name, src.source) {
            Ok(c) => {
                if let Err(e) = check_slots(s, &c) {
                    failures.push(e);
                }
                compiled.insert((s.name(), v), (c, src.source));
            }
            Err(e) => failures.push(format!("{}: {e}", src.name)),
        }
    }
    let kernels = fisherflow::all_kernels();
    for k in &kernels {
        for &v in k.shader.variants() {
            if let Some((c, _)) = compiled.get(&(k.shader.name(), v)) {
                if let Err(e) = check_kernel(k, c, &shared) {
                    failures.push(format!("{e} ({v:?})"));
                }
            }
        }
    }
    // Every entry point of every shader is a kernel of the registry.
    for ((name, v), (c, _)) in &compiled {
        for ep in &c.module.entry_points {
            if !kernels
                .iter()
                .any(|k| k.shader.name() == *name && k.entry == ep.name)
            {
                failures.push(format!(
                    "{name} ({v:?}): entry point {} is no kernel",
                    ep.name
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "kernel layer checks failed:\n{}",
        failures.join("\n")
    );
    // Every file under shaders/ is part of some compiled shader, so none escapes the checks.
    for f in shader_files() {
        let text = std::fs::read_to_string(&f).unwrap();
        assert!(
            compiled.values().any(|(_, src)| src.contains(&text)),
            "{} is not part of any shader of fisherflow::all_kernels()",
            f.display()
        );
    }
    let f16 = compiled.keys().filter(|(_, v)| *v == Variant::F16).count();
    assert!(f16 >= 3, "the gemm kernels compile in f16 storage");
    eprintln!(
        "{} kernels in {} compiled shaders ({f16} f16 variants) check out and translate to \
         SPIR-V, MSL and HLSL",
        kernels.len(),
        compiled.len()
    );
}

#[test]
fn library_constants_match_the_host() {
    let src = fisherflow::gpu::lib::ACT.to_string() + fisherflow::gpu::lib::GRID;
    let c = compile("lib", &(src + "@compute @workgroup_size(1) fn main() {}")).unwrap();
    let value = |name: &str| -> u32 {
        let (_, k) = c
            .module
            .constants
            .iter()
            .find(|(_, k)| k.name.as_deref() == Some(name))
            .unwrap_or_else(|| panic!("no constant {name}"));
        match c.module.global_expressions[k.init] {
            naga::Expression::Literal(naga::Literal::U32(v)) => v,
            ref e => panic!("{name} is {e:?}"),
        }
    };
    for a in Activation::all() {
        assert_eq!(value(a.wgsl_const()), a.code().0, "{a:?}");
    }
    assert_eq!(value("WG"), fisherflow::gpu::WG);
}

#[test]
fn the_checks_can_fail() {
    // A broken shader: an undefined identifier and a type error.
    let bad = "@compute @workgroup_size(1) fn main() { let x: f32 = y + 1u; }";
    assert!(translate("bad.wgsl", bad).is_err());
    // A parameter struct whose WGSL twin has a field in another place.
    fisherflow::gpu_params! {
        struct Probe {
            a: u32,
            b: f32,
            _pad: [u32; 2],
        }
    }
    use fisherflow::gpu::Params;
    let src = "struct Probe { b: f32, a: u32, _p0: u32, _p1: u32 }
        @group(0) @binding(0) var<uniform> p: Probe;
        @compute @workgroup_size(1) fn main() { _ = p.a; }";
    let c = compile("probe", src).unwrap();
    let (_, g) = c.module.global_variables.iter().next().unwrap();
    let layout = struct_layout(&c.module, g.ty).unwrap();
    assert!(compare_layout("probe", &Probe::LAYOUT, &layout).is_err());
    let ok = "struct Probe { a: u32, b: f32, _p0: u32, _p1: u32 }
        @group(0) @binding(0) var<uniform> p: Probe;
        @compute @workgroup_size(1) fn main() { _ = p.a; }";
    let c = compile("probe", ok).unwrap();
    let (_, g) = c.module.global_variables.iter().next().unwrap();
    let layout = struct_layout(&c.module, g.ty).unwrap();
    compare_layout("probe", &Probe::LAYOUT, &layout).unwrap();
}
