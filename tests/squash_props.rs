//! Property tests of the layer round trips:
//! - a random tree → layers → squash → the same tree (and written back as one layer, read
//!   again, still the same tree);
//! - a random layer stack → squash equals applying the layers in order with the OCI/umoci
//!   semantics, as computed by the small model below (`Model`): in each layer, opaque
//!   markers and whiteouts hide only lower content, then entries apply in archive order; an
//!   entry replaces what is at its path (dir over dir only updates its attributes); a missing
//!   or non-directory parent becomes a directory (0755); a hardlink shares its target's inode.
//!
//! Layers are written here with the tar crate directly, independently of imgslim's writer.
use imgslim::fs::{ContentStore, Data, Node, SpoolWriter, Tree};
use proptest::prelude::*;
use std::collections::BTreeMap;

type Path = Vec<String>;

#[derive(Clone, Debug, PartialEq, Eq)]
enum M {
    Dir { mode: u32 },
    File { content: Vec<u8>, mode: u32 },
    Symlink { target: String },
}

/// One concrete layer entry.
#[derive(Clone, Debug)]
enum Entry {
    Put(Path, M),
    Hardlink(Path, Path),
    Whiteout(Path),
    Opaque(Path),
}

#[derive(Default, Clone, Debug, PartialEq, Eq)]
struct Model(BTreeMap<Path, M>);

impl Model {
    fn remove(&mut self, p: &Path) {
        self.0.retain(|k, _| !k.starts_with(p));
    }
    fn clear(&mut self, p: &Path) {
        if matches!(self.0.get(p), Some(M::Dir { .. })) {
            self.0.retain(|k, _| !(k.starts_with(p) && k.len() > p.len()));
        }
    }
    fn ensure_parents(&mut self, p: &Path) {
        for i in 1..p.len() {
            let parent = p[..i].to_vec();
            match self.0.get(&parent) {
                Some(M::Dir { .. }) => {}
                Some(_) => {
                    self.remove(&parent);
                    self.0.insert(parent, M::Dir { mode: 0o755 });
                }
                None => {
                    self.0.insert(parent, M::Dir { mode: 0o755 });
                }
            }
        }
    }
    fn put(&mut self, p: &Path, m: M) {
        self.ensure_parents(p);
        match (self.0.get(p), &m) {
            (Some(M::Dir { .. }), M::Dir { .. }) => {}
            (Some(_), _) => self.remove(p),
            (None, _) => {}
        }
        self.0.insert(p.clone(), m);
    }
    /// Apply one layer: hiding first (lower content only), then entries in order.
    fn apply(&mut self, layer: &[Entry]) {
        for e in layer {
            if let Entry::Opaque(p) = e {
                self.clear(p);
            }
        }
        for e in layer {
            if let Entry::Whiteout(p) = e {
                self.remove(p);
            }
        }
        for e in layer {
            match e {
                Entry::Put(p, m) => self.put(p, m.clone()),
                Entry::Hardlink(p, t) => {
                    let m = self.0[t].clone();
                    self.put(p, m);
                }
                Entry::Whiteout(_) | Entry::Opaque(_) => {}
            }
        }
    }
    fn files(&self) -> Vec<Path> {
        self.0.iter().filter(|(_, m)| matches!(m, M::File { .. })).map(|(k, _)| k.clone()).collect()
    }
}

/// A layer operation before it is resolved against the state (a hardlink names the n-th file).
#[derive(Clone, Debug)]
enum Op {
    Put(Path, M),
    Hardlink(Path, usize),
    Whiteout(Path),
    Opaque(Path),
}

fn path() -> impl Strategy<Value = Path> {
    prop::collection::vec(prop::sample::select(vec!["a", "b", "c", "d.txt"]), 1..4)
        .prop_map(|v| v.into_iter().map(String::from).collect())
}

fn node() -> impl Strategy<Value = M> {
    prop_oneof![
        prop::sample::select(vec![0o755u32, 0o700, 0o1777]).prop_map(|mode| M::Dir { mode }),
        (prop::collection::vec(any::<u8>(), 0..64), prop::sample::select(vec![0o644u32, 0o755, 0o4755]))
            .prop_map(|(content, mode)| M::File { content, mode }),
        prop::sample::select(vec!["../../../../etc/passwd", "/a", "b/c", "."]).prop_map(|t| M::Symlink { target: t.into() }),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (path(), node()).prop_map(|(p, m)| Op::Put(p, m)),
        1 => (path(), any::<usize>()).prop_map(|(p, n)| Op::Hardlink(p, n)),
        1 => path().prop_map(Op::Whiteout),
        1 => path().prop_map(Op::Opaque),
    ]
}

/// Resolve a layer's ops against the state below it into entries, as a real layer would
/// hold them (a whiteout or opaque marker comes with its directory's entry), and apply them.
fn resolve(model: &mut Model, ops: &[Op]) -> Vec<Entry> {
    let mut entries = Vec::new();
    let mut hiding = Vec::new();
    for op in ops {
        match op {
            Op::Whiteout(p) => hiding.push(Entry::Whiteout(p.clone())),
            Op::Opaque(p) => hiding.push(Entry::Opaque(p.clone())),
            _ => {}
        }
    }
    for h in &hiding {
        let (Entry::Whiteout(p) | Entry::Opaque(p)) = h else { unreachable!() };
        let dir = if matches!(h, Entry::Opaque(_)) { p.clone() } else { p[..p.len() - 1].to_vec() };
        if !dir.is_empty() {
            entries.push(Entry::Put(dir, M::Dir { mode: 0o755 }));
        }
    }
    entries.extend(hiding);
    // Hardlink targets are chosen from the state this layer's entries produce so far.
    let mut state = model.clone();
    state.apply(&entries);
    for op in ops {
        let e = match op {
            Op::Put(p, m) => Entry::Put(p.clone(), m.clone()),
            Op::Hardlink(p, n) => {
                let files = state.files();
                if files.is_empty() {
                    continue;
                }
                let t = files[n % files.len()].clone();
                if p.starts_with(&t) || &t == p {
                    continue;
                }
                Entry::Hardlink(p.clone(), t)
            }
            Op::Whiteout(_) | Op::Opaque(_) => continue,
        };
        state.apply(std::slice::from_ref(&e));
        entries.push(e);
    }
    // Replay the layer as a whole: hiding applies to lower content only.
    model.apply(&entries);
    entries
}

