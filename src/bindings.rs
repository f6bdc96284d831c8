//! Which binding a token needs (reference: wire-formats.md §8). Two regimes coexist: in the
//! video-bound one every web token is bound to the video id; in the session-bound one GVS
//! (media) tokens are bound to the session: the DataSync ID when logged in, the visitor data
//! when logged out. WEB_REMIX binds every token to the session. The regime is known per
//! (session, client) from the `html5_generate_content_po_token` experiment flag when a page
//! showed it, or from which token googlevideo accepted; otherwise the configured default
//! (what is known lives in [`crate::learn::regimes`]). These are the pure rules.

use crate::token::Binding;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Regime {
    /// GVS tokens bound to the video id (the current web regime).
    Video,
    /// GVS tokens bound to the visitor data or DataSync ID.
    Session,
}

impl Regime {
    pub fn other(self) -> Regime {
        match self {
            Regime::Video => Regime::Session,
            Regime::Session => Regime::Video,
        }
    }
}

/// Where a token goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenContext {
    /// `serviceIntegrityDimensions.poToken` of a player request.
    Player,
    /// googlevideo media, manifests, SABR.
    Gvs,
    /// `/api/timedtext`.
    Subs,
}

/// Who the request is, as far as session-bound tokens go.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identity {
    pub visitor_data: Option<String>,
    pub datasync_id: Option<String>,
    pub logged_in: bool,
}

impl Identity {
    /// The session binding: the whole DataSync ID when logged in (as yt-dlp and bgutil mint
    /// it), the visitor data otherwise.
    pub fn session_binding(&self) -> Option<&str> {
        if self.logged_in {
            self.datasync_id.as_deref()
        } else {
            self.visitor_data.as_deref()
        }
    }
}

/// The binding for a token in `ctx` for `client`.
pub fn binding_for(
    ctx: TokenContext,
    client: &str,
    video_id: Option<&str>,
    who: &Identity,
    regime: Regime,
) -> Binding {
    let session = || {
        who.session_binding()
            .map(|s| Binding::Session(s.to_string()))
            .unwrap_or(Binding::Unknown)
    };
    let video = || {
        video_id
            .map(|v| Binding::Video(v.to_string()))
            .unwrap_or(Binding::Unknown)
    };
    if client == "WEB_REMIX" {
        return session();
    }
    match (ctx, regime) {
        (TokenContext::Player | TokenContext::Subs, _) => video(),
        (TokenContext::Gvs, Regime::Video) => video(),
        (TokenContext::Gvs, Regime::Session) => session(),
    }
}

/// Reads `html5_generate_content_po_token` from a `serializedExperimentFlags` query string:
/// `Some(Video)` when true, `Some(Session)` when present and false, `None` when absent.
pub fn regime_from_flags(serialized: &str) -> Option<Regime> {
    serialized.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == "html5_generate_content_po_token").then(|| {
            if v == "true" {
                Regime::Video
            } else {
                Regime::Session
            }
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn who(logged_in: bool) -> Identity {
        Identity {
            visitor_data: Some("CgtVISITOR".into()),
            datasync_id: Some("12345||67890".into()),
            logged_in,
        }
    }

    #[test]
    fn player_and_subs_tokens_are_video_bound_except_web_remix() {
        for ctx in [TokenContext::Player, TokenContext::Subs] {
            for regime in [Regime::Video, Regime::Session] {
                assert_eq!(
                    binding_for(ctx, "MWEB", Some("vvvvvvvvvvv"), &who(false), regime),
                    Binding::Video("vvvvvvvvvvv".into())
                );
            }
            assert_eq!(
                binding_for(
                    ctx,
                    "WEB_REMIX",
                    Some("vvvvvvvvvvv"),
                    &who(false),
                    Regime::Video
                ),
                Binding::Session("CgtVISITOR".into())
            );
        }
    }

    #[test]
    fn gvs_binding_follows_the_regime_and_login_state() {
        let v = Some("vvvvvvvvvvv");
        assert_eq!(
            binding_for(TokenContext::Gvs, "WEB", v, &who(false), Regime::Video),
            Binding::Video("vvvvvvvvvvv".into())
        );
        assert_eq!(
            binding_for(TokenContext::Gvs, "WEB", v, &who(false), Regime::Session),
            Binding::Session("CgtVISITOR".into())
        );
        assert_eq!(
            binding_for(TokenContext::Gvs, "WEB", v, &who(true), Regime::Session),
            Binding::Session("12345||67890".into()),
            "logged in: the whole DataSync ID"
        );
        assert_eq!(
            binding_for(TokenContext::Gvs, "WEB_REMIX", v, &who(true), Regime::Video),
            Binding::Session("12345||67890".into())
        );
        assert_eq!(
            binding_for(
                TokenContext::Gvs,
                "WEB",
                None,
                &Identity::default(),
                Regime::Session
            ),
            Binding::Unknown
        );
    }

    #[test]
    fn the_experiment_flag_decides_the_regime() {
        assert_eq!(
            regime_from_flags("a=1&html5_generate_content_po_token=true&b=2"),
            Some(Regime::Video)
        );
        assert_eq!(
            regime_from_flags("html5_generate_content_po_token=false"),
            Some(Regime::Session)
        );
        assert_eq!(regime_from_flags("a=1&b=2"), None);
    }
}
