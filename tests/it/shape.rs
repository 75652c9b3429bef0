//! The shape of the code: the module graph follows the flow drawn in `src/lib.rs`. `model` (the
//! vocabulary) imports nothing of ours; each stage imports only the stages before it; only the
//! spine (`poll`), the daemon and the CLI sit above the stages. A backward import (a stage
//! reaching for a later one, or for the spine) fails here with the file and the path it named.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use syn::visit::Visit;

/// Top-level modules in flow order; a module may use those before it, never one after it.
const FLOW: &[&str] = &[
    "model", "text", "config", "schedule", "fetch", "decode", "parse", "dedupe", "content", "filter",
    "store", "lists", "output", "push", "serve", "poll", "daemon", "cli",
];

/// Every `crate::NAME` a file names, in `use` trees or in paths.
#[derive(Default)]
struct CratePaths(BTreeSet<String>);

impl<'ast> Visit<'ast> for CratePaths {
    fn visit_item_use(&mut self, item: &'ast syn::ItemUse) {
        fn walk(tree: &syn::UseTree, under_crate: bool, out: &mut BTreeSet<String>) {
            match tree {
                syn::UseTree::Path(p) if !under_crate => walk(&p.tree, p.ident == "crate", out),
                syn::UseTree::Path(p) => {
                    out.insert(p.ident.to_string());
                }
                syn::UseTree::Name(n) if under_crate => {
                    out.insert(n.ident.to_string());
                }
                syn::UseTree::Rename(r) if under_crate => {
                    out.insert(r.ident.to_string());
                }
                syn::UseTree::Group(g) => g.items.iter().for_each(|t| walk(t, under_crate, out)),
                _ => {}
            }
        }
        walk(&item.tree, false, &mut self.0);
    }

    fn visit_path(&mut self, path: &'ast syn::Path) {
        let mut segments = path.segments.iter();
        if let (Some(first), Some(second)) = (segments.next(), segments.next())
            && first.ident == "crate"
        {
            self.0.insert(second.ident.to_string());
        }
        syn::visit::visit_path(self, path);
    }
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn every_stage_imports_only_the_stages_before_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let mut backward = Vec::new();
    let mut checked = 0;
    for file in &files {
        let relative = file.strip_prefix(&src).unwrap();
        let first = relative
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy();
        let module = first.trim_end_matches(".rs");
        if module == "lib" || module == "main" {
            continue;
        }
        let rank = FLOW.iter().position(|m| *m == module).unwrap_or_else(|| {
            panic!("src/{module} is not in the flow of tests/it/shape.rs (and src/lib.rs)")
        });
        let syntax = syn::parse_file(&std::fs::read_to_string(file).unwrap())
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let mut paths = CratePaths::default();
        paths.visit_file(&syntax);
        checked += 1;
        for used in paths.0 {
            let Some(used_rank) = FLOW.iter().position(|m| *m == used) else {
                continue; // a crate-root item, not a module
            };
            if used_rank > rank || (module == "model" && used != "model") {
                backward.push(format!("src/{}: {module} uses crate::{used}", relative.display()));
            }
        }
    }
    assert!(checked > 40, "only {checked} files read under {}", src.display());
    assert!(
        backward.is_empty(),
        "imports against the flow ({}):\n  {}",
        FLOW.join(" → "),
        backward.join("\n  ")
    );
}

#[test]
fn the_flow_here_is_the_flow_in_lib_rs() {
    let lib = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/lib.rs")).unwrap();
    let declared: Vec<&str> = lib
        .lines()
        .filter_map(|l| l.strip_prefix("mod ")?.strip_suffix(';'))
        .collect();
    assert_eq!(declared, FLOW, "src/lib.rs declares its modules in flow order");
}

/// Every identifier a file's code names (paths, `use` trees, types), not its strings or
/// comments.
#[derive(Default)]
struct Names(BTreeSet<String>);

impl<'ast> Visit<'ast> for Names {
    fn visit_ident(&mut self, ident: &'ast syn::Ident) {
        self.0.insert(ident.to_string());
    }
}

