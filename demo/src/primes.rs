//! `lego-demo primes`: a sieve of Eratosthenes over a chosen amount of
//! memory, one byte per odd number (byte i stands for 2i + 1), so `mem`
//! bytes find the primes below 2 * mem.
//!
//! The sieve goes through the memory in segments of [`SEGMENT`] bytes,
//! crossing out every small prime's multiples in one segment before the
//! next, and counts each segment as soon as it is done. Every page is thus
//! written in one sequential pass, which suits a processor that holds only
//! part of the memory at a time (a plain sieve would sweep all of it again
//! for every small prime). A second pass then reads all of it back and
//! counts again: the memory must still hold what was written.

use std::alloc::{self, Layout};
use std::io::Write;

use crate::human_size;

/// The least `--mem`: primes below 2048.
pub const MIN_MEM: u64 = 1024;

/// Bytes crossed out and counted at a time: they stay in the CPU's cache.
const SEGMENT: usize = 256 << 10;

/// The highest bit of each of a word's eight bytes.
const HIGH: u64 = 0x8080_8080_8080_8080;

/// The small primes whose multiples are not crossed out one by one: each
/// segment starts as a copy of their pattern, which repeats every
/// 3 * 5 * 7 * 11 * 13 odd numbers. That saves 40% of the work.
const WHEEL: [usize; 5] = [3, 5, 7, 11, 13];
const WHEEL_PERIOD: usize = 3 * 5 * 7 * 11 * 13;

/// What the sieve found below `limit`.
#[derive(Debug, PartialEq, Eq)]
pub struct Primes {
    pub limit: u64,
    /// (10^k, primes below it) for each power of ten below `limit`.
    pub below_powers_of_ten: Vec<(u64, u64)>,
    pub count: u64,
    pub largest: u64,
    pub sum: u128,
}

pub fn run(mem: u64, out: &mut impl Write) -> Result<(), String> {
    let len = usize::try_from(mem).map_err(|_| format!("--mem {mem}: too large here"))?;
    let mut sieve = zeroed(len)?;
    let primes = sieve_into(&mut sieve);
    let again = count_again(&sieve);
    drop(sieve);

    let size = human_size(mem);
    let width = primes.limit.to_string().len();
    let mut text = format!(
        "lego-demo primes: a sieve of Eratosthenes in {size} of memory, one byte per odd number\n"
    );
    for (n, count) in &primes.below_powers_of_ten {
        text += &format!("primes below {n:>width$}: {count:>width$}\n");
    }
    text += &format!(
        "primes below {:>width$}: {:>width$}\n",
        primes.limit, primes.count
    );
    text += &format!("largest of them: {}\n", primes.largest);
    text += &format!("sum of them: {}\n", primes.sum);
    if again != primes.count {
        out.write_all(text.as_bytes()).map_err(|e| e.to_string())?;
        return Err(format!(
            "the memory changed: reading all {size} back counts {again} primes, not {}",
            primes.count
        ));
    }
    let pages = mem.div_ceil(4096);
    let plural = if pages == 1 { "" } else { "s" };
    text += &format!(
        "memory: wrote {size} ({pages} page{plural} of 4 KiB), read it all back and counted the same {again} primes\n"
    );
    out.write_all(text.as_bytes()).map_err(|e| e.to_string())
}

/// `len` zero bytes, or an error if the system has not that much to give
/// (rather than the abort of `vec![0; len]`). Zeroed by the system, the
/// pages are untouched until the sieve writes each of them.
fn zeroed(len: usize) -> Result<Vec<u8>, String> {
    let failed = || format!("cannot allocate {} for the sieve", human_size(len as u64));
    let layout = Layout::array::<u8>(len).map_err(|_| failed())?;
    assert!(len > 0, "the sieve has at least MIN_MEM bytes");
    // SAFETY: the layout's size is not zero.
    let ptr = unsafe { alloc::alloc_zeroed(layout) };
    if ptr.is_null() {
        return Err(failed());
    }
    // SAFETY: `ptr` came from the global allocator with the layout of
    // exactly `len` bytes (capacity `len`), which are all initialised (zero).
    Ok(unsafe { Vec::from_raw_parts(ptr, len, len) })
}

