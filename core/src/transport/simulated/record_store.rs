//! A bounded record store answering the Record Access Control Point, as a
//! CGM (CGMS §3.7) or a blood glucose meter (GLS §3.4) keeps one.
//!
//! Records are keyed by their RACP filter value: the time offset for a CGM,
//! the sequence number for a meter. The store is bounded on purpose: when it
//! is full the oldest record goes, which is how a real sensor comes to "no
//! longer hold" what the phone missed, and what the session must turn into
//! an explicit gap.
//!
//! Supported: Report Stored Records and Report Number of Stored Records with
//! every operator (all, ≤, ≥, range, first, last); Delete Stored Records
//! with "all" and "range" only (the other operators answer "operator not
//! supported", as many sensors do); Abort. Reports complete within one
//! [`super::Peripheral::advance`], so an Abort always finds nothing left to
//! stop and answers Success.

use std::collections::VecDeque;

use crate::Error;
use crate::codec::racp::{
    FilterValue, RacpOpCode, RacpRequest, RacpResponse, RacpResponseCode, RacpService, RecordFilter,
};

/// What answering one RACP request produces.
#[derive(Debug, Clone, PartialEq)]
pub struct RacpAnswer<R> {
    /// Records to send as measurement notifications, in key order, before
    /// the response.
    pub records: Vec<R>,
    /// The RACP indication that ends the procedure.
    pub response: RacpResponse,
}

/// A bounded store of records keyed by a `u16` (time offset or sequence).
#[derive(Debug, Clone)]
pub struct RecordStore<R> {
    capacity: usize,
    records: VecDeque<(u16, R)>,
    service: RacpService,
}

impl<R: Clone> RecordStore<R> {
    /// An empty store holding at most `capacity` records (at least one).
    pub fn new(capacity: usize, service: RacpService) -> Self {
        Self {
            capacity: capacity.max(1),
            records: VecDeque::new(),
            service,
        }
    }

    /// Adds the newest record; evicts the oldest when full and returns how
    /// many were evicted.
    pub fn push(&mut self, key: u16, record: R) -> usize {
        self.records.push_back((key, record));
        let mut evicted = 0;
        while self.records.len() > self.capacity {
            self.records.pop_front();
            evicted += 1;
        }
        evicted
    }

    /// Forgets every record (a new sensor session).
    pub fn clear(&mut self) {
        self.records.clear();
    }

    /// How many records are held.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether no record is held.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Every held record, oldest first.
    pub fn records(&self) -> Vec<R> {
        self.records.iter().map(|(_, r)| r.clone()).collect()
    }

    /// Keys of every held record, oldest first.
    pub fn keys(&self) -> Vec<u16> {
        self.records.iter().map(|(k, _)| *k).collect()
    }

    fn key_of(&self, v: &FilterValue) -> Result<u16, RacpResponseCode> {
        match (self.service, v) {
            (RacpService::Cgm, FilterValue::TimeOffset(k))
            | (RacpService::Glucose, FilterValue::SequenceNumber(k)) => Ok(*k),
            _ => Err(RacpResponseCode::OperandNotSupported),
        }
    }

    /// Indices of the records a filter selects.
    fn select(&self, filter: &RecordFilter) -> Result<Vec<usize>, RacpResponseCode> {
        let all = 0..self.records.len();
        let by = |pred: &dyn Fn(u16) -> bool| -> Vec<usize> {
            self.records
                .iter()
                .enumerate()
                .filter(|(_, (k, _))| pred(*k))
                .map(|(i, _)| i)
                .collect()
        };
        Ok(match filter {
            RecordFilter::All => all.collect(),
            RecordFilter::AtMost(v) => {
                let k = self.key_of(v)?;
                by(&|x| x <= k)
            }
            RecordFilter::AtLeast(v) => {
                let k = self.key_of(v)?;
                by(&|x| x >= k)
            }
            RecordFilter::Within { low, high } => {
                let (lo, hi) = (self.key_of(low)?, self.key_of(high)?);
                if lo > hi {
                    return Err(RacpResponseCode::InvalidOperand);
                }
                by(&|x| lo <= x && x <= hi)
            }
            RecordFilter::First => all.take(1).collect(),
            RecordFilter::Last => all.last().into_iter().collect(),
        })
    }

