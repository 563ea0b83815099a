//! Deterministic train/validation/test splits, 5 folds of 80/10/10 as the paper. Object-wise by
//! default (Cornell: by scene, Jacquard: by object id), so views of one object never straddle
//! training and evaluation; image-wise as an option.

use crate::dataset::SampleRef;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;

/// Cross-validation folds.
pub const FOLDS: usize = 5;

/// How samples are assigned to folds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SplitMode {
    /// By object: no object in both training and evaluation.
    Object,
    /// By image.
    Image,
}

grasp_models::named_enum!(SplitMode, "split", SplitMode::Object => "object", SplitMode::Image => "image");

/// Sample indices of one fold.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Split {
    /// Training samples.
    pub train: Vec<usize>,
    /// Validation samples.
    pub val: Vec<usize>,
    /// Test samples.
    pub test: Vec<usize>,
}

/// Fold `fold` (0..5): the units (objects or images) are shuffled with `seed` and cut into five
/// groups; group `fold` is held out and halved into validation and test, the rest trains. Each
/// dataset of a mix ([`SampleRef::dataset`]) is split on its own, so a dataset's test images are
/// the same alone and in any mix (the Cornell test scenes stay the Cornell test scenes).
pub fn split(refs: &[SampleRef], fold: usize, mode: SplitMode, seed: u64) -> Split {
    assert!(fold < FOLDS, "fold must be in 0..{FOLDS}");
    let mut datasets: BTreeMap<usize, BTreeMap<String, Vec<usize>>> = BTreeMap::new();
    for (i, r) in refs.iter().enumerate() {
        let key = match mode {
            SplitMode::Object => format!("{}:{}", r.kind, r.object_id),
            SplitMode::Image => format!("{i:09}"),
        };
        datasets.entry(r.dataset).or_default().entry(key).or_default().push(i);
    }
    let mut s = Split::default();
    for units in datasets.values() {
        let mut keys: Vec<&String> = units.keys().collect();
        keys.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
        let n = keys.len();
        let group = |pos: usize| pos * FOLDS / n.max(1);
        let held: Vec<&String> = keys.iter().enumerate().filter(|(p, _)| group(*p) == fold).map(|(_, k)| *k).collect();
        let half = held.len().div_ceil(2);
        for (pos, k) in keys.iter().enumerate() {
            let idx = &units[*k];
            if group(pos) != fold {
                s.train.extend(idx);
            } else if held[..half].contains(k) {
                s.val.extend(idx);
            } else {
                s.test.extend(idx);
            }
        }
    }
    s.train.sort();
    s.val.sort();
    s.test.sort();
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::DatasetKind;
    use std::collections::HashSet;

    fn refs(objects: usize, views: usize) -> Vec<SampleRef> {
        (0..objects * views)
            .map(|i| SampleRef {
                kind: DatasetKind::Jacquard,
                rgb: format!("{i}.png").into(),
                grasps: "g".into(),
                depth: None,
                mask: None,
                object_id: format!("obj{}", i / views),
                dataset: 0,
            })
            .collect()
    }

    #[test]
    fn each_dataset_of_a_mix_keeps_the_split_it_has_alone() {
        let a = refs(50, 2);
        let alone = split(&a, 1, SplitMode::Object, 7);
        // A second dataset after it, with the same object names (ids may repeat across sets).
        let mut mix = a.clone();
        mix.extend(refs(30, 3).into_iter().map(|r| SampleRef { dataset: 1, ..r }));
        let s = split(&mix, 1, SplitMode::Object, 7);
        let first = |v: &[usize]| v.iter().copied().filter(|&i| i < 100).collect::<Vec<_>>();
        assert_eq!((first(&s.train), first(&s.val), first(&s.test)), (alone.train, alone.val, alone.test));
        // The second set is split 80/10/10 on its own, and "obj3" of set 0 and of set 1 are
        // different objects.
        let second = |v: &[usize]| v.iter().filter(|&&i| i >= 100).count();
        assert_eq!((second(&s.train), second(&s.val), second(&s.test)), (72, 9, 9));
    }

    #[test]
    fn object_wise_folds_are_disjoint_and_80_10_10() {
        let r = refs(100, 4);
        let mut tested = HashSet::new();
        for fold in 0..FOLDS {
            let s = split(&r, fold, SplitMode::Object, 1);
            assert_eq!(s.train.len() + s.val.len() + s.test.len(), 400);
            assert_eq!((s.train.len(), s.val.len(), s.test.len()), (320, 40, 40));
            let objs = |v: &[usize]| v.iter().map(|&i| r[i].object_id.clone()).collect::<HashSet<_>>();
            assert!(
                objs(&s.train).is_disjoint(&objs(&s.val))
                    && objs(&s.train).is_disjoint(&objs(&s.test))
                    && objs(&s.val).is_disjoint(&objs(&s.test))
            );
            for &i in s.val.iter().chain(&s.test) {
                assert!(tested.insert(i), "each sample is held out in exactly one fold");
            }
            assert_eq!(s, split(&r, fold, SplitMode::Object, 1), "deterministic");
        }
        assert_eq!(tested.len(), 400);
        assert_ne!(split(&r, 0, SplitMode::Object, 1), split(&r, 0, SplitMode::Object, 2));
    }

    #[test]
    fn image_wise_splits_views_of_one_object() {
        let r = refs(10, 4);
        let s = split(&r, 0, SplitMode::Image, 3);
        assert_eq!(s.train.len(), 32);
        let objs = |v: &[usize]| v.iter().map(|&i| r[i].object_id.clone()).collect::<HashSet<_>>();
        assert!(!objs(&s.train).is_disjoint(&objs(&s.val).union(&objs(&s.test)).cloned().collect()));
    }
}
