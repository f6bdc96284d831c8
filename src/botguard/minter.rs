//! The minting flow and the minter's life, as the web client runs it: obtain a challenge, fetch
//! and verify the interpreter, run the VM to a snapshot, return the answer's `eats` through
//! `/att/log` when it carried one, trade the snapshot for an integrity token at `GenerateIT`,
//! build the minter, and mint per binding (the network calls are [`super::waa`]'s, the choices
//! [`super::plan`]'s). [`BotGuard`] keeps one warm minter, renews it before its integrity token
//! or its challenge expires, whichever is first (in the background, requests keep using the old
//! one), and warms a new one on demand when there is none. With a prover attached
//! ([`crate::proof`]) each new minter's first token is proved: a renewal before it is
//! published (it starts a little before the old minter stops being fresh, so requests keep
//! using the old one meanwhile), a warm-up a client waits for right after (in the background);
//! a refused minter is dropped and built once more.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

pub use super::error::BotGuardError;
pub use super::settings::{BotGuardSettings, DEFAULT_USER_AGENT};

use super::challenge::Challenge;
use super::settings::ChallengeSource;
use super::vm::{LoadRequest, VmHandle};
use super::waa::{Obtained, Waa};
use crate::learn::page::Page;
use crate::proof::{Outcome, Prover, rebuild};
use crate::token::Token;
use crate::upstream::HttpClient;

/// How long each step of the last warm-up took.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct WarmupTimings {
    pub challenge_ms: u64,
    pub interpreter_ms: u64,
    pub vm_load_ms: u64,
    pub snapshot_ms: u64,
    pub generate_it_ms: u64,
    pub minter_ms: u64,
}

/// A VM holding a minter built from one integrity token.
pub struct Minter {
    vm: VmHandle,
    /// Which of its [`BotGuard`]'s minters this is (1, 2, ...): tokens carry it so a refused
    /// token can drop exactly the minter that made it.
    pub id: u64,
    pub source: ChallengeSource,
    pub created: Instant,
    /// When the integrity token stops being good (its TTL less a safety margin).
    pub usable_until: Instant,
    pub usable_until_wall: SystemTime,
    pub timings: WarmupTimings,
    /// The page fetched while looking for a challenge (its ytcfg: visitor data, rollout
    /// token), when known.
    pub page: Option<Page>,
}

/// How a warm-up goes.
#[derive(Debug, Clone, Copy, Default)]
struct Warm {
    /// Build even when a fresh minter exists (a renewal).
    renew: bool,
    /// Prove the new minter before it is published (nobody waits for it); otherwise it is
    /// published at once and proved right after, in the background.
    prove_first: bool,
    /// It replaces a minter its proof refused: proved, never rebuilt itself.
    replacing: bool,
}

/// How long before a minter stops being fresh its renewal starts: room for a build and two
/// proofs (a refused renewal's replacement), so requests never wait for them.
pub const RENEWAL_LEAD: Duration = Duration::from_secs(30);

/// When a minter made at `created`, fresh until `usable_until`, is renewed: [`RENEWAL_LEAD`]
/// before, or a tenth of its life before when that is shorter.
pub fn renewal_at(created: Instant, usable_until: Instant) -> Instant {
    let life = usable_until.saturating_duration_since(created);
    usable_until - RENEWAL_LEAD.min(life / 10)
}

impl Minter {
    pub fn is_fresh(&self) -> bool {
        Instant::now() < self.usable_until
    }

    /// Mints for `binding` (the text exactly as given: video id, visitor data, DataSync ID).
    pub async fn mint(&self, binding: &str) -> Result<Token, BotGuardError> {
        let text = self.vm.mint(binding).await?;
        let token = Token::parse(&text).map_err(|e| BotGuardError::BadToken(e.to_string()))?;
        let bytes = token.bytes();
        // A WebPO token is a protobuf whose first field is 6, length-delimited.
        if bytes.first() != Some(&0x32) || bytes.len() < 3 {
            return Err(BotGuardError::BadToken(format!(
                "first byte {:#04x}, {} bytes",
                bytes.first().copied().unwrap_or(0),
                bytes.len()
            )));
        }
        Ok(token)
    }

