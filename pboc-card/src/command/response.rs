//! Responses without a fixed layout: none at all, or opaque bytes.

use crate::command::error::CommandError;
use crate::command::exchange::impl_response;

/// The response of a command that returns no data (only a status word).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct NoData;

impl NoData {
    /// Accepts empty response data only.
    pub fn parse(data: &[u8]) -> Result<Self, CommandError> {
        if data.is_empty() {
            Ok(Self)
        } else {
            Err(CommandError::WrongResponseLength {
                command: "no-data",
                expected: 0,
                found: data.len(),
            })
        }
    }

    /// Empty response data.
    pub fn to_bytes(&self) -> Vec<u8> {
        Vec::new()
    }
}

impl_response!(NoData);

/// Response data passed through as bytes (a selected file's FCI, a record, a binary file's
/// content, the result of CIPHER DATA, what GET RESPONSE fetched).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct DataResponse {
    /// The response data.
    pub data: Vec<u8>,
}

impl DataResponse {
    /// Accepts any response data.
    pub fn parse(data: &[u8]) -> Result<Self, CommandError> {
        Ok(Self {
            data: data.to_vec(),
        })
    }

    /// The response data.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.data.clone()
    }
}

impl_response!(DataResponse);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_data_accepts_only_empty() {
        assert_eq!(NoData::parse(&[]), Ok(NoData));
        assert_eq!(
            NoData::parse(&[0x00]),
            Err(CommandError::WrongResponseLength {
                command: "no-data",
                expected: 0,
                found: 1
            })
        );
        assert!(NoData.to_bytes().is_empty());
    }

    #[test]
    fn data_response_passes_bytes_through() {
        let r = DataResponse::parse(&[0x6F, 0x01, 0x00]).unwrap();
        assert_eq!(r.data, vec![0x6F, 0x01, 0x00]);
        assert_eq!(r.to_bytes(), vec![0x6F, 0x01, 0x00]);
    }
}
