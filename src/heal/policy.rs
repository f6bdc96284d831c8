//! The one refusal policy: given what came back for a request that carried the proxy's token
//! ([`Outcome`]) and what that client request already went through ([`History`], which holds
//! its one budget of re-sends), what to do next ([`Decision`]). The player's bot check, a media
//! 403, an in-band UMP refusal and a media body cut short all ask it; `handler::player` and
//! `handler::media` only act on the answer (report the token, issue, send).
//!
//! The rule for blame: only evidence blames a token. A 403, STREAM_PROTECTION_STATUS 2/3 and
//! the bot check are refusals; a transport fault (a reset, an EOF before the body's length) is
//! not: the body is resumed with the same token, and only a second cut at the same offset
//! (the token got nothing more: a continuation cut before its first byte, or with no answer
//! at all) makes it a refusal. Which token comes after a refusal (a fresh
//! minter, or the next source once one keeps being refused) is `tokens::refusals`' decision.
//! Pure: no clock, no I/O.

use http::StatusCode;

/// Re-sends one client request may cost, whatever caused them (the other regime, fresh
/// tokens, continuations of a broken body). Enough for a continuation with the same token, its
/// second cut, a fresh minter's token cut the same way, and the next source's token.
pub const MAX_RESENDS: u32 = 5;

/// What came back for a request (or a continuation) that carried the proxy's token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// HTTP 403 to a media request or a continuation.
    Forbidden,
    /// The player answered `LOGIN_REQUIRED` "confirm you're not a bot".
    BotCheck,
    /// UMP STREAM_PROTECTION_STATUS (1: fine; 2: a token is needed soon; 3: no more media).
    Protection(u64),
    /// The body broke or ended before its length, `delivered` bytes into it.
    Cut { delivered: u64 },
    /// A continuation got no answer (the connection closed before the response, a timeout):
    /// to the policy, a cut where the body stands.
    NotSent,
    /// A continuation came back but is not the rest of the same object.
    Mismatch(Mismatch),
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outcome::Forbidden => f.write_str("googlevideo answered 403"),
            Outcome::BotCheck => f.write_str("player asked to confirm this is not a bot"),
            Outcome::Protection(s) => write!(f, "UMP stream protection status {s}"),
            Outcome::Cut { delivered } => write!(f, "media body cut after {delivered} bytes"),
            Outcome::NotSent => f.write_str("continuation got no answer"),
            Outcome::Mismatch(m) => write!(f, "continuation rejected: {m}"),
        }
    }
}

/// Why a continuation is not the rest of the object the client is receiving.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Mismatch {
    #[error("it answered {got}")]
    Status { got: StatusCode },
    #[error("it covers {got:?}, wanted {}-{}", wanted.0, wanted.1)]
    Range {
        got: Option<(u64, u64)>,
        wanted: (u64, u64),
    },
    #[error("it belongs to a file of {got:?} bytes, wanted {wanted}")]
    Total { got: Option<u64>, wanted: u64 },
    #[error("it has {got:?} bytes, wanted exactly {wanted}")]
    Length { got: Option<u64>, wanted: u64 },
    #[error("its {which} differs from the first response's")]
    Validator { which: &'static str },
}

/// Who a refusal blames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Blame {
    /// The token: report it refused; the next one comes from a fresh minter or the next source.
    Token,
    /// The binding: the other regime's (the token was never accepted under this one).
    Binding,
}

/// Why a client request stops healing; the client gets what came (a 403 as it is, the player's
/// bot check), or its body ends in an error, never complete-looking.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Stop {
    #[error("every re-send this request may cost ({MAX_RESENDS}) is spent")]
    BudgetSpent,
    #[error("not the same object: {0}")]
    NotTheSameObject(Mismatch),
    #[error("refused under both regimes")]
    BothRegimesRefused,
    #[error("the request cannot be sent again")]
    CannotResend,
    #[error("the token service has no other token")]
    NoOtherToken,
    #[error("no token: {0}")]
    NoToken(String),
    #[error("the request cannot be rebuilt with another token")]
    Unbuildable,
    #[error("the request could not be sent again: {0}")]
    NotSent(String),
}

