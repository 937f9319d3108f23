#![allow(clippy::unwrap_used, clippy::expect_used)]
//! SoftHsm through the `SecurityModule` trait, with the published development vectors.

use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use pboc_sam::security::{BoxFuture, MAX_DATA_LEN};
use pboc_sam::{
    CounterRandom, DataMode, DesKey, DesKeyLength, ErrorClass, HsmErrorCode, KeyRef, KeyType, Lmk,
    LoadRequest, MacAlgorithm, Padding, Pan, Pin, PinBlockFormat, PinTranslation, SecurityModule,
    SoftHsm, TacRequest, cipher, keyexchange, mac, pboc, pinblock,
};

/// SoftHsm completes every future on its first poll.
fn run<T>(mut f: BoxFuture<'_, T>) -> T {
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("SoftHsm futures are always ready"),
    }
}

fn h(s: &str) -> Vec<u8> {
    hex::decode(s.replace(' ', "")).unwrap()
}

fn h4(s: &str) -> [u8; 4] {
    h(s).try_into().unwrap()
}

fn h8(s: &str) -> [u8; 8] {
    h(s).try_into().unwrap()
}

fn k(s: &str) -> DesKey {
    DesKey::from_hex(s).unwrap()
}

const LMK: &str = "0123456789ABCDEFFEDCBA987654321089ABCDEF01234567";

fn lmk() -> Lmk {
    Lmk::from_key(k(LMK)).unwrap()
}

fn hsm() -> SoftHsm {
    SoftHsm::new(lmk(), Box::new(CounterRandom::new(42)))
}

fn form(hsm: &SoftHsm, clear: &str, t: KeyType) -> KeyRef {
    hsm.form_key_from_components(&[&h(clear)], t).unwrap()
}

const MAB: &str = concat!(
    "0200302004C020C0981100000000000000005100183402100006324392260009942820D13121",
    "01120084393136363838303134303030303030303030303030303031313536ACF46E73838A82",
    "F92600000000000000000822000001",
);

#[test]
fn dyn_security_module_in_an_arc() {
    let m: Arc<dyn SecurityModule> = Arc::new(hsm());
    assert_eq!(run(m.echo(b"ping")).unwrap(), b"ping");
    let d = run(m.diagnostics()).unwrap();
    assert_eq!(d.lmk_kcv, lmk().kcv());
    assert_eq!(d.lmk_kcv, k(LMK).kcv(pboc_sam::KcvLength::UNIONPAY));
    assert_eq!(d.firmware, "one-card SoftHsm 0.1.0");
    let e = run(m.echo(&vec![0; MAX_DATA_LEN + 1])).unwrap_err();
    assert_eq!(e.code, HsmErrorCode::InvalidInput);
    assert_eq!(
        e.detail,
        "echo data: 16385 bytes, more than the limit of 16384"
    );
}

#[test]
fn form_key_from_components_xors_and_sets_parity() {
    let hsm = hsm();
    let a = h("0123456789ABCDEFFEDCBA9876543210");
    let b = h("1111111111111111 2222222222222222");
    let key = hsm
        .form_key_from_components(&[&a, &b], KeyType::Zpk)
        .unwrap();
    // XOR = 1032547698BADCFE DCFE98BA54761032; parity-adjusted = 1032547698BADCFE DCFE98BA54761032
    // with each byte's low bit set for odd parity.
    let mut clear = k("1032547698BADCFEDCFE98BA54761032");
    clear.adjust_parity();
    assert_eq!(key.kcv, clear.kcv(pboc_sam::KcvLength::UNIONPAY));
    assert_eq!(key.length, DesKeyLength::Double);
    assert_eq!(key.key_type, KeyType::Zpk);

    let e = hsm
        .form_key_from_components(&[&a, &h("00")], KeyType::Zpk)
        .unwrap_err();
    assert_eq!(e.code, HsmErrorCode::KeyLength);
    assert_eq!(e.detail, "key component 2: 1 bytes, but component 1 has 16");
    let e = hsm.form_key_from_components(&[], KeyType::Zpk).unwrap_err();
    assert_eq!(e.code, HsmErrorCode::InvalidInput);
    assert_eq!(e.detail, "key components: 0 given, expected 1 to 9");
    let e = hsm
        .form_key_from_components(&[&h("0011")], KeyType::Zpk)
        .unwrap_err();
    assert_eq!(e.code, HsmErrorCode::KeyLength);
}

