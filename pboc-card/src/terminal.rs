//! The terminal's view of a PSAM: the [`Psam`] trait, and [`ApduPsam`], which speaks APDUs to
//! any PSAM over a [`CardTransport`].
//!
//! A real PSAM in a PC/SC reader and the [`crate::psam::VirtualPsam`] are interchangeable:
//! put the virtual one behind a [`pboc_sam::transport::MemoryTransport`] and wrap that in an
//! [`ApduPsam`].

use pboc_sam::transport::{CardTransport, TransportError};

use crate::apdu::{ApduError, ResponseApdu};
use crate::command::{
    CipherData, CommandError, CreditSamForPurchase, DeliveryKey, InitSamForPurchase,
    InitSamForPurchaseResponse, PsamInfo, ReadPsamInfo, ReadTerminalId, Select, TerminalIdResponse,
};
use crate::sw::StatusWord;

/// A PSAM command that did not succeed. Each variant names the command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PsamError {
    /// The command could not be encoded (data too long for any APDU).
    #[error("PSAM {command}: cannot encode the command: {source}")]
    Encode {
        /// The command.
        command: &'static str,
        /// Why.
        source: ApduError,
    },
    /// The exchange with the PSAM failed (reader error, PSAM removed, response lost).
    #[error("PSAM {command}: transport failed: {source}")]
    Transport {
        /// The command.
        command: &'static str,
        /// The transport's error.
        source: TransportError,
    },
    /// The PSAM answered with a status word other than `9000` (e.g. `9302`: the card's MAC2
    /// is invalid; `6A88`: no key of the card's key version).
    #[error("PSAM {command}: {sw}")]
    Status {
        /// The command.
        command: &'static str,
        /// The status word.
        sw: StatusWord,
    },
    /// The PSAM answered `9000` with response data of the wrong layout.
    #[error("PSAM {command}: malformed response: {source}")]
    Response {
        /// The command.
        command: &'static str,
        /// What is wrong with the data.
        source: CommandError,
    },
}

impl PsamError {
    /// The command that failed.
    pub fn command(&self) -> &'static str {
        match self {
            Self::Encode { command, .. }
            | Self::Transport { command, .. }
            | Self::Status { command, .. }
            | Self::Response { command, .. } => command,
        }
    }

    /// The PSAM's status word, if it answered with one other than `9000`.
    pub fn status(&self) -> Option<StatusWord> {
        match self {
            Self::Status { sw, .. } => Some(*sw),
            _ => None,
        }
    }
}

/// What a terminal asks of its PSAM.
pub trait Psam {
    /// Selects the PSAM application by AID; returns the FCI.
    ///
    /// # Errors
    /// A [`PsamError`] naming SELECT.
    fn select(&mut self, aid: &[u8]) -> Result<Vec<u8>, PsamError>;

    /// Reads the terminal id (`00 B0 96 00 06`).
    ///
    /// # Errors
    /// A [`PsamError`] naming READ TERMINAL ID.
    fn terminal_id(&mut self) -> Result<[u8; 6], PsamError>;

    /// Reads the public information: serial, version ... (`00 B0 95 00 0E`).
    ///
    /// # Errors
    /// A [`PsamError`] naming READ PSAM INFO.
    fn info(&mut self) -> Result<PsamInfo, PsamError>;

    /// INIT SAM FOR PURCHASE: the terminal seq and MAC1 for the card's DEBIT.
    ///
    /// # Errors
    /// A [`PsamError`] naming INIT SAM FOR PURCHASE (`6A88`: no key of the card's version).
    fn init_for_purchase(
        &mut self,
        request: &InitSamForPurchase,
    ) -> Result<InitSamForPurchaseResponse, PsamError>;

    /// CREDIT SAM FOR PURCHASE: checks the card's MAC2.
    ///
    /// # Errors
    /// A [`PsamError`] naming CREDIT SAM FOR PURCHASE; [`StatusWord::MacInvalid`] when the
    /// MAC2 is wrong.
    fn credit_for_purchase(&mut self, mac2: [u8; 4]) -> Result<(), PsamError>;

    /// DELIVERY KEY: derives a temporary key inside the PSAM.
    ///
    /// # Errors
    /// A [`PsamError`] naming DELIVERY KEY.
    fn delivery_key(&mut self, command: &DeliveryKey) -> Result<(), PsamError>;

    /// CIPHER DATA: encrypts or MACs with the temporary key; returns the result (empty for
    /// the first and middle parts of a chained MAC).
    ///
    /// # Errors
    /// A [`PsamError`] naming CIPHER DATA.
    fn cipher_data(&mut self, command: &CipherData) -> Result<Vec<u8>, PsamError>;
}

impl<P: Psam + ?Sized> Psam for &mut P {
    fn select(&mut self, aid: &[u8]) -> Result<Vec<u8>, PsamError> {
        (**self).select(aid)
    }
    fn terminal_id(&mut self) -> Result<[u8; 6], PsamError> {
        (**self).terminal_id()
    }
    fn info(&mut self) -> Result<PsamInfo, PsamError> {
        (**self).info()
    }
    fn init_for_purchase(
        &mut self,
        request: &InitSamForPurchase,
    ) -> Result<InitSamForPurchaseResponse, PsamError> {
        (**self).init_for_purchase(request)
    }
    fn credit_for_purchase(&mut self, mac2: [u8; 4]) -> Result<(), PsamError> {
        (**self).credit_for_purchase(mac2)
    }
    fn delivery_key(&mut self, command: &DeliveryKey) -> Result<(), PsamError> {
        (**self).delivery_key(command)
    }
    fn cipher_data(&mut self, command: &CipherData) -> Result<Vec<u8>, PsamError> {
        (**self).cipher_data(command)
    }
}

