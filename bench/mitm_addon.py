"""mitmdump addon doing potproxy's rewrites, for the side-by-side benchmark (benches/proxies.rs).

Sets serviceIntegrityDimensions.poToken in web-client player bodies and one `pot` on
googlevideo /videoplayback URLs of web clients, with the same static token potproxy uses.
BENCH_ORIGIN (host:port) points every upstream connection at the local origin, keeping SNI.
"""
import json
import os

TOKEN = os.environ["BENCH_TOKEN"]
ORIGIN = os.environ.get("BENCH_ORIGIN")
WEBPO = {
    "WEB", "MWEB", "WEB_REMIX", "WEB_CREATOR", "WEB_EMBEDDED_PLAYER",
    "TVHTML5", "TVHTML5_SIMPLY", "TVHTML5_SIMPLY_EMBEDDED_PLAYER",
}


def server_connect(data):
    if ORIGIN:
        host, port = ORIGIN.rsplit(":", 1)
        data.server.address = (host, int(port))


def request(flow):
    r = flow.request
    path = r.path.split("?", 1)[0]
    if r.method == "POST" and path.endswith("/youtubei/v1/player"):
        try:
            body = json.loads(r.get_text())
        except (ValueError, TypeError):
            return
        client = body.get("context", {}).get("client", {}).get("clientName")
        if client in WEBPO:
            sid = body.setdefault("serviceIntegrityDimensions", {})
            if not sid.get("poToken"):
                sid["poToken"] = TOKEN
                r.set_text(json.dumps(body))
    elif r.pretty_host.endswith(".googlevideo.com") and path == "/videoplayback":
        if r.query.get("c") in WEBPO and r.query.get("sabr") != "1":
            r.query["pot"] = TOKEN
