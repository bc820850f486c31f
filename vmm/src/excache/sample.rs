//! How often processes find their pages in the ExCache. A hit never
//! leaves the guest (the page is mapped), so hits are estimated the way
//! VMware ESX estimates a VM's active memory (Waldspurger, OSDI '02): each
//! period a random sample of the cached pages is taken out of the guest's
//! reach, moved whole to a parking area (`UFFDIO_MOVE`: the content goes
//! with the page, so nothing can be lost on the way); an access to one
//! faults, brings it straight back (no fetch) and counts it touched. The
//! share of the sample touched estimates the share of the cached pages
//! the processes touched in the period; with the period's misses, the hit
//! ratio is `touched / (touched + missed)`, at page granularity: of the
//! pages processes touched in a period, the share they found cached.
//! A page touched many times in a period counts once, as a miss does.
//!
//! Only pages mapped writable are sampled: a page moved back is mapped
//! writable whatever it was, and a write-protected page must stay so (its
//! first write is how the cache learns it is dirty, or a refusal). So the
//! touched share is that of the writable pages (data, heap, stacks), and
//! it is scaled to the share of the cached pages they are (from the same
//! draws); hits on read-only pages (program text) are taken to follow
//! the writable ones.
//!
//! Pages installed during a period without a fault of their own (read
//! ahead, fresh zeros after the faulting one) are hits when touched, and
//! a scan through more than the cache touches mostly those: one in every
//! few of them (as many as [`SAMPLE`] a period, by last period's count)
//! is parked as it is installed, and the touched share of those, times
//! the pages installed ahead, is added to the period's hits.
//!
//! Cost: each sampled page touched is one fault served here without a
//! round trip, plus two moves; [`SAMPLE`] pages every [`PERIOD`].

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use super::Key;

pub const PERIOD: Duration = Duration::from_millis(250);
/// Pages taken away each period.
pub const SAMPLE: usize = 32;
/// Periods the recent ratio covers (10 s).
const WINDOW: usize = 40;

pub struct Sampler {
    /// Parking places (a page each) not in use.
    free: Vec<u64>,
    /// The pages taken away this period, where each is parked, and
    /// whether it was taken as it was installed ahead.
    pub parked: HashMap<Key, (u64, bool)>,
    /// Park one in this many pages installed ahead (from last period).
    ahead_every: usize,
    /// Why there is no sampling, if there is none.
    pub off: Option<String>,
    period: Period,
    /// Finished periods, newest last: (pages found cached, pages missed).
    recent: VecDeque<(f64, u64)>,
    /// All finished periods.
    total: (f64, u64),
    /// Some period took a sample (before that there is no ratio).
    sampled: bool,
    rng: u64,
}

/// What one period has seen so far.
#[derive(Default, Clone, Copy)]
struct Period {
    taken: usize,
    touched: usize,
    /// Draws that found a cached page, and of them a writable one.
    found: usize,
    writable: usize,
    /// Pages installed ahead this period; of them parked, and touched.
    ahead: usize,
    ahead_taken: usize,
    ahead_touched: usize,
    /// Pages cached when the sample was taken.
    cached: usize,
    /// The misses counter then.
    misses_before: u64,
}

impl Period {
    /// (pages found cached, pages missed) by now.
    fn estimate(&self, misses_now: u64) -> (f64, u64) {
        let mut hits = if self.taken == 0 || self.writable == 0 {
            0.0
        } else {
            let writable = self.writable as f64 / self.found as f64;
            self.touched as f64 / self.taken as f64 * self.cached as f64 * writable
        };
        if self.ahead_taken > 0 {
            hits += self.ahead_touched as f64 / self.ahead_taken as f64 * self.ahead as f64;
        }
        (hits, misses_now.saturating_sub(self.misses_before))
    }

    fn sampled(&self) -> bool {
        self.taken > 0 || self.ahead_taken > 0
    }
}

