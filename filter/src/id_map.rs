//! The dispatcher's maps from a context id or call token to what it belongs to: a Vec kept sorted
//! by id. The host hands out ids and tokens in increasing order, so an insert lands at the end and
//! a lookup is a binary search; a removal moves the entries after it (a few bytes each, even with
//! thousands of streams in flight). A hash map costs the module about 3 KB more per value type.

/// Values by `u32` id; an id appears at most once.
pub struct IdMap<V>(Vec<(u32, V)>);

impl<V> Default for IdMap<V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<V> IdMap<V> {
    pub const fn new() -> Self {
        Self(Vec::new())
    }

    fn at(&self, id: u32) -> Result<usize, usize> {
        self.0.binary_search_by_key(&id, |(key, _)| *key)
    }

    /// Sets `id`'s value, replacing one it had.
    pub fn insert(&mut self, id: u32, value: V) {
        match self.at(id) {
            Ok(at) => self.0[at].1 = value,
            Err(at) => self.0.insert(at, (id, value)),
        }
    }

    pub fn get_mut(&mut self, id: u32) -> Option<&mut V> {
        let at = self.at(id).ok()?;
        self.0.get_mut(at).map(|(_, value)| value)
    }

    pub fn remove(&mut self, id: u32) -> Option<V> {
        let at = self.at(id).ok()?;
        Some(self.0.remove(at).1)
    }
}

#[cfg(test)]
mod tests {
    use super::IdMap;

    #[test]
    fn keeps_one_value_per_id_in_any_order_of_arrival() {
        let mut map = IdMap::default();
        for id in [5, 1, 9, 3, 7] {
            map.insert(id, id * 10);
        }
        map.insert(3, 33);
        assert_eq!(map.get_mut(3), Some(&mut 33));
        assert_eq!(map.get_mut(4), None);
        assert_eq!(map.remove(5), Some(50));
        assert_eq!(map.remove(5), None);
        let left: Vec<u32> = [1, 3, 7, 9]
            .into_iter()
            .filter_map(|id| map.remove(id))
            .collect();
        assert_eq!(left, [10, 33, 70, 90]);
        assert_eq!(map.get_mut(1), None);
    }
}
