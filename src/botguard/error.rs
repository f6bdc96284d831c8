//! Why the built-in minter failed, as kinds a caller acts on: an upstream's error status (a
//! number, with the step that got it), a request that did not complete, an answer that is not
//! what the step expects, the VM, or no minter in time. `tokens` maps them onto its
//! `TokenError` kinds: an error status (or GenerateIT without an integrity token) is a refusal,
//! a missed deadline a timeout, the rest a failure.

use std::time::Duration;

use super::vm::VmError;
use crate::upstream::FetchError;

/// A network step of the flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The YouTube home page (ytcfg, inline challenge).
    Page,
    /// InnerTube `/att/get` as the web client.
    AttGet,
    /// InnerTube `/att/get` as the TV client.
    AttGetTv,
    /// InnerTube `/att/log` (returning an answer's `eats`).
    AttLog,
    /// WAA `Create`.
    Create,
    /// The interpreter script (inline, or downloaded).
    Interpreter,
    /// WAA `GenerateIT`.
    GenerateIt,
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Step::Page => "home page",
            Step::AttGet => "att/get",
            Step::AttGetTv => "att/get (TV)",
            Step::AttLog => "att/log",
            Step::Create => "Create",
            Step::Interpreter => "interpreter",
            Step::GenerateIt => "GenerateIT",
        })
    }
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum BotGuardError {
    /// The upstream answered the step with an error status.
    #[error("{step}: HTTP {status}")]
    Status { step: Step, status: u16 },
    /// The step's request did not complete (connect, proxy, TLS, deadline, body too large).
    #[error("{step}: {cause}")]
    Transport {
        step: Step,
        #[source]
        cause: FetchError,
    },
    /// The step's answer is not what it should be (not JSON, no challenge in it, an
    /// interpreter that does not match its hash).
    #[error("{step}: {what}")]
    Parse { step: Step, what: String },
    /// No challenge source gave a challenge: why each one did not, in the order tried.
    #[error("could not get a BotGuard challenge: {}", joined(.0))]
    NoChallenge(Vec<BotGuardError>),
    #[error("BotGuard VM: {0}")]
    Vm(#[from] VmError),
    #[error("the VM produced no minter (webPoSignalOutput[0] missing); snapshot began {0:?}")]
    NoMinterFactory(String),
    #[error("GenerateIT returned no integrity token (fallback token: {0})")]
    EmptyIntegrityToken(String),
    #[error("minted token is malformed: {0}")]
    BadToken(String),
    #[error("no minter ready within {0:?}")]
    NotReady(Duration),
}

fn joined(errors: &[BotGuardError]) -> String {
    if errors.is_empty() {
        return "no challenge source configured".into();
    }
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

impl BotGuardError {
    /// The upstream said no: an error status, GenerateIT without an integrity token, or (for
    /// a challenge) every source tried said no.
    pub fn is_refusal(&self) -> bool {
        match self {
            BotGuardError::Status { status, .. } => *status >= 400,
            BotGuardError::EmptyIntegrityToken(_) => true,
            BotGuardError::NoChallenge(all) => {
                !all.is_empty() && all.iter().all(BotGuardError::is_refusal)
            }
            _ => false,
        }
    }

    /// Ran out of time: no minter within the wait, or a step's request missed its deadline
    /// (asking again later may work).
    pub fn is_timeout(&self) -> bool {
        match self {
            BotGuardError::NotReady(_) => true,
            BotGuardError::Transport { cause, .. } => matches!(cause, FetchError::Timeout { .. }),
            _ => false,
        }
    }

    /// The error status the upstream answered with, when that is what went wrong.
    pub fn upstream_status(&self) -> Option<u16> {
        match self {
            BotGuardError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_statuses_and_empty_integrity_tokens_are_refusals_and_the_rest_are_not() {
        let status = |step, status| BotGuardError::Status { step, status };
        let timeout = BotGuardError::Transport {
            step: Step::GenerateIt,
            cause: FetchError::Timeout {
                method: http::Method::POST,
                url: "https://www.youtube.com/api/jnn/v1/GenerateIT".into(),
                after: Duration::from_secs(30),
            },
        };
        let parse = BotGuardError::Parse {
            step: Step::GenerateIt,
            what: "not JSON".into(),
        };
        let cases: Vec<(BotGuardError, bool, bool)> = vec![
            // (error, refusal, timeout)
            (status(Step::GenerateIt, 503), true, false),
            (status(Step::GenerateIt, 429), true, false),
            (status(Step::Create, 403), true, false),
            (BotGuardError::EmptyIntegrityToken("x".into()), true, false),
            (
                BotGuardError::NoChallenge(vec![
                    status(Step::Page, 429),
                    status(Step::AttGet, 503),
                ]),
                true,
                false,
            ),
            (
                BotGuardError::NoChallenge(vec![status(Step::Page, 429), parse.clone()]),
                false,
                false,
            ),
            (BotGuardError::NoChallenge(vec![]), false, false),
            (timeout.clone(), false, true),
            (parse, false, false),
            (
                BotGuardError::NotReady(Duration::from_secs(20)),
                false,
                true,
            ),
            (BotGuardError::BadToken("x".into()), false, false),
        ];
        for (e, refusal, timed_out) in cases {
            assert_eq!(e.is_refusal(), refusal, "{e}");
            assert_eq!(e.is_timeout(), timed_out, "{e}");
        }
        assert_eq!(status(Step::GenerateIt, 503).upstream_status(), Some(503));
        assert_eq!(timeout.upstream_status(), None);
    }

    #[test]
    fn messages_name_the_step_and_the_status() {
        let e = BotGuardError::NoChallenge(vec![
            BotGuardError::Status {
                step: Step::Page,
                status: 503,
            },
            BotGuardError::Parse {
                step: Step::AttGet,
                what: "no challenge".into(),
            },
        ]);
        assert_eq!(
            e.to_string(),
            "could not get a BotGuard challenge: home page: HTTP 503; att/get: no challenge"
        );
    }
}
