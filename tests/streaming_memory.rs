//! A large download through the proxy keeps memory flat. Its own test binary, so no other test
//! allocates in the process while its resident set size is watched.

mod common;

use common::*;
use futures::StreamExt;

const MEDIA_QUERY: &str = "expire=1900000000&ei=AbCdEf&ip=127.0.0.1&id=o-AKxyz&itag=140&source=youtube&requiressl=yes&mime=audio%2Fmp4&c=MWEB&n=nchal&sparams=expire%2Cei%2Cip%2Cid%2Citag&sig=AJfQdSs%3D";

/// Resident set size of this test process, in bytes.
fn rss_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

#[tokio::test]
async fn a_large_download_streams_without_growing_memory() {
    const LEN: u64 = 256 * 1024 * 1024;
    let h = Harness::builder().static_token().start().await;
    let url =
        format!("https://rr5---sn-big.googlevideo.com/videoplayback?{MEDIA_QUERY}&clen={LEN}");
    let res = h.client().get(&url).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let before = rss_bytes();
    let mut stream = res.bytes_stream();
    let mut pos = 0u64;
    let mut peak = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.unwrap();
        // Spot-check content and order without keeping the bytes.
        let first = chunk[0];
        assert_eq!(first, media_byte(pos), "byte at {pos}");
        pos += chunk.len() as u64;
        if let Some(r) = rss_bytes() {
            peak = peak.max(r);
        }
    }
    assert_eq!(pos, LEN);
    if let Some(before) = before {
        let growth = peak.saturating_sub(before);
        assert!(
            growth < 64 * 1024 * 1024,
            "RSS grew by {} MiB while streaming {} MiB",
            growth >> 20,
            LEN >> 20
        );
    }
}