#[test]
fn generate_export_import_round_trip() {
    let hsm = hsm();
    let tmk = form(&hsm, "CA5D92598DCA48CE8A4C76361A9269E9", KeyType::Tmk);
    let g = run(hsm.generate_key(KeyType::Tak, DesKeyLength::Double, Some(&tmk))).unwrap();
    assert_eq!(g.key.key_type, KeyType::Tak);
    assert_eq!(g.key.length, DesKeyLength::Double);
    assert_eq!(g.key.cryptogram.len(), 16);
    let under = g.under_kek.clone().unwrap();
    assert_eq!(under.len(), 16);

    // The key under the TMK decrypts (with the clear TMK) to a key with the same KCV.
    let clear = keyexchange::decrypt_key(&k("CA5D92598DCA48CE8A4C76361A9269E9"), &under).unwrap();
    assert!(clear.has_odd_parity());
    assert_eq!(clear.kcv(pboc_sam::KcvLength::UNIONPAY), g.key.kcv);

    let back = run(hsm.import_key(&tmk, KeyType::Tak, &under, Some(&g.key.kcv))).unwrap();
    assert_eq!(back.kcv, g.key.kcv);
    assert_eq!(back, g.key);
    let exported = run(hsm.export_key(&tmk, &g.key)).unwrap();
    assert_eq!(exported.encrypted, under);
    assert_eq!(exported.kcv, g.key.kcv);
    assert_eq!(run(hsm.key_check_value(&g.key)).unwrap(), g.key.kcv);

    // Without a KEK only the LMK form comes back; the same seed gives the same keys.
    let again = SoftHsm::new(lmk(), Box::new(CounterRandom::new(42)));
    let g2 = run(again.generate_key(KeyType::Tak, DesKeyLength::Double, None)).unwrap();
    assert_eq!(g2.key, g.key);
    assert_eq!(g2.under_kek, None);

    // A KEK must be a TMK or ZMK.
    let e = run(hsm.generate_key(KeyType::Tak, DesKeyLength::Double, Some(&g.key))).unwrap_err();
    assert_eq!(e.code, HsmErrorCode::KeyType);
    assert_eq!(e.class(), ErrorClass::Request);
    assert_eq!(e.detail, "KEK: a TAK key cannot be used for key encryption");
}

#[test]
fn unionpay_field62_development_keys() {
    let hsm = hsm();
    let tmk = form(&hsm, "CA5D92598DCA48CE8A4C76361A9269E9", KeyType::Tmk);
    let pik_kcv = pboc_sam::Kcv::from_hex("8D0A74B8").unwrap();
    let mak_kcv = pboc_sam::Kcv::from_hex("AB7153CA").unwrap();
    let pik = run(hsm.import_key(
        &tmk,
        KeyType::Tpk,
        &h("6701EAD6A9AD51E51AA406E2C27FCFA9"),
        Some(&pik_kcv),
    ))
    .unwrap();
    let mak =
        run(hsm.import_key(&tmk, KeyType::Tak, &h("B651F9E9BACE9AE1"), Some(&mak_kcv))).unwrap();
    assert_eq!(mak.kcv.to_string(), "AB7153CA");
    assert_eq!(mak.length, DesKeyLength::Single);
    assert_eq!(pik.kcv.to_string(), "8D0A74B8");
    assert_eq!(
        format!("{mak:?}"),
        r#"KeyRef { key_type: Tak, length: Single, kcv: Kcv("AB7153CA"), .. }"#
    );
    // Both keys already have odd parity, so they export to the same bytes.
    assert_eq!(
        run(hsm.export_key(&tmk, &mak)).unwrap().encrypted,
        h("B651F9E9BACE9AE1")
    );
    assert_eq!(
        run(hsm.export_key(&tmk, &pik)).unwrap().encrypted,
        h("6701EAD6A9AD51E51AA406E2C27FCFA9")
    );

    // A wrong KCV is a verification failure.
    let wrong = pboc_sam::Kcv::from_hex("AB7153CB").unwrap();
    let e =
        run(hsm.import_key(&tmk, KeyType::Tak, &h("B651F9E9BACE9AE1"), Some(&wrong))).unwrap_err();
    assert_eq!(e.code, HsmErrorCode::VerificationFailed);
    assert_eq!(
        e.detail,
        "imported TAK: check value AB7153CA does not match the expected AB7153CB"
    );
    let e = run(hsm.import_key(&tmk, KeyType::Tak, &h("B651F9E9BACE9A"), None)).unwrap_err();
    assert_eq!(e.code, HsmErrorCode::KeyLength);
    assert_eq!(
        e.detail,
        "imported key: expected 8, 16 or 24 bytes, found 7"
    );
}