    pub async fn memory_used_bytes(&self) -> u64 {
        self.vm
            .stats()
            .await
            .map(|s| s.memory_used_bytes)
            .unwrap_or(0)
    }
}

/// Counters for logs.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct MintStats {
    pub warmups: u64,
    pub warmup_failures: u64,
    pub mints: u64,
    pub mint_micros_total: u64,
}

/// What a [`BotGuard`] is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MinterState {
    /// A fresh minter is there.
    Ready,
    /// A warm-up is running.
    Warming,
    /// The last warm-up failed and none is running.
    Failed,
    /// Never warmed yet (or invalidated).
    Cold,
}

impl MinterState {
    pub const ALL: [MinterState; 4] = [
        MinterState::Ready,
        MinterState::Warming,
        MinterState::Failed,
        MinterState::Cold,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            MinterState::Ready => "ready",
            MinterState::Warming => "warming",
            MinterState::Failed => "failed",
            MinterState::Cold => "cold",
        }
    }
}

/// Keeps a warm minter and renews it.
pub struct BotGuard {
    waa: Waa,
    settings: BotGuardSettings,
    current: Mutex<Option<Arc<Minter>>>,
    warming: tokio::sync::Mutex<()>,
    stats: Mutex<MintStats>,
    /// Bumped by `invalidate`, so a renewal started before it does not install a stale minter.
    generation: std::sync::atomic::AtomicU64,
    /// The id the next minter gets.
    next_id: std::sync::atomic::AtomicU64,
    /// Set when its pool evicted it: it installs and renews no minter any more.
    closed: std::sync::atomic::AtomicBool,
    /// Its egress's client (the proof's GET leaves through it, never another egress's).
    http: HttpClient,
    /// Proves its new minters, under its egress's key.
    proof: std::sync::OnceLock<(Arc<Prover>, String)>,
}

fn ms(d: Duration) -> u64 {
    d.as_millis() as u64
}