/// The store is one interface with a backend per engine behind it: nothing outside
/// `src/store/` names an engine's module, crate or types, so a third backend, or a change
/// inside one, touches the store alone. (Messages may say "PostgreSQL"; code may not reach it.)
#[test]
fn nothing_outside_the_store_names_a_backend() {
    const ENGINE: &[&str] = &[
        "postgres",
        "tokio_postgres",
        "deadpool",
        "deadpool_postgres",
        "PgStore",
        "PgCoordination",
        "sqlite",
        "rusqlite",
        "SqliteStore",
    ];
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut named = Vec::new();
    for file in &files {
        if file.starts_with(src.join("store")) {
            continue;
        }
        let syntax = syn::parse_file(&std::fs::read_to_string(file).unwrap())
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let mut names = Names::default();
        names.visit_file(&syntax);
        for name in names.0.iter().filter(|n| ENGINE.contains(&n.as_str())) {
            named.push(format!("{}: {name}", file.strip_prefix(&src).unwrap().display()));
        }
    }
    assert!(files.len() > 40, "only {} files read", files.len());
    assert!(
        named.is_empty(),
        "backends named outside src/store:\n  {}",
        named.join("\n  ")
    );
}

/// No file of `src/` holds more than one engineer keeps in mind: past this many lines a file is
/// split by what it owns (its tests in their own file first).
const MAX_LINES: usize = 800;

#[test]
fn no_source_file_is_longer_than_the_limit() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut long: Vec<String> = files
        .iter()
        .filter_map(|file| {
            let lines = std::fs::read_to_string(file).unwrap().lines().count();
            (lines > MAX_LINES)
                .then(|| format!("{}: {lines} lines", file.strip_prefix(&src).unwrap().display()))
        })
        .collect();
    long.sort();
    assert!(files.len() > 40, "only {} files read", files.len());
    assert!(
        long.is_empty(),
        "files of src/ over {MAX_LINES} lines:\n  {}",
        long.join("\n  ")
    );
}

/// The public API is what `src/lib.rs` re-exports; everything else is the crate's own
/// (`pub(crate)`, enforced by `unreachable_pub`). The budget counts the module-level items
/// declared plain `pub` (types, traits, functions, constants, modules, and any `pub use` chain)
/// outside lib.rs, whose re-exports name them.
const PUB_BUDGET: usize = 120;

#[derive(Default)]
struct PublicItems(Vec<String>);

impl PublicItems {
    fn note(&mut self, vis: &syn::Visibility, what: String) {
        if matches!(vis, syn::Visibility::Public(_)) {
            self.0.push(what);
        }
    }

    fn items(&mut self, file: &str, items: &[syn::Item]) {
        for item in items {
            let (vis, name) = match item {
                syn::Item::Const(i) => (&i.vis, i.ident.to_string()),
                syn::Item::Enum(i) => (&i.vis, i.ident.to_string()),
                syn::Item::Fn(i) => (&i.vis, i.sig.ident.to_string()),
                syn::Item::Static(i) => (&i.vis, i.ident.to_string()),
                syn::Item::Struct(i) => (&i.vis, i.ident.to_string()),
                syn::Item::Trait(i) => (&i.vis, i.ident.to_string()),
                syn::Item::Type(i) => (&i.vis, i.ident.to_string()),
                syn::Item::Union(i) => (&i.vis, i.ident.to_string()),
                syn::Item::Use(i) => (&i.vis, "use …".to_string()),
                syn::Item::Mod(i) => {
                    if let Some((_, inner)) = &i.content {
                        self.items(file, inner);
                    }
                    (&i.vis, format!("mod {}", i.ident))
                }
                _ => continue,
            };
            self.note(vis, format!("{file}: {name}"));
        }
    }
}

#[test]
fn the_public_api_is_what_lib_rs_re_exports_within_the_budget() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let lib = std::fs::read_to_string(src.join("lib.rs")).unwrap();
    assert!(
        lib.contains("#![warn(unreachable_pub") && lib.contains("missing_docs"),
        "src/lib.rs turns on unreachable_pub and missing_docs"
    );
    assert!(
        !lib.lines().any(|l| l.starts_with("pub mod ")),
        "src/lib.rs declares its modules private and re-exports the API"
    );
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut public = PublicItems::default();
    for file in &files {
        let relative = file.strip_prefix(&src).unwrap().display().to_string();
        if relative == "lib.rs" || relative == "main.rs" {
            continue;
        }
        let syntax = syn::parse_file(&std::fs::read_to_string(file).unwrap()).unwrap();
        public.items(&relative, &syntax.items);
    }
    assert!(
        public.0.len() <= PUB_BUDGET,
        "{} plain `pub` items, over the budget of {PUB_BUDGET}:\n  {}",
        public.0.len(),
        public.0.join("\n  ")
    );
}
