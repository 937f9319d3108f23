//! Counters and histograms of the front end, rendered as Prometheus text by the admin
//! endpoint.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

/// Upper bounds of the latency histogram buckets, in milliseconds.
pub const LATENCY_BUCKETS_MS: [u64; 12] = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000];

/// The front end's metrics.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Transactions answered, by kind and response code.
    /// Counts by kind, then response code: nested so that counting an answer of a pair
    /// already seen looks it up by `&str` and allocates nothing.
    txns: Mutex<BTreeMap<String, BTreeMap<String, u64>>>,
    /// Latency bucket counts (cumulative buckets are computed on render).
    buckets: [AtomicU64; LATENCY_BUCKETS_MS.len()],
    /// Latencies above the last bucket.
    over: AtomicU64,
    /// Sum of latencies in microseconds.
    sum_us: AtomicU64,
    /// Messages that did not parse.
    pub format_errors: AtomicU64,
    /// Terminal connections accepted.
    pub connections_accepted: AtomicU64,
    /// Terminal connections refused at the limit.
    pub connections_refused: AtomicU64,
    /// Terminal connections open now.
    pub connections_open: AtomicU64,
    /// Reversals queued in the SAF.
    pub reversals_queued: AtomicU64,
    /// Reversal transmissions by the SAF sender.
    pub reversals_sent: AtomicU64,
    /// Reversals the center completed.
    pub reversals_done: AtomicU64,
    /// SAF entries moved to the exception queue by the sender.
    pub saf_exceptions: AtomicU64,
    /// Late responses (after a timeout) that approved.
    pub late_approvals: AtomicU64,
    /// Late responses that declined.
    pub late_declines: AtomicU64,
    /// Responses from the center that matched nothing.
    pub unmatched: AtomicU64,
    /// Flow workers that died holding a request (restarted by the supervisor).
    pub worker_crashes: AtomicU64,
    /// Whether the last HSM operation succeeded or failed for a business reason (false after
    /// a device error or timeout).
    pub hsm_up: AtomicBool,
}

impl Metrics {
    /// New metrics, HSM assumed up.
    pub fn new() -> Metrics {
        let m = Metrics::default();
        m.hsm_up.store(true, Ordering::Relaxed);
        m
    }