#[test]
fn unionpay_pos_mac() {
    let hsm = hsm();
    let tmk = form(&hsm, "70F2A84CCBC2AE8625CBB0F2C22AB923", KeyType::Tmk);
    let mak = run(hsm.import_key(&tmk, KeyType::Tak, &h("96D605EA176B7E9E"), None)).unwrap();
    let mab = h(MAB);
    let m = run(hsm.generate_mac(&mak, MacAlgorithm::UnionPayEcb, &mab)).unwrap();
    assert_eq!(m, b"8A9E91B8");
    run(hsm.verify_mac(&mak, MacAlgorithm::UnionPayEcb, &mab, b"8A9E91B8")).unwrap();
    // The left 4 bytes are enough.
    run(hsm.verify_mac(&mak, MacAlgorithm::UnionPayEcb, &mab, b"8A9E")).unwrap();

    let e = run(hsm.verify_mac(&mak, MacAlgorithm::UnionPayEcb, &mab, b"8A9E91B9")).unwrap_err();
    assert_eq!(e.code, HsmErrorCode::VerificationFailed);
    assert_eq!(e.code.as_str(), "01");
    assert_eq!(e.class(), ErrorClass::Business);
    assert_eq!(
        e.to_string(),
        "HSM error 01 (verification failed): MAC: verification failed"
    );

    let mut tampered = mab.clone();
    tampered[20] ^= 1;
    let e =
        run(hsm.verify_mac(&mak, MacAlgorithm::UnionPayEcb, &tampered, b"8A9E91B8")).unwrap_err();
    assert_eq!(e.class(), ErrorClass::Business);

    let e = run(hsm.verify_mac(&mak, MacAlgorithm::UnionPayEcb, &mab, b"8A9")).unwrap_err();
    assert_eq!(e.code, HsmErrorCode::InvalidInput);
    assert_eq!(e.detail, "MAC to verify: 3 bytes, expected 4 to 8");
}

#[test]
fn every_mac_algorithm_matches_the_pure_functions() {
    let hsm = hsm();
    let clear16 = k("0123456789ABCDEFFEDCBA9876543210");
    let clear8 = k("0123456789ABCDEF");
    let tak16 = form(&hsm, "0123456789ABCDEFFEDCBA9876543210", KeyType::Zak);
    let tak8 = form(&hsm, "0123456789ABCDEF", KeyType::Tak);
    let data = b"Now is the time for all ";
    let m = |key: &KeyRef, alg| run(hsm.generate_mac(key, alg, data));

    assert_eq!(
        m(&tak16, MacAlgorithm::X919).unwrap(),
        mac::x9_19(&clear16, data).unwrap()
    );
    assert_eq!(
        m(&tak8, MacAlgorithm::X99).unwrap(),
        mac::x9_9(&clear8, data).unwrap()
    );
    for p in [Padding::Method1, Padding::Method2] {
        assert_eq!(
            m(&tak16, MacAlgorithm::CbcMac(p)).unwrap(),
            mac::iso9797_1_alg1(&clear16, data, p)
        );
        let sm4 = pboc_sam::Sm4Key::from_bytes(clear16.as_bytes()).unwrap();
        assert_eq!(
            m(&tak16, MacAlgorithm::Sm4Mac(p)).unwrap(),
            mac::sm4_cbc_mac(&sm4, data, p)
        );
    }
    assert_eq!(
        m(&tak8, MacAlgorithm::Pboc).unwrap(),
        mac::pboc(&clear8, data).unwrap()
    );
    assert_eq!(
        m(&tak16, MacAlgorithm::UnionPayEcb).unwrap(),
        mac::pos_ecb(&clear16, data)
    );
    // ISO 9797-1 / X9.9 published value for the single-DES key.
    assert_eq!(
        hex::encode_upper(m(&tak8, MacAlgorithm::X99).unwrap()),
        "70A30640CC76DD8B"
    );
    for alg in MacAlgorithm::ALL {
        let out = m(&tak16, alg);
        if let Ok(out) = out {
            assert_eq!(out.len(), alg.output_len());
            run(hsm.verify_mac(&tak16, alg, data, &out)).unwrap();
        }
    }

    let e = m(&tak8, MacAlgorithm::X919).unwrap_err();
    assert_eq!(e.code, HsmErrorCode::KeyLength);
    assert_eq!(
        e.detail,
        "X9.19 MAC key: expected a double-length key, found a key of 8 bytes"
    );
    let e = m(&tak16, MacAlgorithm::X99).unwrap_err();
    assert_eq!(e.code, HsmErrorCode::KeyLength);
}

