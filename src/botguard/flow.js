// potproxy: the WebPO calling convention, run inside the VM's realm. Each step returns a Promise;
// the Rust host drives the event loop until it settles (see vm.rs). The file is a function the
// host calls with env.js's internals (I): the operations go there, never on the global object.
(function (I) {
  "use strict";
  const g = globalThis;
  const b64urlToBytes = (s) => {
    const bin = g.atob(String(s).replace(/-/g, "+").replace(/_/g, "/"));
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  };
  const bytesToB64url = (u8) => {
    let bin = "";
    for (let i = 0; i < u8.length; i++) bin += String.fromCharCode(u8[i]);
    return g.btoa(bin).replace(/\+/g, "-").replace(/\//g, "_");
  };
  const state = { fns: null, syncSnapshot: null, signal: null, minter: null, events: [] };

  const flow = {
    // vm.a(...) with the 9 arguments the web client passes; settles with the names of the
    // setup functions once the asynchronous setup callback ran.
    load(globalName, program) {
      const vm = g[globalName];
      if (!vm) throw new Error("EGOU: BotGuard global `" + globalName + "` unavailable");
      if (typeof vm.a !== "function") throw new Error("ELIU: BotGuard initialization function unavailable");
      return new Promise((resolve, reject) => {
        const setup = (asyncSnapshot, shutdown, passEvent, checkCamera) => {
          state.fns = { asyncSnapshot, shutdown, passEvent, checkCamera };
          resolve([asyncSnapshot, shutdown, passEvent, checkCamera].map((f) => typeof f).join(","));
        };
        try {
          // The VM reports telemetry through these; the web client sends them to Clearcut. We
          // keep the last few for diagnostics.
          const note = (kind) => (...a) => {
            state.events.push(kind + ":" + a.map(String).join(","));
            if (state.events.length > 64) state.events.shift();
          };
          const loggers = [note("event"), note("client_error"), note("payload_size"), note("latency"), note("event_count")];
          const ret = vm.a(program, setup, true, undefined, note("telemetry"), [[], []], undefined, false, loggers);
          state.syncSnapshot = ret && ret[0];
        } catch (e) {
          reject(e);
        }
      });
    },
    // The async snapshot with a fresh webPoSignalOutput; settles with the BotGuard response.
    snapshot() {
      if (!state.fns || typeof state.fns.asyncSnapshot !== "function") throw new Error("BotGuard not loaded");
      state.signal = [];
      return new Promise((resolve) => {
        state.fns.asyncSnapshot((response) => resolve(String(response)), [undefined, undefined, state.signal, undefined]);
      });
    },
    // Telemetry the VM reported (diagnostics).
    events() {
      return state.events.join(" ");
    },
    // typeof of each webPoSignalOutput entry (diagnostics).
    signalShape() {
      return state.signal ? "[" + state.signal.map((x) => typeof x).join(",") + "]" : "none";
    },
    // True once the VM put the minter factory into webPoSignalOutput[0].
    hasMinterFactory() {
      return !!state.signal && typeof state.signal[0] === "function";
    },
    async createMinter(integrityTokenB64) {
      const getMinter = state.signal && state.signal[0];
      if (typeof getMinter !== "function") throw new Error("PMD:Undefined");
      const minter = await getMinter(b64urlToBytes(integrityTokenB64));
      if (typeof minter !== "function") throw new Error("APF:Failed");
      state.minter = minter;
      return true;
    },
    async mint(binding) {
      if (typeof state.minter !== "function") throw new Error("no minter");
      const out = await state.minter(new g.TextEncoder().encode(binding));
      if (!out) throw new Error("YNJ:Undefined");
      if (!(out instanceof Uint8Array)) throw new Error("ODM:Invalid");
      return bytesToB64url(out);
    },
    // Indirect eval: global scope (diagnostics and tests).
    eval(src) {
      return (0, eval)(src);
    },
  };

  // The host starts an operation with start(name, ...args) and polls I.slot until it settles.
  I.start = (name, ...args) => {
    const slot = { done: false, ok: false, value: undefined };
    I.slot = slot;
    Promise.resolve()
      .then(() => flow[name](...args))
      .then(
        (v) => { slot.done = true; slot.ok = true; slot.value = v === undefined || v === null ? "" : String(v); },
        (e) => { slot.done = true; slot.ok = false; slot.value = e && e.stack ? String(e) + "\n" + e.stack : String(e); },
      );
  };
  // A host that can await promises itself (the browser minter, over the DevTools protocol)
  // calls the operations directly.
  I.call = (name, ...args) => flow[name](...args);
  I.hasMinterFactory = () => flow.hasMinterFactory();
  I.telemetry = () => flow.events();
})