/// What to do about an [`Outcome`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Not a refusal: the client gets what came.
    Deliver,
    /// Re-send with the other regime's binding.
    OtherRegime,
    /// Report the token refused and re-send with a fresh one (from byte `from` of the body
    /// when one was under way). `same_ok`: when the service has no other token, the refused
    /// one may go once more (it was accepted for this very object moments ago, so the refusal
    /// may have been passing); otherwise the request gives up.
    FreshToken { from: Option<u64>, same_ok: bool },
    /// Continue the body from byte `from` with the same token.
    Resume { from: u64 },
    /// Nothing can be re-sent (the bytes are on their way to the client): act on the blame
    /// for the next request only.
    ForNext(Blame),
    /// Stop healing.
    GiveUp(Stop),
}

/// What one client request went through so far: its budget and the evidence gathered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct History {
    /// Re-sends left.
    left: u32,
    /// Whether the request can be sent again (a GET/HEAD with the token in its URL; a player
    /// request whose body was kept).
    resendable: bool,
    /// googlevideo accepted this regime for the session (so a refusal is the token's).
    regime_confirmed: bool,
    other_regime_tried: bool,
    /// The current token got a success for this request.
    token_accepted: bool,
    /// Where the current token's body was last cut.
    cut_at: Option<u64>,
    /// Bytes of the body the client has.
    delivered: u64,
    /// An in-band refusal of this stream was acted on (a UMP stream can report 2, then 3).
    judged: bool,
}

impl History {
    pub fn new(resendable: bool, regime_confirmed: bool) -> Self {
        History {
            left: MAX_RESENDS,
            resendable,
            regime_confirmed,
            other_regime_tried: false,
            token_accepted: false,
            cut_at: None,
            delivered: 0,
            judged: false,
        }
    }

    /// Re-sends left in the budget.
    pub fn left(&self) -> u32 {
        self.left
    }

    /// A success came back: the regime and the current token were accepted.
    pub fn accepted(&mut self) {
        self.regime_confirmed = true;
        self.token_accepted = true;
    }

    /// The response's bytes are going to the client as they come (a UMP stream): from here on
    /// refusals are acted on for the next request.
    pub fn streaming(&mut self) {
        self.resendable = false;
    }

    /// The decision for `outcome`, spending the budget on re-sends.
    pub fn decide(&mut self, outcome: &Outcome) -> Decision {
        let blame = match outcome {
            Outcome::Protection(0..=1) => return Decision::Deliver,
            Outcome::Protection(_) if self.judged => return Decision::Deliver,
            Outcome::Mismatch(m) => return Decision::GiveUp(Stop::NotTheSameObject(m.clone())),
            Outcome::Cut { .. } | Outcome::NotSent => {
                let at = match outcome {
                    Outcome::Cut { delivered } => *delivered,
                    _ => self.delivered,
                };
                self.delivered = at;
                if self.cut_at == Some(at) {
                    // The same token got nothing more where it was cut before: refused.
                    let same_ok = self.token_accepted;
                    return self.resend(Decision::FreshToken {
                        from: Some(at),
                        same_ok,
                    });
                }
                self.cut_at = Some(at);
                return self.resend(Decision::Resume { from: at });
            }
            // 2 says a token was there but is not good enough; the bot check is about the
            // token whatever the binding.
            Outcome::Protection(2) | Outcome::BotCheck => Blame::Token,
            _ if self.regime_confirmed => Blame::Token,
            _ if self.other_regime_tried => return Decision::GiveUp(Stop::BothRegimesRefused),
            Outcome::Forbidden | Outcome::Protection(_) => Blame::Binding,
        };
        if matches!(outcome, Outcome::Protection(_)) {
            self.judged = true;
        }
        if !self.resendable {
            return Decision::ForNext(blame);
        }
        match blame {
            Blame::Token => {
                let from = (self.delivered > 0 || self.cut_at.is_some()).then_some(self.delivered);
                let same_ok = self.token_accepted;
                self.resend(Decision::FreshToken { from, same_ok })
            }
            Blame::Binding => self.resend(Decision::OtherRegime),
        }
    }

