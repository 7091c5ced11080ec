//! Position of an integer key in a small constant table: what `samplemix_lookup` and the output
//! pass of `samplemix_weights` use to give each row its cluster's values without a join.
//!
//! Why not a hash join with the k-row table: every row of the big side matches exactly one
//! row, yet the join copies all of the big side's columns (the ids too) into new batches; a
//! lookup reads only the key column and gathers one value per row.

use std::collections::HashMap;

/// Keys at most this many times the table's length apart (plus a margin) get a dense array
/// from key − min to position; wider ones a hash map.
const DENSE_SPREAD: u64 = 4;
const DENSE_MARGIN: u64 = 1024;
/// Marks a slot of the dense array that no key takes.
const ABSENT: u32 = u32::MAX;

/// Key → position in the table, for distinct keys.
#[derive(Debug)]
pub enum KeyIndex {
    Dense { min: i64, slots: Vec<u32> },
    Sparse(HashMap<i64, u32>),
}

impl KeyIndex {
    /// The index of `keys` (positions fit in u32: a constant list is far shorter); Err with
    /// the first key that appears twice.
    pub fn new(keys: &[i64]) -> Result<Self, i64> {
        let (Some(&min), Some(&max)) = (keys.iter().min(), keys.iter().max()) else {
            return Ok(Self::Sparse(HashMap::new()));
        };
        let spread = max.abs_diff(min);
        if spread <= DENSE_SPREAD * keys.len() as u64 + DENSE_MARGIN {
            let mut slots = vec![ABSENT; spread as usize + 1];
            for (position, key) in keys.iter().enumerate() {
                let slot = &mut slots[key.abs_diff(min) as usize];
                if *slot != ABSENT {
                    return Err(*key);
                }
                *slot = position as u32;
            }
            return Ok(Self::Dense { min, slots });
        }
        let mut map = HashMap::with_capacity(keys.len());
        for (position, key) in keys.iter().enumerate() {
            if map.insert(*key, position as u32).is_some() {
                return Err(*key);
            }
        }
        Ok(Self::Sparse(map))
    }

    /// The position of `key`, None when it is not in the table.
    #[inline]
    pub fn position(&self, key: i64) -> Option<usize> {
        match self {
            Self::Dense { min, slots } => {
                // Keys below `min` wrap to huge offsets and miss like those above.
                let offset = key.wrapping_sub(*min) as u64;
                match slots.get(usize::try_from(offset).ok()?) {
                    Some(&p) if p != ABSENT => Some(p as usize),
                    _ => None,
                }
            }
            Self::Sparse(map) => map.get(&key).map(|p| *p as usize),
        }
    }

    /// `out[i] = values[position(keys[i])]`, and whether every key was found (a missing key
    /// leaves 0.0 in its slot).
    pub fn gather(&self, keys: &[i64], values: &[f64], out: &mut [f64]) -> bool {
        let mut all = true;
        for (o, k) in out.iter_mut().zip(keys) {
            match self.position(*k) {
                Some(p) => *o = values[p],
                None => {
                    all = false;
                    *o = 0.0;
                }
            }
        }
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn dense_and_sparse_tables_find_the_same_positions() {
        let dense = KeyIndex::new(&[5, 3, 4, 10]).unwrap();
        assert!(matches!(dense, KeyIndex::Dense { .. }));
        let sparse = KeyIndex::new(&[5, 3, 4, 10, i64::MAX, i64::MIN]).unwrap();
        assert!(matches!(sparse, KeyIndex::Sparse(_)));
        for index in [&dense, &sparse] {
            assert_eq!(index.position(5), Some(0));
            assert_eq!(index.position(3), Some(1));
            assert_eq!(index.position(10), Some(3));
            for missing in [2, 6, 11, -1, i64::MIN + 1] {
                assert_eq!(index.position(missing), None, "{missing}");
            }
        }
        assert_eq!(sparse.position(i64::MIN), Some(5));
        assert_eq!(KeyIndex::new(&[]).unwrap().position(0), None);
    }

    #[test]
    fn a_repeated_key_is_refused() {
        assert_eq!(KeyIndex::new(&[1, 2, 1]).unwrap_err(), 1);
        assert_eq!(KeyIndex::new(&[0, i64::MAX, 0]).unwrap_err(), 0);
    }

    #[test]
    fn far_apart_keys_below_min_do_not_alias() {
        // i64::MIN − min wraps: it must not land on a slot.
        let index = KeyIndex::new(&[0, 1, 2]).unwrap();
        assert_eq!(index.position(i64::MIN), None);
        assert_eq!(index.position(i64::MAX), None);
    }

    proptest! {
        #[test]
        fn gather_is_a_linear_search(
            keys in proptest::collection::hash_set(-3000i64..3000, 0..50),
            wide in proptest::bool::ANY,
            queries in proptest::collection::vec(-3100i64..3100, 0..200),
        ) {
            // `wide` spreads the keys so that the sparse form is used too.
            let keys: Vec<i64> = keys.into_iter().map(|k| if wide { k * 1_000_003 } else { k }).collect();
            let queries: Vec<i64> = queries.into_iter().map(|q| if wide { q * 1_000_003 } else { q }).collect();
            let values: Vec<f64> = (0..keys.len()).map(|i| i as f64 + 0.5).collect();
            let index = KeyIndex::new(&keys).unwrap();
            let mut out = vec![f64::NAN; queries.len()];
            let all = index.gather(&queries, &values, &mut out);
            let mut expect_all = true;
            for (q, o) in queries.iter().zip(&out) {
                match keys.iter().position(|k| k == q) {
                    Some(p) => prop_assert_eq!(*o, values[p]),
                    None => { expect_all = false; prop_assert_eq!(*o, 0.0) }
                }
            }
            prop_assert_eq!(all, expect_all);
        }
    }
}
