//! The Bulk results decoder (`sf_bulk::PageDecoder`) on arbitrary bytes, fed in chunks of a
//! fuzz-chosen size: it never panics, and when it succeeds every record has one value per
//! requested column and the row count it reports is the number of records it made.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sf_bulk::PageDecoder;

fuzz_target!(|data: &[u8]| {
    let [a, b, c, d, e, f, rest @ ..] = data else {
        return;
    };
    let fields = sfconnect_fuzz::fields(u32::from_le_bytes([*a, *b, *c, *d]));
    let Ok(mut decoder) = PageDecoder::new(&fields, sfconnect_fuzz::content_type(*e)) else {
        return;
    };
    // Half the inputs start with the right header, so the fuzzer spends its time on rows.
    let mut body = Vec::with_capacity(rest.len() + 32);
    if f & 1 == 1 {
        let names: Vec<String> = fields.iter().map(|f| format!("\"{}\"", f.name)).collect();
        body.extend_from_slice(names.join(",").as_bytes());
        body.push(b'\n');
    }
    body.extend_from_slice(rest);
    let chunk = usize::from(f >> 1).max(1);
    let mut records = Vec::new();
    for piece in body.chunks(chunk) {
        if decoder.push(piece, &mut records).is_err() {
            return;
        }
    }
    if let Ok(rows) = decoder.finish(&mut records) {
        assert_eq!(rows as usize, records.len());
        for record in &records {
            assert_eq!(record.values.len(), fields.len());
            assert_eq!(record.columns.len(), fields.len());
        }
    }
});
