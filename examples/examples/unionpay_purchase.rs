//! A UnionPay POS purchase, end to end on the wire format: build it, MAC it the UnionPay
//! "ECB" way, frame it with TPDU and header, then decode it on the other side, check the MAC
//! and answer with the TPDU addresses swapped.
//!
//! Run with `cargo run -p examples --example unionpay_purchase`.

use iso8583_wire::frame::{CupsHeader, FrameConfig, Tpdu};
use iso8583_wire::{MessageBuf, decode, specs};
use pboc_sam::{DesKey, keyexchange, mac};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let spec = specs::cups_pos();
    // The terminal master key and the encrypted MAK from the development example.
    let tmk = DesKey::from_hex("70F2A84CCBC2AE8625CBB0F2C22AB923")?;
    let mak = keyexchange::decrypt_key(&tmk, &hex::decode("96D605EA176B7E9E")?)?;

    // The terminal builds the development example's purchase: 0.51 yuan (51 fen).
    let mut purchase = MessageBuf::new("0200")?;
    purchase
        .set(3, "000000")
        .set(4, 51u32)
        .set(11, 1834u32)
        .set(22, "021")
        .set(25, "00")
        .set(26, "06")
        .set(35, "4392260009942820D131210112008439")
        .set(41, "16688014")
        .set(42, "000000000000001")
        .set(49, "156")
        .set(52, &[0xAC, 0xF4, 0x6E, 0x73, 0x83, 0x8A, 0x82, 0xF9])
        .set(53, "2600000000000000")
        .set(60, "22000001")
        // Field 64 is part of the bitmap the MAC covers; its value is filled in below.
        .set(64, &[0u8; 8]);
    let mut body = purchase.to_vec(spec)?;
    let mab_len = body.len() - 8;
    let mac_text = mac::pos_ecb(&mak, &body[..mab_len]);
    body[mab_len..].copy_from_slice(&mac_text);
    println!("MAC {}", String::from_utf8_lossy(&mac_text));
    assert_eq!(&mac_text, b"8A9E91B8", "the development example's MAC");

    let tpdu = Tpdu::new(0x0004, 0x0000);
    let header: CupsHeader = "602200000000".parse()?;
    let mut wire = Vec::new();
    FrameConfig::cups_pos().encode(Some(tpdu), Some(header), &body, &mut wire)?;
    println!("wire {}", hex::encode_upper(&wire));

    // The front end receives it.
    let (frame, _) = FrameConfig::cups_pos()
        .decode(&wire)?
        .ok_or("incomplete frame")?;
    let msg = decode(spec, frame.body)?;
    msg.validate()?;
    let received = msg.field(64).ok_or("no MAC")?.raw();
    let expected = mac::pos_ecb(&mak, &frame.body[..frame.body.len() - 8]);
    mac::verify("field 64", received, &expected)?;
    println!("{}", msg.describe());

    // The answer goes back with the TPDU addresses swapped.
    let mut answer = MessageBuf::new("0210")?;
    for n in [3, 4, 11, 25, 41, 42, 49, 60] {
        if let Some(f) = msg.field(n) {
            answer.set(n, f.to_string());
        }
    }
    answer.set(39, "00").set(37, "000000001834");
    let answer = answer.to_vec(spec)?;
    let mut reply = Vec::new();
    FrameConfig::cups_pos().encode(
        frame.tpdu.map(|t| t.reply()),
        frame.header,
        &answer,
        &mut reply,
    )?;
    println!("reply {}", hex::encode_upper(&reply));
    Ok(())
}
