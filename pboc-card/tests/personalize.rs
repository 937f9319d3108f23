#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Personalization from an issuer profile, serial allocation and the quality check.
//!
//! The derived key literals were recomputed independently (Python `cryptography`).

use pboc_card::image::KeyPurpose;
use pboc_card::personalize::{
    IssuerProfile, PersonalizeError, QC_TERMINAL, SerialAllocator, StepOutcome, personalize,
    personalize_next, quality_check,
};
use pboc_card::{Application, CardImage, FixedRandom, TransactionType, VirtualCard};
use pboc_sam::DesKey;
use pboc_sam::pboc::diversify_path;

const PROFILE: &str = r#"{
    "issuer_id": "3100000000000000",
    "card_type": 3,
    "valid_from": "20240101",
    "valid_until": "20341231",
    "deposit": 2000,
    "ep": { "initial_balance": 5000, "max_balance": 100000 },
    "ed": { "initial_balance": 0, "overdraw_limit": 300, "max_balance": 500000 },
    "diversification_factors": ["0000000000003100"],
    "master_keys": [
        { "purpose": "DPK", "index": 1, "version": 1, "key": "0123456789ABCDEFFEDCBA9876543210" },
        { "purpose": "DLK", "index": 1, "version": 2, "key": "11223344556677888877665544332211" },
        { "purpose": "DLK", "index": 2, "version": 1, "key": "A1B2C3D4E5F60718293A4B5C6D7E8F90" },
        { "purpose": "DTK", "index": 1, "version": 1, "key": "5A4B3C2D1E0F1A2B1122334455667788" },
        { "purpose": "DULK", "index": 1, "version": 1, "key": "2B7E151628AED2A6ABF7158809CF4F3C" },
        { "purpose": "DUK", "index": 1, "version": 1, "key": "3C4FCF098815F7ABA6D2AE2816157E2B" }
    ],
    "pin": { "initial": "123456" },
    "record_capacity": 10
}"#;

const SERIAL: [u8; 8] = [0x31, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01];

fn profile() -> IssuerProfile {
    IssuerProfile::from_json(PROFILE).unwrap()
}

#[test]
fn the_profile_parses_with_defaults() {
    let p = profile();
    assert_eq!(p.aid, hex::decode("A00000000386980701").unwrap());
    assert_eq!(p.app_version, 1);
    assert_eq!(p.pin.as_ref().map(|p| p.max_tries), Some(3));
    assert_eq!(p.master_keys.len(), 6);
    assert_eq!(p.masters(KeyPurpose::Load).len(), 2);
    assert_eq!(p.master_keys[0].algorithm_id, 0);
    // Debug never shows a master key or the PIN.
    let debug = format!("{p:?}");
    assert!(!debug.contains("0123456789ABCDEF") && !debug.contains("123456"));
    // Round trip through JSON.
    let again = IssuerProfile::from_json(&serde_json::to_string(&p).unwrap()).unwrap();
    assert_eq!(format!("{again:?}"), debug);
    // Unknown fields are refused.
    let error = IssuerProfile::from_json(&PROFILE.replace("\"deposit\"", "\"depost\""))
        .unwrap_err()
        .to_string();
    assert!(error.contains("unknown field `depost`"), "{error}");
}

#[test]
fn personalization_diversifies_every_key_from_its_master() {
    let p = profile();
    let image = personalize(&p, SERIAL).unwrap();
    assert_eq!(image.keys.len(), 6);
    for (card_key, master) in image.keys.iter().zip(&p.master_keys) {
        let expected = diversify_path(&master.key, &[[0, 0, 0, 0, 0, 0, 0x31, 0x00], SERIAL]);
        assert!(card_key.key.ct_eq(&expected), "{}", card_key.purpose);
        assert_eq!(
            (card_key.purpose, card_key.index, card_key.version),
            (master.purpose, master.index, master.version)
        );
        assert_eq!(card_key.mac_failures, 0);
    }
    // The DPK byte for byte: city level first, then the serial.
    assert_eq!(
        hex::encode_upper(image.keys[0].key.as_bytes()),
        "E9240D705D4E236070B402E93BC8AE71"
    );
    // Without a city factor, the serial alone.
    let mut flat = p.clone();
    flat.diversification_factors.clear();
    let image_flat = personalize(&flat, SERIAL).unwrap();
    assert_eq!(
        hex::encode_upper(image_flat.keys[0].key.as_bytes()),
        "A4686EDBEBDA37A846EA1267D54E118D"
    );
}

