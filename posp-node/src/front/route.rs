//! Routing: MTI + processing code (field 3) + message type code (60.1) -> the flow that
//! handles a request. The table is PROTOCOL.md's.

use crate::store::TxnKind;

use super::model::Txn;

/// Where a request goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// Answered by the front end itself (sign-in, sign-off, echo, settlement).
    Local(TxnKind),
    /// Journaled and forwarded to the center.
    Forward(TxnKind),
    /// A terminal's reversal of an earlier transaction.
    Reversal,
    /// Nothing handles it: answered `12` (invalid transaction).
    Unsupported,
}

/// One row of the routing table.
struct Row {
    mti: &'static str,
    processing_code: Option<&'static str>,
    msg_type: Option<&'static str>,
    network_code: Option<&'static str>,
    route: Route,
}

const TABLE: [Row; 12] = [
    Row {
        mti: "0800",
        processing_code: None,
        msg_type: Some("00"),
        network_code: None,
        route: Route::Local(TxnKind::SignIn),
    },
    Row {
        mti: "0820",
        processing_code: None,
        msg_type: None,
        network_code: Some("002"),
        route: Route::Local(TxnKind::SignOff),
    },
    Row {
        mti: "0820",
        processing_code: None,
        msg_type: None,
        network_code: Some("301"),
        route: Route::Local(TxnKind::Echo),
    },
    Row {
        mti: "0500",
        processing_code: None,
        msg_type: None,
        network_code: None,
        route: Route::Local(TxnKind::Settlement),
    },
    Row {
        mti: "0200",
        processing_code: Some("310000"),
        msg_type: Some("01"),
        network_code: None,
        route: Route::Forward(TxnKind::Balance),
    },
    Row {
        mti: "0200",
        processing_code: Some("000000"),
        msg_type: Some("22"),
        network_code: None,
        route: Route::Forward(TxnKind::Purchase),
    },
    Row {
        mti: "0200",
        processing_code: Some("200000"),
        msg_type: Some("23"),
        network_code: None,
        route: Route::Forward(TxnKind::PurchaseVoid),
    },
    Row {
        mti: "0220",
        processing_code: Some("200000"),
        msg_type: Some("25"),
        network_code: None,
        route: Route::Forward(TxnKind::Refund),
    },
    Row {
        mti: "0200",
        processing_code: Some("600000"),
        msg_type: Some("48"),
        network_code: None,
        route: Route::Forward(TxnKind::Load),
    },
    Row {
        mti: "0220",
        processing_code: Some("600000"),
        msg_type: Some("49"),
        network_code: None,
        route: Route::Forward(TxnKind::LoadConfirm),
    },
    Row {
        mti: "0400",
        processing_code: None,
        msg_type: None,
        network_code: None,
        route: Route::Reversal,
    },
    Row {
        mti: "0401",
        processing_code: None,
        msg_type: None,
        network_code: None,
        route: Route::Reversal,
    },
];

/// The route of a parsed request.
pub fn route(txn: &Txn) -> Route {
    TABLE
        .iter()
        .find(|r| {
            r.mti == txn.mti
                && r.processing_code
                    .is_none_or(|pc| txn.processing_code.as_deref() == Some(pc))
                && r.msg_type.is_none_or(|m| txn.msg_type() == m)
                && r.network_code.is_none_or(|n| txn.network_code() == n)
        })
        .map_or(Route::Unsupported, |r| r.route)
}

/// Whether a kind is reversed when its outcome is unknown (a timeout): the kinds that move
/// money online. Balance inquiries, refunds and load confirmations are not.
pub fn reversible(kind: TxnKind) -> bool {
    matches!(
        kind,
        TxnKind::Purchase | TxnKind::PurchaseVoid | TxnKind::Load
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn txn(mti: &str, pc: Option<&str>, f60: &str) -> Txn {
        Txn {
            mti: mti.into(),
            processing_code: pc.map(Into::into),
            f60: f60.into(),
            ..Txn::default()
        }
    }

    #[test]
    fn table() {
        assert_eq!(
            route(&txn("0800", None, "00000001003")),
            Route::Local(TxnKind::SignIn)
        );
        assert_eq!(
            route(&txn("0820", None, "00000001301")),
            Route::Local(TxnKind::Echo)
        );
        assert_eq!(
            route(&txn("0820", None, "00000001002")),
            Route::Local(TxnKind::SignOff)
        );
        assert_eq!(
            route(&txn("0200", Some("000000"), "22000001")),
            Route::Forward(TxnKind::Purchase)
        );
        assert_eq!(
            route(&txn("0200", Some("200000"), "23000001")),
            Route::Forward(TxnKind::PurchaseVoid)
        );
        assert_eq!(
            route(&txn("0220", Some("200000"), "25000001")),
            Route::Forward(TxnKind::Refund)
        );
        assert_eq!(
            route(&txn("0200", Some("310000"), "01000001")),
            Route::Forward(TxnKind::Balance)
        );
        assert_eq!(
            route(&txn("0200", Some("600000"), "48000001")),
            Route::Forward(TxnKind::Load)
        );
        assert_eq!(
            route(&txn("0220", Some("600000"), "49000001")),
            Route::Forward(TxnKind::LoadConfirm)
        );
        assert_eq!(
            route(&txn("0400", Some("000000"), "22000001")),
            Route::Reversal
        );
        assert_eq!(
            route(&txn("0500", None, "00000001201")),
            Route::Local(TxnKind::Settlement)
        );
        assert_eq!(
            route(&txn("0200", Some("000000"), "99000001")),
            Route::Unsupported
        );
        assert_eq!(route(&txn("0320", None, "00000001")), Route::Unsupported);
    }
}
