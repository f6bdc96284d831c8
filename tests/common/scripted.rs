//! A scripted TLS origin for hostile answers: player responses cut mid-body or megabytes
//! large, and a page of the test's choosing, for every fake name (tests/observe.rs and the
//! hostile-responses benchmark).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ServerBuilder;
use tokio::net::TcpListener;

use super::TestPki;

type BoxErr = Box<dyn std::error::Error + Send + Sync>;
type OriginBody = http_body_util::combinators::BoxBody<Bytes, BoxErr>;

/// The video id of [`big_player_response`].
pub const SCRIPTED_VIDEO: &str = "dQw4w9WgXcQ";

/// What the scripted origin answers to a player request and to a page.
#[derive(Clone)]
pub enum Script {
    /// Declares `declared` bytes, sends `sent`, then breaks the connection.
    CutPlayer { declared: usize, sent: usize },
    /// A player response of about this many bytes.
    BigPlayer(usize),
}

/// A TLS origin for every fake name, answering by `script` (players) and with `page` (GET).
pub async fn scripted_origin(pki: &TestPki, script: Script, page: Arc<String>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(pki.server_config.clone());
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let script = script.clone();
            let page = page.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                    let script = script.clone();
                    let page = page.clone();
                    async move { Ok::<_, Infallible>(answer(req, &script, &page).await) }
                });
                let _ = ServerBuilder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tls), svc)
                    .await;
            });
        }
    });
    addr
}

fn full(b: impl Into<Bytes>) -> OriginBody {
    Full::new(b.into()).map_err(|e| match e {}).boxed()
}

async fn answer(req: Request<Incoming>, script: &Script, page: &str) -> Response<OriginBody> {
    let is_player = req.uri().path() == "/youtubei/v1/player";
    let _ = req.into_body().collect().await;
    if !is_player {
        return Response::builder()
            .header("content-type", "text/html; charset=utf-8")
            .body(full(page.to_string()))
            .unwrap();
    }
    match script {
        Script::CutPlayer { declared, sent } => {
            let head = Bytes::from(vec![b' '; *sent]);
            let frames: Vec<Result<Frame<Bytes>, BoxErr>> =
                vec![Ok(Frame::data(head)), Err("origin died mid-body".into())];
            Response::builder()
                .header("content-type", "application/json")
                .header("content-length", declared.to_string())
                .body(StreamBody::new(futures::stream::iter(frames)).boxed())
                .unwrap()
        }
        Script::BigPlayer(size) => Response::builder()
            .header("content-type", "application/json")
            .body(full(big_player_response(*size)))
            .unwrap(),
    }
}

/// A player response of about `size` bytes, most of it many small objects (the shape that
/// costs a generic JSON tree the most per byte).
pub fn big_player_response(size: usize) -> Vec<u8> {
    let url = |itag: u32| {
        format!(
            "https://rr1---sn-abc.googlevideo.com/videoplayback?expire=4102444800&ei=EIEIEIEI&id=o-IDIDID&itag={itag}&source=youtube"
        )
    };
    let formats: Vec<_> = (0..40)
        .map(|i| serde_json::json!({"itag": 100 + i, "url": url(100 + i), "mimeType": "video/mp4"}))
        .collect();
    let mut out = serde_json::to_vec(&serde_json::json!({
        "responseContext": {"visitorData": "CgtWSVNJVE9SREFUQQ%3D%3D"},
        "videoDetails": {"videoId": SCRIPTED_VIDEO, "title": "t"},
        "streamingData": {"expiresInSeconds": "21540", "adaptiveFormats": formats},
    }))
    .unwrap();
    out.pop(); // the closing brace: append the bulk, then close
    out.extend_from_slice(b",\"annotations\":[");
    let item = br#"{"a":1,"b":"xy","c":[1,2,3],"d":{"e":true}},"#;
    while out.len() + item.len() + 2 < size {
        out.extend_from_slice(item);
    }
    out.extend_from_slice(br#"{"a":0}]}"#);
    out
}