/// Sieves the odd numbers in `sieve`, whatever it held (each byte ends 0
/// for a prime, 1 for 1 and for a composite), and counts the primes below
/// 2 * its length, which is at least [`MIN_MEM`].
pub fn sieve_into(sieve: &mut [u8]) -> Primes {
    let len = sieve.len();
    let limit = 2 * len as u64;
    // The odd primes p with p * p < limit, and for each the index of its
    // next multiple to cross out, starting at p * p.
    let small = odd_primes_to((limit - 1).isqrt());
    assert!(
        small.iter().zip(WHEEL).all(|(&p, q)| p == q as u64),
        "the sieve has at least MIN_MEM bytes: the wheel's primes are all small ones"
    );
    let mut next: Vec<usize> = small.iter().map(|&p| (p * p / 2) as usize).collect();
    // Primes below n = 10^k (n even) are 2 and the odd primes at indexes
    // below n / 2.
    let mut checkpoints = std::iter::successors(Some(10u64), |n| n.checked_mul(10))
        .take_while(|&n| n < limit)
        .map(|n| (n, (n / 2) as usize))
        .peekable();
    let mut tally = Tally {
        count: 1,
        largest: 2,
        sum: 2,
    };
    let mut below_powers_of_ten = Vec::new();

    let wheel = wheel_pattern();
    let mut lo = 0;
    while lo < len {
        let hi = (lo + SEGMENT).min(len);
        let mut at = lo;
        while at < hi {
            let from = at % WHEEL_PERIOD;
            let n = (WHEEL_PERIOD - from).min(hi - at);
            sieve[at..at + n].copy_from_slice(&wheel[from..from + n]);
            at += n;
        }
        if lo == 0 {
            sieve[0] = 1; // 1 is not a prime
            for p in WHEEL {
                sieve[p / 2] = 0; // but the wheel's are
            }
        }
        for (next, &p) in next.iter_mut().zip(&small).skip(WHEEL.len()) {
            let step = p as usize;
            let mut i = *next;
            while i < hi {
                sieve[i] = 1;
                i += step;
            }
            *next = i;
        }
        // Count this segment, stopping at each power of ten.
        let mut at = lo;
        loop {
            while let Some((n, _)) = checkpoints.next_if(|&(_, index)| index == at) {
                below_powers_of_ten.push((n, tally.count));
            }
            if at == hi {
                break;
            }
            let end = checkpoints.peek().map_or(hi, |&(_, index)| index.min(hi));
            tally.add(&sieve[at..end], at);
            at = end;
        }
        lo = hi;
    }
    Primes {
        limit,
        below_powers_of_ten,
        count: tally.count,
        largest: tally.largest,
        sum: tally.sum,
    }
}

/// The primes a finished sieve holds, counted again from its bytes alone.
pub fn count_again(sieve: &[u8]) -> u64 {
    let (head, words, tail) = as_words(sieve);
    let mut zeros = 0;
    // Indexes rather than an iterator: quicker in a debug build.
    let mut w = 0;
    while w < words.len() {
        zeros += u64::from(zero_bytes(words[w]).count_ones());
        w += 1;
    }
    for &b in head.iter().chain(tail) {
        zeros += u64::from(b == 0);
    }
    zeros + 1 // and 2
}

/// `bytes` as whole aligned words in the middle, and the bytes either side.
/// (Quicker than `chunks_exact(8)` in a debug build, as the tests run it.)
fn as_words(bytes: &[u8]) -> (&[u8], &[u64], &[u8]) {
    // SAFETY: any eight bytes are a valid u64.
    unsafe { bytes.align_to::<u64>() }
}

/// The bytes of the odd numbers 1, 3, 5... over one period of the wheel:
/// 1 for a multiple of one of its primes (the primes themselves included).
fn wheel_pattern() -> Vec<u8> {
    let mut pattern = vec![0u8; WHEEL_PERIOD];
    for p in WHEEL {
        // 2i + 1 is a multiple of p when i = p / 2 modulo p.
        for i in (p / 2..WHEEL_PERIOD).step_by(p) {
            pattern[i] = 1;
        }
    }
    pattern
}

