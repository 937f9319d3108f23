//! Card transports: how APDUs reach a card or a PSAM.
//!
//! The card flows in this workspace are sans-IO and synchronous: they build a C-APDU, hand it
//! to a [`CardTransport`], and parse the R-APDU that comes back. Implementations:
//!
//! | transport | what |
//! |---|---|
//! | [`MemoryTransport`] | an in-memory card: any [`ApduHandler`] (a closure or a simulator), with an optional trace of every exchange |
//! | [`ReplayTransport`] | plays back a recorded trace, checking each command against it |
//! | [`GetResponse`] | wraps another transport and handles T=0 `61xx` (GET RESPONSE) and `6Cxx` (wrong Le) |
//! | `PcscTransport` (feature `pcsc`) | a PC/SC reader through the `pcsc` crate, with the T=0 handling built in |
//!
//! Every R-APDU a transport returns has at least the two status bytes; anything shorter is a
//! [`TransportError::Protocol`].
//!
//! # T=0 status words
//!
//! Under T=0 a card answers a command that has response data with `61 xx` ("xx more bytes
//! waiting": fetch them with GET RESPONSE `00 C0 00 00 xx`; `xx = 00` means 256) or, when Le
//! was wrong, with `6C xx` (repeat the command with Le = xx). [`transmit_with_get_response`]
//! does both, concatenating the data of chained `61xx` answers, up to
//! [`MAX_RESPONSE_LEN`] bytes and [`MAX_GET_RESPONSE`] rounds.

use core::fmt;

#[cfg(feature = "pcsc")]
mod pcsc_reader;

#[cfg(feature = "pcsc")]
pub use self::pcsc_reader::PcscTransport;

/// The most response data bytes [`transmit_with_get_response`] collects (an extended-length
/// response).
pub const MAX_RESPONSE_LEN: usize = 65_536;

/// The most GET RESPONSE (and Le correction) rounds [`transmit_with_get_response`] makes for
/// one command.
pub const MAX_GET_RESPONSE: usize = 300;

/// What can go wrong moving an APDU to a card and back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// There is no card in the reader.
    #[error("no card in the reader")]
    NoCard,
    /// The reader was not found or is not available.
    #[error("no such reader or reader unavailable: {0}")]
    NoReader(String),
    /// The card was removed, reset or stopped answering; reconnect before going on.
    #[error("card disconnected: {0}")]
    Disconnected(String),
    /// The exchange broke the APDU rules (a C-APDU shorter than 4 bytes, an R-APDU shorter
    /// than 2, a replayed command that differs from the trace, a response too long...).
    #[error("APDU protocol error: {0}")]
    Protocol(String),
    /// Any other reader or driver error.
    #[error("reader error: {0}")]
    Reader(String),
}

/// Something that carries C-APDUs to a card and brings back its R-APDUs.
pub trait CardTransport: Send {
    /// Sends one command APDU and returns the response APDU (data, then SW1 SW2).
    ///
    /// # Errors
    /// A [`TransportError`] if the exchange did not happen or broke the APDU rules. A card's
    /// error status word is not a transport error: it comes back in the R-APDU.
    fn transmit(&mut self, capdu: &[u8]) -> Result<Vec<u8>, TransportError>;
}

impl<T: CardTransport + ?Sized> CardTransport for Box<T> {
    fn transmit(&mut self, capdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        (**self).transmit(capdu)
    }
}

impl<T: CardTransport + ?Sized> CardTransport for &mut T {
    fn transmit(&mut self, capdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        (**self).transmit(capdu)
    }
}

/// A card application in memory: takes a C-APDU, returns an R-APDU. Implemented for every
/// `FnMut(&[u8]) -> Vec<u8> + Send`, so a closure will do; card simulators implement it
/// directly.
pub trait ApduHandler: Send {
    /// Handles one command APDU and returns the response APDU (data, then SW1 SW2).
    fn handle(&mut self, capdu: &[u8]) -> Vec<u8>;
}

impl<F: FnMut(&[u8]) -> Vec<u8> + Send> ApduHandler for F {
    fn handle(&mut self, capdu: &[u8]) -> Vec<u8> {
        self(capdu)
    }
}