impl Sampler {
    /// Parking places at `area` ([`SAMPLE`] pages registered with the
    /// ExCache's userfaultfd), or sampling off for the reason given.
    pub fn new(area: Result<u64, String>, seed: u64) -> Sampler {
        let (free, off) = match area {
            Ok(a) => ((0..SAMPLE as u64).map(|i| a + i * 4096).collect(), None),
            Err(why) => (Vec::new(), Some(why)),
        };
        Sampler {
            free,
            parked: HashMap::new(),
            ahead_every: 1,
            off,
            period: Period::default(),
            recent: VecDeque::new(),
            total: (0.0, 0),
            sampled: false,
            rng: seed | 1,
        }
    }

    pub fn random(&mut self) -> u64 {
        // xorshift64*: the sample needs spread, not secrecy.
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A parking place for `key`'s page, if one is free.
    pub fn place(&mut self) -> Option<u64> {
        self.free.pop()
    }

    /// A draw found a cached page, `writable` or not (the share of
    /// writable pages among the cached ones).
    pub fn drawn(&mut self, writable: bool) {
        self.period.found += 1;
        self.period.writable += writable as usize;
    }

    /// The page of `key` is parked at `at` (taken by the sample).
    pub fn parked_at(&mut self, key: Key, at: u64) {
        self.parked.insert(key, (at, false));
        self.period.taken += 1;
        self.sampled = true;
    }

    /// A page was installed ahead of any access to it: whether to park
    /// it (one in `ahead_every`, while places last).
    pub fn installed_ahead(&mut self) -> bool {
        self.period.ahead += 1;
        self.off.is_none()
            && self.period.ahead % self.ahead_every == 0
            && self.period.ahead_taken < SAMPLE
            && !self.free.is_empty()
    }

    /// The page of `key`, installed ahead, is parked at `at`.
    pub fn parked_ahead(&mut self, key: Key, at: u64) {
        self.parked.insert(key, (at, true));
        self.period.ahead_taken += 1;
        self.sampled = true;
    }

    /// A place not used after all, or given back.
    pub fn release(&mut self, at: u64) {
        self.free.push(at);
    }

    /// The parked page of `key` was touched: it goes back; its place is
    /// given back by [`Sampler::release`] once it has.
    pub fn touched(&mut self, key: Key) -> Option<u64> {
        let (at, ahead) = self.parked.remove(&key)?;
        if ahead {
            self.period.ahead_touched += 1;
        } else {
            self.period.touched += 1;
        }
        Some(at)
    }

    /// Takes `key` out of the sample untouched: where it is parked.
    pub fn untouched(&mut self, key: Key) -> Option<u64> {
        self.parked.remove(&key).map(|(at, _)| at)
    }

    /// Ends the period (its parked pages back already) and begins the next
    /// with `cached` pages cached and the misses counter at `misses`.
    pub fn next_period(&mut self, cached: usize, misses: u64) {
        let (h, m) = self.period.estimate(misses);
        // A period without a sample says nothing of hits: its misses are
        // left out with it (the cache was empty, or all write-protected).
        if self.period.sampled() {
            self.recent.push_back((h, m));
            if self.recent.len() > WINDOW {
                self.recent.pop_front();
            }
            self.total.0 += h;
            self.total.1 += m;
        }
        // Next period's pages installed ahead are sampled at the rate that
        // would have taken SAMPLE of this one's.
        self.ahead_every = (self.period.ahead / SAMPLE).max(1);
        self.period = Period {
            cached,
            misses_before: misses,
            ..Period::default()
        };
    }

    /// The recent periods (and this one so far): the share of the pages
    /// touched that were found cached; None before any sample, or with
    /// nothing touched.
    pub fn recent(&self, misses_now: u64) -> Option<f64> {
        let now = self.current(misses_now);
        let sum = self
            .recent
            .iter()
            .fold(now, |(h, m), &(ph, pm)| (h + ph, m + pm));
        self.ratio(sum)
    }

    /// The same over every period since the start.
    pub fn total(&self, misses_now: u64) -> Option<f64> {
        let now = self.current(misses_now);
        self.ratio((self.total.0 + now.0, self.total.1 + now.1))
    }

    /// This period so far, if it took a sample.
    fn current(&self, misses_now: u64) -> (f64, u64) {
        if self.period.sampled() {
            self.period.estimate(misses_now)
        } else {
            (0.0, 0)
        }
    }

    fn ratio(&self, (hits, misses): (f64, u64)) -> Option<f64> {
        let all = hits + misses as f64;
        (self.sampled && all > 0.0).then(|| hits / all)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_share_touched_scales_to_the_pages_cached() {
        let mut s = Sampler::new(Ok(0x1000_0000), 7);
        s.next_period(1000, 50);
        assert_eq!(s.total(60), None, "nothing sampled yet");
        // 4 of 8 sampled pages touched, 100 misses, and 3 in 4 pages
        // cached are writable: 375 found cached.
        for i in 0..8 {
            let at = s.place().expect("a place");
            s.parked_at((0, i * 4096), at);
        }
        (0..12).for_each(|i| s.drawn(i % 4 != 0));
        for i in 0..4 {
            let at = s.touched((0, i * 4096)).expect("parked");
            s.release(at);
        }
        assert_eq!(s.touched((0, 0)), None, "back already");
        assert_eq!(s.recent(150), Some(375.0 / 475.0));
        for (k, (at, _)) in std::mem::take(&mut s.parked) {
            assert!(k.1 >= 4 * 4096);
            s.release(at);
        }
        s.next_period(1000, 150);
        // A period without a sample adds nothing, misses or not.
        s.next_period(1000, 400);
        assert_eq!(s.total(400), Some(375.0 / 475.0));
        // A sampled period where nothing sampled was touched: 0 found,
        // 200 missed.
        let at = s.place().expect("a place");
        s.parked_at((1, 0), at);
        s.drawn(true);
        assert_eq!(s.total(600), Some(375.0 / 675.0));
        let back = s.untouched((1, 0)).expect("parked");
        s.release(back);
        s.next_period(1000, 600);
        assert_eq!(s.total(600), Some(375.0 / 675.0));
        // Pages installed ahead: 64 last period, so one in two is parked
        // now; of the 20 installed, 10 parked, 5 touched: 10 more hits.
        s.next_period(0, 600);
        (0..64).for_each(|_| {
            s.installed_ahead();
        });
        s.next_period(0, 600);
        let mut taken = Vec::new();
        for i in 0..20 {
            if s.installed_ahead() {
                let at = s.place().expect("a place");
                s.parked_ahead((2, i * 4096), at);
                taken.push((2, i * 4096));
            }
        }
        assert_eq!(taken.len(), 10);
        for &k in taken.iter().step_by(2) {
            let at = s.touched(k).expect("parked");
            s.release(at);
        }
        // This period: 10 found cached, 10 missed; with the two before.
        assert_eq!(s.recent(610), Some((375.0 + 10.0) / (475.0 + 200.0 + 20.0)));
        for k in s.parked.keys().copied().collect::<Vec<_>>() {
            let at = s.untouched(k).expect("parked");
            s.release(at);
        }
        s.next_period(0, 610);
        // Places run out at SAMPLE and come back when released.
        let taken: Vec<u64> = std::iter::from_fn(|| s.place()).collect();
        assert_eq!(taken.len(), SAMPLE);
        s.release(taken[0]);
        assert_eq!(s.place(), Some(taken[0]));
    }

    #[test]
    fn without_a_parking_area_nothing_is_sampled() {
        let mut s = Sampler::new(Err("no moves".into()), 1);
        assert_eq!(s.off.as_deref(), Some("no moves"));
        assert_eq!(s.place(), None);
    }
}