#[test]
fn wrong_key_type_is_a_request_error() {
    let hsm = hsm();
    let tpk = form(&hsm, "0123456789ABCDEFFEDCBA9876543210", KeyType::Tpk);
    let e = run(hsm.generate_mac(&tpk, MacAlgorithm::UnionPayEcb, b"data")).unwrap_err();
    assert_eq!(e.code, HsmErrorCode::KeyType);
    assert_eq!(e.code.as_u8(), 28);
    assert_eq!(e.class(), ErrorClass::Request);
    assert_eq!(e.detail, "MAC key: a TPK key cannot be used for MAC");

    // Relabelling a TPK cryptogram as a TAK does not make it a MAC key: it decrypts to
    // garbage under the TAK variant (parity error 10, or the KCV check, 15).
    let relabelled = KeyRef {
        key_type: KeyType::Tak,
        ..tpk.clone()
    };
    let e = run(hsm.generate_mac(&relabelled, MacAlgorithm::UnionPayEcb, b"data")).unwrap_err();
    assert!(
        matches!(e.code, HsmErrorCode::KeyParity | HsmErrorCode::InvalidInput),
        "{e}"
    );
    assert_eq!(e.class(), ErrorClass::Request);

    // A tampered check value.
    let tampered = KeyRef {
        kcv: pboc_sam::Kcv::from_hex("00000000").unwrap(),
        ..tpk.clone()
    };
    let e = run(hsm.key_check_value(&tampered)).unwrap_err();
    assert_eq!(e.code, HsmErrorCode::InvalidInput);
    assert_eq!(
        e.detail,
        "key: the key reference's check value 00000000 does not match its cryptogram (08D7B4FB)"
    );

    // A key from another LMK.
    let other = SoftHsm::new(
        Lmk::generate(&CounterRandom::new(1)),
        Box::new(CounterRandom::new(2)),
    );
    let e = run(other.key_check_value(&tpk)).unwrap_err();
    assert!(
        matches!(e.code, HsmErrorCode::KeyParity | HsmErrorCode::InvalidInput),
        "{e}"
    );

    // Data keys, PBOC keys.
    let e = run(hsm.encrypt_data(&tpk, DataMode::Ecb, &[0; 8])).unwrap_err();
    assert_eq!(e.code, HsmErrorCode::KeyType);
    let e = run(hsm.pboc_derive_key(&tpk, &[[0; 8]])).unwrap_err();
    assert_eq!(e.code, HsmErrorCode::KeyType);
    assert_eq!(
        e.detail,
        "PBOC master key: a TPK key cannot be used for card key derivation"
    );
}

const PAN: &str = "4123456789012345";
const TPK: &str = "0123456789ABCDEFFEDCBA9876543210";
const ZPK: &str = "CA5D92598DCA48CE8A4C76361A9269E9";

