//! Name-value pairs sorted by name, repeats kept in the order they came: the one sort of pairs in
//! the module, for the CheckRequest's joined headers and the query rewrite. Hand-written, as the
//! standard library's stable sort costs the module about 3.5 KB per element type: short runs by
//! insertion, then merges through one scratch copy. Equal names never swap, as the standard
//! stable sort.

type Pair<'a> = (&'a [u8], &'a [u8]);

/// Below this many pairs, insertion alone; above, it sorts each run before the merges.
const RUN: usize = 16;

/// Sorts `pairs` by name, stably.
pub fn sort_by_name(pairs: &mut [Pair<'_>]) {
    for run in pairs.chunks_mut(RUN) {
        insertion(run);
    }
    if pairs.len() <= RUN {
        return;
    }
    let mut scratch = pairs.to_vec();
    let mut width = RUN;
    while width < pairs.len() {
        for (from, to) in pairs.chunks(2 * width).zip(scratch.chunks_mut(2 * width)) {
            let (left, right) = from.split_at(width.min(from.len()));
            merge(left, right, to);
        }
        pairs.copy_from_slice(&scratch);
        width *= 2;
    }
}

fn insertion(run: &mut [Pair<'_>]) {
    for i in 1..run.len() {
        let mut j = i;
        while j > 0 && run[j - 1].0 > run[j].0 {
            run.swap(j - 1, j);
            j -= 1;
        }
    }
}

/// Merges two sorted runs into `out` (as long as both); on equal names the left one goes first.
fn merge<'a>(left: &[Pair<'a>], right: &[Pair<'a>], out: &mut [Pair<'a>]) {
    let (mut l, mut r) = (left.iter().peekable(), right.iter().peekable());
    for slot in out {
        let take_left = match (l.peek(), r.peek()) {
            (Some(a), Some(b)) => a.0 <= b.0,
            (Some(_), None) => true,
            _ => false,
        };
        let next = if take_left { l.next() } else { r.next() };
        if let Some(pair) = next {
            *slot = *pair;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Against the standard stable sort: names from a small alphabet so repeats are common, each
    /// value its arrival index, so any reordering of equal names shows.
    #[test]
    fn sorts_as_the_standard_stable_sort() {
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let names: [&[u8]; 6] = [b"", b"a", b"ab", b"b", b"x-id", b"\xff"];
        let indexes: Vec<Vec<u8>> = (0..300u32).map(|i| i.to_le_bytes().to_vec()).collect();
        for len in [0, 1, 2, 15, 16, 17, 31, 32, 33, 64, 100, 255, 300] {
            for _ in 0..20 {
                let mut pairs: Vec<Pair<'_>> = (0..len)
                    .map(|i| (names[(next() % 6) as usize], indexes[i].as_slice()))
                    .collect();
                let mut expected = pairs.clone();
                expected.sort_by(|a, b| a.0.cmp(b.0));
                sort_by_name(&mut pairs);
                assert_eq!(pairs, expected, "{len} pairs");
            }
        }
    }
}
