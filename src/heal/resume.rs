//! The body that resumes: the client's response streams from upstream as it comes (frame by
//! frame, with the backpressure of the client reading it); when the upstream body breaks or
//! ends short, the remainder is fetched ([`Refetch`], which asks the refusal policy how) and
//! streamed on into the same response. Bytes are counted, never held: the client gets exactly
//! `expected` bytes or, when recovery stops, an aborted response (a body error: hyper cuts the
//! connection or resets the HTTP/2 stream), never padding and never a complete-looking body.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::future::BoxFuture;
use http_body::{Frame, SizeHint};
use hudsucker::Body;

use super::Stop;

/// Fetches the remainder of a response that was cut `delivered` bytes into it: the body of a
/// continuation already proved to hold exactly the rest of the same object, or why healing
/// stops (the policy's budget, another object, no token).
pub trait Refetch: Send + Sync + 'static {
    fn refetch(&self, delivered: u64) -> BoxFuture<'static, Result<Body, Stop>>;
}

/// A media body that resumes; see the module docs.
pub struct Resuming {
    body: Option<Body>,
    /// The continuation being fetched (in a mutex only so the body is `Sync`, as hudsucker's
    /// boxed bodies must be; it is never contended).
    pending: Option<std::sync::Mutex<BoxFuture<'static, Result<Body, Stop>>>>,
    refetch: Arc<dyn Refetch>,
    delivered: u64,
    expected: u64,
    /// What the log calls this response.
    what: String,
    finished: bool,
}

impl Resuming {
    pub fn new(body: Body, expected: u64, refetch: Arc<dyn Refetch>, what: String) -> Self {
        Resuming {
            body: Some(body),
            pending: None,
            refetch,
            delivered: 0,
            expected,
            what,
            finished: false,
        }
    }

    /// Starts fetching the remainder after the body was cut (`how`, for the log).
    fn recover(&mut self, how: &str) {
        self.body = None;
        tracing::info!(
            what = %self.what,
            delivered = self.delivered,
            expected = self.expected,
            reason = %how,
            "media body cut; resuming"
        );
        self.pending = Some(std::sync::Mutex::new(self.refetch.refetch(self.delivered)));
    }

    /// Healing stopped: the error that aborts the client's response.
    fn give_up(&mut self, stop: Stop) -> hudsucker::Error {
        self.finished = true;
        tracing::warn!(
            what = %self.what,
            delivered = self.delivered,
            expected = self.expected,
            reason = %stop,
            "media response cannot be resumed; the client's response is aborted"
        );
        hudsucker::Error::Io(std::io::Error::other(format!(
            "upstream media broke after {} of {} bytes and could not be resumed: {stop}",
            self.delivered, self.expected
        )))
    }
}