#[test]
fn pin_translation_for_every_format_pair() {
    use PinBlockFormat::{Iso0, Iso1, Iso3};
    let hsm = hsm();
    let tpk = form(&hsm, TPK, KeyType::Tpk);
    let zpk = form(&hsm, ZPK, KeyType::Zpk);
    let pan = Pan::new(PAN).unwrap();
    let pin = Pin::new("123456").unwrap();
    for from in [Iso0, Iso1, Iso3] {
        let clear = pinblock::encode(from, &pin, &pan, &h8("0123456789ABCDEF")).unwrap();
        let block = pinblock::encrypt_block(&k(TPK), &clear);
        for to in [Iso0, Iso1, Iso3] {
            let req = PinTranslation {
                source_key: tpk.clone(),
                source_format: from,
                dest_key: zpk.clone(),
                dest_format: to,
                pan: pan.clone(),
                block,
            };
            let out = run(hsm.translate_pin(&req));
            if matches!((from, to), (Iso0 | Iso3, Iso1)) {
                let e = out.unwrap_err();
                assert_eq!(e.code, HsmErrorCode::PinFormat, "{from} -> {to}");
                assert_eq!(e.class(), ErrorClass::Request);
                continue;
            }
            let out = out.unwrap();
            let back = pinblock::decode(to, &pinblock::decrypt_block(&k(ZPK), &out), &pan).unwrap();
            assert!(back.ct_eq(&pin), "{from} -> {to}");
            // And back again, ZPK to ZPK, to the source format where allowed.
            if !matches!((to, from), (Iso0 | Iso3, Iso1)) {
                let req2 = PinTranslation {
                    source_key: zpk.clone(),
                    source_format: to,
                    dest_key: zpk.clone(),
                    dest_format: from,
                    pan: pan.clone(),
                    block: out,
                };
                let again = run(hsm.translate_pin(&req2)).unwrap();
                let back = pinblock::decode(from, &pinblock::decrypt_block(&k(ZPK), &again), &pan)
                    .unwrap();
                assert!(back.ct_eq(&pin));
            }
            if to == Iso0 {
                // Format 0 uses no fill: the result is fully determined.
                let expect =
                    pinblock::translate(&block, &k(TPK), from, &k(ZPK), Iso0, &pan, &[0; 8])
                        .unwrap();
                assert_eq!(out, expect);
            }
        }
    }
}

#[test]
fn pin_translation_exact_bytes_and_errors() {
    let hsm = hsm();
    let tpk = form(&hsm, TPK, KeyType::Tpk);
    let zpk = form(&hsm, ZPK, KeyType::Zpk);
    let pan = Pan::new(PAN).unwrap();
    let pin = Pin::new("1234").unwrap();
    let clear = pinblock::encode(PinBlockFormat::Iso0, &pin, &pan, &[0; 8]).unwrap();
    assert_eq!(hex::encode_upper(clear.as_bytes()), "041200A9876FEDCB");
    let block = pinblock::encrypt_block(&k(TPK), &clear);
    let req = PinTranslation {
        source_key: tpk.clone(),
        source_format: PinBlockFormat::Iso0,
        dest_key: zpk.clone(),
        dest_format: PinBlockFormat::Iso0,
        pan: pan.clone(),
        block,
    };
    let out = run(hsm.translate_pin(&req)).unwrap();
    let expect = pinblock::encrypt_block(&k(ZPK), &clear);
    assert_eq!(out, expect);
    let dbg = format!("{req:?}");
    assert!(dbg.contains("412345******2345"), "{dbg}");
    assert!(dbg.contains("<redacted>"));
    assert!(!dbg.contains(&hex::encode_upper(block)));

    // The destination must be a ZPK.
    let e = run(hsm.translate_pin(&PinTranslation {
        dest_key: tpk.clone(),
        ..req.clone()
    }))
    .unwrap_err();
    assert_eq!(e.code, HsmErrorCode::KeyType);
    assert_eq!(
        e.detail,
        "destination PIN key: a TPK key where a ZPK is required"
    );
    // The wrong PAN or key: the block does not decode (20).
    let e = run(hsm.translate_pin(&PinTranslation {
        source_key: zpk.clone(),
        ..req.clone()
    }))
    .unwrap_err();
    assert_eq!(e.code, HsmErrorCode::PinBlock);
    assert_eq!(e.class(), ErrorClass::Request);
    // Format 4 is refused (23).
    let e = run(hsm.translate_pin(&PinTranslation {
        dest_format: PinBlockFormat::Iso4,
        ..req.clone()
    }))
    .unwrap_err();
    assert_eq!(e.code, HsmErrorCode::PinFormat);
}

