//! A stream document as DynamoDB stores it: its JSON, deflated.
//!
//! DynamoDB bills a write by the kilobyte of the whole item, twice inside a transaction, and
//! every commit rewrites the stream item. A stream's JSON repeats its keys and its timeline's
//! phrasing, so deflate shrinks it about three times (in a simulated month the mean doc written
//! is 1,876 bytes as JSON and 756 deflated, the largest 10 KB and 2.9 KB): most stream items
//! fit one write unit. Level 1 (`Compression::fast`): level 6 packs the mean doc to 662 bytes
//! for about twice the CPU, and changes the month's write units by under 4 %. The cost is some
//! microseconds of CPU per commit and an item that reads as bytes in the console
//! (`GET /v1/cases/{id}` shows a case; `docs/operations.md` says how to read one raw).
//!
//! The simulation (`followup-local simulate`) sizes the stream items it bills with [`pack`], so
//! its figures follow this encoding.

use flate2::read::DeflateDecoder;
use flate2::{Compress, Compression, FlushCompress, Status};
use std::cell::RefCell;
use std::io::Read;

thread_local! {
    /// One compressor per thread, reset for each document: a new one allocates and zeroes about
    /// 300 KB of tables, which cost more than deflating a 2 KB document.
    static COMPRESSOR: RefCell<Compress> = RefCell::new(Compress::new(Compression::fast(), false));
}

/// Deflates a document (raw deflate, level 1).
pub fn pack(doc: &str) -> Vec<u8> {
    COMPRESSOR.with(|c| {
        let mut c = c.borrow_mut();
        c.reset();
        let input = doc.as_bytes();
        let mut out = Vec::with_capacity(doc.len() / 3 + 64);
        loop {
            let read = c.total_in() as usize;
            // Compressing into memory cannot fail; it stops when `out` is full, which is grown.
            match c.compress_vec(&input[read..], &mut out, FlushCompress::Finish).expect("deflating into memory") {
                Status::StreamEnd => return out,
                Status::Ok | Status::BufError => out.reserve(out.capacity().max(64)),
            }
        }
    })
}

/// Inflates what [`pack`] made; a corrupt or non-UTF-8 payload is an error naming why.
pub fn unpack(bytes: &[u8]) -> Result<String, String> {
    let mut doc = String::with_capacity(bytes.len() * 4);
    DeflateDecoder::new(bytes).read_to_string(&mut doc).map_err(|e| format!("cannot inflate the document: {e}"))?;
    Ok(doc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_packed_document_unpacks_to_itself_and_is_smaller() {
        let doc = serde_json::json!({
            "timeline": (0..20).map(|i| serde_json::json!({"at": format!("2026-03-04T09:{i:02}:13Z"), "kind": "timer_placed", "detail": "call_attempt due 2026-03-05T09:00:00+02:00"})).collect::<Vec<_>>()
        })
        .to_string();
        let packed = pack(&doc);
        assert!(packed.len() * 4 < doc.len(), "{} bytes packed from {}", packed.len(), doc.len());
        assert_eq!(unpack(&packed).unwrap(), doc);
        assert_eq!(unpack(&pack("")).unwrap(), "");
        // The thread's compressor starts afresh for each document: the same bytes every time.
        assert_eq!(pack(&doc), packed);
        let big: String = (0..5_000).map(|i| format!("{i:x}{}", i * 7919 % 104_729)).collect();
        assert_eq!(unpack(&pack(&big)).unwrap(), big, "a document that outgrows the first output buffer");
        assert_eq!(pack(&doc), packed);
        // The same bytes as flate2's streaming encoder at the same level.
        for d in [&doc, &big] {
            let mut e = flate2::write::DeflateEncoder::new(Vec::new(), Compression::fast());
            std::io::Write::write_all(&mut e, d.as_bytes()).unwrap();
            assert_eq!(pack(d), e.finish().unwrap());
        }
    }

    #[test]
    fn a_corrupt_payload_is_an_error() {
        assert!(unpack(b"not deflate at all \xff\xfe").is_err());
        let mut cut = pack("{\"a\": \"some document long enough to be cut\"}");
        cut.truncate(cut.len() / 2);
        assert!(unpack(&cut).is_err());
    }
}
