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
use flate2::write::DeflateEncoder;
use flate2::Compression;
use std::io::{Read, Write};

/// Deflates a document.
pub fn pack(doc: &str) -> Vec<u8> {
    let mut encoder = DeflateEncoder::new(Vec::with_capacity(doc.len() / 3 + 16), Compression::fast());
    // Writing into a Vec cannot fail.
    encoder.write_all(doc.as_bytes()).expect("deflating into memory");
    encoder.finish().expect("deflating into memory")
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
    }

    #[test]
    fn a_corrupt_payload_is_an_error() {
        assert!(unpack(b"not deflate at all \xff\xfe").is_err());
        let mut cut = pack("{\"a\": \"some document long enough to be cut\"}");
        cut.truncate(cut.len() / 2);
        assert!(unpack(&cut).is_err());
    }
}
