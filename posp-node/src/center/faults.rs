//! Fault injection: what happens to the reply of one transaction message, decided from
//! [`FaultsConfig`] when the message arrives.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::config::{FaultSelector, FaultsConfig};

/// What to do with one reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReplyPlan {
    /// Wait this long after processing before sending.
    pub wait: Duration,
    /// Do not send the reply.
    pub drop: bool,
    /// Send the reply twice.
    pub duplicate: bool,
    /// Do not send the reply and close the connection.
    pub close: bool,
}

impl FaultSelector {
    /// Whether the `n`th transaction message (from 1), with this MTI, STAN and amount, is
    /// selected.
    pub fn matches(&self, n: u64, mti: &str, stan: Option<u32>, amount: Option<u64>) -> bool {
        if !self.mtis.is_empty() && !self.mtis.iter().any(|m| m == mti) {
            return false;
        }
        self.all
            || (self.every > 0 && n.is_multiple_of(self.every))
            || stan.is_some_and(|s| self.stans.contains(&s))
            || amount.is_some_and(|a| self.amounts.contains(&a))
    }
}

/// Applies a [`FaultsConfig`]: counts transaction messages and plans each reply.
#[derive(Debug)]
pub struct Faults {
    config: FaultsConfig,
    seen: AtomicU64,
}

impl Faults {
    /// Faults from the configuration, counting from zero.
    pub fn new(config: FaultsConfig) -> Faults {
        Faults {
            config,
            seen: AtomicU64::new(0),
        }
    }

    /// Plans the reply of the next transaction message: `on_connection` is its number on its
    /// connection (from 1); `mti` its MTI; `stan` and `amount` are fields 11 and 4 if present.
    pub fn plan(
        &self,
        on_connection: u64,
        mti: &str,
        stan: Option<u32>,
        amount: Option<u64>,
    ) -> ReplyPlan {
        let n = self.seen.fetch_add(1, Ordering::Relaxed) + 1;
        let c = &self.config;
        let mut wait = c.delay;
        if let Some(late) = &c.late
            && late.select.matches(n, mti, stan, amount)
        {
            wait = wait.saturating_add(late.after);
        }
        ReplyPlan {
            wait,
            drop: c
                .drop
                .as_ref()
                .is_some_and(|s| s.matches(n, mti, stan, amount)),
            duplicate: c
                .duplicate
                .as_ref()
                .is_some_and(|s| s.matches(n, mti, stan, amount)),
            close: c.close_after > 0 && on_connection == c.close_after,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::config::LateFault;
    use super::*;

    #[test]
    fn plans_follow_the_selectors() {
        let f = Faults::new(FaultsConfig {
            delay: Duration::from_millis(5),
            drop: Some(FaultSelector {
                every: 3,
                ..FaultSelector::default()
            }),
            late: Some(LateFault {
                after: Duration::from_secs(10),
                select: FaultSelector {
                    amounts: vec![777],
                    ..FaultSelector::default()
                },
            }),
            duplicate: Some(FaultSelector {
                stans: vec![42],
                ..FaultSelector::default()
            }),
            close_after: 4,
        });
        let p1 = f.plan(1, "0200", Some(1), Some(100));
        assert_eq!(
            p1,
            ReplyPlan {
                wait: Duration::from_millis(5),
                ..ReplyPlan::default()
            }
        );
        let p2 = f.plan(2, "0200", Some(42), Some(777));
        assert_eq!(
            p2,
            ReplyPlan {
                wait: Duration::from_millis(10_005),
                duplicate: true,
                ..ReplyPlan::default()
            }
        );
        let p3 = f.plan(3, "0200", None, None);
        assert!(p3.drop && !p3.close);
        let p4 = f.plan(4, "0200", None, None);
        assert!(!p4.drop && p4.close);
    }

    #[test]
    fn mtis_restrict_a_selector() {
        let only_purchases = FaultSelector {
            amounts: vec![8_888],
            mtis: vec!["0200".to_owned()],
            ..FaultSelector::default()
        };
        assert!(only_purchases.matches(1, "0200", Some(7), Some(8_888)));
        assert!(!only_purchases.matches(2, "0400", Some(7), Some(8_888)));
        assert!(!only_purchases.matches(3, "0200", Some(7), Some(100)));
        let any = FaultSelector {
            amounts: vec![8_888],
            ..FaultSelector::default()
        };
        assert!(any.matches(4, "0400", Some(7), Some(8_888)));
    }
}
