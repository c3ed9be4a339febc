//! Extension X5: the bandwidth cap, as a token bucket. Pure: the caller passes
//! "now" and sleeps for the returned delay.

use std::time::{Duration, Instant};

/// A token bucket of `burst` bytes refilled at `rate` bytes per second. The
/// bucket starts full; a chunk larger than what is in it goes into debt, and
/// the delay pays the debt back.
#[derive(Debug, Clone)]
pub struct Throttle {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Option<Instant>,
}

impl Throttle {
    /// A bucket of `burst` bytes refilled at `rate` bytes per second (a rate of
    /// 0 is taken as 1 byte per second).
    pub fn new(rate: u64, burst: u64) -> Throttle {
        let burst = burst as f64;
        Throttle {
            rate: rate.max(1) as f64,
            burst,
            tokens: burst,
            last: None,
        }
    }

    /// The bucket used for a download capped at `rate` bytes per second: a
    /// burst of an eighth of a second's worth, at least 16 KiB.
    pub fn for_rate(rate: u64) -> Throttle {
        Throttle::new(rate, (rate / 8).max(16 * 1024))
    }

    /// Take `bytes` out of the bucket at `now`; how long to wait before
    /// reading more so the average stays at the rate.
    pub fn delay_for(&mut self, bytes: u64, now: Instant) -> Duration {
        if let Some(last) = self.last {
            let elapsed = now.saturating_duration_since(last).as_secs_f64();
            self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        }
        self.last = Some(now);
        self.tokens -= bytes as f64;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / self.rate)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(d: Duration) -> u128 {
        d.as_millis()
    }

    #[test]
    fn burst_is_free_then_the_rate_applies() {
        let t0 = Instant::now();
        let mut t = Throttle::new(1000, 500);
        assert_eq!(t.delay_for(500, t0), Duration::ZERO);
        assert_eq!(ms(t.delay_for(500, t0)), 500);
        // Having waited the 500 ms, the next 500 bytes cost another 500 ms.
        assert_eq!(
            ms(t.delay_for(500, t0 + Duration::from_millis(500))),
            1000 - 500
        );
    }

    #[test]
    fn refill_is_capped_at_the_burst() {
        let t0 = Instant::now();
        let mut t = Throttle::new(1000, 500);
        assert_eq!(t.delay_for(500, t0), Duration::ZERO);
        // Ten idle seconds refill only 500 bytes.
        let later = t0 + Duration::from_secs(10);
        assert_eq!(ms(t.delay_for(1500, later)), 1000);
    }

    #[test]
    fn chunks_larger_than_the_burst_go_into_debt() {
        let t0 = Instant::now();
        let mut t = Throttle::new(2_000_000, 16_384);
        let d = t.delay_for(1_000_000, t0);
        assert_eq!(ms(d), (1_000_000 - 16_384) / 2000);
    }

    #[test]
    fn long_run_average_is_the_rate() {
        // 1 MiB in 16 KiB chunks at 2 MB/s, sleeping exactly as told.
        let t0 = Instant::now();
        let mut now = t0;
        let mut t = Throttle::new(2_000_000, 65_536);
        for _ in 0..64 {
            now += t.delay_for(16_384, now);
        }
        let secs = (now - t0).as_secs_f64();
        let want = (1_048_576.0 - 65_536.0) / 2_000_000.0;
        assert!((secs - want).abs() < 0.001, "{secs} vs {want}");
    }

    #[test]
    fn zero_rate_is_one_byte_per_second() {
        let t0 = Instant::now();
        let mut t = Throttle::new(0, 0);
        assert_eq!(t.delay_for(3, t0), Duration::from_secs(3));
    }

    #[test]
    fn a_clock_going_backwards_refills_nothing() {
        let t0 = Instant::now() + Duration::from_secs(5);
        let mut t = Throttle::new(1000, 0);
        assert_eq!(ms(t.delay_for(100, t0)), 100);
        assert_eq!(ms(t.delay_for(100, t0 - Duration::from_secs(1))), 200);
    }
}
