//! An order-independent sample of embeddings: the `capacity` rows with the smallest seeded hash
//! of their values (bottom-k), returned in hash order. Which rows are kept and their order
//! depend only on the rows' values and the seed, never on partitioning, file order or thread
//! count. Rows live in one flat buffer, so the sample costs `capacity · dim` floats and is
//! handed to the fit without a copy.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use crate::hash::{fnv1a_step, splitmix64};

/// Seeded hash of an embedding's values (their exact bits). Part of the reproducibility
/// contract of `kmeans_fit`: never changes between versions (the tests pin it).
#[cfg(test)]
pub(crate) fn row_hash(row: &[f32], seed: u64) -> u64 {
    hashes(row, seed).0
}

/// [`row_hash`] and a second, independent hash (seed complemented) in one pass: the two
/// dependency chains run side by side, so the tie-break costs almost nothing.
fn hashes(row: &[f32], seed: u64) -> (u64, u64) {
    let start = |s: u64| splitmix64(s ^ 0x6B6D_6561_6E73); // "kmeans"
    let (a, b) = row.iter().fold((start(seed), start(!seed)), |(a, b), v| {
        let w = u64::from(v.to_bits());
        (fnv1a_step(a, w), fnv1a_step(b, w))
    });
    (splitmix64(a), splitmix64(b))
}

/// Bottom-k sampler over rows of a fixed dimension.
pub(crate) struct BottomK {
    capacity: usize,
    seed: u64,
    dim: usize,
    data: Vec<f32>,
    heap: BinaryHeap<Keyed>,
    seen: u64,
}

/// A heap entry: the row's hash, ties broken by a second, independent hash of the row, so two
/// different rows compare equal only with probability 2^-128 (identical rows may swap, which
/// changes nothing).
#[derive(PartialEq, Eq)]
struct Keyed {
    hash: u64,
    tie: u64,
    slot: usize,
}

impl Ord for Keyed {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.hash, self.tie).cmp(&(other.hash, other.tie))
    }
}
impl PartialOrd for Keyed {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl BottomK {
    /// An empty sampler of rows of `dim` values.
    pub fn new(capacity: usize, dim: usize, seed: u64) -> Self {
        Self {
            capacity,
            seed,
            dim,
            data: Vec::new(),
            heap: BinaryHeap::new(),
            seen: 0,
        }
    }

    /// Values per row.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Rows offered so far.
    pub fn seen(&self) -> u64 {
        self.seen
    }

    /// Rows kept so far.
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// Offer one row (`row.len()` must equal the dimension; the caller checks).
    pub fn push(&mut self, row: &[f32]) {
        debug_assert_eq!(row.len(), self.dim);
        self.seen += 1;
        let (hash, tie) = hashes(row, self.seed);
        let key = Keyed { hash, tie, slot: 0 };
        if self.heap.len() < self.capacity {
            let slot = self.heap.len();
            self.data.extend_from_slice(row);
            self.heap.push(Keyed { slot, ..key });
        } else if let Some(mut top) = self.heap.peek_mut() {
            if key < *top {
                let slot = top.slot;
                self.data[slot * self.dim..(slot + 1) * self.dim].copy_from_slice(row);
                *top = Keyed { slot, ..key };
            }
        }
    }

    /// The kept rows, row-major in hash order (permuted in place: no second copy).
    pub fn into_rows(self) -> Vec<f32> {
        let dim = self.dim;
        let mut data = self.data;
        // order[i] = slot of the row that belongs at position i.
        let order: Vec<usize> = self
            .heap
            .into_sorted_vec()
            .into_iter()
            .map(|k| k.slot)
            .collect();
        // Apply the permutation by following its cycles, one row of scratch.
        let mut placed = vec![false; order.len()];
        let mut scratch = vec![0.0f32; dim];
        for start in 0..order.len() {
            if placed[start] || order[start] == start {
                placed[start] = true;
                continue;
            }
            scratch.copy_from_slice(&data[start * dim..(start + 1) * dim]);
            let mut pos = start;
            loop {
                placed[pos] = true;
                let src = order[pos];
                if src == start {
                    data[pos * dim..(pos + 1) * dim].copy_from_slice(&scratch);
                    break;
                }
                data.copy_within(src * dim..(src + 1) * dim, pos * dim);
                pos = src;
            }
        }
        data
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(n: usize, dim: usize) -> Vec<Vec<f32>> {
        (0..n)
            .map(|i| {
                (0..dim)
                    .map(|j| ((i * 31 + j * 7) % 97) as f32 / 9.0)
                    .collect()
            })
            .collect()
    }

    #[test]
    fn sample_and_order_do_not_depend_on_input_order() {
        let all = rows(500, 5);
        let mut a = BottomK::new(50, 5, 9);
        all.iter().for_each(|r| a.push(r));
        let mut b = BottomK::new(50, 5, 9);
        all.iter().rev().for_each(|r| b.push(r));
        let (a, b) = (a.into_rows(), b.into_rows());
        assert_eq!(a, b);
        assert_eq!(a.len(), 250);
        // Hash order, and exactly the 50 smallest hashes.
        let mut hashes: Vec<u64> = all.iter().map(|r| row_hash(r, 9)).collect();
        hashes.sort_unstable();
        let kept: Vec<u64> = a.chunks(5).map(|r| row_hash(r, 9)).collect();
        assert_eq!(kept, hashes[..50].to_vec());
    }

    #[test]
    fn fewer_rows_than_capacity_keeps_all() {
        let all = rows(7, 3);
        let mut s = BottomK::new(100, 3, 1);
        all.iter().for_each(|r| s.push(r));
        assert_eq!(s.len(), 7);
        assert_eq!(s.into_rows().len(), 21);
    }

    #[test]
    fn pinned_row_hash() {
        // Checked against an independent Python computation of the documented formula.
        assert_eq!(row_hash(&[1.0, 2.0, 3.0], 0), 0x4d75_c257_3451_2723);
        assert_eq!(row_hash(&[1.0, 2.0, 3.0], 1), 0x8538_43d3_6c9a_f58c);
    }
}