fn tar_of(entries: &[Entry]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_gnu();
        h.set_mtime(1_700_000_000);
        let (name, data): (String, Vec<u8>) = match e {
            Entry::Put(p, M::Dir { mode }) => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(*mode);
                (p.join("/") + "/", vec![])
            }
            Entry::Put(p, M::File { content, mode }) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(*mode);
                (p.join("/"), content.clone())
            }
            Entry::Put(p, M::Symlink { target }) => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_mode(0o777);
                h.set_link_name(target).unwrap();
                (p.join("/"), vec![])
            }
            Entry::Hardlink(p, t) => {
                h.set_entry_type(tar::EntryType::Link);
                h.set_link_name(t.join("/")).unwrap();
                (p.join("/"), vec![])
            }
            Entry::Whiteout(p) => {
                let (last, dir) = p.split_last().unwrap();
                h.set_entry_type(tar::EntryType::Regular);
                ([dir.join("/"), format!(".wh.{last}")].iter().filter(|s| !s.is_empty()).cloned().collect::<Vec<_>>().join("/"), vec![])
            }
            Entry::Opaque(p) => (p.join("/") + "/.wh..wh..opq", vec![]),
        };
        if matches!(e, Entry::Opaque(_)) {
            h.set_entry_type(tar::EntryType::Regular);
        }
        h.set_size(data.len() as u64);
        b.append_data(&mut h, &name, &data[..]).unwrap();
    }
    b.into_inner().unwrap()
}

/// Read and squash layer tars with imgslim.
fn squash(tars: &[Vec<u8>]) -> (Tree, ContentStore) {
    let mut store = ContentStore::new(tars.len());
    let mut changesets = Vec::new();
    for (i, t) in tars.iter().enumerate() {
        let mut sp = SpoolWriter::new(i as u32, tempfile::tempfile().unwrap());
        changesets.push(imgslim::layer::read_changeset(&t[..], &mut sp, &format!("layer {i}")).unwrap());
        store.set(i as u32, sp.finish().unwrap());
    }
    let names: Vec<String> = (0..tars.len()).map(|i| format!("layer {i}")).collect();
    let (tree, _) = imgslim::layer::squash(&changesets, &names).unwrap();
    (tree, store)
}

/// The squashed tree in the model's terms.
fn observe(tree: &Tree, store: &ContentStore) -> Model {
    let mut m = Model::default();
    for (p, id) in tree.walk() {
        let path: Path = String::from_utf8(p).unwrap().split('/').map(String::from).collect();
        let node = match tree.node(id) {
            Node::Dir { meta, .. } => M::Dir { mode: meta.mode },
            Node::Leaf(ino) => {
                let ino = tree.inode(*ino);
                match &ino.data {
                    Data::File { content } => M::File { content: store.read_all(content).unwrap(), mode: ino.meta.mode },
                    Data::Symlink { target } => M::Symlink { target: String::from_utf8(target.clone()).unwrap() },
                    other => panic!("unexpected {other:?}"),
                }
            }
        };
        m.0.insert(path, node);
    }
    m
}

/// imgslim's own writer, read back by imgslim.
fn rewritten(tree: &Tree, store: &ContentStore) -> Model {
    let (tar, _) = imgslim::layer::write_tree(tree, store, Vec::new(), &Default::default()).unwrap();
    let (t2, s2) = squash(&[tar]);
    observe(&t2, &s2)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_tree_split_into_layers_squashes_to_the_same_tree(
        puts in prop::collection::vec((path(), node()), 1..40),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..4),
    ) {
        let mut tree = Model::default();
        for (p, m) in &puts {
            tree.put(p, m.clone());
        }
        // Every path once, parents first, cut into consecutive layers.
        let entries: Vec<Entry> = tree.0.iter().map(|(p, m)| Entry::Put(p.clone(), m.clone())).collect();
        let mut at: Vec<usize> = cuts.iter().map(|i| i.index(entries.len() + 1)).collect();
        at.extend([0, entries.len()]);
        at.sort();
        let tars: Vec<Vec<u8>> = at.windows(2).map(|w| tar_of(&entries[w[0]..w[1]])).collect();
        let (t, s) = squash(&tars);
        prop_assert_eq!(&observe(&t, &s), &tree);
        prop_assert_eq!(&rewritten(&t, &s), &tree);
    }

    #[test]
    fn random_layer_stack_squashes_like_the_model(layers in prop::collection::vec(prop::collection::vec(op(), 0..12), 1..5)) {
        let mut model = Model::default();
        let tars: Vec<Vec<u8>> = layers.iter().map(|ops| tar_of(&resolve(&mut model, ops))).collect();
        let (t, s) = squash(&tars);
        prop_assert_eq!(&observe(&t, &s), &model);
        prop_assert_eq!(&rewritten(&t, &s), &model);
    }
}