const CITY: [u8; 8] = [0x00, 0x00, 0x00, 0x00, 0x21, 0x00, 0x00, 0x01];
const CARD: [u8; 8] = [0x10, 0x00, 0x00, 0x00, 0x00, 0x00, 0x12, 0x34];

fn load_request(mac1: [u8; 4]) -> LoadRequest {
    LoadRequest {
        factors: vec![],
        random: h4("11223344"),
        online_seq: 0,
        balance: 0,
        amount: 0x1000,
        tx_type: pboc::TYPE_ED_LOAD,
        terminal: h(" 001122334455").try_into().unwrap(),
        date: h4("20111221"),
        time: h("214822").try_into().unwrap(),
        mac1,
    }
}

#[test]
fn pboc_load_development_vector() {
    // The published vector gives the card's DLK directly: enter it as the "master" and pass
    // no factors.
    let hsm = hsm();
    let dlk = form(&hsm, "11223344556677888877665544332211", KeyType::PbocLoad);
    let mac2 = run(hsm.pboc_load_mac2(&dlk, &load_request(h4("2988AE5A")))).unwrap();
    assert_eq!(mac2, h4("3A845BF0"));
    let e = run(hsm.pboc_load_mac2(&dlk, &load_request(h4("2988AE5B")))).unwrap_err();
    assert_eq!(e.code, HsmErrorCode::VerificationFailed);
    assert_eq!(e.class(), ErrorClass::Business);
    assert_eq!(e.detail, "load MAC1: verification failed");
}

#[test]
fn pboc_load_with_diversification() {
    let hsm = hsm();
    let mlk_clear = k("0123456789ABCDEFFEDCBA9876543210");
    let mlk = form(&hsm, "0123456789ABCDEFFEDCBA9876543210", KeyType::PbocLoad);
    let dlk = pboc::diversify_path(&mlk_clear, &[CITY, CARD]);
    let seslk = pboc::load_session_key(&dlk, &h4("11223344"), 0);
    let terminal: [u8; 6] = h("001122334455").try_into().unwrap();
    let mac1 = mac::pboc(
        &seslk,
        &pboc::load_mac1_input(0, 0x1000, pboc::TYPE_ED_LOAD, &terminal),
    )
    .unwrap();
    let expect_mac2 = mac::pboc(
        &seslk,
        &pboc::load_mac2_input(
            0x1000,
            pboc::TYPE_ED_LOAD,
            &terminal,
            &h4("20111221"),
            &h("214822").try_into().unwrap(),
        ),
    )
    .unwrap();
    let mut req = load_request(mac1);
    req.factors = vec![CITY, CARD];
    assert_eq!(run(hsm.pboc_load_mac2(&mlk, &req)).unwrap(), expect_mac2);

    // The same through a derived card key.
    let card_key = run(hsm.pboc_derive_key(&mlk, &[CITY, CARD])).unwrap();
    assert_eq!(card_key.key_type, KeyType::PbocLoad);
    assert_eq!(card_key.kcv, dlk.kcv(pboc_sam::KcvLength::UNIONPAY));
    let mut direct = req.clone();
    direct.factors.clear();
    assert_eq!(
        run(hsm.pboc_load_mac2(&card_key, &direct)).unwrap(),
        expect_mac2
    );

    // Factors in the wrong order give another key, so MAC1 fails.
    let mut swapped = req.clone();
    swapped.factors = vec![CARD, CITY];
    let e = run(hsm.pboc_load_mac2(&mlk, &swapped)).unwrap_err();
    assert_eq!(e.code, HsmErrorCode::VerificationFailed);

    // Only a PBOC load master may verify loads.
    let mtk = form(&hsm, "0123456789ABCDEFFEDCBA9876543210", KeyType::PbocTac);
    let e = run(hsm.pboc_load_mac2(&mtk, &req)).unwrap_err();
    assert_eq!(e.code, HsmErrorCode::KeyType);
    assert_eq!(
        e.detail,
        "PBOC load key: a PBOC MTK key where a PBOC MLK is required"
    );
    let mut deep = req.clone();
    deep.factors = vec![CARD; 9];
    let e = run(hsm.pboc_load_mac2(&mlk, &deep)).unwrap_err();
    assert_eq!(e.code, HsmErrorCode::InvalidInput);
    assert_eq!(
        e.detail,
        "PBOC load key: 9 diversification factors, expected 0 to 8"
    );
    let e = run(hsm.pboc_derive_key(&mlk, &[])).unwrap_err();
    assert_eq!(
        e.detail,
        "card key derivation: 0 diversification factors, expected 1 to 8"
    );
}

