//! Whose share each partition is, and the names nodes go by in the
//! owners' bucket: the same answer on every node that sees the same nodes.

use std::collections::HashMap;

use super::layout::hash;

/// A node's key: its name where the bucket allows, and a hash of it so
/// that two names that read alike stay two keys.
pub(super) fn node_key(node: &str) -> String {
    let readable: String = node
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
        .take(48)
        .collect();
    format!("node.{readable}-{}", hex::encode(&hash(&[node])[..4]))
}

/// Whose share each partition is: the same answer on every node that sees
/// the same nodes. Each partition goes to the node ranked first for it by
/// a hash of both (so a node keeps most of its partitions when another
/// comes or goes), unless that node already has its even share, then to
/// the next: the shares differ by one at most.
pub(super) fn shares<'a>(nodes: &[&'a str], partitions: u32) -> Vec<&'a str> {
    let even = (partitions as usize).div_ceil(nodes.len().max(1));
    let mut counts: HashMap<&str, usize> = HashMap::new();
    (0..partitions)
        .map(|p| {
            let p = p.to_string();
            let mut ranked: Vec<(u64, &'a str)> = nodes
                .iter()
                .map(|node| {
                    let digest = hash(&[node, &p]);
                    (u64::from_le_bytes(digest[..8].try_into().expect("8 bytes")), *node)
                })
                .collect();
            ranked.sort_unstable_by(|a, b| b.cmp(a));
            let node = ranked
                .iter()
                .map(|(_, node)| *node)
                .find(|node| counts.get(node).copied().unwrap_or(0) < even)
                .unwrap_or_default();
            *counts.entry(node).or_default() += 1;
            node
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_are_even_and_mostly_stay_when_a_node_joins() {
        let two = ["node.a-1", "node.b-2"];
        let three = ["node.a-1", "node.b-2", "node.c-3"];
        let count = |shares: &[&str], node: &str| shares.iter().filter(|n| **n == node).count();
        for partitions in [1, 2, 7, 16, 1024] {
            let before = shares(&two, partitions);
            let after = shares(&three, partitions);
            let even = |n: usize| (partitions as usize).div_ceil(n);
            for node in two {
                assert!(count(&before, node) <= even(2), "{partitions}: {before:?}");
            }
            for node in three {
                assert!(count(&after, node) <= even(3), "{partitions}: {after:?}");
            }
            // Every node sees the same.
            assert_eq!(before, shares(&["node.b-2", "node.a-1"], partitions));
        }
        let (before, after) = (shares(&two, 1024), shares(&three, 1024));
        let moved = before.iter().zip(&after).filter(|(b, a)| b != a).count();
        let to_new = after.iter().filter(|n| **n == "node.c-3").count();
        // The new node's share moves, and little besides.
        assert!((341..=342).contains(&to_new), "{to_new}");
        assert!(moved < to_new + 100, "{moved} of 1024 moved for a share of {to_new}");
    }

    #[test]
    fn node_keys_are_valid_bucket_keys_and_distinct() {
        let a = node_key("gate house/1 ✓");
        let b = node_key("gate house 1 ✓");
        assert!(a.starts_with("node.gatehouse1-"), "{a}");
        assert_ne!(a, b);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)));
    }
}
