#!/usr/bin/env python3
"""Writes the seed corpus (fuzz/corpus/<target>/seed-*): small inputs made here by hand, never
copied from captured traffic. Run from anywhere; existing seeds are overwritten, files the
fuzzer added are kept."""
import json
import os

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
TOKEN = bytes(range(1, 17))  # a made-up 16-byte token, not a real one


def with_token(rest: bytes, token: bytes = TOKEN) -> bytes:
    return bytes([len(token)]) + token + rest


def pb_varint(v: int) -> bytes:
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def pb_bytes(number: int, payload: bytes) -> bytes:
    return pb_varint(number << 3 | 2) + pb_varint(len(payload)) + payload


def pb_int(number: int, value: int) -> bytes:
    return pb_varint(number << 3) + pb_varint(value)


def ump_varint(v: int) -> bytes:
    if v < 128:
        return bytes([v])
    if v < 16384:
        return bytes([0x80 | (v & 0x3F), v >> 6])
    if v < 2097152:
        return bytes([0xC0 | (v & 0x1F), (v >> 5) & 0xFF, v >> 13])
    if v < 268435456:
        return bytes([0xE0 | (v & 0x0F), (v >> 4) & 0xFF, (v >> 12) & 0xFF, v >> 20])
    return bytes([0xF0]) + (v & 0xFFFFFFFF).to_bytes(4, "little")


def ump_part(t: int, payload: bytes, size: int | None = None) -> bytes:
    return ump_varint(t) + ump_varint(len(payload) if size is None else size) + payload


def seeds() -> dict[str, dict[str, bytes]]:
    status3 = pb_int(1, 3)
    ctx = pb_bytes(1, b"client-info") + pb_bytes(2, b"old-token") + pb_int(5, 7)
    player = {
        "context": {"client": {"clientName": "WEB", "clientVersion": "2.20250101.00.00",
                               "visitorData": "CgtWaXNpdG9y"}},
        "videoId": "abcdefghijk",
        "serviceIntegrityDimensions": {"poToken": "placeholder", "other": 1},
        "playbackContext": {"contentPlaybackContext": {"signatureTimestamp": 20000}},
    }
    response = {
        "playabilityStatus": {"status": "OK"},
        "streamingData": {
            "formats": [{"itag": 18, "url": "https://rr1---sn-x.googlevideo.com/videoplayback?expire=1&ei=e&pot=old&c=WEB"}],
            "adaptiveFormats": [
                {"itag": 251, "signatureCipher": "s=abc&sp=sig&url=https%3A%2F%2Frr1---sn-x.googlevideo.com%2Fvideoplayback%3Fexpire%3D1"},
                {"itag": 140, "url": "https://rr1---sn-x.googlevideo.com/videoplayback?sabr=1&expire=1"},
            ],
            "hlsManifestUrl": "https://manifest.googlevideo.com/api/manifest/hls_variant/expire/1/id/x/file/index.m3u8",
            "dashManifestUrl": "https://manifest.googlevideo.com/api/manifest/dash/expire/1/id/x",
        },
        "captions": {"playerCaptionsTracklistRenderer": {"captionTracks": [
            {"baseUrl": "https://www.youtube.com/api/timedtext?v=abcdefghijk&lang=en", "languageCode": "en"}]}},
    }
    ytcfg = {
        "VISITOR_DATA": "CgtWaXNpdG9y",
        "DATASYNC_ID": "123||",
        "LOGGED_IN": False,
        "INNERTUBE_CONTEXT": {"client": {"clientName": "WEB", "visitorData": "CgtWaXNpdG9y"}},
        "WEB_PLAYER_CONTEXT_CONFIGS": {"X": {"serializedExperimentFlags": "a=1&b=true"}},
    }
    page = (
        "<html><script>ytcfg.set(" + json.dumps(ytcfg) + ");</script>"
        "<script>window.ytAtN({'R': '{\"bgChallenge\":{\"program\":\"p\",\"interpreterHash\":\"h\"}}', 'T': 'eacr'});</script>"
        "<script>var ytInitialPlayerResponse = " + json.dumps({"videoDetails": {"videoId": "abcdefghijk"}}) + ";</script></html>"
    )
    far = 4102444800  # 2100-01-01, seconds
    cache = {"version": 2, "entries": [
        {"kind": "video", "binding": "abcdefghijk", "egress": None, "token": "AQIDBAUGBwgJCgsMDQ4PEA==", "expires_at": far},
        {"kind": "session", "binding": "CgtWaXNpdG9y", "egress": "http://proxy:3128", "token": "AQID", "expires_at": far},
        {"kind": "video", "binding": "expiredvid1", "egress": None, "token": "AQID", "expires_at": 1},
    ]}
    return {
        "ump_scanner": {
            "seed-status": b"\x03" + ump_part(20, b"media-bytes" * 3) + ump_part(58, status3) + ump_part(44, b""),
            "seed-wide-varints": b"\x05" + ump_part(46, b"x" * 200) + ump_part(300, b"y" * 20) + ump_varint(2**30) + b"\x01\x00",
            "seed-truncated": b"\x00" + ump_part(58, status3, size=40),
        },
        "sabr_set_po_token": {
            "seed-context": with_token(pb_int(1, 1) + pb_bytes(19, ctx) + pb_bytes(22, b"tail")),
            "seed-no-context": with_token(pb_int(1, 1) + pb_bytes(3, b"x")),
            "seed-two-contexts": with_token(pb_bytes(19, ctx) + pb_int(4, 2) + pb_bytes(19, pb_bytes(1, b"ci"))),
            "seed-not-protobuf": with_token(b"\x0b\x00 not protobuf"),
        },
        "page_parse": {
            "seed-page": page.encode(),
            "seed-ytatr": b"<script>window.ytAtR = '{\\\"bgChallenge\\\":{\\\"a\\\":\\u00271\\u0027}}';</script>",
        },
        "player_request": {
            "seed-web": with_token(json.dumps(player).encode()),
            "seed-no-sid": with_token(b'{"context":{"client":{"clientName":"ANDROID"}},"videoId":"x"}'),
            "seed-sid-string": with_token(b'{"serviceIntegrityDimensions":"x","n":1.5e300}'),
            "seed-array": with_token(b"[1,2]"),
        },
        "player_response": {
            "seed-response": with_token(json.dumps(response).encode()),
        },
        "media_url": {
            "seed-query": with_token(b"/videoplayback?expire=1&ei=e&pot=old&pot=dup&&c=WEB"),
            "seed-path": with_token(b"/videoplayback/id/x/itag/18/pot/old/?x=1"),
            "seed-hls": with_token(b"/api/manifest/hls_variant/expire/1/file/index.m3u8"),
            "seed-dash": with_token(b"/api/manifest/dash/expire/1/"),
        },
        "cache_file": {
            "seed-v2": json.dumps(cache).encode(),
            "seed-v1": json.dumps({"version": 1, "entries": cache["entries"]}).encode(),
            "seed-garbage": b"{\"version\":2,\"entries\":[{",
        },
        "store_value": {
            "seed-token": f"{far * 1000}|AQIDBAUGBwgJCgsMDQ4PEA==".encode(),
            "seed-expired": b"1000|AQID",
            "seed-set-aside": json.dumps({"source": "botguard", "egress": None, "reason": "refused",
                                          "until_ms": far * 1000}).encode(),
        },
    }


for target, files in seeds().items():
    d = os.path.join(ROOT, target)
    os.makedirs(d, exist_ok=True)
    for name, data in files.items():
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)
