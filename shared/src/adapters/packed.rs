//! A stream document as DynamoDB stores it: its JSON, deflated.
//!
//! DynamoDB bills a write by the kilobyte of the whole item, twice inside a transaction, and
//! every commit rewrites the stream item. A stream's JSON repeats its keys and its timeline's
//! phrasing, so deflate shrinks it nearly three times (in the simulated month the mean doc
//! written is 2,175 bytes as JSON and 783 packed, the largest 14.8 KB and 2.8 KB): most stream
//! items fit one write unit. libdeflate at level 1: on a sample of the month's docs it takes
//! about half the CPU of flate2's level 1 (miniz_oxide, which packed before it) and packs them
//! 10 % smaller (the month's mean 872 bytes before); its level 6 packs 2 % smaller again for
//! 1.7 times the CPU. The cost is some microseconds of CPU per commit and an item that reads as
//! bytes in the console (`GET /v1/cases/{id}` shows a case; `docs/operations.md` says how to
//! read one raw). Any raw deflate inflates, so items packed before still read.
//!
//! The simulation (`followup-local simulate`) sizes the stream items it bills with [`pack`], so
//! its figures follow this encoding.

use flate2::read::DeflateDecoder;
use libdeflater::{CompressionLvl, Compressor};
use std::cell::RefCell;
use std::io::Read;

/// libdeflate's level 1, its fastest that compresses (level 0 only wraps the bytes).
const LEVEL: i32 = 1;

thread_local! {
    /// One compressor per thread: a new one allocates its tables, which costs more than
    /// deflating a 2 KB document. libdeflate keeps no state between documents, so the same
    /// document always packs to the same bytes.
    static COMPRESSOR: RefCell<Compressor> = RefCell::new(Compressor::new(CompressionLvl::new(LEVEL).expect("a level libdeflate has")));
}

/// Deflates a document (raw deflate, libdeflate level 1).
pub fn pack(doc: &str) -> Vec<u8> {
    let mut out = Vec::new();
    deflate_into(doc.as_bytes(), &mut out);
    out
}

/// How many bytes [`pack`] makes of a document, deflated into the thread's own buffer: what
/// the simulation bills an item by, without an allocation per document.
pub fn packed_len(doc: &[u8]) -> usize {
    thread_local! {
        static OUT: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    }
    OUT.with(|out| {
        let mut out = out.borrow_mut();
        deflate_into(doc, &mut out);
        out.len()
    })
}

fn deflate_into(doc: &[u8], out: &mut Vec<u8>) {
    COMPRESSOR.with(|c| {
        let mut c = c.borrow_mut();
        out.resize(c.deflate_compress_bound(doc.len()), 0);
        // The buffer holds the bound of what deflate can make of the input, so it cannot be short.
        let len = c.deflate_compress(doc, out).expect("deflating into a buffer of the bound");
        out.truncate(len);
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
        assert_eq!(packed_len(doc.as_bytes()), packed.len());
        let big: String = (0..5_000).map(|i| format!("{i:x}{}", i * 7919 % 104_729)).collect();
        assert_eq!(unpack(&pack(&big)).unwrap(), big, "a document of tens of KB");
        assert_eq!(pack(&doc), packed);
        // Items packed before libdeflate, by flate2's encoder (miniz_oxide, level 1), still read.
        for d in [&doc, &big] {
            let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
            std::io::Write::write_all(&mut e, d.as_bytes()).unwrap();
            assert_eq!(unpack(&e.finish().unwrap()).unwrap(), **d);
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