    /// Counts an answered transaction and its latency.
    pub fn record(&self, kind: &str, response_code: &str, latency: Duration) {
        {
            let mut txns = self.txns.lock().unwrap_or_else(PoisonError::into_inner);
            let codes = match txns.get_mut(kind) {
                Some(codes) => codes,
                None => txns.entry(kind.to_owned()).or_default(),
            };
            match codes.get_mut(response_code) {
                Some(n) => *n += 1,
                None => {
                    codes.insert(response_code.to_owned(), 1);
                }
            }
        }
        let ms = u64::try_from(latency.as_millis()).unwrap_or(u64::MAX);
        match LATENCY_BUCKETS_MS.iter().position(|&b| ms < b) {
            Some(i) => {
                if let Some(b) = self.buckets.get(i) {
                    b.fetch_add(1, Ordering::Relaxed);
                }
            }
            None => {
                self.over.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.sum_us.fetch_add(
            u64::try_from(latency.as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    /// Transactions answered with this kind and code.
    pub fn count(&self, kind: &str, response_code: &str) -> u64 {
        self.txns
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(kind)
            .and_then(|codes| codes.get(response_code))
            .copied()
            .unwrap_or(0)
    }

    /// Every (kind, code, count).
    pub fn txn_counts(&self) -> Vec<(String, String, u64)> {
        self.txns
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .flat_map(|(k, codes)| codes.iter().map(|(c, n)| (k.clone(), c.clone(), *n)))
            .collect()
    }

    /// Renders the Prometheus text exposition of these metrics plus the gauges given: one
    /// series per link (`link` label) and per SAF destination.
    pub fn render(&self, links: &[super::admin::LinkStatus], saf: &[(String, u64, u64)]) -> String {
        let mut out = String::new();
        let g = |v: &AtomicU64| v.load(Ordering::Relaxed);
        out.push_str(
            "# HELP posp_transactions_total Transactions answered, by kind and response code.\n",
        );
        out.push_str("# TYPE posp_transactions_total counter\n");
        for (kind, code, n) in self.txn_counts() {
            let _ = writeln!(
                out,
                "posp_transactions_total{{kind=\"{kind}\",code=\"{code}\"}} {n}"
            );
        }
        out.push_str("# HELP posp_latency_seconds Time from request to answer.\n");
        out.push_str("# TYPE posp_latency_seconds histogram\n");
        let mut cumulative = 0;
        for (bound, bucket) in LATENCY_BUCKETS_MS.iter().zip(&self.buckets) {
            cumulative += g(bucket);
            let _ = writeln!(
                out,
                "posp_latency_seconds_bucket{{le=\"{}\"}} {cumulative}",
                *bound as f64 / 1000.0
            );
        }
        cumulative += g(&self.over);
        let _ = writeln!(
            out,
            "posp_latency_seconds_bucket{{le=\"+Inf\"}} {cumulative}"
        );
        let _ = writeln!(
            out,
            "posp_latency_seconds_sum {}",
            g(&self.sum_us) as f64 / 1e6
        );
        let _ = writeln!(out, "posp_latency_seconds_count {cumulative}");
        for (name, help, v) in [
            (
                "posp_format_errors_total",
                "Messages that did not parse.",
                &self.format_errors,
            ),
            (
                "posp_connections_accepted_total",
                "Terminal connections accepted.",
                &self.connections_accepted,
            ),
            (
                "posp_connections_refused_total",
                "Terminal connections refused at the limit.",
                &self.connections_refused,
            ),
            (
                "posp_reversals_queued_total",
                "Reversals queued in the SAF.",
                &self.reversals_queued,
            ),
            (
                "posp_reversals_sent_total",
                "Reversal transmissions.",
                &self.reversals_sent,
            ),
            (
                "posp_reversals_done_total",
                "Reversals completed by the center.",
                &self.reversals_done,
            ),
            (
                "posp_saf_exceptions_total",
                "SAF entries moved to the exception queue.",
                &self.saf_exceptions,
            ),
            (
                "posp_late_approvals_total",
                "Late approvals after a timeout (reversal kept).",
                &self.late_approvals,
            ),
            (
                "posp_late_declines_total",
                "Late declines after a timeout.",
                &self.late_declines,
            ),
            (
                "posp_unmatched_responses_total",
                "Responses from the center that matched nothing.",
                &self.unmatched,
            ),
            (
                "posp_flow_worker_crashes_total",
                "Flow workers that died holding a request.",
                &self.worker_crashes,
            ),
        ] {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
                g(v)
            );
        }
        let _ = writeln!(
            out,
            "# HELP posp_connections_open Terminal connections open.\n# TYPE posp_connections_open gauge\nposp_connections_open {}",
            g(&self.connections_open)
        );
        out.push_str("# HELP posp_link_up Whether a link to the center is connected.\n# TYPE posp_link_up gauge\n");
        for l in links {
            let _ = writeln!(
                out,
                "posp_link_up{{link=\"{}\"}} {}",
                l.name,
                u8::from(l.up)
            );
        }
        out.push_str("# HELP posp_link_in_flight Requests outstanding on a link.\n# TYPE posp_link_in_flight gauge\n");
        for l in links {
            let _ = writeln!(
                out,
                "posp_link_in_flight{{link=\"{}\"}} {}",
                l.name, l.in_flight
            );
        }
        type Counter = fn(&super::admin::LinkStatus) -> u64;
        let counters: [(&str, &str, Counter); 3] = [
            ("posp_link_sent_total", "Requests written on a link.", |l| {
                l.sent
            }),
            (
                "posp_link_timeouts_total",
                "Requests timed out on a link.",
                |l| l.timeouts,
            ),
            (
                "posp_link_refused_peers_total",
                "Connections to a simplex link's receive address from a source not allowed.",
                |l| l.refused_peers,
            ),
        ];
        for (name, help, value) in counters {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            for l in links {
                let _ = writeln!(out, "{name}{{link=\"{}\"}} {}", l.name, value(l));
            }
        }
        out.push_str("# HELP posp_saf_queued SAF entries queued.\n# TYPE posp_saf_queued gauge\n");
        for (dest, queued, _) in saf {
            let _ = writeln!(out, "posp_saf_queued{{destination=\"{dest}\"}} {queued}");
        }
        out.push_str("# HELP posp_saf_exception SAF entries in the exception queue.\n# TYPE posp_saf_exception gauge\n");
        for (dest, _, exc) in saf {
            let _ = writeln!(out, "posp_saf_exception{{destination=\"{dest}\"}} {exc}");
        }
        let _ = writeln!(
            out,
            "# HELP posp_hsm_up Whether the HSM answered the last operation.\n# TYPE posp_hsm_up gauge\nposp_hsm_up {}",
            u8::from(self.hsm_up.load(Ordering::Relaxed))
        );
        out
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn transactions_are_counted_by_kind_then_code_in_order() {
        let m = Metrics::new();
        for (kind, code) in [
            ("PURCHASE", "00"),
            ("PURCHASE", "51"),
            ("ECHO", "00"),
            ("PURCHASE", "00"),
        ] {
            m.record(kind, code, Duration::from_millis(1));
        }
        let own = |k: &str, c: &str, n: u64| (k.to_owned(), c.to_owned(), n);
        assert_eq!(
            m.txn_counts(),
            [
                own("ECHO", "00", 1),
                own("PURCHASE", "00", 2),
                own("PURCHASE", "51", 1)
            ]
        );
        assert_eq!(m.count("PURCHASE", "51"), 1);
        assert_eq!(m.count("PURCHASE", "99"), 0);
        assert_eq!(m.count("VOID", "00"), 0);
    }

    #[test]
    fn histogram_and_counters_render() {
        let m = Metrics::new();
        m.record("PURCHASE", "00", Duration::from_micros(1500));
        m.record("PURCHASE", "00", Duration::from_millis(7000));
        m.record("SIGN_IN", "00", Duration::from_micros(300));
        assert_eq!(m.count("PURCHASE", "00"), 2);
        let link = |name: &str, up: bool, in_flight: usize| super::super::admin::LinkStatus {
            name: name.to_owned(),
            spec: "cups-pos".to_owned(),
            mode: crate::config::LinkMode::FullDuplexLong,
            up,
            in_flight,
            connects: 1,
            disconnects: 0,
            sent: 7,
            matched: 6,
            timeouts: 1,
            wrong_socket: 0,
            refused_peers: 2,
        };
        let text = m.render(
            &[link("center", true, 3), link("center-b", false, 0)],
            &[("center".into(), 2, 1)],
        );
        assert!(text.contains("posp_transactions_total{kind=\"PURCHASE\",code=\"00\"} 2\n"));
        assert!(text.contains("posp_latency_seconds_bucket{le=\"0.001\"} 1\n"));
        assert!(text.contains("posp_latency_seconds_bucket{le=\"0.002\"} 2\n"));
        assert!(text.contains("posp_latency_seconds_bucket{le=\"5\"} 2\n"));
        assert!(text.contains("posp_latency_seconds_bucket{le=\"+Inf\"} 3\n"));
        assert!(text.contains("posp_link_up{link=\"center\"} 1\n"));
        assert!(text.contains("posp_link_up{link=\"center-b\"} 0\n"));
        assert!(text.contains("posp_link_in_flight{link=\"center\"} 3\n"));
        assert!(text.contains("posp_link_sent_total{link=\"center-b\"} 7\n"));
        assert!(text.contains("posp_link_timeouts_total{link=\"center\"} 1\n"));
        assert!(text.contains("posp_link_refused_peers_total{link=\"center\"} 2\n"));
        assert!(text.contains("posp_saf_exception{destination=\"center\"} 1\n"));
        assert!(text.contains("posp_hsm_up 1\n"));
    }
}