/// The odd primes up to `n`, by a plain sieve (n is at most the square root
/// of the big sieve's limit).
fn odd_primes_to(n: u64) -> Vec<u64> {
    let n = n as usize;
    let mut composite = vec![false; n + 1];
    let mut primes = Vec::new();
    for p in (3..=n).step_by(2) {
        if !composite[p] {
            primes.push(p as u64);
            for multiple in (p * p..=n).step_by(2 * p) {
                composite[multiple] = true;
            }
        }
    }
    primes
}

/// The highest bit of each byte of `word` (in memory order: the first
/// byte's is bit 7) that is zero, and no other bit.
#[inline(always)] // even in a debug build
fn zero_bytes(word: u64) -> u64 {
    let word = u64::from_le(word);
    !(((word & !HIGH) + !HIGH) | word | !HIGH)
}

struct Tally {
    count: u64,
    largest: u64,
    sum: u128,
}

impl Tally {
    /// Counts the primes of `bytes`, a sieve's bytes from index `base` on.
    fn add(&mut self, bytes: &[u8], base: usize) {
        let (head, words, tail) = as_words(bytes);
        self.add_bytes(head, base);
        let mut index = base + head.len();
        let mut w = 0;
        while w < words.len() {
            let mut primes = zero_bytes(words[w]);
            while primes != 0 {
                let i = index + (primes.trailing_zeros() / 8) as usize;
                self.found(2 * i as u64 + 1);
                primes &= primes - 1;
            }
            index += 8;
            w += 1;
        }
        self.add_bytes(tail, index);
    }

    fn add_bytes(&mut self, bytes: &[u8], base: usize) {
        for (i, &b) in bytes.iter().enumerate() {
            if b == 0 {
                self.found(2 * (base + i) as u64 + 1);
            }
        }
    }

    #[inline(always)]
    fn found(&mut self, prime: u64) {
        self.count += 1;
        self.largest = prime;
        self.sum += u128::from(prime);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn primes_below(limit: u64) -> Vec<u64> {
        (2..limit)
            .filter(|&n| (2..).take_while(|d| d * d <= n).all(|d| n % d != 0))
            .collect()
    }

    #[test]
    fn zero_bytes_finds_exactly_the_zero_bytes() {
        assert_eq!(zero_bytes(0), HIGH);
        assert_eq!(zero_bytes(0x0101_0101_0101_0101), 0);
        // Eight bytes as they lie in memory: the first, fourth and seventh
        // are zero.
        let word = u64::from_ne_bytes([0, 0x7f, 1, 0, 0x80, 1, 0, 0xff]);
        assert_eq!(zero_bytes(word), 0x0080_0000_8000_0080);
    }

    #[test]
    fn against_trial_division() {
        // Sizes around the segment and word boundaries and powers of ten.
        for len in [1024, 1031, 5000, 5003, SEGMENT - 1, SEGMENT, SEGMENT + 13] {
            // Whatever the memory held before does not matter.
            let mut sieve = vec![0xa5u8; len];
            let got = sieve_into(&mut sieve);
            let want = primes_below(2 * len as u64);
            assert_eq!(got.limit, 2 * len as u64);
            assert_eq!(got.count, want.len() as u64, "len {len}");
            assert_eq!(got.largest, *want.last().unwrap());
            assert_eq!(got.sum, want.iter().map(|&p| u128::from(p)).sum::<u128>());
            for &(n, count) in &got.below_powers_of_ten {
                assert_eq!(count, want.iter().filter(|&&p| p < n).count() as u64);
            }
            let powers: Vec<u64> = got.below_powers_of_ten.iter().map(|&(n, _)| n).collect();
            let expected: Vec<u64> = [10, 100, 1000, 10_000, 100_000, 1_000_000]
                .into_iter()
                .filter(|&n| n < got.limit)
                .collect();
            assert_eq!(powers, expected);
            assert_eq!(count_again(&sieve), got.count);
            sieve[len / 2] ^= 1;
            assert_ne!(count_again(&sieve), got.count);
        }
    }

    #[test]
    fn the_known_counts() {
        // pi(10^6) = 78498, pi(2^21) = 155611.
        let mut sieve = vec![0u8; 1 << 20];
        let got = sieve_into(&mut sieve);
        assert_eq!(got.below_powers_of_ten.last(), Some(&(1_000_000, 78_498)));
        assert_eq!(got.count, 155_611);
        assert_eq!(got.largest, 2_097_143);
    }
}