    /// Answers one RACP request as written by the phone (raw bytes), with
    /// the response codes the specification assigns to each failure.
    pub fn answer(&mut self, bytes: &[u8]) -> RacpAnswer<R> {
        let op_byte = bytes.first().copied().unwrap_or(0);
        let fail = |code| RacpAnswer {
            records: Vec::new(),
            response: RacpResponse::ResponseCode {
                request_op_code: op_byte,
                code,
            },
        };
        match RacpOpCode::from_u8(op_byte) {
            Some(
                RacpOpCode::ReportStoredRecords
                | RacpOpCode::DeleteStoredRecords
                | RacpOpCode::Abort
                | RacpOpCode::ReportNumberOfStoredRecords,
            ) => {}
            _ => return fail(RacpResponseCode::OpCodeNotSupported),
        }
        let request = match RacpRequest::decode(bytes, self.service) {
            Ok(r) => r,
            Err(Error::Reserved { field, .. }) => {
                return fail(match field {
                    "operator" => RacpResponseCode::InvalidOperator,
                    "filter_type" => RacpResponseCode::OperandNotSupported,
                    _ => RacpResponseCode::InvalidOperand,
                });
            }
            Err(Error::Inconsistent {
                field: "operator", ..
            }) => {
                return fail(RacpResponseCode::InvalidOperator);
            }
            Err(_) => return fail(RacpResponseCode::InvalidOperand),
        };
        let done = |code| RacpResponse::ResponseCode {
            request_op_code: op_byte,
            code,
        };
        match request {
            RacpRequest::ReportStoredRecords(filter) => match self.select(&filter) {
                Err(code) => fail(code),
                Ok(ix) if ix.is_empty() => fail(RacpResponseCode::NoRecordsFound),
                Ok(ix) => RacpAnswer {
                    records: ix
                        .into_iter()
                        .filter_map(|i| self.records.get(i).map(|(_, r)| r.clone()))
                        .collect(),
                    response: done(RacpResponseCode::Success),
                },
            },
            RacpRequest::ReportNumberOfStoredRecords(filter) => match self.select(&filter) {
                Err(code) => fail(code),
                Ok(ix) => RacpAnswer {
                    records: Vec::new(),
                    response: RacpResponse::NumberOfStoredRecords(
                        u16::try_from(ix.len()).unwrap_or(u16::MAX),
                    ),
                },
            },
            RacpRequest::DeleteStoredRecords(filter) => {
                if !matches!(filter, RecordFilter::All | RecordFilter::Within { .. }) {
                    return fail(RacpResponseCode::OperatorNotSupported);
                }
                match self.select(&filter) {
                    Err(code) => fail(code),
                    Ok(ix) if ix.is_empty() => fail(RacpResponseCode::NoRecordsFound),
                    Ok(ix) => {
                        let mut i = 0;
                        self.records.retain(|_| {
                            let keep = !ix.contains(&i);
                            i += 1;
                            keep
                        });
                        fail(RacpResponseCode::Success)
                    }
                }
            }
            RacpRequest::Abort => fail(RacpResponseCode::Success),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> RecordStore<u16> {
        let mut s = RecordStore::new(5, RacpService::Cgm);
        for k in [10, 11, 12, 13, 14, 15, 16] {
            s.push(k, k);
        }
        s
    }

    fn code(a: &RacpAnswer<u16>) -> Option<RacpResponseCode> {
        match a.response {
            RacpResponse::ResponseCode { code, .. } => Some(code),
            RacpResponse::NumberOfStoredRecords(_) => None,
        }
    }

    fn req(r: RacpRequest) -> Vec<u8> {
        r.encode().unwrap()
    }

    #[test]
    fn a_full_store_evicts_the_oldest_records() {
        assert_eq!(store().keys(), vec![12, 13, 14, 15, 16]);
    }

    #[test]
    fn report_at_least_sends_the_matching_records_then_success() {
        let mut s = store();
        let a = s.answer(&req(RacpRequest::ReportStoredRecords(
            RecordFilter::AtLeast(FilterValue::TimeOffset(14)),
        )));
        assert_eq!(a.records, vec![14, 15, 16]);
        assert_eq!(code(&a), Some(RacpResponseCode::Success));
    }

    #[test]
    fn nothing_matching_answers_no_records_found() {
        let mut s = store();
        let a = s.answer(&req(RacpRequest::ReportStoredRecords(
            RecordFilter::AtLeast(FilterValue::TimeOffset(100)),
        )));
        assert!(a.records.is_empty());
        assert_eq!(code(&a), Some(RacpResponseCode::NoRecordsFound));
    }

    #[test]
    fn count_range_and_delete_behave_per_spec() {
        let mut s = store();
        let range = RecordFilter::Within {
            low: FilterValue::TimeOffset(13),
            high: FilterValue::TimeOffset(15),
        };
        let n = s.answer(&req(RacpRequest::ReportNumberOfStoredRecords(range)));
        assert_eq!(n.response, RacpResponse::NumberOfStoredRecords(3));
        let d = s.answer(&req(RacpRequest::DeleteStoredRecords(RecordFilter::Last)));
        assert_eq!(code(&d), Some(RacpResponseCode::OperatorNotSupported));
        let d = s.answer(&req(RacpRequest::DeleteStoredRecords(range)));
        assert_eq!(code(&d), Some(RacpResponseCode::Success));
        assert_eq!(s.keys(), vec![12, 16]);
        let a = s.answer(&req(RacpRequest::Abort));
        assert_eq!(code(&a), Some(RacpResponseCode::Success));
    }

    #[test]
    fn malformed_requests_get_the_right_response_codes() {
        let mut s = store();
        // Op code 0x07 is reserved.
        assert_eq!(
            code(&s.answer(&[0x07, 0x01])),
            Some(RacpResponseCode::OpCodeNotSupported)
        );
        // Operator 0x09 is reserved.
        assert_eq!(
            code(&s.answer(&[0x01, 0x09])),
            Some(RacpResponseCode::InvalidOperator)
        );
        // Filter type 0x02 (user facing time) does not exist in CGMS.
        assert_eq!(
            code(&s.answer(&[0x01, 0x03, 0x02, 0, 0])),
            Some(RacpResponseCode::OperandNotSupported)
        );
        // "≥" with its operand cut short.
        assert_eq!(
            code(&s.answer(&[0x01, 0x03, 0x01, 0x05])),
            Some(RacpResponseCode::InvalidOperand)
        );
        // A range whose low end is above its high end.
        assert_eq!(
            code(&s.answer(&[0x01, 0x04, 0x01, 15, 0, 13, 0])),
            Some(RacpResponseCode::InvalidOperand)
        );
        // Report with the Null operator.
        assert_eq!(
            code(&s.answer(&[0x01, 0x00])),
            Some(RacpResponseCode::InvalidOperator)
        );
    }
}