impl BotGuard {
    pub fn new(http: HttpClient, settings: BotGuardSettings) -> Arc<Self> {
        Arc::new(BotGuard {
            waa: Waa::new(http.clone(), &settings),
            http,
            proof: std::sync::OnceLock::new(),
            settings,
            current: Mutex::new(None),
            warming: tokio::sync::Mutex::new(()),
            stats: Mutex::new(MintStats::default()),
            generation: std::sync::atomic::AtomicU64::new(0),
            next_id: std::sync::atomic::AtomicU64::new(1),
            closed: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// Proves its new minters with `prover`, as egress `key`'s (set once).
    pub fn prove_with(&self, prover: Arc<Prover>, key: String) {
        let _ = self.proof.set((prover, key));
    }

    /// Proves `minter` (`None`: no prover attached).
    async fn prove(&self, minter: &Arc<Minter>) -> Option<Outcome> {
        let (prover, key) = self.proof.get()?;
        let m = minter.clone();
        Some(
            prover
                .prove(
                    key,
                    &self.http,
                    |binding| async move { m.mint(&binding).await },
                )
                .await,
        )
    }

    /// Proves `minter` in the background (a client already has it); refused, it is dropped
    /// and one replacement warmed (proved before it is published, never rebuilt itself).
    fn prove_in_background(self: &Arc<Self>, minter: &Arc<Minter>, replacing: bool) {
        if self.proof.get().is_none() {
            return;
        }
        let me = self.clone();
        let m = minter.clone();
        tokio::spawn(async move {
            let outcome = me.prove(&m).await;
            if outcome.is_some_and(|o| rebuild(&o, replacing)) && me.invalidate_minter(m.id) {
                tracing::warn!(
                    minter = m.id,
                    "dropped the new BotGuard minter its proof refused; warming a replacement"
                );
                drop(m);
                let replace = Warm {
                    renew: false,
                    prove_first: true,
                    replacing: true,
                };
                if let Err(e) = me.warm_from(None, replace).await {
                    tracing::warn!(error = %e, "replacing a refused BotGuard minter failed");
                }
            }
        });
    }

    pub fn settings(&self) -> &BotGuardSettings {
        &self.settings
    }

    pub fn stats(&self) -> MintStats {
        *self.stats.lock().expect("stats lock")
    }

    /// The current minter if it is still fresh.
    pub fn ready(&self) -> Option<Arc<Minter>> {
        self.current
            .lock()
            .expect("minter lock")
            .clone()
            .filter(|m| m.is_fresh())
    }

    /// What this minter is doing, for `/metrics` and `/readyz`.
    pub fn state(&self) -> MinterState {
        if self.ready().is_some() {
            MinterState::Ready
        } else if self.warming.try_lock().is_err() {
            MinterState::Warming
        } else if self.stats().warmup_failures > 0 {
            MinterState::Failed
        } else {
            MinterState::Cold
        }
    }

    /// Drops the current minter; the next mint warms a new one.
    pub fn invalidate(&self) {
        self.generation
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        *self.current.lock().expect("minter lock") = None;
    }

    /// Closes it for good (its pool evicted it): the current minter is dropped and no other is
    /// installed or renewed. Resolves once the current minter's VM thread has ended, unless
    /// someone still holds that minter (then its thread ends when they let go).
    pub fn close(&self) -> impl std::future::Future<Output = ()> + Send + use<> {
        self.closed.store(true, std::sync::atomic::Ordering::SeqCst);
        self.generation
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let current = self.current.lock().expect("minter lock").take();
        let exited = current
            .and_then(|m| Arc::try_unwrap(m).ok())
            .map(|m| m.vm.exited());
        async move {
            if let Some(exited) = exited {
                exited.await;
            }
        }
    }

    fn is_closed(&self) -> bool {
        self.closed.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Drops the current minter only if it is minter `id` (a token it made was refused);
    /// returns whether it was. A minter that already replaced it stays.
    pub fn invalidate_minter(&self, id: u64) -> bool {
        let mut current = self.current.lock().expect("minter lock");
        if current.as_ref().is_some_and(|m| m.id == id) {
            self.generation
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            *current = None;
            return true;
        }
        false
    }

    /// Drops `minter` if it is still the current one: a VM that ran out of time or memory may
    /// be left mid-script, and its heap (up to the memory limit) is returned only when its
    /// thread ends, which happens once the last handle is gone.
    fn retire(&self, minter: &Arc<Minter>) {
        let mut current = self.current.lock().expect("minter lock");
        if current.as_ref().is_some_and(|c| Arc::ptr_eq(c, minter)) {
            tracing::warn!(
                "BotGuard VM hit its limits; dropping it, the next mint warms a new one"
            );
            self.generation
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            *current = None;
        }
    }

    /// A fresh minter: the current one, or a new one (one warm-up at a time; callers that
    /// arrive meanwhile wait for it), within `warmup_wait`.
    pub async fn minter(self: &Arc<Self>) -> Result<Arc<Minter>, BotGuardError> {
        if let Some(m) = self.ready() {
            return Ok(m);
        }
        let wait = self.settings.warmup_wait;
        match tokio::time::timeout(wait, self.warm(false)).await {
            Ok(r) => r,
            Err(_) => Err(BotGuardError::NotReady(wait)),
        }
    }

    /// Starts a warm-up in the background if none is ready (for cold-start fallbacks).
    pub fn warm_in_background(self: &Arc<Self>) {
        if self.ready().is_some() {
            return;
        }
        let me = self.clone();
        tokio::spawn(async move {
            if let Err(e) = me.warm(false).await {
                tracing::warn!(error = %e, "background BotGuard warm-up failed");
            }
        });
    }

    /// Mints for `binding` with the current minter (warming one first if needed).
    pub async fn mint(
        self: &Arc<Self>,
        binding: &str,
    ) -> Result<(Token, SystemTime), BotGuardError> {
        self.mint_traced(binding).await.map(|(t, e, _)| (t, e))
    }

    /// [`mint`](Self::mint), also naming the minter that made the token (its `id`).
    pub async fn mint_traced(
        self: &Arc<Self>,
        binding: &str,
    ) -> Result<(Token, SystemTime, u64), BotGuardError> {
        let minter = self.minter().await?;
        let t = Instant::now();
        let token = match minter.mint(binding).await {
            Ok(t) => t,
            Err(e) => {
                if matches!(&e, BotGuardError::Vm(v) if v.hit_limits()) {
                    self.retire(&minter);
                }
                return Err(e);
            }
        };
        let micros = t.elapsed().as_micros() as u64;
        {
            let mut s = self.stats.lock().expect("stats lock");
            s.mints += 1;
            s.mint_micros_total += micros;
        }
        tracing::debug!(mint_us = micros, minter = minter.id, token = %token.redacted(), "minted");
        Ok((token, minter.usable_until_wall, minter.id))
    }

    /// Builds a new minter unless a fresh one appeared while waiting (`force` renews anyway,
    /// and proves the new one before it is published).
    pub async fn warm(self: &Arc<Self>, force: bool) -> Result<Arc<Minter>, BotGuardError> {
        let how = Warm {
            renew: force,
            prove_first: force,
            replacing: false,
        };
        self.warm_from(None, how).await
    }

    /// Warms from a caller-supplied challenge (the provider API's `challenge`) instead of
    /// fetching one, unless a fresh minter exists.
    pub async fn warm_with(
        self: &Arc<Self>,
        challenge: Challenge,
    ) -> Result<Arc<Minter>, BotGuardError> {
        self.warm_from(Some(Obtained::supplied(challenge)), Warm::default())
            .await
    }

    async fn warm_from(
        self: &Arc<Self>,
        supplied: Option<Obtained>,
        how: Warm,
    ) -> Result<Arc<Minter>, BotGuardError> {
        let Warm {
            renew,
            prove_first,
            replacing,
        } = how;
        let _one_at_a_time = self.warming.lock().await;
        if !renew {
            if let Some(m) = self.ready() {
                return Ok(m);
            }
        }
        let generation = self.generation.load(std::sync::atomic::Ordering::SeqCst);
        let mut m = self.build_counted(supplied).await?;
        if prove_first {
            let outcome = self.prove(&m).await;
            if outcome == Some(Outcome::Refused) && replacing {
                self.forget_target();
            }
            if outcome.is_some_and(|o| rebuild(&o, replacing)) {
                tracing::warn!(
                    minter = m.id,
                    "the renewed BotGuard minter's proof was refused; building another"
                );
                m = self.build_counted(None).await?;
                if self.prove(&m).await == Some(Outcome::Refused) {
                    self.forget_target();
                    tracing::warn!(
                        minter = m.id,
                        "its replacement's proof was refused too; keeping it (refused tokens are healed as they are met)"
                    );
                }
            }
        }
        if self.generation.load(std::sync::atomic::Ordering::SeqCst) == generation
            && !self.is_closed()
        {
            *self.current.lock().expect("minter lock") = Some(m.clone());
        }
        self.schedule_renewal(&m);
        if !prove_first {
            self.prove_in_background(&m, replacing);
        }
        Ok(m)
    }

    /// Two minters in a row refused: the URL itself may be what googlevideo refuses (its `ip=`
    /// no longer this egress's), so it proves nothing more until traffic teaches another.
    fn forget_target(&self) {
        if let Some((prover, key)) = self.proof.get() {
            prover.forget(key);
        }
    }

    /// Whether `id` is still the minter requests are served from.
    fn is_current(&self, id: u64) -> bool {
        self.current
            .lock()
            .expect("minter lock")
            .as_ref()
            .is_some_and(|m| m.id == id)
    }

    /// [`build`](Self::build), counted in the stats.
    async fn build_counted(
        &self,
        supplied: Option<Obtained>,
    ) -> Result<Arc<Minter>, BotGuardError> {
        match self.build(supplied).await {
            Ok(m) => {
                self.stats.lock().expect("stats lock").warmups += 1;
                Ok(Arc::new(m))
            }
            Err(e) => {
                self.stats.lock().expect("stats lock").warmup_failures += 1;
                Err(e)
            }
        }
    }

    /// Renews `m` shortly before it stops being fresh ([`renewal_at`]): the renewal and its
    /// proof run while requests still use `m`. Only while `m` is the current minter: one that
    /// was dropped or replaced meanwhile leaves renewing to its successor's own timer.
    fn schedule_renewal(self: &Arc<Self>, m: &Arc<Minter>) {
        let me = Arc::downgrade(self);
        let at = renewal_at(m.created, m.usable_until);
        let id = m.id;
        tokio::spawn(async move {
            tokio::time::sleep_until(at.into()).await;
            let mut backoff = Duration::from_secs(30);
            loop {
                let Some(bg) = me.upgrade() else { return };
                if bg.is_closed() || !bg.is_current(id) {
                    return;
                }
                match bg.warm(true).await {
                    Ok(_) => {
                        tracing::info!(
                            "BotGuard minter renewed before its integrity token expired"
                        );
                        return;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, retry_in = ?backoff, "BotGuard renewal failed");
                    }
                }
                drop(bg);
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1800));
            }
        });
    }

    async fn build(&self, supplied: Option<Obtained>) -> Result<Minter, BotGuardError> {
        let mut timings = WarmupTimings::default();
        let t = Instant::now();
        let obtained = match supplied {
            Some(o) => o,
            None => self.waa.obtain_challenge().await?,
        };
        timings.challenge_ms = ms(t.elapsed());

        let t = Instant::now();
        let interpreter = self.waa.interpreter(&obtained.challenge).await?;
        timings.interpreter_ms = ms(t.elapsed());

        let vm = VmHandle::spawn_as(self.settings.vm, Some(&self.settings.user_agent))?;
        let t = Instant::now();
        let ytcfg_json = obtained.vm_ytcfg_json();
        vm.load(LoadRequest {
            interpreter_js: interpreter,
            program: obtained.challenge.program.clone(),
            global_name: obtained.challenge.global_name.clone(),
            ytcfg_json,
        })
        .await?;
        timings.vm_load_ms = ms(t.elapsed());

        let t = Instant::now();
        let (response, has_factory) = vm.snapshot().await?;
        timings.snapshot_ms = ms(t.elapsed());
        if !has_factory {
            return Err(BotGuardError::NoMinterFactory(
                response.chars().take(16).collect(),
            ));
        }

        // An answer that carried `eats` is logged back before the integrity token is asked
        // for; a failed log is not fatal (GenerateIT is the judge).
        if let Err(e) = self.waa.log_attestation(&obtained, &response).await {
            tracing::warn!(error = %e, "att/log failed; asking GenerateIT anyway");
        }

        let t = Instant::now();
        let (integrity_token, ttl) = self.waa.generate_it(&response).await?;
        timings.generate_it_ms = ms(t.elapsed());

        let t = Instant::now();
        vm.create_minter(&integrity_token).await?;
        timings.minter_ms = ms(t.elapsed());

        // The integrity token's lifetime bounded by the challenge's own, renewed early.
        let life = obtained.minter_life(ttl);
        tracing::info!(
            source = ?obtained.source,
            challenge_ms = timings.challenge_ms,
            interpreter_ms = timings.interpreter_ms,
            vm_setup_ms = timings.vm_load_ms,
            snapshot_ms = timings.snapshot_ms,
            generate_it_ms = timings.generate_it_ms,
            minter_ms = timings.minter_ms,
            ttl_secs = ttl,
            life_secs = life.as_secs(),
            "BotGuard minter ready"
        );
        Ok(Minter {
            vm,
            id: self
                .next_id
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst),
            source: obtained.source,
            created: Instant::now(),
            usable_until: Instant::now() + life,
            usable_until_wall: SystemTime::now() + life,
            timings,
            page: obtained.page,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_renewal_starts_while_the_minter_is_still_fresh() {
        let t0 = Instant::now();
        let hours = Duration::from_secs(6 * 3600);
        assert_eq!(renewal_at(t0, t0 + hours), t0 + hours - RENEWAL_LEAD);
        // A short life (a test's, or a challenge about to end): a tenth of it.
        assert_eq!(
            renewal_at(t0, t0 + Duration::from_secs(10)),
            t0 + Duration::from_secs(9)
        );
        assert_eq!(renewal_at(t0, t0), t0);
    }
}