/// One command and its response, as recorded by [`MemoryTransport`] and played back by
/// [`ReplayTransport`].
///
/// `Debug` shows the command header, the lengths and the status word only, never the data
/// (which can hold PINs, keys or MACs); the fields hold the whole APDUs.
#[derive(Clone, PartialEq, Eq)]
pub struct Exchange {
    /// The C-APDU as sent.
    pub command: Vec<u8>,
    /// The R-APDU as received.
    pub response: Vec<u8>,
}

impl Exchange {
    /// The status word of the response (`0` if the response is shorter than 2 bytes).
    #[must_use]
    pub fn sw(&self) -> u16 {
        status_word(&self.response).unwrap_or(0)
    }
}

struct Hex<'a>(&'a [u8]);

impl fmt::Display for Hex<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02X}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Exchange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let header = self.command.get(..4).unwrap_or(&self.command);
        write!(
            f,
            "Exchange {{ header: {}, command_len: {}, response_len: {}, sw: {:04X} }}",
            Hex(header),
            self.command.len(),
            self.response.len(),
            self.sw()
        )
    }
}

/// The status word (SW1 SW2) at the end of an R-APDU.
#[must_use]
pub fn status_word(rapdu: &[u8]) -> Option<u16> {
    match rapdu {
        [.., sw1, sw2] => Some(u16::from_be_bytes([*sw1, *sw2])),
        _ => None,
    }
}

fn check_command(capdu: &[u8]) -> Result<(), TransportError> {
    if capdu.len() < 4 {
        return Err(TransportError::Protocol(format!(
            "C-APDU of {} bytes, expected at least 4 (CLA INS P1 P2)",
            capdu.len()
        )));
    }
    Ok(())
}

fn check_response(rapdu: &[u8]) -> Result<(), TransportError> {
    if rapdu.len() < 2 {
        return Err(TransportError::Protocol(format!(
            "R-APDU of {} bytes, expected at least 2 (SW1 SW2)",
            rapdu.len()
        )));
    }
    Ok(())
}

/// An in-memory [`CardTransport`] over an [`ApduHandler`], for tests and simulations.
///
/// With [`MemoryTransport::recording`] it keeps a trace of every exchange, which a
/// [`ReplayTransport`] can play back later. [`MemoryTransport::remove_card`] makes every later
/// exchange fail with [`TransportError::NoCard`], to test interrupted flows.
pub struct MemoryTransport<H> {
    handler: H,
    trace: Option<Vec<Exchange>>,
    card_present: bool,
}

impl<H> fmt::Debug for MemoryTransport<H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryTransport")
            .field("recording", &self.trace.is_some())
            .field("exchanges", &self.trace.as_ref().map_or(0, Vec::len))
            .field("card_present", &self.card_present)
            .finish_non_exhaustive()
    }
}

impl<H: ApduHandler> MemoryTransport<H> {
    /// A transport to `handler`, not recording.
    pub fn new(handler: H) -> Self {
        Self {
            handler,
            trace: None,
            card_present: true,
        }
    }

    /// A transport to `handler` that records every exchange.
    pub fn recording(handler: H) -> Self {
        Self {
            handler,
            trace: Some(Vec::new()),
            card_present: true,
        }
    }

    /// The exchanges recorded so far (empty when not recording).
    #[must_use]
    pub fn trace(&self) -> &[Exchange] {
        self.trace.as_deref().unwrap_or(&[])
    }

    /// Takes the recorded exchanges, leaving an empty trace (recording goes on).
    pub fn take_trace(&mut self) -> Vec<Exchange> {
        self.trace.as_mut().map(std::mem::take).unwrap_or_default()
    }

    /// The card application.
    pub fn handler(&self) -> &H {
        &self.handler
    }

    /// The card application, mutably.
    pub fn handler_mut(&mut self) -> &mut H {
        &mut self.handler
    }

    /// Gives back the card application.
    pub fn into_handler(self) -> H {
        self.handler
    }

    /// Simulates pulling the card: later exchanges fail with [`TransportError::NoCard`].
    pub fn remove_card(&mut self) {
        self.card_present = false;
    }

    /// Simulates putting the card back.
    pub fn insert_card(&mut self) {
        self.card_present = true;
    }
}