#[test]
fn personalization_sets_identity_balances_and_pin() {
    let image = personalize(&profile(), SERIAL).unwrap();
    assert_eq!(image.serial, SERIAL);
    assert_eq!(image.issuer_id, [0x31, 0, 0, 0, 0, 0, 0, 0]);
    assert_eq!(image.card_type, 3);
    assert_eq!(image.valid_from, [0x20, 0x24, 0x01, 0x01]);
    assert_eq!(image.valid_until, [0x20, 0x34, 0x12, 0x31]);
    assert_eq!(image.deposit, 2000);
    let ep = image.ep.unwrap();
    assert_eq!((ep.balance, ep.online_seq, ep.offline_seq), (5000, 0, 0));
    let ed = image.ed.unwrap();
    assert_eq!(
        (ed.balance, ed.overdraw_limit, ed.max_balance),
        (0, 300, 500_000)
    );
    let pin = image.pin.as_ref().unwrap();
    assert_eq!((pin.tries_left, pin.max_tries), (3, 3));
    assert!(image.records.is_empty() && image.proofs.is_empty());
    // The image loads, and the card reads the PIN from it.
    let mut card =
        VirtualCard::from_image(&image, Box::new(FixedRandom::new([1, 2, 3, 4]))).unwrap();
    assert_eq!(card.balance(Application::Ep), Some(5000));
    assert_eq!(
        card.process(&hex::decode("0020000003123456").unwrap()),
        [0x90, 0x00]
    );
    assert_eq!(
        card.process(&hex::decode("805C000104").unwrap()),
        [0, 0, 0, 0, 0x90, 0x00]
    );
    // And survives JSON.
    assert_eq!(
        CardImage::from_json(&image.to_json().unwrap()).unwrap(),
        image
    );
}

#[test]
fn profiles_missing_keys_or_applications_are_refused() {
    let mut p = profile();
    p.master_keys.retain(|k| k.purpose != KeyPurpose::Tac);
    assert_eq!(
        personalize(&p, SERIAL).unwrap_err(),
        PersonalizeError::Profile("a DTK master key is required".into())
    );
    let mut p = profile();
    p.ed = None;
    p.ep = None;
    assert!(
        personalize(&p, SERIAL)
            .unwrap_err()
            .to_string()
            .contains("at least one application")
    );
    let mut p = profile();
    let duplicate = p.master_keys[1].clone();
    p.master_keys.push(duplicate);
    assert!(
        personalize(&p, SERIAL)
            .unwrap_err()
            .to_string()
            .contains("DLK master index 01 appears twice")
    );
    let mut p = profile();
    p.master_keys[0].key = DesKey::from_hex("0123456789ABCDEF").unwrap();
    assert!(
        personalize(&p, SERIAL)
            .unwrap_err()
            .to_string()
            .contains("16 or 24 bytes")
    );
    let mut p = profile();
    if let Some(ep) = p.ep.as_mut() {
        ep.initial_balance = 100_001;
    }
    assert!(matches!(
        personalize(&p, SERIAL),
        Err(PersonalizeError::Image(_))
    ));
}

#[test]
fn serials_come_from_the_prefix_and_counter() {
    let mut serials = SerialAllocator::new(&[0x31, 0x00], 1).unwrap();
    assert_eq!(serials.allocate().unwrap(), SERIAL);
    assert_eq!(
        serials.allocate().unwrap(),
        [0x31, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02]
    );
    assert_eq!(serials.next, 3);
    let json = serde_json::to_string(&serials).unwrap();
    assert_eq!(json, r#"{"prefix":"3100","next":3}"#);
    assert_eq!(
        serde_json::from_str::<SerialAllocator>(&json).unwrap(),
        serials
    );

    let mut serials = SerialAllocator::new(&[1, 2, 3, 4, 5, 6, 7], 0xFF).unwrap();
    assert_eq!(serials.allocate().unwrap(), [1, 2, 3, 4, 5, 6, 7, 0xFF]);
    assert_eq!(
        serials.allocate().unwrap_err(),
        PersonalizeError::SerialsExhausted {
            prefix: "01020304050607".into(),
            next: 0x100
        }
    );
    assert_eq!(
        SerialAllocator::new(&[0; 8], 0).unwrap_err(),
        PersonalizeError::PrefixTooLong(8)
    );
    let mut no_prefix = SerialAllocator::new(&[], u64::MAX).unwrap();
    assert_eq!(no_prefix.allocate().unwrap(), [0xFF; 8]);

    // personalize_next takes a serial only when the image is made.
    let mut serials = SerialAllocator::new(&[0x31], 7).unwrap();
    let image = personalize_next(&profile(), &mut serials).unwrap();
    assert_eq!(image.serial, [0x31, 0, 0, 0, 0, 0, 0, 7]);
    assert_eq!(serials.next, 8);
    let mut bad = profile();
    bad.master_keys.clear();
    assert!(personalize_next(&bad, &mut serials).is_err());
    assert_eq!(serials.next, 8);
}

#[test]
fn quality_check_passes_on_a_good_image() {
    let p = profile();
    let image = personalize(&p, SERIAL).unwrap();
    let report = quality_check(&image, &p);
    assert!(report.passed(), "{report}");
    let names: Vec<&str> = report.steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "image",
            "public data",
            "EP balance",
            "EP load (DLK 01)",
            "EP load (DLK 02)",
            "EP purchase (DPK 01)",
            "EP final balance",
            "ED verify PIN",
            "ED balance",
            "ED load (DLK 01)",
            "ED load (DLK 02)",
            "ED purchase (DPK 01)",
            "ED final balance",
            "records",
        ]
    );
    assert_eq!(report.serial, SERIAL);
    assert!(
        report
            .to_string()
            .starts_with("quality check of 3100000000000001: PASS")
    );
    // The image itself is untouched.
    assert_eq!(image, personalize(&p, SERIAL).unwrap());
}

