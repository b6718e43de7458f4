//! The consistent-hash ring: every endpoint owns many points on a 64-bit circle, and a key goes
//! to the owner of the first point at or after the key's hash. Adding or removing one endpoint
//! moves only the keys next to its points.

use std::sync::Arc;

use super::Endpoint;

/// Points per endpoint; more points spread keys more evenly.
const POINTS_PER_ENDPOINT: usize = 160;

#[derive(Debug, Default)]
pub(super) struct Ring {
    /// (point, index into the snapshot's endpoints), sorted by point.
    points: Vec<(u64, usize)>,
}

impl Ring {
    pub(super) fn new(endpoints: &[Arc<Endpoint>]) -> Self {
        let mut points = Vec::with_capacity(endpoints.len() * POINTS_PER_ENDPOINT);
        for (index, endpoint) in endpoints.iter().enumerate() {
            for replica in 0..POINTS_PER_ENDPOINT {
                let point = hash(format!("{}#{replica}", endpoint.address()).as_bytes());
                points.push((point, index));
            }
        }
        points.sort_unstable();
        Self { points }
    }

    /// Finds the endpoint index owning `key`, skipping endpoints for which `available` is false.
    pub(super) fn lookup(&self, key: &str, available: impl Fn(usize) -> bool) -> Option<usize> {
        if self.points.is_empty() {
            return None;
        }
        let key_hash = hash(key.as_bytes());
        let start = self.points.partition_point(|(point, _)| *point < key_hash);
        (0..self.points.len())
            .map(|offset| self.points[(start + offset) % self.points.len()].1)
            .find(|index| available(*index))
    }
}

/// 64-bit FNV-1a followed by the MurmurHash3 finalizer: stable across processes and Rust
/// versions, unlike `DefaultHasher`. FNV-1a alone leaves keys that differ only in their last
/// characters (`conversation-1`, `conversation-2`) close together on the ring.
fn hash(bytes: &[u8]) -> u64 {
    const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut hash = bytes.iter().fold(OFFSET_BASIS, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(PRIME)
    });
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xff51_afd7_ed55_8ccd);
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    hash ^ (hash >> 33)
}