impl<H: ApduHandler> CardTransport for MemoryTransport<H> {
    fn transmit(&mut self, capdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        if !self.card_present {
            return Err(TransportError::NoCard);
        }
        check_command(capdu)?;
        let response = self.handler.handle(capdu);
        check_response(&response)?;
        if let Some(trace) = self.trace.as_mut() {
            trace.push(Exchange {
                command: capdu.to_vec(),
                response: response.clone(),
            });
        }
        Ok(response)
    }
}

/// Plays back a recorded trace: each command must equal the next recorded one, and gets its
/// recorded response.
#[derive(Debug, Clone)]
pub struct ReplayTransport {
    trace: Vec<Exchange>,
    next: usize,
}

impl ReplayTransport {
    /// A transport that plays back `trace` from the start.
    #[must_use]
    pub fn new(trace: Vec<Exchange>) -> Self {
        Self { trace, next: 0 }
    }

    /// How many recorded exchanges have not been played yet.
    #[must_use]
    pub fn remaining(&self) -> usize {
        self.trace.len().saturating_sub(self.next)
    }

    /// Whether every recorded exchange has been played.
    #[must_use]
    pub fn is_finished(&self) -> bool {
        self.remaining() == 0
    }
}

impl CardTransport for ReplayTransport {
    fn transmit(&mut self, capdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        let index = self.next;
        let Some(expected) = self.trace.get(index) else {
            return Err(TransportError::Protocol(format!(
                "replay: command {} is beyond the end of the trace ({} exchanges)",
                index + 1,
                self.trace.len()
            )));
        };
        if expected.command != capdu {
            return Err(TransportError::Protocol(format!(
                "replay: command {} differs from the trace (expected header {}, {} bytes; got header {}, {} bytes)",
                index + 1,
                Hex(expected.command.get(..4).unwrap_or(&expected.command)),
                expected.command.len(),
                Hex(capdu.get(..4).unwrap_or(capdu)),
                capdu.len()
            )));
        }
        self.next += 1;
        Ok(expected.response.clone())
    }
}

/// Sends `capdu` through `send` (one raw exchange) and handles the T=0 status words: on
/// `6C xx` it repeats the command with Le = `xx`; on `61 xx` it sends GET RESPONSE
/// (`00 C0 00 00 xx`) and concatenates the data, until another status word comes. Returns
/// the whole response data followed by the last status word.
///
/// # Errors
/// Whatever `send` returns; [`TransportError::Protocol`] for an R-APDU shorter than 2 bytes,
/// a C-APDU shorter than 4, more than [`MAX_RESPONSE_LEN`] bytes of data or more than
/// [`MAX_GET_RESPONSE`] rounds.
pub fn transmit_with_get_response<F>(mut send: F, capdu: &[u8]) -> Result<Vec<u8>, TransportError>
where
    F: FnMut(&[u8]) -> Result<Vec<u8>, TransportError>,
{
    check_command(capdu)?;
    let mut data: Vec<u8> = Vec::new();
    let mut command = capdu.to_vec();
    for _ in 0..=MAX_GET_RESPONSE {
        let mut response = send(&command)?;
        check_response(&response)?;
        let split = response.len() - 2;
        let (sw1, sw2) = (response[split], response[split + 1]);
        match sw1 {
            0x6C => {
                // Wrong Le: repeat the same command with the right one.
                command = with_le(&command, sw2).ok_or_else(|| {
                    TransportError::Protocol(format!(
                        "6C{sw2:02X} for a command of {} bytes whose Le cannot be set",
                        command.len()
                    ))
                })?;
            }
            0x61 => {
                data.extend_from_slice(&response[..split]);
                check_len(data.len())?;
                command = vec![0x00, 0xC0, 0x00, 0x00, sw2];
            }
            _ => {
                if data.is_empty() {
                    return Ok(response);
                }
                data.append(&mut response);
                check_len(data.len().saturating_sub(2))?;
                return Ok(data);
            }
        }
    }
    Err(TransportError::Protocol(format!(
        "more than {MAX_GET_RESPONSE} GET RESPONSE rounds for one command"
    )))
}

fn check_len(n: usize) -> Result<(), TransportError> {
    if n > MAX_RESPONSE_LEN {
        return Err(TransportError::Protocol(format!(
            "response data of more than {MAX_RESPONSE_LEN} bytes"
        )));
    }
    Ok(())
}