#[test]
fn quality_check_finds_a_wrong_dpk_at_the_purchase() {
    let p = profile();
    let mut image = personalize(&p, SERIAL).unwrap();
    let dpk = image.key_mut(KeyPurpose::Purchase, 1).unwrap();
    let mut bytes = dpk.key.as_bytes().to_vec();
    // Bit 0 of each byte is parity, which DES ignores: change a key bit.
    bytes[15] ^= 0x02;
    dpk.key = DesKey::from_bytes(&bytes).unwrap();
    let report = quality_check(&image, &p);
    assert!(!report.passed());
    let failure = report.first_failure().unwrap();
    assert_eq!(failure.name, "EP purchase (DPK 01)");
    assert_eq!(
        failure.outcome,
        StepOutcome::Fail(
            "DEBIT FOR PURCHASE answered 9302 MAC invalid: the card's DPK is not the one \
             derived from the master key"
                .into()
        )
    );
    assert_eq!(
        report.step("EP load (DLK 01)").unwrap().outcome,
        StepOutcome::Pass
    );
    assert!(report.to_string().contains("FAIL  EP purchase (DPK 01)"));
}

#[test]
fn quality_check_finds_a_wrong_dtk_and_a_wrong_dlk() {
    let p = profile();
    let mut image = personalize(&p, SERIAL).unwrap();
    image.key_mut(KeyPurpose::Tac, 1).unwrap().key =
        DesKey::from_hex("00112233445566778899AABBCCDDEEFF").unwrap();
    let report = quality_check(&image, &p);
    let failure = report.first_failure().unwrap();
    assert_eq!(failure.name, "EP load (DLK 01)");
    let StepOutcome::Fail(reason) = &failure.outcome else {
        panic!("{report}")
    };
    assert!(
        reason.starts_with("TAC ") && reason.contains("DTK derived from the master key"),
        "{reason}"
    );

    let mut image = personalize(&p, SERIAL).unwrap();
    image.key_mut(KeyPurpose::Load, 2).unwrap().key =
        DesKey::from_hex("00112233445566778899AABBCCDDEEFF").unwrap();
    let report = quality_check(&image, &p);
    let failure = report.first_failure().unwrap();
    assert_eq!(failure.name, "EP load (DLK 02)");
    let StepOutcome::Fail(reason) = &failure.outcome else {
        panic!("{report}")
    };
    assert!(reason.starts_with("MAC1 "), "{reason}");
}

#[test]
fn quality_check_reports_identity_and_pin_problems() {
    let p = profile();
    let image = personalize(&p, SERIAL).unwrap();
    let mut other_issuer = p.clone();
    other_issuer.issuer_id = [0x32, 0, 0, 0, 0, 0, 0, 0];
    let report = quality_check(&image, &other_issuer);
    assert_eq!(
        report.first_failure().unwrap().outcome,
        StepOutcome::Fail("EF15 issuer id is 3100000000000000, expected 3200000000000000".into())
    );
    assert_eq!(report.steps.len(), 2);

    let mut wrong_pin = p.clone();
    wrong_pin.pin =
        Some(serde_json::from_str(r#"{ "initial": "654321", "max_tries": 3 }"#).unwrap());
    let report = quality_check(&image, &wrong_pin);
    let failure = report.first_failure().unwrap();
    assert_eq!(failure.name, "ED verify PIN");
    assert_eq!(
        failure.outcome,
        StepOutcome::Fail("VERIFY answered 63C2 PIN wrong, 2 tries left".into())
    );
}

#[test]
fn quality_check_records_are_exact() {
    // A card that already has history: the check's records come first.
    let p = profile();
    let image = personalize(&p, SERIAL).unwrap();
    let report = quality_check(&image, &p);
    assert!(report.passed(), "{report}");
    let mut card =
        VirtualCard::from_image(&image, Box::new(FixedRandom::new([9, 9, 9, 9]))).unwrap();
    let mut image2 = card.image();
    image2.records.push(pboc_card::image::RecordImage {
        card_seq: 0x0042,
        overdraw_limit: 0,
        amount: 7,
        transaction_type: TransactionType::EpPurchase.code(),
        terminal: QC_TERMINAL,
        date: [0x20, 0x24, 0x01, 0x01],
        time: [0, 0, 0],
    });
    card = VirtualCard::from_image(&image2, Box::new(FixedRandom::new([9, 9, 9, 9]))).unwrap();
    assert_eq!(card.records().len(), 1);
    let report = quality_check(&card.image(), &p);
    assert!(report.passed(), "{report}");
}
