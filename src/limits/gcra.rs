//! The generic cell rate algorithm: one slot every `interval`. Slots that came due in the last
//! `CATCH_UP` but were not taken can still be taken at once: a waiting task cannot sleep less than a
//! timer tick (~1 ms), so at rates above ~1000/s a limiter that dropped them would hand out at most
//! one slot per tick. Beyond that an idle limiter banks nothing: in any window of length w at most
//! 1 + (w + CATCH_UP) / interval slots. Used by the gateway's local limiter and its fallback when
//! Redis is away (the Redis script does the same).

use std::time::Duration;

use tokio::time::Instant;

/// How far back slots not taken stay available (two timer ticks).
pub const CATCH_UP: Duration = Duration::from_millis(2);

#[derive(Debug, Clone)]
pub struct Gcra {
    interval: Duration,
    /// Slots up to this much early still pass (clock jitter between two measuring points).
    tolerance: Duration,
    /// Theoretical arrival time of the next slot.
    tat: Option<Instant>,
}

/// The spacing of `rate` slots per second.
pub fn interval_of(rate: f64) -> Duration {
    Duration::from_secs_f64(1.0 / rate.max(1e-6))
}

impl Gcra {
    pub fn new(rate: f64) -> Gcra {
        Gcra::with_tolerance(rate, Duration::ZERO)
    }

    pub fn with_tolerance(rate: f64, tolerance: Duration) -> Gcra {
        Gcra {
            interval: interval_of(rate),
            tolerance,
            tat: None,
        }
    }

    /// Takes the slot at `now` if it is free; else says how long until the next one.
    pub fn try_take(&mut self, now: Instant) -> Result<(), Duration> {
        let tat = self.tat.unwrap_or(now);
        if now + self.tolerance < tat {
            return Err(tat - now);
        }
        let floor = now.checked_sub(CATCH_UP).unwrap_or(now);
        self.tat = Some(tat.max(floor) + self.interval);
        Ok(())
    }

    /// How long until a slot is free, without taking it.
    pub fn wait(&self, now: Instant) -> Duration {
        self.tat
            .map_or(Duration::ZERO, |tat| tat.saturating_duration_since(now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_spaced_by_the_interval() {
        let start = Instant::now();
        let mut g = Gcra::new(2.0);
        assert!(g.try_take(start).is_ok());
        assert_eq!(g.try_take(start), Err(Duration::from_millis(500)));
        assert_eq!(
            g.try_take(start + Duration::from_millis(499)),
            Err(Duration::from_millis(1))
        );
        assert!(g.try_take(start + Duration::from_millis(500)).is_ok());
        // An idle limiter does not bank slots: after a long pause, still one at a time.
        let later = start + Duration::from_secs(10);
        assert!(g.try_take(later).is_ok());
        assert!(g.try_take(later).is_err());
    }

    #[test]
    fn slots_due_during_a_timer_tick_are_not_lost() {
        let start = Instant::now();
        let mut g = Gcra::new(100_000.0); // one slot every 10 µs
        assert!(g.try_take(start).is_ok());
        // A waiter that asked for the next slot wakes up a millisecond later: the ~100 slots that
        // came due meanwhile are handed out at once, not one per millisecond.
        let woke = start + Duration::from_millis(1);
        let taken = (0..1000).take_while(|_| g.try_take(woke).is_ok()).count();
        assert!((99..=101).contains(&taken), "{taken}");
        // Beyond CATCH_UP nothing is banked.
        let later = woke + Duration::from_secs(1);
        let taken = (0..1000).take_while(|_| g.try_take(later).is_ok()).count();
        assert!(taken <= 201, "{taken}");
    }

    #[test]
    fn tolerance_absorbs_jitter() {
        let start = Instant::now();
        let mut g = Gcra::with_tolerance(1.0, Duration::from_millis(20));
        assert!(g.try_take(start).is_ok());
        assert!(g.try_take(start + Duration::from_millis(985)).is_ok());
        assert!(g.try_take(start + Duration::from_millis(1500)).is_err());
    }
}
