//! CPython's `random.Random(seed)` (MT19937 seeded by `init_by_array` with the
//! seed's 32-bit words) and its `shuffle`, so that ptb can reproduce inspect's
//! `shuffle_choices(seed)` choice orders exactly.

const N: usize = 624;
const M: usize = 397;

pub struct PyRandom {
    mt: [u32; N],
    idx: usize,
}

impl PyRandom {
    /// `random.Random(seed)` for a non-negative integer seed.
    pub fn new(seed: u64) -> Self {
        let mut key: Vec<u32> = Vec::new();
        let mut s = seed;
        while s > 0 {
            key.push(s as u32);
            s >>= 32;
        }
        if key.is_empty() {
            key.push(0);
        }
        let mut r = PyRandom { mt: [0; N], idx: N };
        r.init_by_array(&key);
        r
    }

    fn init_genrand(&mut self, s: u32) {
        self.mt[0] = s;
        for i in 1..N {
            let prev = self.mt[i - 1];
            self.mt[i] = 1_812_433_253u32.wrapping_mul(prev ^ (prev >> 30)).wrapping_add(i as u32);
        }
        self.idx = N;
    }

    fn init_by_array(&mut self, key: &[u32]) {
        self.init_genrand(19_650_218);
        let (mut i, mut j) = (1usize, 0usize);
        for _ in 0..N.max(key.len()) {
            let prev = self.mt[i - 1];
            self.mt[i] = (self.mt[i] ^ (prev ^ (prev >> 30)).wrapping_mul(1_664_525)).wrapping_add(key[j]).wrapping_add(j as u32);
            i += 1;
            j += 1;
            if i >= N {
                self.mt[0] = self.mt[N - 1];
                i = 1;
            }
            if j >= key.len() {
                j = 0;
            }
        }
        for _ in 0..N - 1 {
            let prev = self.mt[i - 1];
            self.mt[i] = (self.mt[i] ^ (prev ^ (prev >> 30)).wrapping_mul(1_566_083_941)).wrapping_sub(i as u32);
            i += 1;
            if i >= N {
                self.mt[0] = self.mt[N - 1];
                i = 1;
            }
        }
        self.mt[0] = 0x8000_0000;
    }

    fn next_u32(&mut self) -> u32 {
        if self.idx >= N {
            for k in 0..N {
                let y = (self.mt[k] & 0x8000_0000) | (self.mt[(k + 1) % N] & 0x7fff_ffff);
                let mag = if y & 1 == 1 { 0x9908_b0df } else { 0 };
                self.mt[k] = self.mt[(k + M) % N] ^ (y >> 1) ^ mag;
            }
            self.idx = 0;
        }
        let mut y = self.mt[self.idx];
        self.idx += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^ (y >> 18)
    }

    /// `getrandbits(k)` for 1 <= k <= 32.
    pub fn getrandbits(&mut self, k: u32) -> u32 {
        self.next_u32() >> (32 - k.clamp(1, 32))
    }

    /// `_randbelow(n)`: rejection sampling on `n.bit_length()` bits.
    fn randbelow(&mut self, n: u32) -> u32 {
        let k = 32 - n.leading_zeros();
        loop {
            let r = self.getrandbits(k);
            if r < n {
                return r;
            }
        }
    }

    /// `Random.shuffle`.
    pub fn shuffle<T>(&mut self, x: &mut [T]) {
        for i in (1..x.len()).rev() {
            let j = self.randbelow(i as u32 + 1) as usize;
            x.swap(i, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Expected values printed by CPython 3.11:
    //   r = random.Random(seed); p = list(range(4)); r.shuffle(p)  (repeated)
    //   random.Random(42).getrandbits(32)  (three times)
    #[test]
    fn matches_cpython() {
        let mut r = PyRandom::new(42);
        assert_eq!([r.getrandbits(32), r.getrandbits(32), r.getrandbits(32)], [2746317213, 478163327, 107420369]);
        for (seed, want) in [
            (0u64, [[2, 0, 1, 3], [0, 1, 3, 2], [0, 2, 1, 3], [1, 0, 3, 2], [2, 0, 3, 1], [3, 1, 2, 0]]),
            (42, [[2, 1, 3, 0], [3, 2, 0, 1], [1, 3, 2, 0], [1, 2, 0, 3], [1, 2, 3, 0], [1, 3, 2, 0]]),
            (1234567890123, [[0, 3, 2, 1], [2, 3, 0, 1], [0, 3, 1, 2], [3, 0, 2, 1], [3, 0, 2, 1], [0, 2, 1, 3]]),
        ] {
            let mut r = PyRandom::new(seed);
            for w in want {
                let mut p = [0usize, 1, 2, 3];
                r.shuffle(&mut p);
                assert_eq!(p, w, "seed {seed}");
            }
        }
    }
}
