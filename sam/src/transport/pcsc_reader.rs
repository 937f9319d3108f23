//! [`PcscTransport`]: a [`CardTransport`] over a PC/SC reader (feature `pcsc`).

use std::ffi::CString;

use super::{CardTransport, TransportError, transmit_with_get_response};

/// The receive buffer size: an extended-length response (65 536 data bytes) plus the status
/// word, with room to spare (the PC/SC "extended" maximum).
const RECEIVE_BUFFER: usize = 65_548;

/// A card in a PC/SC reader (pcsc-lite on Linux and the BSDs, the system PC/SC service on
/// Windows and macOS).
///
/// Connects in shared mode with T=0 or T=1, whichever the card offers. Unless turned off with
/// [`PcscTransport::set_auto_get_response`], `61xx` and `6Cxx` answers are handled as
/// [`transmit_with_get_response`] describes, so callers see complete responses under T=0 too.
/// The card is reset when the transport is dropped.
pub struct PcscTransport {
    card: pcsc::Card,
    reader: String,
    auto_get_response: bool,
}

impl core::fmt::Debug for PcscTransport {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PcscTransport")
            .field("reader", &self.reader)
            .field("auto_get_response", &self.auto_get_response)
            .finish_non_exhaustive()
    }
}

fn map_error(e: pcsc::Error) -> TransportError {
    match e {
        pcsc::Error::NoSmartcard => TransportError::NoCard,
        pcsc::Error::RemovedCard
        | pcsc::Error::ResetCard
        | pcsc::Error::UnpoweredCard
        | pcsc::Error::UnresponsiveCard => TransportError::Disconnected(e.to_string()),
        pcsc::Error::NoReadersAvailable
        | pcsc::Error::UnknownReader
        | pcsc::Error::ReaderUnavailable => TransportError::NoReader(e.to_string()),
        _ => TransportError::Reader(e.to_string()),
    }
}

fn establish() -> Result<pcsc::Context, TransportError> {
    pcsc::Context::establish(pcsc::Scope::User).map_err(map_error)
}

fn reader_names(ctx: &pcsc::Context) -> Result<Vec<CString>, TransportError> {
    ctx.list_readers_owned().map_err(map_error)
}

impl PcscTransport {
    /// The names of the readers PC/SC knows.
    ///
    /// # Errors
    /// [`TransportError::Reader`] if the PC/SC service is not available.
    pub fn readers() -> Result<Vec<String>, TransportError> {
        let ctx = establish()?;
        Ok(reader_names(&ctx)?
            .iter()
            .map(|n| n.to_string_lossy().into_owned())
            .collect())
    }

    /// Connects to the card in a reader: the one whose name equals `reader` or, failing that,
    /// the first whose name contains it; the first reader when `reader` is `None`.
    ///
    /// # Errors
    /// [`TransportError::NoReader`] if there is no (matching) reader,
    /// [`TransportError::NoCard`] if it holds no card, [`TransportError::Reader`] for other
    /// PC/SC failures.
    pub fn connect(reader: Option<&str>) -> Result<Self, TransportError> {
        let ctx = establish()?;
        let names = reader_names(&ctx)?;
        let chosen = match reader {
            None => names.first(),
            Some(wanted) => names
                .iter()
                .find(|n| n.to_string_lossy() == wanted)
                .or_else(|| names.iter().find(|n| n.to_string_lossy().contains(wanted))),
        };
        let Some(name) = chosen else {
            return Err(TransportError::NoReader(match reader {
                None => "no PC/SC reader connected".to_owned(),
                Some(wanted) => format!(
                    "no reader named like {wanted:?} among {} reader(s)",
                    names.len()
                ),
            }));
        };
        let card = ctx
            .connect(name, pcsc::ShareMode::Shared, pcsc::Protocols::ANY)
            .map_err(map_error)?;
        Ok(Self {
            card,
            reader: name.to_string_lossy().into_owned(),
            auto_get_response: true,
        })
    }

    /// The name of the reader this transport is connected to.
    #[must_use]
    pub fn reader(&self) -> &str {
        &self.reader
    }

    /// Turns the automatic `61xx` (GET RESPONSE) and `6Cxx` (Le) handling on or off (on by
    /// default).
    pub fn set_auto_get_response(&mut self, on: bool) -> &mut Self {
        self.auto_get_response = on;
        self
    }

    fn raw(card: &pcsc::Card, capdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        let mut buffer = vec![0u8; RECEIVE_BUFFER];
        let response = card.transmit(capdu, &mut buffer).map_err(map_error)?;
        Ok(response.to_vec())
    }
}

impl CardTransport for PcscTransport {
    fn transmit(&mut self, capdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        let card = &self.card;
        if self.auto_get_response {
            transmit_with_get_response(|c| Self::raw(card, c), capdu)
        } else {
            let response = Self::raw(card, capdu)?;
            if response.len() < 2 {
                return Err(TransportError::Protocol(format!(
                    "R-APDU of {} bytes, expected at least 2 (SW1 SW2)",
                    response.len()
                )));
            }
            Ok(response)
        }
    }
}