#[test]
fn pboc_tac_verification() {
    let hsm = hsm();
    let mtk_clear = k("FEDCBA98765432100123456789ABCDEF");
    let mtk = form(&hsm, "FEDCBA98765432100123456789ABCDEF", KeyType::PbocTac);
    let dtk = pboc::diversify_path(&mtk_clear, &[CARD]);
    let tac_key = pboc::tac_key(&dtk).unwrap();
    let terminal: [u8; 6] = h("001122334455").try_into().unwrap();
    let input = pboc::purchase_tac_input(
        0x1000,
        pboc::TYPE_EP_PURCHASE,
        &terminal,
        1,
        &h4("20120229"),
        &h("135100").try_into().unwrap(),
    );
    let tac = mac::pboc(&tac_key, &input).unwrap();
    let req = TacRequest {
        factors: vec![CARD],
        data: input.to_vec(),
        tac,
    };
    run(hsm.pboc_verify_tac(&mtk, &req)).unwrap();

    let mut bad = req.clone();
    bad.tac[3] ^= 1;
    let e = run(hsm.pboc_verify_tac(&mtk, &bad)).unwrap_err();
    assert_eq!(e.code, HsmErrorCode::VerificationFailed);
    assert_eq!(e.class(), ErrorClass::Business);
    assert_eq!(e.detail, "TAC: verification failed");

    let mut other_amount = req.clone();
    other_amount.data[3] ^= 1;
    let e = run(hsm.pboc_verify_tac(&mtk, &other_amount)).unwrap_err();
    assert_eq!(e.code, HsmErrorCode::VerificationFailed);

    // A load TAC verifies the same way.
    let load = pboc::load_tac_input(
        0x1000,
        0,
        0x1000,
        pboc::TYPE_ED_LOAD,
        &terminal,
        &h4("20111221"),
        &h("214822").try_into().unwrap(),
    );
    let req = TacRequest {
        factors: vec![CARD],
        data: load.to_vec(),
        tac: mac::pboc(&tac_key, &load).unwrap(),
    };
    run(hsm.pboc_verify_tac(&mtk, &req)).unwrap();
    let mlk = form(&hsm, "FEDCBA98765432100123456789ABCDEF", KeyType::PbocLoad);
    assert_eq!(
        run(hsm.pboc_verify_tac(&mlk, &req)).unwrap_err().code,
        HsmErrorCode::KeyType
    );
}

#[test]
fn data_encryption_matches_the_pure_functions() {
    let hsm = hsm();
    let tdk = form(&hsm, "0123456789ABCDEFFEDCBA9876543210", KeyType::Tdk);
    let clear = pboc_sam::Key::from(k("0123456789ABCDEFFEDCBA9876543210"));
    let data = h("0000000000000000 1111111111111111 2222222222222222");
    let iv = h8("0102030405060708");
    for mode in [DataMode::Ecb, DataMode::Cbc(iv)] {
        let pure_mode = match mode {
            DataMode::Ecb => cipher::Mode::Ecb,
            DataMode::Cbc(_) => cipher::Mode::Cbc { iv: &iv },
        };
        let enc = run(hsm.encrypt_data(&tdk, mode, &data)).unwrap();
        assert_eq!(enc, cipher::encrypt(&clear, pure_mode, &data).unwrap());
        assert_eq!(run(hsm.decrypt_data(&tdk, mode, &enc)).unwrap(), data);
    }
    // E(0123456789ABCDEF FEDCBA9876543210, 0) = 08D7B4FB629D0885 (the key's check block).
    let enc = run(hsm.encrypt_data(&tdk, DataMode::Ecb, &[0; 8])).unwrap();
    assert_eq!(hex::encode_upper(enc), "08D7B4FB629D0885");
    let e = run(hsm.encrypt_data(&tdk, DataMode::Ecb, &[0; 7])).unwrap_err();
    assert_eq!(e.code, HsmErrorCode::InvalidInput);
    assert_eq!(e.detail, "data: expected a multiple of 8 bytes, found 7");
}

