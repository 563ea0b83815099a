//! The model core is layered without cycles (`lib.rs` lists the layers): each module refers only
//! to modules of lower layers. Doc comments may point anywhere.

use std::collections::BTreeMap;

const LAYERS: &[(&str, u32)] = &[
    ("names", 0),
    ("layout", 0),
    ("arch", 1),
    ("decode", 1),
    ("metric", 2),
    ("contract", 3),
    ("preprocess", 4),
    ("onnx", 4),
    ("backend", 5),
    ("detector", 6),
];

fn module_of(path: &std::path::Path, src: &std::path::Path) -> String {
    let rel = path.strip_prefix(src).unwrap();
    rel.components().next().unwrap().as_os_str().to_string_lossy().trim_end_matches(".rs").to_string()
}

#[test]
fn modules_use_only_lower_layers() {
    let layer: BTreeMap<&str, u32> = LAYERS.iter().copied().collect();
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = vec![];
    let mut stack = vec![src.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") && p.file_name().unwrap() != "lib.rs" {
                files.push(p);
            }
        }
    }
    let mut checked = 0;
    for f in files {
        let own = module_of(&f, &src);
        let own_layer =
            *layer.get(own.as_str()).unwrap_or_else(|| panic!("module `{own}` is not in LAYERS: give it a layer"));
        for (n, line) in std::fs::read_to_string(&f).unwrap().lines().enumerate() {
            let code = line.split("//").next().unwrap();
            for (i, _) in code.match_indices("crate::") {
                let used: String = code[i + 7..].chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                if used == own || used == "named_enum" {
                    continue;
                }
                let l = *layer
                    .get(used.as_str())
                    .unwrap_or_else(|| panic!("{}:{}: unknown module `{used}`", f.display(), n + 1));
                assert!(
                    l < own_layer,
                    "{}:{}: `{own}` (layer {own_layer}) uses `{used}` (layer {l}): a cycle or an upward reference",
                    f.display(),
                    n + 1
                );
                checked += 1;
            }
        }
    }
    assert!(checked > 10, "only {checked} references seen: the scan is broken");
}