impl<P: Psam + ?Sized> Psam for Box<P> {
    fn select(&mut self, aid: &[u8]) -> Result<Vec<u8>, PsamError> {
        (**self).select(aid)
    }
    fn terminal_id(&mut self) -> Result<[u8; 6], PsamError> {
        (**self).terminal_id()
    }
    fn info(&mut self) -> Result<PsamInfo, PsamError> {
        (**self).info()
    }
    fn init_for_purchase(
        &mut self,
        request: &InitSamForPurchase,
    ) -> Result<InitSamForPurchaseResponse, PsamError> {
        (**self).init_for_purchase(request)
    }
    fn credit_for_purchase(&mut self, mac2: [u8; 4]) -> Result<(), PsamError> {
        (**self).credit_for_purchase(mac2)
    }
    fn delivery_key(&mut self, command: &DeliveryKey) -> Result<(), PsamError> {
        (**self).delivery_key(command)
    }
    fn cipher_data(&mut self, command: &CipherData) -> Result<Vec<u8>, PsamError> {
        (**self).cipher_data(command)
    }
}

/// A [`Psam`] reached by APDUs over a [`CardTransport`] (a PC/SC reader, or a
/// [`pboc_sam::transport::MemoryTransport`] around a [`crate::psam::VirtualPsam`]).
///
/// For a PSAM on T=0 that answers `61xx`, wrap the transport in
/// [`pboc_sam::transport::GetResponse`].
#[derive(Debug)]
pub struct ApduPsam<T> {
    transport: T,
}

impl<T: CardTransport> ApduPsam<T> {
    /// A PSAM behind `transport`.
    pub fn new(transport: T) -> Self {
        Self { transport }
    }

    /// The transport.
    pub fn transport(&self) -> &T {
        &self.transport
    }

    /// The transport, mutably.
    pub fn transport_mut(&mut self) -> &mut T {
        &mut self.transport
    }

    /// Gives back the transport.
    pub fn into_inner(self) -> T {
        self.transport
    }

    /// Sends a command and returns the response data of a `9000` answer.
    fn exchange(
        &mut self,
        command: &'static str,
        apdu: &crate::apdu::CommandApdu,
    ) -> Result<Vec<u8>, PsamError> {
        let bytes = apdu
            .to_bytes()
            .map_err(|source| PsamError::Encode { command, source })?;
        let raw = self
            .transport
            .transmit(&bytes)
            .map_err(|source| PsamError::Transport { command, source })?;
        let response = ResponseApdu::parse(&raw).map_err(|_| PsamError::Transport {
            command,
            source: TransportError::Protocol(format!(
                "R-APDU of {} bytes, expected at least 2 (SW1 SW2)",
                raw.len()
            )),
        })?;
        if response.sw.is_success() {
            Ok(response.data)
        } else {
            Err(PsamError::Status {
                command,
                sw: response.sw,
            })
        }
    }
}

impl<T: CardTransport> Psam for ApduPsam<T> {
    fn select(&mut self, aid: &[u8]) -> Result<Vec<u8>, PsamError> {
        let select = Select { aid: aid.to_vec() };
        self.exchange(Select::NAME, &select.to_apdu())
    }

    fn terminal_id(&mut self) -> Result<[u8; 6], PsamError> {
        let command = ReadTerminalId::NAME;
        let data = self.exchange(command, &ReadTerminalId.to_apdu())?;
        TerminalIdResponse::parse(&data)
            .map(|r| r.terminal)
            .map_err(|source| PsamError::Response { command, source })
    }

    fn info(&mut self) -> Result<PsamInfo, PsamError> {
        let command = ReadPsamInfo::NAME;
        let data = self.exchange(command, &ReadPsamInfo.to_apdu())?;
        PsamInfo::parse(&data).map_err(|source| PsamError::Response { command, source })
    }

    fn init_for_purchase(
        &mut self,
        request: &InitSamForPurchase,
    ) -> Result<InitSamForPurchaseResponse, PsamError> {
        let command = InitSamForPurchase::NAME;
        let data = self.exchange(command, &request.to_apdu())?;
        InitSamForPurchaseResponse::parse(&data)
            .map_err(|source| PsamError::Response { command, source })
    }

    fn credit_for_purchase(&mut self, mac2: [u8; 4]) -> Result<(), PsamError> {
        let command = CreditSamForPurchase::NAME;
        let data = self.exchange(command, &CreditSamForPurchase { mac2 }.to_apdu())?;
        expect_empty(command, &data)
    }

    fn delivery_key(&mut self, request: &DeliveryKey) -> Result<(), PsamError> {
        let command = DeliveryKey::NAME;
        let data = self.exchange(command, &request.to_apdu())?;
        expect_empty(command, &data)
    }

    fn cipher_data(&mut self, request: &CipherData) -> Result<Vec<u8>, PsamError> {
        self.exchange(CipherData::NAME, &request.to_apdu())
    }
}

fn expect_empty(command: &'static str, data: &[u8]) -> Result<(), PsamError> {
    if data.is_empty() {
        Ok(())
    } else {
        Err(PsamError::Response {
            command,
            source: CommandError::WrongResponseLength {
                command,
                expected: 0,
                found: data.len(),
            },
        })
    }
}
