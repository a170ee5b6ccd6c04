//! The CGM codecs as a session or the CLI calls them: only public paths,
//! one realistic exchange (feature read, measurement notification with a
//! corrupt record, RACP backfill request and its answers).

use vigil_core::Error;
use vigil_core::codec::cgm::socp::{SocpRequest, SocpResponse, SocpResponseCode};
use vigil_core::codec::cgm::{CgmFeature, CgmMeasurement, FeatureBits, SampleLocation, SampleType};
use vigil_core::codec::racp::{
    FilterValue, RacpRequest, RacpResponse, RacpResponseCode, RacpService, RecordFilter,
};
use vigil_core::codec::{SFloat, crc::e2e_crc};

#[test]
fn session_keeps_good_records_of_a_notification_and_backfills_the_gap() {
    // The sensor announces E2E-CRC support; the session decodes the rest
    // with that setting.
    let feature = CgmFeature {
        features: FeatureBits::from_bits(FeatureBits::E2E_CRC | FeatureBits::TREND).unwrap(),
        sample_type: SampleType::InterstitialFluid,
        sample_location: SampleLocation::SubcutaneousTissue,
        crc: 0,
    };
    let crc = CgmFeature::decode(&feature.encode())
        .unwrap()
        .features
        .e2e_crc();
    assert!(crc);

    let reading = |t: u16, mg_dl: f64| CgmMeasurement {
        glucose: SFloat::from_f64(mg_dl).unwrap(),
        time_offset_min: t,
        status: None,
        cal_temp: None,
        warning: None,
        trend: None,
        quality: None,
        crc: Some(0),
    };
    let mut bytes = CgmMeasurement::encode_notification(&[
        reading(0, 110.0),
        reading(5, 95.0),
        reading(10, 80.0),
    ]);
    // Corrupt the second record's glucose (records are 8 bytes each).
    bytes[10] ^= 0x40;

    let results: Vec<_> = CgmMeasurement::records(&bytes, crc).collect();
    let good: Vec<u16> = results
        .iter()
        .filter_map(|r| r.as_ref().ok().map(|m| m.time_offset_min))
        .collect();
    assert_eq!(good, vec![0, 10]);
    assert!(matches!(
        results[1],
        Err(Error::CrcMismatch { offset: 14, .. })
    ));

    // Backfill the lost record by time offset, the CGMS meaning of filter 1.
    let request = RacpRequest::ReportStoredRecords(RecordFilter::Within {
        low: FilterValue::TimeOffset(5),
        high: FilterValue::TimeOffset(5),
    });
    let wire = request.encode().unwrap();
    assert_eq!(wire, [0x01, 0x04, 0x01, 0x05, 0x00, 0x05, 0x00]);
    assert_eq!(RacpRequest::decode(&wire, RacpService::Cgm), Ok(request));

    let done = RacpResponse::decode(&[0x06, 0x00, 0x01, 0x01]).unwrap();
    assert_eq!(
        done,
        RacpResponse::ResponseCode {
            request_op_code: 0x01,
            code: RacpResponseCode::Success
        }
    );
}

#[test]
fn start_session_over_the_ops_control_point_with_crc() {
    let wire = SocpRequest::StartSession.encode(true);
    assert_eq!(wire[0], 0x1A);
    assert_eq!(u16::from_le_bytes([wire[1], wire[2]]), e2e_crc(&[0x1A]));
    let answer = SocpResponse::ResponseCode {
        request_op_code: 0x1A,
        code: SocpResponseCode::Success,
    }
    .encode(true);
    assert!(matches!(
        SocpResponse::decode(&answer, true),
        Ok(SocpResponse::ResponseCode {
            code: SocpResponseCode::Success,
            ..
        })
    ));
}