impl http_body::Body for Resuming {
    type Data = Bytes;
    type Error = hudsucker::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        loop {
            // Everything promised has gone out: the response ends here, whatever follows.
            if this.finished || (this.pending.is_none() && this.delivered >= this.expected) {
                this.finished = true;
                return Poll::Ready(None);
            }
            if let Some(fut) = this.pending.as_mut() {
                let fut = fut.get_mut().expect("never poisoned: polled by one task");
                match fut.as_mut().poll(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(Ok(body)) => {
                        this.pending = None;
                        this.body = Some(body);
                    }
                    Poll::Ready(Err(stop)) => {
                        this.pending = None;
                        return Poll::Ready(Some(Err(this.give_up(stop))));
                    }
                }
            }
            let Some(body) = this.body.as_mut() else {
                this.finished = true;
                return Poll::Ready(None);
            };
            match Pin::new(body).poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(frame))) => {
                    let frame = match frame.into_data() {
                        // An empty frame (HTTP/2's closing DATA frame) carries nothing.
                        Ok(data) if data.is_empty() => continue,
                        Ok(mut data) => {
                            // Never more than the client was promised.
                            let room = this.expected - this.delivered;
                            if data.len() as u64 > room {
                                data.truncate(room as usize);
                            }
                            if data.is_empty() {
                                continue;
                            }
                            this.delivered += data.len() as u64;
                            Frame::data(data)
                        }
                        Err(other) => other,
                    };
                    return Poll::Ready(Some(Ok(frame)));
                }
                Poll::Ready(Some(Err(e))) => {
                    if this.delivered >= this.expected {
                        this.finished = true;
                        return Poll::Ready(None);
                    }
                    this.recover(&crate::errtext::error_chain(&e));
                }
                Poll::Ready(None) => {
                    if this.delivered >= this.expected {
                        this.finished = true;
                        return Poll::Ready(None);
                    }
                    this.recover("ended before its length");
                }
            }
        }
    }

    /// True once every promised byte went out, so HTTP/2 ends the stream with the last DATA
    /// frame instead of an empty one.
    fn is_end_stream(&self) -> bool {
        self.finished || (self.pending.is_none() && self.delivered >= self.expected)
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.expected - self.delivered)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;
    use std::sync::Mutex;

    fn bytes(start: u64, len: u64) -> Vec<u8> {
        (start..start + len).map(|i| (i % 251) as u8).collect()
    }

    /// A body that yields `data` in chunks, then ends or fails.
    fn body(data: Vec<u8>, fail: bool) -> Body {
        let mut frames: Vec<Result<Frame<Bytes>, hudsucker::Error>> = data
            .chunks(100)
            .map(|c| Ok(Frame::data(Bytes::copy_from_slice(c))))
            .collect();
        if fail {
            frames.push(Err(hudsucker::Error::Io(std::io::Error::other("reset"))));
        }
        let stream = futures::stream::iter(frames);
        Body::from(http_body_util::combinators::BoxBody::new(
            http_body_util::StreamBody::new(stream),
        ))
    }

    /// Serves continuations from a script: each call pops the next answer (up to which byte
    /// the continuation gets, and whether it then fails; or why healing stops).
    struct Script {
        answers: Mutex<Vec<Result<(u64, bool), Stop>>>,
        calls: Mutex<Vec<u64>>,
    }

    impl Refetch for Script {
        fn refetch(&self, delivered: u64) -> BoxFuture<'static, Result<Body, Stop>> {
            self.calls.lock().unwrap().push(delivered);
            let next = self.answers.lock().unwrap().remove(0);
            Box::pin(async move {
                let (upto, fail) = next?;
                Ok(body(bytes(delivered, upto - delivered), fail))
            })
        }
    }

    fn script(answers: Vec<Result<(u64, bool), Stop>>) -> Arc<Script> {
        Arc::new(Script {
            answers: Mutex::new(answers),
            calls: Mutex::new(Vec::new()),
        })
    }

    #[tokio::test]
    async fn a_body_reset_twice_arrives_whole_and_in_order() {
        let s = script(vec![Ok((2500, true)), Ok((5000, false))]);
        let r = Resuming::new(body(bytes(0, 1000), true), 5000, s.clone(), "t".into());
        let got = r.collect().await.unwrap().to_bytes();
        assert_eq!(got.to_vec(), bytes(0, 5000));
        assert_eq!(*s.calls.lock().unwrap(), [1000, 2500]);
    }

    #[tokio::test]
    async fn a_short_body_is_continued_from_where_it_ended() {
        let s = script(vec![Ok((5000, false))]);
        let r = Resuming::new(body(bytes(0, 700), false), 5000, s.clone(), "t".into());
        let got = r.collect().await.unwrap().to_bytes();
        assert_eq!(got.to_vec(), bytes(0, 5000));
        assert_eq!(*s.calls.lock().unwrap(), [700]);
    }

    #[tokio::test]
    async fn when_healing_stops_the_body_ends_in_an_error_never_padded() {
        let s = script(vec![Err(Stop::NotTheSameObject(
            super::super::Mismatch::Validator { which: "ETag" },
        ))]);
        let mut r = Resuming::new(body(bytes(0, 700), false), 5000, s.clone(), "t".into());
        let mut got = Vec::new();
        let mut failed = false;
        while let Some(f) = r.frame().await {
            match f {
                Ok(f) => got.extend_from_slice(f.data_ref().unwrap()),
                Err(_) => {
                    failed = true;
                    break;
                }
            }
        }
        assert!(failed);
        assert_eq!(got, bytes(0, 700));
        assert_eq!(s.calls.lock().unwrap().len(), 1);
    }
}