#[test]
fn softhsm_debug_shows_only_the_lmk_check_value() {
    let hsm = hsm();
    assert_eq!(
        format!("{hsm:?}"),
        format!(
            "SoftHsm {{ lmk: Lmk {{ length: Triple, kcv: {:?} }}, .. }}",
            lmk().kcv()
        )
    );
    assert!(!format!("{hsm:?}").contains("0123456789"));
}

/// Opened keys are kept by type, cryptogram and check value: the same key gives the same
/// results however often it is used, and a `KeyRef` that differs in any part (a wrong check
/// value, another type) is refused even after the genuine one was opened.
#[test]
fn opened_keys_are_reused_only_for_the_same_key_ref() {
    let hsm = hsm();
    let tmk = form(&hsm, "70F2A84CCBC2AE8625CBB0F2C22AB923", KeyType::Tmk);
    let mak = run(hsm.import_key(&tmk, KeyType::Tak, &h("96D605EA176B7E9E"), None)).unwrap();
    let mab = h(MAB);
    for _ in 0..3 {
        let m = run(hsm.generate_mac(&mak, MacAlgorithm::UnionPayEcb, &mab)).unwrap();
        assert_eq!(m, b"8A9E91B8");
    }

    let mut wrong_kcv = mak.clone();
    wrong_kcv.kcv = pboc_sam::Kcv::from_hex("00000000").unwrap();
    let e = run(hsm.generate_mac(&wrong_kcv, MacAlgorithm::UnionPayEcb, &mab)).unwrap_err();
    assert_eq!(e.code, HsmErrorCode::InvalidInput);
    // A shorter check value that agrees is the same key; the same bytes padded with a zero
    // to the full length are not (the table tells check values of different lengths apart).
    let kcv = mak.kcv.as_bytes().to_vec();
    let mut short = mak.clone();
    short.kcv = pboc_sam::Kcv::from_hex(&hex::encode(&kcv[..3])).unwrap();
    let m = run(hsm.generate_mac(&short, MacAlgorithm::UnionPayEcb, &mab)).unwrap();
    assert_eq!(m, b"8A9E91B8");
    let mut padded = mak.clone();
    padded.kcv = pboc_sam::Kcv::from_hex(&format!("{}00", hex::encode(&kcv[..3]))).unwrap();
    assert_ne!(
        kcv[3], 0,
        "this key's check value does not end in a zero byte"
    );
    let e = run(hsm.generate_mac(&padded, MacAlgorithm::UnionPayEcb, &mab)).unwrap_err();
    assert_eq!(e.code, HsmErrorCode::InvalidInput);

    // The same cryptogram claimed as a ZAK: decrypted under the ZAK variant it is another
    // key, which fails its parity or its check value.
    let mut other_type = mak.clone();
    other_type.key_type = KeyType::Zak;
    let e = run(hsm.generate_mac(&other_type, MacAlgorithm::UnionPayEcb, &mab)).unwrap_err();
    assert!(
        matches!(e.code, HsmErrorCode::KeyParity | HsmErrorCode::InvalidInput),
        "{e}"
    );

    // More distinct keys than the table holds: the table starts over, results stay exact.
    for i in 0..(pboc_sam::softhsm::OPENED_KEYS + 10) {
        let key = run(hsm.generate_key(KeyType::Zak, DesKeyLength::Double, None)).unwrap();
        if i % 1000 == 0 {
            let m = run(hsm.generate_mac(&key.key, MacAlgorithm::X919, &mab)).unwrap();
            run(hsm.verify_mac(&key.key, MacAlgorithm::X919, &mab, &m)).unwrap();
        } else {
            run(hsm.key_check_value(&key.key)).unwrap();
        }
    }
    let m = run(hsm.generate_mac(&mak, MacAlgorithm::UnionPayEcb, &mab)).unwrap();
    assert_eq!(m, b"8A9E91B8");
}
