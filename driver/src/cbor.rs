//! The driver's mini CBOR codec: the heads its requests need, and the decoding of the
//! `on_perf_ping` event.

pub(crate) fn cbor_head(out: &mut Vec<u8>, major: u8, v: u64) {
    let m = major << 5;
    match v {
        0..=23 => out.push(m | v as u8),
        24..=0xff => out.extend_from_slice(&[m | 24, v as u8]),
        0x100..=0xffff => {
            out.push(m | 25);
            out.extend_from_slice(&(v as u16).to_be_bytes())
        }
        0x1_0000..=0xffff_ffff => {
            out.push(m | 26);
            out.extend_from_slice(&(v as u32).to_be_bytes())
        }
        _ => {
            out.push(m | 27);
            out.extend_from_slice(&v.to_be_bytes())
        }
    }
}

pub(crate) fn cbor_int(out: &mut Vec<u8>, v: i64) {
    if v >= 0 {
        cbor_head(out, 0, v as u64)
    } else {
        cbor_head(out, 1, (-1 - v) as u64)
    }
}

/// Reads one CBOR head at `*pos`: (major type, argument).
fn cbor_read_head(b: &[u8], pos: &mut usize) -> Option<(u8, u64)> {
    let first = *b.get(*pos)?;
    *pos += 1;
    let (major, info) = (first >> 5, first & 0x1f);
    let n = match info {
        0..=23 => return Some((major, info as u64)),
        24 => 1,
        25 => 2,
        26 => 4,
        27 => 8,
        _ => return None,
    };
    let bytes = b.get(*pos..*pos + n)?;
    *pos += n;
    Some((major, bytes.iter().fold(0, |v, &x| v << 8 | x as u64)))
}

/// `{"seq_no": u, "stamp_ns": u, "data": bstr}` in any key order.
pub(crate) fn decode_ping(b: &[u8]) -> Option<(u64, u64, &[u8])> {
    let mut pos = 0;
    let (major, n) = cbor_read_head(b, &mut pos)?;
    if major != 5 {
        return None;
    }
    let (mut seq, mut stamp, mut data) = (None, None, None);
    for _ in 0..n {
        let (kmaj, klen) = cbor_read_head(b, &mut pos)?;
        if kmaj != 3 {
            return None;
        }
        let key = b.get(pos..pos + klen as usize)?;
        pos += klen as usize;
        let (vmaj, v) = cbor_read_head(b, &mut pos)?;
        match (key, vmaj) {
            (b"seq_no", 0) => seq = Some(v),
            (b"stamp_ns", 0) => stamp = Some(v),
            (b"data", 2) => {
                data = Some(b.get(pos..pos + v as usize)?);
                pos += v as usize;
            }
            _ => return None,
        }
    }
    Some((seq?, stamp?, data?))
}