/// The command with its (short) Le set to `le`: a case 1 command (4 bytes) gets one; a case 2
/// command (5 bytes) has P3 replaced; a short case 4 command (`5 + Lc + 1` bytes) has its
/// last byte replaced. `None` for any other shape (e.g. a case 3 command or an extended one).
fn with_le(command: &[u8], le: u8) -> Option<Vec<u8>> {
    let mut out = command.to_vec();
    match command.len() {
        4 => out.push(le),
        5 => out[4] = le,
        n => {
            let lc = usize::from(*command.get(4)?);
            if lc == 0 || n != 5 + lc + 1 {
                return None;
            }
            out[n - 1] = le;
        }
    }
    Some(out)
}

/// A [`CardTransport`] that adds the T=0 `61xx`/`6Cxx` handling of
/// [`transmit_with_get_response`] to another transport (e.g. a [`MemoryTransport`] over a
/// card simulator that answers like a T=0 card).
#[derive(Debug)]
pub struct GetResponse<T>(pub T);

impl<T: CardTransport> CardTransport for GetResponse<T> {
    fn transmit(&mut self, capdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        let inner = &mut self.0;
        transmit_with_get_response(|c| inner.transmit(c), capdu)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s.replace(' ', "")).unwrap()
    }

    /// A tiny purse: GET BALANCE answers 1000 fen.
    fn purse(capdu: &[u8]) -> Vec<u8> {
        match capdu {
            [0x80, 0x5C, 0x00, 0x02, 0x04] => h("000003E8 9000"),
            [_, _, ..] => h("6D00"),
            _ => h("6700"),
        }
    }

    #[test]
    fn memory_transport_records_exact_bytes() {
        let mut t = MemoryTransport::recording(purse);
        assert_eq!(t.transmit(&h("805C000204")).unwrap(), h("000003E89000"));
        assert_eq!(t.transmit(&h("80CA000000")).unwrap(), h("6D00"));
        assert_eq!(
            t.trace(),
            &[
                Exchange {
                    command: h("805C000204"),
                    response: h("000003E89000")
                },
                Exchange {
                    command: h("80CA000000"),
                    response: h("6D00")
                }
            ]
        );
        assert_eq!(t.trace()[0].sw(), 0x9000);
        assert_eq!(
            format!("{:?}", t.trace()[0]),
            "Exchange { header: 805C0002, command_len: 5, response_len: 6, sw: 9000 }"
        );

        // Replay the trace.
        let trace = t.take_trace();
        assert!(t.trace().is_empty());
        let mut r = ReplayTransport::new(trace);
        assert_eq!(r.remaining(), 2);
        assert_eq!(r.transmit(&h("805C000204")).unwrap(), h("000003E89000"));
        assert_eq!(
            r.transmit(&h("805C000104")),
            Err(TransportError::Protocol(
                "replay: command 2 differs from the trace (expected header 80CA0000, 5 bytes; got header 805C0001, 5 bytes)"
                    .into()
            ))
        );
        assert_eq!(r.transmit(&h("80CA000000")).unwrap(), h("6D00"));
        assert!(r.is_finished());
        assert_eq!(
            r.transmit(&h("80CA000000")),
            Err(TransportError::Protocol(
                "replay: command 3 is beyond the end of the trace (2 exchanges)".into()
            ))
        );
    }

    #[test]
    fn memory_transport_checks_lengths_and_card_presence() {
        let mut t = MemoryTransport::new(|_: &[u8]| vec![0x90]);
        assert_eq!(
            t.transmit(&h("0001")),
            Err(TransportError::Protocol(
                "C-APDU of 2 bytes, expected at least 4 (CLA INS P1 P2)".into()
            ))
        );
        assert_eq!(
            t.transmit(&h("00A40400")),
            Err(TransportError::Protocol(
                "R-APDU of 1 bytes, expected at least 2 (SW1 SW2)".into()
            ))
        );
        assert!(t.trace().is_empty());
        let mut t = MemoryTransport::new(purse);
        t.remove_card();
        assert_eq!(t.transmit(&h("805C000204")), Err(TransportError::NoCard));
        t.insert_card();
        assert_eq!(t.transmit(&h("805C000204")).unwrap(), h("000003E89000"));
        assert_eq!(TransportError::NoCard.to_string(), "no card in the reader");
    }

    /// A T=0 card: SELECT answers 61 10, then GET RESPONSE gives 8 bytes and 61 08, then the
    /// last 8 bytes and 90 00. READ BINARY with the wrong Le answers 6C 04.
    fn t0_card(capdu: &[u8]) -> Vec<u8> {
        match capdu {
            [0x00, 0xA4, ..] => h("6110"),
            [0x00, 0xC0, 0x00, 0x00, 0x10] => h("0102030405060708 6108"),
            [0x00, 0xC0, 0x00, 0x00, 0x08] => h("1112131415161718 9000"),
            [0x00, 0xB0, 0x95, 0x00, 0x04] => h("AABBCCDD 9000"),
            [0x00, 0xB0, 0x95, 0x00, _] => h("6C04"),
            _ => h("6D00"),
        }
    }

    #[test]
    fn get_response_chains_61xx_and_fixes_6cxx() {
        let mut t = GetResponse(MemoryTransport::recording(t0_card));
        assert_eq!(
            t.transmit(&h("00A4040008 A000000003860101")).unwrap(),
            h("0102030405060708 1112131415161718 9000")
        );
        let sent: Vec<Vec<u8>> = t.0.trace().iter().map(|e| e.command.clone()).collect();
        assert_eq!(
            sent,
            vec![
                h("00A4040008A000000003860101"),
                h("00C0000010"),
                h("00C0000008")
            ]
        );
        t.0.take_trace();
        assert_eq!(t.transmit(&h("00B0950000")).unwrap(), h("AABBCCDD9000"));
        let sent: Vec<Vec<u8>> = t.0.trace().iter().map(|e| e.command.clone()).collect();
        assert_eq!(sent, vec![h("00B0950000"), h("00B0950004")]);
        // Plain answers pass through unchanged.
        assert_eq!(t.transmit(&h("80CA000000")).unwrap(), h("6D00"));
    }

    #[test]
    fn get_response_is_bounded() {
        // A card that always has more.
        let mut t = GetResponse(MemoryTransport::new(|_: &[u8]| h("00 61FF")));
        assert_eq!(
            t.transmit(&h("00A40400")),
            Err(TransportError::Protocol(
                "more than 300 GET RESPONSE rounds for one command".into()
            ))
        );
        let mut t = GetResponse(MemoryTransport::new(|_: &[u8]| {
            let mut r = vec![0u8; 256];
            r.extend_from_slice(&[0x61, 0x00]);
            r
        }));
        assert_eq!(
            t.transmit(&h("00A40400")),
            Err(TransportError::Protocol(
                "response data of more than 65536 bytes".into()
            ))
        );
        // A 6Cxx to a case 3 command cannot be fixed.
        let mut t = GetResponse(MemoryTransport::new(|_: &[u8]| h("6C10")));
        assert_eq!(
            t.transmit(&h("00DC0104 02 AABB")),
            Err(TransportError::Protocol(
                "6C10 for a command of 7 bytes whose Le cannot be set".into()
            ))
        );
    }

    #[test]
    fn le_is_set_by_command_case() {
        assert_eq!(with_le(&h("00840000"), 8), Some(h("0084000008")));
        assert_eq!(with_le(&h("0084000000"), 8), Some(h("0084000008")));
        assert_eq!(
            with_le(&h("00A4040002 3F00 00"), 0x1C),
            Some(h("00A40400023F001C"))
        );
        assert_eq!(with_le(&h("00A4040002 3F00"), 0x1C), None);
        assert_eq!(with_le(&h("00A4040000 3F00"), 0x1C), None);
        assert_eq!(status_word(&h("9000")), Some(0x9000));
        assert_eq!(status_word(&h("90")), None);
    }

    #[test]
    fn boxed_and_borrowed_transports() {
        let mut boxed: Box<dyn CardTransport> = Box::new(MemoryTransport::new(purse));
        assert_eq!(boxed.transmit(&h("805C000204")).unwrap(), h("000003E89000"));
        let mut inner = MemoryTransport::new(purse);
        let mut by_ref: &mut MemoryTransport<_> = &mut inner;
        assert_eq!(
            CardTransport::transmit(&mut by_ref, &h("805C000204")).unwrap(),
            h("000003E89000")
        );
    }
}
