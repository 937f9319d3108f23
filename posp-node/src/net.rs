//! Socket helpers shared by the front end's links and the center: writes that gather every
//! frame already queued into one system call, and the size of a read.
//!
//! A link carries many requests in flight on one connection, and answers come in groups
//! (every request of a group commit is answered at once). Writing each frame with its own
//! `write` cost a system call and, on loopback, a pass through the receiver's TCP stack per
//! frame; gathered, a group costs one of each.

use tokio::sync::mpsc;

/// The most bytes gathered into one write (a frame already queued is added whole, so one
/// write may exceed this by up to one frame).
pub(crate) const WRITE_BATCH: usize = 64 * 1024;

/// The size of a read buffer on a link: a whole group of gathered frames in one read.
pub(crate) const READ_CHUNK: usize = 64 * 1024;

/// Adds to `out` every item already waiting in `rx`, each through `put`, until `out` holds
/// [`WRITE_BATCH`] bytes or nothing more is waiting. Never waits.
pub(crate) fn gather<T>(
    rx: &mut mpsc::Receiver<T>,
    out: &mut Vec<u8>,
    mut put: impl FnMut(T, &mut Vec<u8>),
) {
    while out.len() < WRITE_BATCH {
        match rx.try_recv() {
            Ok(item) => put(item, out),
            Err(_) => break,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[tokio::test]
    async fn gathers_what_is_queued_and_stops_at_the_batch_size() {
        let (tx, mut rx) = mpsc::channel::<Vec<u8>>(64);
        let mut out = vec![9];
        gather(&mut rx, &mut out, |f, o| o.extend_from_slice(&f));
        assert_eq!(out, [9], "nothing queued: nothing added, no wait");

        for i in 0..3u8 {
            tx.send(vec![i; 2]).await.unwrap();
        }
        gather(&mut rx, &mut out, |f, o| o.extend_from_slice(&f));
        assert_eq!(out, [9, 0, 0, 1, 1, 2, 2]);

        // Frames of 40,000 bytes: the second takes `out` past the batch size, the third waits
        // for the next write.
        let mut out = Vec::new();
        for i in 0..3u8 {
            tx.send(vec![i; 40_000]).await.unwrap();
        }
        gather(&mut rx, &mut out, |f, o| o.extend_from_slice(&f));
        assert_eq!(out.len(), 80_000);
        assert_eq!((out[39_999], out[40_000]), (0, 1));
        assert_eq!(rx.try_recv().unwrap(), vec![2; 40_000]);
    }
}