    /// `d` if the budget allows a re-send (spending it), else a give-up.
    fn resend(&mut self, d: Decision) -> Decision {
        if !self.resendable {
            return Decision::GiveUp(Stop::CannotResend);
        }
        if self.left == 0 {
            return Decision::GiveUp(Stop::BudgetSpent);
        }
        self.left -= 1;
        match d {
            Decision::OtherRegime => {
                self.other_regime_tried = true;
                self.new_token();
            }
            Decision::FreshToken { .. } => self.new_token(),
            _ => {}
        }
        d
    }

    /// The next response carries another token: what was learned of the old one is moot.
    fn new_token(&mut self) {
        self.token_accepted = false;
        self.cut_at = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A history in a named state.
    #[derive(Debug, Clone, Copy)]
    enum State {
        /// A fresh GET, the regime not yet confirmed for the session.
        FreshUnconfirmed,
        /// A fresh GET, the regime confirmed before.
        FreshConfirmed,
        /// A GET whose other regime was tried and refused too.
        OtherRegimeTried,
        /// A POST (its body gone) or a UMP stream: nothing can be re-sent.
        NotResendable,
        /// A body accepted (200) and under way, 1000 bytes delivered.
        Streaming1000,
        /// As `Streaming1000`, and the same token's body was cut at 1000 before.
        CutAt1000,
        /// As `CutAt1000` but the token was never accepted (a fresh token cut at once).
        CutAt1000NeverAccepted,
        /// A UMP stream that already reported a refusal.
        UmpJudged,
        /// Every re-send spent.
        Spent,
    }

    fn history(s: State) -> History {
        let mut h = History::new(true, false);
        match s {
            State::FreshUnconfirmed => {}
            State::FreshConfirmed => h.regime_confirmed = true,
            State::OtherRegimeTried => {
                h.decide(&Outcome::Forbidden);
            }
            State::NotResendable => h.streaming(),
            State::Streaming1000 => {
                h.accepted();
                h.delivered = 1000;
            }
            State::CutAt1000 => {
                h.accepted();
                h.decide(&Outcome::Cut { delivered: 1000 });
            }
            State::CutAt1000NeverAccepted => {
                h.regime_confirmed = true;
                h.delivered = 1000;
                h.cut_at = Some(1000);
            }
            State::UmpJudged => {
                h.streaming();
                h.decide(&Outcome::Protection(2));
            }
            State::Spent => {
                h.accepted();
                h.left = 0;
            }
        }
        h
    }

    use Decision as D;

    #[test]
    fn the_refusal_table() {
        let fresh = |from, same_ok| D::FreshToken { from, same_ok };
        let rows: Vec<(Outcome, State, Decision)> = vec![
            // A 403: the binding is suspect until googlevideo accepted the regime once.
            (Outcome::Forbidden, State::FreshUnconfirmed, D::OtherRegime),
            (
                Outcome::Forbidden,
                State::FreshConfirmed,
                fresh(None, false),
            ),
            (
                Outcome::Forbidden,
                State::OtherRegimeTried,
                D::GiveUp(Stop::BothRegimesRefused),
            ),
            (
                Outcome::Forbidden,
                State::NotResendable,
                D::ForNext(Blame::Binding),
            ),
            // A 403 to a continuation of an accepted body: a fresh token, and the same one may
            // go again if there is no other (it was accepted moments ago).
            (
                Outcome::Forbidden,
                State::Streaming1000,
                fresh(Some(1000), true),
            ),
            (
                Outcome::Forbidden,
                State::CutAt1000,
                fresh(Some(1000), true),
            ),
            (
                Outcome::Forbidden,
                State::Spent,
                D::GiveUp(Stop::BudgetSpent),
            ),
            // The bot check and status 2 are about the token whatever the binding.
            (
                Outcome::BotCheck,
                State::FreshUnconfirmed,
                fresh(None, false),
            ),
            (
                Outcome::BotCheck,
                State::Spent,
                D::GiveUp(Stop::BudgetSpent),
            ),
            (
                Outcome::Protection(2),
                State::NotResendable,
                D::ForNext(Blame::Token),
            ),
            (
                Outcome::Protection(3),
                State::NotResendable,
                D::ForNext(Blame::Binding),
            ),
            (Outcome::Protection(1), State::NotResendable, D::Deliver),
            // One in-band refusal per stream: a 3 after the 2 adds nothing.
            (Outcome::Protection(3), State::UmpJudged, D::Deliver),
            // A transport fault is no evidence: resume with the same token ...
            (
                Outcome::Cut { delivered: 1000 },
                State::Streaming1000,
                D::Resume { from: 1000 },
            ),
            (
                Outcome::Cut { delivered: 5000 },
                State::CutAt1000,
                D::Resume { from: 5000 },
            ),
            // ... unless that token was cut at the same point before and got nothing more.
            (
                Outcome::Cut { delivered: 1000 },
                State::CutAt1000,
                fresh(Some(1000), true),
            ),
            (
                Outcome::Cut { delivered: 1000 },
                State::CutAt1000NeverAccepted,
                fresh(Some(1000), false),
            ),
            // A continuation with no answer at all is cut at the same point too.
            (
                Outcome::NotSent,
                State::Streaming1000,
                D::Resume { from: 1000 },
            ),
            (Outcome::NotSent, State::CutAt1000, fresh(Some(1000), true)),
            (
                Outcome::Cut { delivered: 1000 },
                State::Spent,
                D::GiveUp(Stop::BudgetSpent),
            ),
            (
                Outcome::Cut { delivered: 1000 },
                State::NotResendable,
                D::GiveUp(Stop::CannotResend),
            ),
            // Another object is never spliced in.
            (
                Outcome::Mismatch(Mismatch::Validator { which: "ETag" }),
                State::CutAt1000,
                D::GiveUp(Stop::NotTheSameObject(Mismatch::Validator {
                    which: "ETag",
                })),
            ),
        ];
        for (outcome, state, want) in rows {
            let got = history(state).decide(&outcome);
            assert_eq!(got, want, "{outcome:?} in {state:?}");
        }
    }

    #[test]
    fn one_budget_covers_every_kind_of_re_send() {
        let mut h = History::new(true, false);
        assert_eq!(h.decide(&Outcome::Forbidden), D::OtherRegime);
        h.accepted();
        let mut resends = 1;
        let mut delivered = 0;
        loop {
            delivered += 100;
            match h.decide(&Outcome::Cut { delivered }) {
                D::Resume { .. } => resends += 1,
                D::GiveUp(Stop::BudgetSpent) => break,
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(resends, MAX_RESENDS);
        assert_eq!(h.decide(&Outcome::BotCheck), D::GiveUp(Stop::BudgetSpent));
    }

    #[test]
    fn a_token_reused_after_a_refusal_is_not_reused_again() {
        let mut h = history(State::Streaming1000);
        assert_eq!(
            h.decide(&Outcome::Forbidden),
            D::FreshToken {
                from: Some(1000),
                same_ok: true
            }
        );
        // The service handed the same token back and it was refused again.
        assert_eq!(
            h.decide(&Outcome::Forbidden),
            D::FreshToken {
                from: Some(1000),
                same_ok: false
            }
        );
    }
}
