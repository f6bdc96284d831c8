// potproxy: the browser-like global that Google's BotGuard VM runs in (evaluated once per
// QuickJS context, before the interpreter). The file is a function the host (vm.rs) calls with
// its natives: now() (high-resolution ms), random(n) (array of n random bytes), log(level,
// message), userAgent and timeZone (optional strings). It returns the host's internals (timers,
// spare realms, ...): nothing of ours is reachable from the global object, because page scripts
// list it. tests/probes/probes.js compares what this environment shows with headless Chromium
// (docs/PROBES.md); keep it matching.
(function (host) {
  "use strict";
  const g = globalThis;
  const __pp_now = host.now, __pp_random = host.random, __pp_log = host.log;
  const I = { realms: [] };
  const define = (obj, name, value) =>
    Object.defineProperty(obj, name, { value, writable: true, configurable: true, enumerable: false });

  // Functions of this shim report "[native code]" like a browser's built-ins.
  const natives = new WeakSet();
  // Callable proxies print as V8 prints them (Proxy is wrapped below to know them).
  const proxies = new WeakSet();
  const nativeToString = Function.prototype.toString;
  // QuickJS prints engine built-ins over three lines; browsers print them on one. V8 prints
  // bound functions and proxies without a name.
  const toString = { toString() {
    if (typeof this !== "function") throw new TypeError("Function.prototype.toString requires that 'this' be a Function");
    if (proxies.has(this)) return "function () { [native code] }";
    if (natives.has(this)) return "function " + (this.name || "") + "() { [native code] }";
    const src = nativeToString.call(this);
    const m = /^function ([^(]*)\(\) \{\n {4}\[native code\]\n\}$/.exec(src);
    if (!m) return src;
    return m[1].startsWith("bound ") ? "function () { [native code] }" : "function " + m[1] + "() { [native code] }";
  } }.toString;
  define(Function.prototype, "toString", toString);
  natives.add(toString);
  const nat = (fn) => { natives.add(fn); return fn; };
  const natAll = (obj) => {
    for (const k of Object.getOwnPropertyNames(obj)) {
      const d = Object.getOwnPropertyDescriptor(obj, k);
      if (d && typeof d.value === "function") natives.add(d.value);
      if (d && d.get) natives.add(d.get);
      if (d && d.set) natives.add(d.set);
    }
    return obj;
  };
  // A browser's functions are not constructors and have no `prototype`; `length` counts the
  // required arguments only. Method shorthand gives exactly that.
  const method = (name, length, impl) => {
    const f = { [name](...a) { return impl.apply(this, a); } }[name];
    Object.defineProperty(f, "length", { value: length });
    return nat(f);
  };
  const setLength = (f, n) => { Object.defineProperty(f, "length", { value: n }); return f; };
  {
    const RealProxy = Proxy;
    const P = new RealProxy(RealProxy, {
      construct(T, args) {
        const p = Reflect.construct(T, args);
        if (typeof args[0] === "function") proxies.add(p);
        return p;
      },
    });
    natives.add(P);
    define(g, "Proxy", P);
  }
  // Per-object state of DOM objects, kept off the objects (a browser's DOM objects have no
  // own properties): prototypes get accessors that read and write it here.
  const S = new WeakMap();
  const illegal = () => new TypeError("Illegal invocation");
  const st = (o) => { const s = S.get(o); if (!s) throw illegal(); return s; };
  const own = (o) => { if (!S.has(o)) S.set(o, {}); return S.get(o); };
  const slots = (proto, names) => {
    for (const k of names) {
      Object.defineProperty(proto, k, {
        get: nat({ [`get ${k}`]() { return st(this)[k]; } }[`get ${k}`]),
        set: nat({ [`set ${k}`](v) { st(this)[k] = v; } }[`set ${k}`]),
        enumerable: true, configurable: true,
      });
    }
  };
  // WebIDL members are enumerable on their prototypes.
  const idl = (proto) => {
    for (const k of Object.getOwnPropertyNames(proto)) {
      if (k === "constructor") continue;
      const d = Object.getOwnPropertyDescriptor(proto, k);
      if (d.configurable && !d.enumerable) Object.defineProperty(proto, k, Object.assign(d, { enumerable: true }));
    }
    return natAll(proto);
  };

  const tag = (C, name) => Object.defineProperty(C.prototype, Symbol.toStringTag, { value: name, configurable: true });
  // An interface object whose constructor throws "Illegal constructor", as for Navigator.
  const iface = (name, parentProto) => {
    const C = nat({ [name]: function () { throw new TypeError("Illegal constructor"); } }[name]);
    C.prototype = Object.create(parentProto || Object.prototype);
    define(C.prototype, "constructor", C);
    tag(C, name);
    define(g, name, C);
    return C;
  };
  // Array-backed collections (NodeList, HTMLCollection, ...): arrays inside, branded outside.
  const collection = (name, extra = {}) => {
    const C = iface(name, Array.prototype);
    for (const [k, f] of Object.entries(Object.assign({ item(i) { return this[i >>> 0] ?? null; } }, extra))) {
      Object.defineProperty(C.prototype, k, { value: nat(f), writable: true, enumerable: true, configurable: true });
    }
    return (arr = []) => Object.setPrototypeOf(arr, C.prototype);
  };
  const nodeList = collection("NodeList");
  const htmlCollection = collection("HTMLCollection", { namedItem(n) { return this.find((e) => e.id === n || e.getAttribute("name") === n) || null; } });
  const namedNodeMap = collection("NamedNodeMap", { getNamedItem(n) { return this.find((a) => a.name === String(n).toLowerCase()) || null; } });

  // ---- identity: everything follows from the user agent ------------------------------------
  const ua = typeof host.userAgent === "string" && host.userAgent ? host.userAgent
    : "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36";
  const chromeMajor = (/(?:Chrome|Chromium)\/(\d+)/.exec(ua) || [])[1] || null;
  const isChrome = chromeMajor !== null;
  const os = /Windows/.test(ua) ? "Windows" : /Android/.test(ua) ? "Android" : /Mac OS X|Macintosh/.test(ua) ? "macOS"
    : /CrOS/.test(ua) ? "Chrome OS" : "Linux";
  const navPlatform = { Windows: "Win32", macOS: "MacIntel", Android: "Linux armv81", "Chrome OS": "Linux x86_64", Linux: "Linux x86_64" }[os];
  const navVendor = isChrome ? "Google Inc." : /Version\/[\d.]+.*Safari/.test(ua) ? "Apple Computer, Inc." : "";

  // ---- window ---------------------------------------------------------------------------
  for (const n of ["window", "self", "top", "parent", "frames"]) define(g, n, g);
  g.closed = false; g.length = 0; g.name = ""; g.opener = null; g.frameElement = null;
  g.isSecureContext = true; g.origin = "https://www.youtube.com"; g.crossOriginIsolated = false;

  // ---- timers (driven by the Rust event loop through I.timersNext / I.timersRunOne) --------
  const timers = new Map();
  let nextTimerId = 1;
  let timerSeq = 0;
  const addTimer = (fn, delay, args, repeat) => {
    const id = nextTimerId++;
    const d = Math.max(0, Number(delay) || 0);
    timers.set(id, { fn, args, delay: d, due: __pp_now() + d, repeat, seq: timerSeq++ });
    return id;
  };
  g.setTimeout = nat(function setTimeout(fn, delay, ...args) { return addTimer(fn, delay, args, false); });
  g.setInterval = nat(function setInterval(fn, delay, ...args) { return addTimer(fn, delay, args, true); });
  g.clearTimeout = nat(function clearTimeout(id) { timers.delete(id); });
  g.clearInterval = nat(function clearInterval(id) { timers.delete(id); });
  g.queueMicrotask = nat(function queueMicrotask(fn) { Promise.resolve().then(fn); });
  g.requestAnimationFrame = nat(function requestAnimationFrame(fn) {
    return addTimer(() => fn(g.performance.now()), 16, [], false);
  });
  g.cancelAnimationFrame = nat(function cancelAnimationFrame(id) { timers.delete(id); });
  g.requestIdleCallback = nat(function requestIdleCallback(fn) {
    return addTimer(() => fn({ didTimeout: false, timeRemaining: () => 50 }), 1, [], false);
  });
  g.cancelIdleCallback = g.cancelAnimationFrame;
  Object.assign(I, {
    // Milliseconds until the earliest timer is due, or -1 when none is pending.
    timersNext() {
      let best = -1;
      const now = __pp_now();
      for (const t of timers.values()) {
        const wait = Math.max(0, t.due - now);
        if (best < 0 || wait < best) best = wait;
      }
      return best;
    },
    // Runs the earliest due timer, if any; true when one ran.
    timersRunOne() {
      const now = __pp_now();
      let pick = null, pickId = 0;
      for (const [id, t] of timers) {
        if (t.due <= now && (!pick || t.due < pick.due || (t.due === pick.due && t.seq < pick.seq))) {
          pick = t; pickId = id;
        }
      }
      if (!pick) return false;
      if (pick.repeat) { pick.due = now + Math.max(1, pick.delay); pick.seq = timerSeq++; }
      else timers.delete(pickId);
      if (typeof pick.fn === "function") pick.fn.apply(g, pick.args);
      else (0, eval)(String(pick.fn));
      return true;
    },
    // ytcfg from the page the challenge came from, as the page's scripts leave it.
    setYtcfg(json) {
      g.yt = g.yt || {};
      g.yt.config_ = JSON.parse(json);
      g.ytcfg = { data_: g.yt.config_, get: (k, d) => (k in g.yt.config_ ? g.yt.config_[k] : d), set: (o) => Object.assign(g.yt.config_, o) };
    },
  });

  // ---- performance ----------------------------------------------------------------------
  const t0 = __pp_now();
  const timeOrigin = Date.now();
  g.performance = natAll({
    now() { return __pp_now() - t0; },
    timeOrigin,
    mark() {}, measure() {}, clearMarks() {}, clearMeasures() {},
    getEntries() { return []; }, getEntriesByType() { return []; }, getEntriesByName() { return []; },
    toJSON() { return { timeOrigin }; },
  });
  g.performance.timing = { navigationStart: timeOrigin, fetchStart: timeOrigin, domLoading: timeOrigin + 5,
    domInteractive: timeOrigin + 50, domComplete: timeOrigin + 120, loadEventStart: timeOrigin + 121,
    loadEventEnd: timeOrigin + 122, responseStart: timeOrigin + 3, responseEnd: timeOrigin + 4 };
  g.performance.navigation = { type: 0, redirectCount: 0 };
  g.performance.memory = { jsHeapSizeLimit: 4294705152, totalJSHeapSize: 35000000, usedJSHeapSize: 25000000 };

  // ---- text, base64, crypto -------------------------------------------------------------
  class TextEncoder {
    get encoding() { return "utf-8"; }
    encode(s = "") {
      s = String(s);
      const out = [];
      for (let i = 0; i < s.length; i++) {
        let c = s.charCodeAt(i);
        if (c >= 0xd800 && c < 0xdc00 && i + 1 < s.length) {
          const d = s.charCodeAt(i + 1);
          if (d >= 0xdc00 && d < 0xe000) { c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00); i++; }
          else c = 0xfffd;
        } else if (c >= 0xd800 && c < 0xe000) c = 0xfffd;
        if (c < 0x80) out.push(c);
        else if (c < 0x800) out.push(0xc0 | (c >> 6), 0x80 | (c & 63));
        else if (c < 0x10000) out.push(0xe0 | (c >> 12), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
        else out.push(0xf0 | (c >> 18), 0x80 | ((c >> 12) & 63), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
      }
      return new Uint8Array(out);
    }
    encodeInto(s, dest) {
      const b = this.encode(s);
      const n = Math.min(b.length, dest.length);
      dest.set(b.subarray(0, n));
      return { read: s.length, written: n };
    }
  }
  class TextDecoder {
    constructor(label = "utf-8") { this._label = String(label).toLowerCase(); }
    get encoding() { return "utf-8"; }
    decode(buf) {
      if (buf === undefined) return "";
      const b = buf instanceof Uint8Array ? buf : ArrayBuffer.isView(buf)
        ? new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength) : new Uint8Array(buf);
      let s = "";
      for (let i = 0; i < b.length;) {
        const c = b[i++];
        let cp;
        if (c < 0x80) cp = c;
        else if (c >= 0xc0 && c < 0xe0 && i < b.length) cp = ((c & 31) << 6) | (b[i++] & 63);
        else if (c >= 0xe0 && c < 0xf0 && i + 1 < b.length) { cp = ((c & 15) << 12) | ((b[i] & 63) << 6) | (b[i + 1] & 63); i += 2; }
        else if (c >= 0xf0 && i + 2 < b.length) { cp = ((c & 7) << 18) | ((b[i] & 63) << 12) | ((b[i + 1] & 63) << 6) | (b[i + 2] & 63); i += 3; }
        else cp = 0xfffd;
        s += String.fromCodePoint(cp);
      }
      return s;
    }
  }
  natAll(TextEncoder.prototype); natAll(TextDecoder.prototype);
  g.TextEncoder = nat(TextEncoder); g.TextDecoder = nat(TextDecoder);

  const B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  g.btoa = nat(function btoa(s) {
    s = String(s);
    let out = "";
    for (let i = 0; i < s.length; i += 3) {
      const a = s.charCodeAt(i), b = s.charCodeAt(i + 1), c = s.charCodeAt(i + 2);
      if (a > 255 || b > 255 || c > 255) throw new DOMException("Invalid character", "InvalidCharacterError");
      const n = (a << 16) | ((b || 0) << 8) | (c || 0);
      out += B64[n >> 18] + B64[(n >> 12) & 63] + (i + 1 < s.length ? B64[(n >> 6) & 63] : "=") + (i + 2 < s.length ? B64[n & 63] : "=");
    }
    return out;
  });
  g.atob = nat(function atob(s) {
    s = String(s).replace(/[\t\n\f\r ]/g, "");
    if (s.length % 4 === 0) s = s.replace(/==?$/, "");
    if (s.length % 4 === 1 || /[^A-Za-z0-9+/]/.test(s)) throw new DOMException("Invalid character", "InvalidCharacterError");
    let out = "", bits = 0, acc = 0;
    for (let i = 0; i < s.length; i++) {
      acc = (acc << 6) | B64.indexOf(s[i]); bits += 6;
      if (bits >= 8) { bits -= 8; out += String.fromCharCode((acc >> bits) & 255); }
    }
    return out;
  });

  g.crypto = natAll({
    getRandomValues(arr) {
      const bytes = __pp_random(arr.byteLength);
      const view = new Uint8Array(arr.buffer, arr.byteOffset, arr.byteLength);
      for (let i = 0; i < bytes.length; i++) view[i] = bytes[i];
      return arr;
    },
    randomUUID() {
      const b = __pp_random(16);
      b[6] = (b[6] & 15) | 64; b[8] = (b[8] & 63) | 128;
      const h = b.map((x) => x.toString(16).padStart(2, "0")).join("");
      return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
    },
    subtle: {},
  });

  // ---- events ----------------------------------------------------------------------------
  class DOMException extends Error {
    constructor(message = "", name = "Error") { super(message); this.name = name; }
  }
  g.DOMException = nat(DOMException);
  class Event {
    constructor(type, init = {}) {
      own(this);
      // isTrusted is the one own ("unforgeable") member of an event.
      Object.defineProperty(this, "isTrusted", { get: isTrustedGetter, enumerable: true, configurable: false });
      if (arguments.length < 1) throw new TypeError("Failed to construct 'Event': 1 argument required, but only 0 present.");
      this.type = String(type); this.bubbles = !!init.bubbles; this.cancelable = !!init.cancelable;
      this.composed = !!init.composed; this.defaultPrevented = false;
      this.timeStamp = g.performance.now(); this.target = null; this.currentTarget = null; this.eventPhase = 0;
      this.returnValue = true; this.cancelBubble = false;
    }
    preventDefault() { if (this.cancelable) { this.defaultPrevented = true; this.returnValue = false; } }
    stopPropagation() { st(this).stop = true; this.cancelBubble = true; }
    stopImmediatePropagation() { st(this).stop = true; st(this).stopNow = true; }
    composedPath() { return st(this).path ? st(this).path.slice() : []; }
  }
  const isTrustedGetter = nat({ get isTrusted() { return false; } }.__lookupGetter__("isTrusted"));
  slots(Event.prototype, ["type", "bubbles", "cancelable", "composed", "defaultPrevented", "timeStamp", "target", "currentTarget", "eventPhase", "returnValue", "cancelBubble"]);
  class CustomEvent extends Event {
    constructor(type, init = {}) { super(type, init); this.detail = init.detail === undefined ? null : init.detail; }
  }
  slots(CustomEvent.prototype, ["detail"]);
  // Listeners live here, not on the targets.
  const listenersOf = new WeakMap();
  class EventTarget {
    constructor() { own(this); }
    addEventListener(type, fn, opts) {
      if (!fn) return;
      let m = listenersOf.get(this);
      if (!m) { m = {}; listenersOf.set(this, m); }
      const capture = typeof opts === "boolean" ? opts : !!(opts && opts.capture);
      const once = typeof opts === "object" && opts !== null && !!opts.once;
      const l = (m[type] = m[type] || []);
      if (!l.some((e) => e.fn === fn && e.capture === capture)) l.push({ fn, once, capture });
    }
    removeEventListener(type, fn, opts) {
      const capture = typeof opts === "boolean" ? opts : !!(opts && opts.capture);
      const m = listenersOf.get(this);
      const l = m && m[type];
      if (l) m[type] = l.filter((e) => e.fn !== fn || e.capture !== capture);
    }
    dispatchEvent(ev) {
      // Capture from the top, the target, then bubble back up (DOM dispatch).
      const path = [];
      for (let n = this; n; n = n === g.document ? g : (n instanceof Node ? n.parentNode : null)) path.push(n);
      const es = own(ev);
      es.path = path; es.stop = false; es.stopNow = false;
      ev.target = this;
      const fire = (node, phase, captureOnly) => {
        ev.currentTarget = node; ev.eventPhase = phase;
        const m = listenersOf.get(node);
        const l = (m && m[ev.type]) || [];
        for (const e of l.slice()) {
          if (phase === 1 && !e.capture) continue;
          if (phase === 3 && e.capture) continue;
          if (e.once) node.removeEventListener(ev.type, e.fn, e.capture);
          try {
            if (typeof e.fn === "function") e.fn.call(node, ev); else if (e.fn && typeof e.fn.handleEvent === "function") e.fn.handleEvent(ev);
          } catch (err) { g.setTimeout(() => { throw err; }, 0); }
          if (es.stopNow) break;
        }
        if (phase !== 1 && !captureOnly) {
          const h = node["on" + ev.type];
          if (typeof h === "function") h.call(node, ev);
        }
      };
      for (let i = path.length - 1; i > 0 && !es.stop; i--) fire(path[i], 1);
      if (!es.stop) fire(this, 2);
      if (ev.bubbles) for (let i = 1; i < path.length && !es.stop; i++) fire(path[i], 3);
      ev.currentTarget = null; ev.eventPhase = 0;
      return !ev.defaultPrevented;
    }
  }
  setLength(EventTarget.prototype.addEventListener, 2); setLength(EventTarget.prototype.removeEventListener, 2);
  natAll(EventTarget.prototype); natAll(Event.prototype);
  g.Event = nat(Event); g.CustomEvent = nat(CustomEvent); g.EventTarget = nat(EventTarget);
  for (const [k, v] of [["NONE", 0], ["CAPTURING_PHASE", 1], ["AT_TARGET", 2], ["BUBBLING_PHASE", 3]]) {
    Object.defineProperty(Event, k, { value: v, enumerable: true }); Object.defineProperty(Event.prototype, k, { value: v, enumerable: true });
  }
  Object.defineProperty(Event.prototype, "srcElement", { get() { return this.target; }, configurable: true });
  Event.prototype.initEvent = method("initEvent", 1, function (t, b, c) { this.type = String(t); this.bubbles = !!b; this.cancelable = !!c; });
  class UIEvent extends Event {
    constructor(type, init = {}) { super(type, init); this.view = init.view || null; this.detail = init.detail || 0; this.which = 0; }
    initUIEvent(t, b, c, view, detail) { this.initEvent(t, b, c); this.view = view || null; this.detail = detail || 0; }
  }
  class MouseEvent extends UIEvent {
    constructor(type, init = {}) {
      super(type, init);
      for (const k of ["screenX", "screenY", "clientX", "clientY", "button", "buttons", "movementX", "movementY"]) this[k] = init[k] || 0;
      for (const k of ["ctrlKey", "shiftKey", "altKey", "metaKey"]) this[k] = !!init[k];
      this.relatedTarget = init.relatedTarget || null;
    }
    get pageX() { return this.clientX; } get pageY() { return this.clientY; } get x() { return this.clientX; } get y() { return this.clientY; }
    get offsetX() { return 0; } get offsetY() { return 0; } get layerX() { return 0; } get layerY() { return 0; }
    getModifierState() { return false; }
    initMouseEvent(t, b, c, view, detail, sx, sy, cx, cy, ctrl, alt, shift, meta, button, related) {
      this.initUIEvent(t, b, c, view, detail);
      Object.assign(this, { screenX: sx || 0, screenY: sy || 0, clientX: cx || 0, clientY: cy || 0, ctrlKey: !!ctrl, altKey: !!alt, shiftKey: !!shift, metaKey: !!meta, button: button || 0, relatedTarget: related || null });
    }
  }
  class KeyboardEvent extends UIEvent {
    constructor(type, init = {}) {
      super(type, init);
      this.key = init.key || ""; this.code = init.code || ""; this.location = init.location || 0; this.repeat = !!init.repeat; this.isComposing = false;
      for (const k of ["ctrlKey", "shiftKey", "altKey", "metaKey"]) this[k] = !!init[k];
      this.keyCode = init.keyCode || 0; this.charCode = init.charCode || 0;
    }
    getModifierState() { return false; }
  }
  class FocusEvent extends UIEvent { constructor(type, init = {}) { super(type, init); this.relatedTarget = init.relatedTarget || null; } }
  class PointerEvent extends MouseEvent {
    constructor(type, init = {}) { super(type, init); this.pointerId = init.pointerId || 0; this.pointerType = init.pointerType || ""; this.isPrimary = !!init.isPrimary; this.width = 1; this.height = 1; this.pressure = 0; }
  }
  class MessageEvent extends Event { constructor(type, init = {}) { super(type, init); this.data = init.data === undefined ? null : init.data; this.origin = init.origin || ""; this.lastEventId = ""; this.source = init.source || null; this.ports = []; } }
  class ErrorEvent extends Event { constructor(type, init = {}) { super(type, init); this.message = init.message || ""; this.filename = init.filename || ""; this.lineno = init.lineno || 0; this.colno = init.colno || 0; this.error = init.error === undefined ? null : init.error; } }
  slots(UIEvent.prototype, ["view", "detail", "which"]);
  slots(MouseEvent.prototype, ["screenX", "screenY", "clientX", "clientY", "button", "buttons", "movementX", "movementY", "ctrlKey", "shiftKey", "altKey", "metaKey", "relatedTarget"]);
  slots(KeyboardEvent.prototype, ["key", "code", "location", "repeat", "isComposing", "ctrlKey", "shiftKey", "altKey", "metaKey", "keyCode", "charCode"]);
  slots(FocusEvent.prototype, ["relatedTarget"]);
  slots(PointerEvent.prototype, ["pointerId", "pointerType", "isPrimary", "width", "height", "pressure"]);
  slots(MessageEvent.prototype, ["data", "origin", "lastEventId", "source", "ports"]);
  slots(ErrorEvent.prototype, ["message", "filename", "lineno", "colno", "error"]);
  const eventClasses = { UIEvent, MouseEvent, KeyboardEvent, FocusEvent, PointerEvent, MessageEvent, ErrorEvent };
  for (const [n, C] of Object.entries(eventClasses)) {
    Object.defineProperty(C.prototype, Symbol.toStringTag, { value: n, configurable: true });
    natAll(C.prototype); g[n] = nat(C);
  }
  for (const n of ["TouchEvent", "PopStateEvent", "StorageEvent", "HashChangeEvent", "PageTransitionEvent", "ProgressEvent", "WheelEvent", "InputEvent", "CompositionEvent", "TransitionEvent", "AnimationEvent", "PromiseRejectionEvent", "SubmitEvent"]) {
    const Base = n === "WheelEvent" ? MouseEvent : n === "InputEvent" || n === "CompositionEvent" || n === "TouchEvent" ? UIEvent : Event;
    const C = { [n]: class extends Base {} }[n];
    Object.defineProperty(C.prototype, Symbol.toStringTag, { value: n, configurable: true });
    g[n] = nat(C);
  }
  // document.createEvent's legacy interface names.
  const createEventTypes = { event: Event, events: Event, htmlevents: Event, uievent: UIEvent, uievents: UIEvent,
    mouseevent: MouseEvent, mouseevents: MouseEvent, keyboardevent: KeyboardEvent, focusevent: FocusEvent,
    customevent: CustomEvent, messageevent: MessageEvent, errorevent: ErrorEvent };
  Object.setPrototypeOf(g, EventTarget.prototype);
  // Bare `addEventListener(...)` calls have no `this`; in a browser they act on window.
  for (const k of ["addEventListener", "removeEventListener", "dispatchEvent"]) {
    const m = EventTarget.prototype[k];
    define(EventTarget.prototype, k, method(k, k === "dispatchEvent" ? 1 : 2, function (...a) { return m.apply(this == null ? g : this, a); }));
  }

  // ---- DOM -------------------------------------------------------------------------------
  // Element interfaces cannot be constructed by pages ("Illegal constructor"); our own
  // factories (createElement, Image) raise this while they build one.
  let creating = 0;
  const building = (f) => { creating++; try { return f(); } finally { creating--; } };
  class Node extends EventTarget {
    constructor() {
      super();
      if (new.target === Node || new.target === CharacterData) throw new TypeError("Illegal constructor");
      this.childNodes = nodeList(); this.parentNode = null;
    }
    get firstChild() { return this.childNodes[0] || null; }
    get lastChild() { return this.childNodes[this.childNodes.length - 1] || null; }
    get parentElement() { return this.parentNode instanceof Element ? this.parentNode : null; }
    get nextSibling() { const p = this.parentNode; if (!p) return null; return p.childNodes[p.childNodes.indexOf(this) + 1] || null; }
    get previousSibling() { const p = this.parentNode; if (!p) return null; return p.childNodes[p.childNodes.indexOf(this) - 1] || null; }
    get ownerDocument() { return g.document; }
    get isConnected() { let n = this; while (n.parentNode) n = n.parentNode; return n === g.document; }
    appendChild(c) {
      if (c instanceof DocumentFragment) { for (const k of [...c.childNodes]) this.appendChild(k); return c; }
      if (c.parentNode) c.parentNode.removeChild(c);
      this.childNodes.push(c); c.parentNode = this; refreshFrames(); return c;
    }
    removeChild(c) { const i = this.childNodes.indexOf(c); if (i >= 0) this.childNodes.splice(i, 1); c.parentNode = null; refreshFrames(); return c; }
    insertBefore(c, ref) {
      if (!ref) return this.appendChild(c);
      if (c instanceof DocumentFragment) { for (const k of [...c.childNodes]) this.insertBefore(k, ref); return c; }
      if (c.parentNode) c.parentNode.removeChild(c);
      const i = this.childNodes.indexOf(ref); this.childNodes.splice(i < 0 ? this.childNodes.length : i, 0, c); c.parentNode = this; refreshFrames(); return c;
    }
    replaceChild(n, o) { this.insertBefore(n, o); return this.removeChild(o); }
    remove() { if (this.parentNode) this.parentNode.removeChild(this); }
    contains(n) { while (n) { if (n === this) return true; n = n.parentNode; } return false; }
    hasChildNodes() { return this.childNodes.length > 0; }
    cloneNode(deep) {
      const c = Object.create(Object.getPrototypeOf(this));
      const s = Object.assign({}, st(this), { childNodes: nodeList(), parentNode: null });
      S.set(c, s);
      if (s.attributes) { s.attributes = namedNodeMap(s.attributes.map((a) => ({ name: a.name, value: a.value }))); s.classList = createClassList(c); }
      if (s.style) { s.style = createStyle(); c.style.cssText = this.style.cssText; }
      if (deep) for (const k of this.childNodes) c.appendChild(k.cloneNode(true));
      return c;
    }
    get textContent() { return this.childNodes.map((c) => (c.nodeType === 8 ? "" : c.textContent)).join(""); }
    set textContent(v) { this.childNodes = nodeList(); if (v !== "" && v != null) this.appendChild(g.document.createTextNode(String(v))); }
  }
  const NODE_CONSTANTS = { ELEMENT_NODE: 1, ATTRIBUTE_NODE: 2, TEXT_NODE: 3, CDATA_SECTION_NODE: 4, ENTITY_REFERENCE_NODE: 5,
    ENTITY_NODE: 6, PROCESSING_INSTRUCTION_NODE: 7, COMMENT_NODE: 8, DOCUMENT_NODE: 9, DOCUMENT_TYPE_NODE: 10,
    DOCUMENT_FRAGMENT_NODE: 11, NOTATION_NODE: 12, DOCUMENT_POSITION_DISCONNECTED: 1, DOCUMENT_POSITION_PRECEDING: 2,
    DOCUMENT_POSITION_FOLLOWING: 4, DOCUMENT_POSITION_CONTAINS: 8, DOCUMENT_POSITION_CONTAINED_BY: 16,
    DOCUMENT_POSITION_IMPLEMENTATION_SPECIFIC: 32 };
  for (const [k, v] of Object.entries(NODE_CONSTANTS)) {
    Object.defineProperty(Node, k, { value: v, enumerable: true });
    Object.defineProperty(Node.prototype, k, { value: v, enumerable: true });
  }
  const XHTML = "http://www.w3.org/1999/xhtml";
  Object.assign(Node.prototype, {
    getRootNode() { let n = this; while (n.parentNode) n = n.parentNode; return n; },
    isSameNode(o) { return this === o; },
    isEqualNode(o) { return !!o && o.nodeType === this.nodeType && o.nodeName === this.nodeName && o.textContent === this.textContent; },
    isDefaultNamespace(ns) { return (ns === undefined ? null : ns) === XHTML; },
    lookupNamespaceURI(prefix) { return prefix ? null : XHTML; },
    lookupPrefix() { return null; },
    normalize() {},
    compareDocumentPosition(o) {
      if (o === this) return 0;
      if (this.getRootNode() !== o.getRootNode()) return 1 | 32 | 2;
      if (this.contains(o)) return 16 | 4;
      if (o.contains(this)) return 8 | 2;
      return 4;
    },
  });
  Object.defineProperty(Node.prototype, "baseURI", { get() { return g.location.href; }, configurable: true });
  Object.defineProperty(Node.prototype, "nodeValue", { get() { return this.nodeType === 3 || this.nodeType === 8 ? this.data : null; }, configurable: true });
  const toNodes = (args) => args.map((a) => (a instanceof Node ? a : g.document.createTextNode(String(a))));
  class CharacterData extends Node {
    get textContent() { return this.data; }
    set textContent(v) { this.data = String(v); }
    get length() { return this.data.length; }
  }
  class Text extends CharacterData {
    constructor(data = "") { super(); this.data = String(data); this.nodeType = 3; this.nodeName = "#text"; }
  }
  class Comment extends CharacterData {
    constructor(data = "") { super(); this.data = String(data); this.nodeType = 8; this.nodeName = "#comment"; }
  }
  class DocumentType extends Node {
    constructor(name) { super(); this.name = name; this.publicId = ""; this.systemId = ""; this.nodeType = 10; this.nodeName = name; }
  }
  slots(Node.prototype, ["childNodes", "parentNode", "nodeType", "nodeName"]);
  slots(CharacterData.prototype, ["data"]);
  slots(DocumentType.prototype, ["name", "publicId", "systemId"]);
  class Element extends Node {
    constructor(tag) {
      super();
      if (!creating) throw new TypeError("Illegal constructor");
      this.scrollTop = 0; this.scrollLeft = 0; this.shadowRoot = null;
      this.tagName = String(tag).toUpperCase(); this.nodeName = this.tagName; this.nodeType = 1;
      this.attributes = namedNodeMap(); this.style = createStyle(); this.dataset = {};
      this.classList = createClassList(this);
    }
    get localName() { return this.tagName.toLowerCase(); }
    get id() { return this.getAttribute("id") || ""; } set id(v) { this.setAttribute("id", v); }
    get className() { return this.getAttribute("class") || ""; } set className(v) { this.setAttribute("class", v); }
    get children() { return htmlCollection(this.childNodes.filter((c) => c instanceof Element)); }
    get childElementCount() { return this.children.length; }
    get firstElementChild() { return this.children[0] || null; }
    get innerHTML() { return this.childNodes.map(serialize).join(""); }
    set innerHTML(v) { for (const c of [...this.childNodes]) this.removeChild(c); parseHTML(String(v), this); }
    get outerHTML() { return serialize(this); }
    setAttribute(k, v) { k = String(k).toLowerCase(); const a = this.attributes.find((x) => x.name === k); if (a) a.value = String(v); else this.attributes.push({ name: k, value: String(v) }); }
    getAttribute(k) { const a = this.attributes.find((x) => x.name === String(k).toLowerCase()); return a ? a.value : null; }
    hasAttribute(k) { return this.getAttribute(k) !== null; }
    removeAttribute(k) { const i = this.attributes.findIndex((x) => x.name === String(k).toLowerCase()); if (i >= 0) this.attributes.splice(i, 1); }
    getAttributeNames() { return this.attributes.map((a) => a.name); }
    getElementsByTagName(t) { return htmlCollection(queryAll(this, (e) => t === "*" || e.tagName === String(t).toUpperCase())); }
    getElementsByClassName(c) { return htmlCollection(queryAll(this, (e) => e.className.split(/\s+/).includes(c))); }
    querySelector(s) { return this.querySelectorAll(s)[0] || null; }
    querySelectorAll(s) { return nodeList(queryAll(this, selectorMatcher(s))); }
    matches(s) { return selectorMatcher(s)(this); }
    closest(s) { let n = this; const m = selectorMatcher(s); while (n instanceof Element) { if (m(n)) return n; n = n.parentNode; } return null; }
    getBoundingClientRect() { const b = layout(this); return b ? new DOMRect(b.x, b.y, b.w, b.h) : new DOMRect(0, 0, 0, 0); }
    getClientRects() { const b = layout(this); return Object.setPrototypeOf(b ? [new DOMRect(b.x, b.y, b.w, b.h)] : [], DOMRectList.prototype); }
    get clientWidth() { const t = this.localName; if (t === "html") return g.innerWidth; const b = layout(this); return b && b.block ? b.w : 0; }
    get clientHeight() { const t = this.localName; if (t === "html") return g.innerHeight; const b = layout(this); return b && b.block ? b.h : 0; }
    get clientTop() { return 0; } get clientLeft() { return 0; }
    get scrollWidth() { return this.clientWidth; } get scrollHeight() { return this.clientHeight; }
    attachShadow() { const f = new DocumentFragment(); this.shadowRoot = f; return f; }
    get namespaceURI() { return XHTML; } get prefix() { return null; }
    get lastElementChild() { const c = this.children; return c[c.length - 1] || null; }
    get nextElementSibling() { let n = this.nextSibling; while (n && !(n instanceof Element)) n = n.nextSibling; return n; }
    get previousElementSibling() { let n = this.previousSibling; while (n && !(n instanceof Element)) n = n.previousSibling; return n; }
    hasAttributes() { return this.attributes.length > 0; }
    toggleAttribute(k, force) { const has = this.hasAttribute(k); if (force === true || (force === undefined && !has)) { this.setAttribute(k, ""); return true; } this.removeAttribute(k); return false; }
    getAttributeNS(ns, k) { return this.getAttribute(k); } setAttributeNS(ns, k, v) { this.setAttribute(k, v); }
    removeAttributeNS(ns, k) { this.removeAttribute(k); } hasAttributeNS(ns, k) { return this.hasAttribute(k); }
    getElementsByTagNameNS(ns, t) { return this.getElementsByTagName(t); }
    webkitMatchesSelector(sel) { return this.matches(sel); }
    append(...n) { for (const c of toNodes(n)) this.appendChild(c); }
    prepend(...n) { const first = this.firstChild; for (const c of toNodes(n)) this.insertBefore(c, first); }
    after(...n) { const p = this.parentNode; if (!p) return; const next = this.nextSibling; for (const c of toNodes(n)) p.insertBefore(c, next); }
    before(...n) { const p = this.parentNode; if (!p) return; for (const c of toNodes(n)) p.insertBefore(c, this); }
    replaceWith(...n) { const p = this.parentNode; if (!p) return; this.before(...n); p.removeChild(this); }
    replaceChildren(...n) { this.childNodes = []; this.append(...n); }
    insertAdjacentElement(where, el) { const w = String(where).toLowerCase(); if (w === "beforebegin") this.before(el); else if (w === "afterbegin") this.prepend(el); else if (w === "beforeend") this.append(el); else if (w === "afterend") this.after(el); return el; }
    insertAdjacentText(where, t) { this.insertAdjacentElement(where, g.document.createTextNode(t)); }
    insertAdjacentHTML() {}
    scrollIntoView() {} scroll() {} scrollTo() {} scrollBy() {}
    requestFullscreen() { return Promise.reject(new TypeError("Permissions check failed")); }
    animate() { return { cancel() {}, finish() {}, play() {}, pause() {}, onfinish: null }; }
  }
  class HTMLElement extends Element {
    get offsetWidth() { const b = layout(this); return b ? b.w : 0; }
    get offsetHeight() { const b = layout(this); return b ? b.h : 0; }
    get offsetTop() { const b = layout(this); return b ? b.y : 0; }
    get offsetLeft() { const b = layout(this); return b ? b.x : 0; }
    get offsetParent() { return layout(this) && this.localName !== "body" ? g.document.body : null; }
    get innerText() { return this.textContent; } set innerText(v) { this.textContent = v; }
    focus() {} blur() {} click() { this.dispatchEvent(new g.MouseEvent("click", { bubbles: true, cancelable: true })); }
  }
  slots(Element.prototype, ["tagName", "attributes", "classList", "scrollTop", "scrollLeft", "shadowRoot"]);
  slots(HTMLElement.prototype, ["style", "dataset"]);
  class DocumentFragment extends Node {
    constructor() { super(); this.nodeType = 11; this.nodeName = "#document-fragment"; }
    get children() { return htmlCollection(this.childNodes.filter((c) => c instanceof Element)); }
    querySelector(s) { return queryAll(this, selectorMatcher(s))[0] || null; }
    querySelectorAll(s) { return nodeList(queryAll(this, selectorMatcher(s))); }
  }
  class HTMLCanvasElement extends HTMLElement {
    constructor() { super("canvas"); st(this).w = 300; st(this).h = 150; }
    get width() { return st(this).w; } set width(v) { st(this).w = v >>> 0; if (st(this).ctx) ctxReset(st(this).ctx); }
    get height() { return st(this).h; } set height(v) { st(this).h = v >>> 0; if (st(this).ctx) ctxReset(st(this).ctx); }
    getContext(type) {
      if (String(type) !== "2d") return null;
      const s = st(this);
      if (!s.ctx) s.ctx = building(() => new CanvasRenderingContext2D(this));
      return s.ctx;
    }
    toDataURL(type) {
      const s = st(this);
      if (!s.w || !s.h) return "data:,";
      // Encoded as PNG whatever was asked for: we have no JPEG/WebP encoder.
      const px = s.ctx ? st(s.ctx).px : new Uint8ClampedArray(s.w * s.h * 4);
      return "data:image/png;base64," + g.btoa(encodePNG(s.w, s.h, px));
    }
    toBlob(cb) { g.setTimeout(() => cb(null), 0); }
  }
  // An attached iframe gets a window of its own: a separate realm (fresh builtins) prepared by
  // the host (I.realms); a detached iframe has none, as in a browser, and gives its realm back.
  class HTMLIFrameElement extends HTMLElement {
    constructor() { super("iframe"); this.src = ""; }
    get contentWindow() {
      const s = st(this);
      if (!this.isConnected) {
        if (s.realm) { I.realms.push(s.realm); s.realm = null; }
        return null;
      }
      if (!s.realm) {
        const w = I.realms.shift();
        if (!w) return null;
        s.realm = w;
        w.parent = g; w.top = g.top; w.frameElement = this;
      }
      return s.realm;
    }
    get contentDocument() { const w = this.contentWindow; return w ? w.document : null; }
  }
  class HTMLScriptElement extends HTMLElement { constructor() { super("script"); this.src = ""; this.async = false; this.nonce = ""; } }
  class HTMLImageElement extends HTMLElement {
    constructor(w, h) { super("img"); this.width = w || 0; this.height = h || 0; this.complete = true; this.naturalWidth = 0; this.naturalHeight = 0; }
    set src(v) { st(this).src = String(v); g.setTimeout(() => this.dispatchEvent(new Event("error")), 0); }
    get src() { return st(this).src || ""; }
    get currentSrc() { return st(this).src || ""; }
    get srcset() { return ""; } get sizes() { return ""; } get alt() { return ""; } get crossOrigin() { return null; }
    get decoding() { return "auto"; } get loading() { return "eager"; } get referrerPolicy() { return ""; }
    decode() { return Promise.reject(new DOMException("The source image cannot be decoded.", "EncodingError")); }
  }
  slots(HTMLIFrameElement.prototype, ["src"]);
  slots(HTMLScriptElement.prototype, ["src", "async", "nonce"]);
  slots(HTMLImageElement.prototype, ["width", "height", "complete", "naturalWidth", "naturalHeight"]);
  // Connected iframes are the window's frames: window.length and window[i].
  let frameCount = 0, frameList = [];
  function refreshFrames() {
    if (!g.document) return;
    const list = queryAll(g.document, (e) => e instanceof HTMLIFrameElement);
    // A removed iframe's window goes away; its realm goes back to the pool.
    for (const f of frameList) if (!list.includes(f) && st(f).realm) { I.realms.push(st(f).realm); st(f).realm = null; }
    frameList = list;
    for (let i = 0; i < Math.max(list.length, frameCount); i++) {
      if (i < list.length) { const f = list[i]; Object.defineProperty(g, i, { get: () => f.contentWindow, enumerable: false, configurable: true }); }
      else delete g[i];
    }
    frameCount = list.length;
  }

  // ---- 2D canvas: the API and its state; rectangles and image data are exact, text and
  // paths are not drawn (glyph rasterisation cannot be reproduced here).
  const NAMED_COLORS = { black: "#000000", white: "#ffffff", red: "#ff0000", green: "#008000", blue: "#0000ff", yellow: "#ffff00",
    gray: "#808080", grey: "#808080", orange: "#ffa500", purple: "#800080", lime: "#00ff00", aqua: "#00ffff", cyan: "#00ffff",
    fuchsia: "#ff00ff", magenta: "#ff00ff", silver: "#c0c0c0", maroon: "#800000", navy: "#000080", olive: "#808000", teal: "#008080" };
  const parseColor = (c) => {
    c = String(c).trim().toLowerCase();
    if (NAMED_COLORS[c]) c = NAMED_COLORS[c];
    if (c === "transparent") return [0, 0, 0, 0];
    let m = /^#([0-9a-f]{3,8})$/.exec(c);
    if (m) {
      let h = m[1];
      if (h.length === 3 || h.length === 4) h = h.split("").map((x) => x + x).join("");
      if (h.length !== 6 && h.length !== 8) return null;
      const n = (i) => parseInt(h.slice(i, i + 2), 16);
      return [n(0), n(2), n(4), h.length === 8 ? n(6) / 255 : 1];
    }
    m = /^rgba?\(\s*([\d.]+)\s*,\s*([\d.]+)\s*,\s*([\d.]+)\s*(?:,\s*([\d.]+)\s*)?\)$/.exec(c);
    if (m) return [+m[1], +m[2], +m[3], m[4] === undefined ? 1 : +m[4]].map((v, i) => (i < 3 ? Math.min(255, Math.round(v)) : Math.min(1, v)));
    return null;
  };
  const colorText = ([r, gg, b, a]) => (a === 1 ? "#" + [r, gg, b].map((x) => x.toString(16).padStart(2, "0")).join("") : `rgba(${r}, ${gg}, ${b}, ${a})`);
  class ImageData {
    constructor(a, b, c) {
      own(this);
      if (a instanceof Uint8ClampedArray) { st(this).data = a; st(this).width = b; st(this).height = c || a.length / 4 / b; }
      else { st(this).data = new Uint8ClampedArray(a * b * 4); st(this).width = a; st(this).height = b; }
    }
    get data() { return st(this).data; } get width() { return st(this).width; } get height() { return st(this).height; }
    get colorSpace() { return "srgb"; }
  }
  class TextMetrics {
    constructor(width, size) {
      own(this);
      Object.assign(st(this), { width, ascent: size * 0.73, descent: size * 0.21 });
    }
    get width() { return st(this).width; }
    get actualBoundingBoxLeft() { return 0; } get actualBoundingBoxRight() { return st(this).width; }
    get actualBoundingBoxAscent() { return st(this).ascent; } get actualBoundingBoxDescent() { return st(this).descent; }
    get fontBoundingBoxAscent() { return st(this).ascent * 1.2; } get fontBoundingBoxDescent() { return st(this).descent * 1.2; }
    get emHeightAscent() { return st(this).ascent; } get emHeightDescent() { return st(this).descent; }
    get alphabeticBaseline() { return 0; } get hangingBaseline() { return st(this).ascent * 0.8; } get ideographicBaseline() { return -st(this).descent; }
  }
  class CanvasGradient { constructor() { own(this); } addColorStop() {} }
  class CanvasPattern { constructor() { own(this); } setTransform() {} }
  const CTX_DEFAULTS = { fillStyle: "#000000", strokeStyle: "#000000", font: "10px sans-serif", globalAlpha: 1, lineWidth: 1,
    textAlign: "start", textBaseline: "alphabetic", direction: "ltr", globalCompositeOperation: "source-over", lineCap: "butt",
    lineJoin: "miter", miterLimit: 10, lineDashOffset: 0, shadowBlur: 0, shadowColor: "rgba(0, 0, 0, 0)", shadowOffsetX: 0,
    shadowOffsetY: 0, imageSmoothingEnabled: true, imageSmoothingQuality: "low", filter: "none", letterSpacing: "0px",
    wordSpacing: "0px", fontKerning: "auto", fontStretch: "normal", fontVariantCaps: "normal", textRendering: "auto" };
  class CanvasRenderingContext2D {
    constructor(canvas) {
      if (!creating) throw new TypeError("Illegal constructor");
      own(this); st(this).canvas = canvas; ctxReset(this);
    }
    get canvas() { return st(this).canvas; }
    save() { const s = st(this); s.stack.push([Object.assign({}, s.state), s.transform.slice()]); }
    restore() { const s = st(this); const t = s.stack.pop(); if (t) { s.state = t[0]; s.transform = t[1]; } }
    fillRect(x, y, w, h) { paintRect(this, x, y, w, h, st(this).state.fillStyle); }
    clearRect(x, y, w, h) { paintRect(this, x, y, w, h, null); }
    strokeRect() {}
    fillText() {} strokeText() {}
    measureText(text) {
      const size = parseFloat((/(\d+(?:\.\d+)?)px/.exec(st(this).state.font) || [0, 10])[1]);
      return new TextMetrics(String(text).length * size * 0.55, size);
    }
    getImageData(x, y, w, h) {
      const s = st(this), cw = s.canvas.width, ch = s.canvas.height;
      if (!w || !h) throw new DOMException("The source width is 0.", "IndexSizeError");
      const out = new ImageData(Math.abs(w), Math.abs(h));
      for (let j = 0; j < out.height; j++) for (let i = 0; i < out.width; i++) {
        const sx = x + i, sy = y + j;
        if (sx < 0 || sy < 0 || sx >= cw || sy >= ch) continue;
        for (let k = 0; k < 4; k++) out.data[(j * out.width + i) * 4 + k] = s.px[(sy * cw + sx) * 4 + k];
      }
      return out;
    }
    putImageData(d, x, y) {
      const s = st(this), cw = s.canvas.width, ch = s.canvas.height;
      for (let j = 0; j < d.height; j++) for (let i = 0; i < d.width; i++) {
        const tx = x + i, ty = y + j;
        if (tx < 0 || ty < 0 || tx >= cw || ty >= ch) continue;
        for (let k = 0; k < 4; k++) s.px[(ty * cw + tx) * 4 + k] = d.data[(j * d.width + i) * 4 + k];
      }
    }
    createImageData(w, h) { return typeof w === "object" ? new ImageData(w.width, w.height) : new ImageData(Math.abs(w), Math.abs(h)); }
    createLinearGradient() { return new CanvasGradient(); } createRadialGradient() { return new CanvasGradient(); }
    createConicGradient() { return new CanvasGradient(); } createPattern() { return new CanvasPattern(); }
    beginPath() {} closePath() {} moveTo() {} lineTo() {} bezierCurveTo() {} quadraticCurveTo() {} arc() {} arcTo() {}
    ellipse() {} rect() {} roundRect() {} fill() {} stroke() {} clip() {} drawImage() {} drawFocusIfNeeded() {}
    isPointInPath() { return false; } isPointInStroke() { return false; }
    setLineDash(d) { st(this).dash = Array.from(d); } getLineDash() { return (st(this).dash || []).slice(); }
    setTransform(a = 1, b = 0, c = 0, d = 1, e = 0, f = 0) { st(this).transform = [a, b, c, d, e, f]; }
    resetTransform() { st(this).transform = [1, 0, 0, 1, 0, 0]; }
    getTransform() { const [a, b, c, d, e, f] = st(this).transform; return { a, b, c, d, e, f, is2D: true, isIdentity: a === 1 && !b && !c && d === 1 && !e && !f }; }
    transform() {} translate(x, y) { const t = st(this).transform; t[4] += x; t[5] += y; } rotate() {} scale() {}
    getContextAttributes() { return { alpha: true, colorSpace: "srgb", desynchronized: false, willReadFrequently: false }; }
    isContextLost() { return false; } reset() { ctxReset(this); }
  }
  for (const k of Object.keys(CTX_DEFAULTS)) {
    Object.defineProperty(CanvasRenderingContext2D.prototype, k, {
      get: nat({ [`get ${k}`]() { return st(this).state[k]; } }[`get ${k}`]),
      set: nat({ [`set ${k}`](v) {
        const s = st(this).state;
        if (k === "fillStyle" || k === "strokeStyle" || k === "shadowColor") {
          if (v && typeof v === "object") { s[k] = v; return; }
          const c = parseColor(v); if (c) s[k] = colorText(c);
        } else if (k === "globalAlpha") { const n = Number(v); if (n >= 0 && n <= 1) s[k] = n; }
        else if (k === "lineWidth" || k === "miterLimit") { const n = Number(v); if (n > 0 && Number.isFinite(n)) s[k] = n; }
        else if (k === "font") { const f = String(v).replace(/\s+/g, " ").trim(); if (/\d(px|pt|em|rem|%)/.test(f)) s[k] = f; }
        else s[k] = typeof CTX_DEFAULTS[k] === "number" ? Number(v) : typeof CTX_DEFAULTS[k] === "boolean" ? !!v : String(v);
      } }[`set ${k}`]),
      enumerable: true, configurable: true,
    });
  }
  const ctxReset = (ctx) => {
    const s = st(ctx);
    s.px = new Uint8ClampedArray(s.canvas.width * s.canvas.height * 4);
    s.state = Object.assign({}, CTX_DEFAULTS); s.stack = []; s.transform = [1, 0, 0, 1, 0, 0];
  };
  function paintRect(ctx, x, y, w, h, style) {
    const s = st(ctx), cw = s.canvas.width, ch = s.canvas.height;
    const c = style === null ? [0, 0, 0, 0] : typeof style === "string" ? parseColor(style) : [0, 0, 0, 1];
    const [tx, ty] = [s.transform[4], s.transform[5]];
    const x0 = Math.max(0, Math.round(x + tx)), y0 = Math.max(0, Math.round(y + ty));
    const x1 = Math.min(cw, Math.round(x + tx + w)), y1 = Math.min(ch, Math.round(y + ty + h));
    const alpha = style === null ? 1 : c[3] * s.state.globalAlpha;
    for (let j = y0; j < y1; j++) for (let i = x0; i < x1; i++) {
      const o = (j * cw + i) * 4;
      if (style === null || alpha >= 1) { s.px[o] = c[0]; s.px[o + 1] = c[1]; s.px[o + 2] = c[2]; s.px[o + 3] = style === null ? 0 : 255; continue; }
      const da = s.px[o + 3] / 255, oa = alpha + da * (1 - alpha);
      for (let k = 0; k < 3; k++) s.px[o + k] = oa ? (c[k] * alpha + s.px[o + k] * da * (1 - alpha)) / oa : 0;
      s.px[o + 3] = oa * 255;
    }
  }
  // PNG of RGBA pixels: zlib "stored" blocks (valid, uncompressed).
  function encodePNG(w, h, px) {
    const crcTable = []; for (let n = 0; n < 256; n++) { let c = n; for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1; crcTable[n] = c >>> 0; }
    const crc = (bytes) => { let c = 0xffffffff; for (const b of bytes) c = crcTable[(c ^ b) & 255] ^ (c >>> 8); return (c ^ 0xffffffff) >>> 0; };
    const u32 = (n) => [(n >>> 24) & 255, (n >>> 16) & 255, (n >>> 8) & 255, n & 255];
    const chunk = (type, data) => { const td = [...type].map((ch) => ch.charCodeAt(0)).concat(data); return u32(data.length).concat(td, u32(crc(td))); };
    const raw = [];
    for (let y = 0; y < h; y++) { raw.push(0); for (let i = y * w * 4; i < (y + 1) * w * 4; i++) raw.push(px[i]); }
    const z = [0x78, 0x01];
    for (let i = 0; i < raw.length || i === 0; i += 65535) {
      const part = raw.slice(i, i + 65535), last = i + 65535 >= raw.length;
      z.push(last ? 1 : 0, part.length & 255, part.length >> 8, ~part.length & 255, (~part.length >> 8) & 255);
      for (const b of part) z.push(b);
      if (last) break;
    }
    let a1 = 1, a2 = 0; for (const b of raw) { a1 = (a1 + b) % 65521; a2 = (a2 + a1) % 65521; }
    z.push(...u32(((a2 << 16) | a1) >>> 0));
    const bytes = [137, 80, 78, 71, 13, 10, 26, 10].concat(chunk("IHDR", u32(w).concat(u32(h), [8, 6, 0, 0, 0])), chunk("IDAT", z), chunk("IEND", []));
    let out = ""; for (const b of bytes) out += String.fromCharCode(b);
    return out;
  }

  const tagClasses = { canvas: HTMLCanvasElement, iframe: HTMLIFrameElement, script: HTMLScriptElement, img: HTMLImageElement };
  // Every other HTML tag gets its interface (HTMLDivElement, ...) so objects stringify as in a
  // browser; unknown tags are HTMLUnknownElement, custom (dashed) ones plain HTMLElement.
  const tagInterfaces = {
    a: "Anchor", abbr: "", address: "", area: "Area", article: "", aside: "", audio: "Audio", b: "", base: "Base",
    body: "Body", br: "BR", button: "Button", code: "", data: "Data", datalist: "DataList", dd: "", details: "Details",
    dialog: "Dialog", div: "Div", dl: "DList", dt: "", em: "", embed: "Embed", fieldset: "FieldSet", footer: "",
    form: "Form", h1: "Heading", h2: "Heading", h3: "Heading", h4: "Heading", h5: "Heading", h6: "Heading",
    head: "Head", header: "", hr: "HR", html: "Html", i: "", input: "Input", label: "Label", legend: "Legend",
    li: "LI", link: "Link", main: "", map: "Map", meta: "Meta", meter: "Meter", nav: "", noscript: "",
    object: "Object", ol: "OList", optgroup: "OptGroup", option: "Option", output: "Output", p: "Paragraph",
    picture: "Picture", pre: "Pre", progress: "Progress", q: "Quote", section: "", select: "Select", slot: "Slot",
    small: "", source: "Source", span: "Span", strong: "", style: "Style", sub: "", sup: "", table: "Table",
    tbody: "TableSection", td: "TableCell", template: "Template", textarea: "TextArea", tfoot: "TableSection",
    th: "TableCell", thead: "TableSection", time: "Time", title: "Title", tr: "TableRow", track: "Track", u: "",
    ul: "UList", video: "Video",
  };
  const elementClasses = {};
  const elementClassFor = (tag) => {
    const t = String(tag).toLowerCase();
    if (tagClasses[t]) return tagClasses[t];
    let name;
    if (t in tagInterfaces) name = tagInterfaces[t] ? "HTML" + tagInterfaces[t] + "Element" : "HTMLElement";
    else name = t.includes("-") ? "HTMLElement" : "HTMLUnknownElement";
    if (name === "HTMLElement") return null;
    if (!elementClasses[name]) {
      const Base = name === "HTMLVideoElement" || name === "HTMLAudioElement" ? mediaClass() : HTMLElement;
      const C = { [name]: class extends Base {} }[name];
      Object.defineProperty(C.prototype, Symbol.toStringTag, { value: name, configurable: true });
      natAll(C.prototype);
      elementClasses[name] = C;
      define(g, name, nat(C));
    }
    return elementClasses[name];
  };
  let HTMLMediaElement;
  const mediaClass = () => {
    if (!HTMLMediaElement) {
      HTMLMediaElement = class HTMLMediaElement extends HTMLElement {
        canPlayType() { return ""; } load() {} play() { return Promise.reject(new DOMException("not allowed", "NotAllowedError")); } pause() {}
      };
      Object.defineProperty(HTMLMediaElement.prototype, Symbol.toStringTag, { value: "HTMLMediaElement", configurable: true });
      natAll(HTMLMediaElement.prototype);
      define(g, "HTMLMediaElement", nat(HTMLMediaElement));
    }
    return HTMLMediaElement;
  };
  const makeElement = (tag) => building(() => {
    const C = elementClassFor(tag);
    return C ? (C === HTMLCanvasElement || C === HTMLIFrameElement || C === HTMLScriptElement || C === HTMLImageElement ? new C() : new C(tag)) : new HTMLElement(tag);
  });
  // Interface objects exist from the start, as in a browser (not when a tag is first used).
  for (const t of Object.keys(tagInterfaces)) elementClassFor(t);
  elementClassFor("blink");

  // ---- layout: a nominal one (16px text, 8px body margin), enough for the metrics pages read
  const BLOCK_TAGS = new Set(["div", "p", "section", "article", "header", "footer", "main", "nav", "aside", "h1", "h2", "h3", "h4",
    "h5", "h6", "ul", "ol", "li", "form", "pre", "table", "blockquote", "figure", "fieldset", "details", "dl", "dd", "dt", "hr", "address", "body", "html"]);
  const UNRENDERED = new Set(["head", "script", "style", "title", "meta", "link", "template", "noscript", "base"]);
  const LINE_HEIGHT = 18, CHAR_WIDTH = 8;
  const displayOf = (el) => {
    const t = el.localName, d = el.style.display;
    if (d) return d;
    if (UNRENDERED.has(t) || el.hasAttribute("hidden")) return "none";
    if (t === "li") return "list-item";
    if (t === "table") return "table";
    if (t === "canvas" || t === "img" || t === "iframe" || t === "input" || t === "button" || t === "select" || t === "video") return "inline-block";
    return BLOCK_TAGS.has(t) ? "block" : "inline";
  };
  // { x, y, w, h, block } in CSS pixels, or null when the element is not rendered.
  function layout(el) {
    if (!(el instanceof Element) || !el.isConnected) return null;
    for (let n = el; n instanceof Element; n = n.parentNode) if (displayOf(n) === "none") return null;
    const t = el.localName;
    if (t === "html") return { x: 0, y: 0, w: g.innerWidth, h: g.innerHeight, block: true };
    const parent = el.parentNode instanceof Element ? el.parentNode : null;
    const pb = t === "body" ? { x: 0, y: 0, w: g.innerWidth, h: g.innerHeight } : layout(parent) || { x: 8, y: 8, w: g.innerWidth - 16 };
    const inset = t === "body" ? 8 : 0;
    const px = (v) => (/^\d+(\.\d+)?px$/.test(v) ? parseFloat(v) : null);
    const text = el.textContent.replace(/\s+/g, " ").trim();
    const disp = displayOf(el);
    let w, h;
    if (disp === "inline-block" && (t === "canvas" || t === "img")) { w = +el.width || (t === "canvas" ? 300 : 0); h = +el.height || (t === "canvas" ? 150 : 0); }
    else if (t === "iframe") { w = 304; h = 154; }
    else if (disp === "inline") { w = text.length * CHAR_WIDTH; h = text ? LINE_HEIGHT : 0; }
    else {
      w = pb.w - 2 * inset;
      const lines = text ? Math.ceil((text.length * CHAR_WIDTH) / Math.max(1, w)) : 0;
      h = t === "body" ? Math.max(lines * LINE_HEIGHT, 0) : lines * LINE_HEIGHT;
    }
    w = px(el.style.width) ?? w; h = px(el.style.height) ?? h;
    return { x: pb.x + inset, y: pb.y + inset, w, h, block: disp !== "inline" };
  }
  class DOMRectReadOnly {
    constructor(x = 0, y = 0, width = 0, height = 0) { own(this); Object.assign(st(this), { x: +x, y: +y, width: +width, height: +height }); }
    get x() { return st(this).x; } get y() { return st(this).y; } get width() { return st(this).width; } get height() { return st(this).height; }
    get top() { return Math.min(this.y, this.y + this.height); } get left() { return Math.min(this.x, this.x + this.width); }
    get bottom() { return Math.max(this.y, this.y + this.height); } get right() { return Math.max(this.x, this.x + this.width); }
    toJSON() { const { x, y, width, height, top, right, bottom, left } = this; return { x, y, width, height, top, right, bottom, left }; }
  }
  class DOMRect extends DOMRectReadOnly {}
  const DOMRectList = iface("DOMRectList", Array.prototype);

  // ---- HTML text: a small parser for innerHTML and its serialisation
  const VOID_TAGS = new Set(["area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"]);
  const ENTITIES = { amp: "&", lt: "<", gt: ">", quot: '"', apos: "'", nbsp: "\u00a0" };
  const decodeEntities = (t) => t.replace(/&(#x[0-9a-f]+|#\d+|[a-z]+);/gi, (m, e) =>
    e[0] === "#" ? String.fromCodePoint(e[1] === "x" || e[1] === "X" ? parseInt(e.slice(2), 16) : +e.slice(1)) : ENTITIES[e.toLowerCase()] ?? m);
  function parseHTML(html, parent) {
    const re = /<!--([\s\S]*?)-->|<\/([a-zA-Z][\w-]*)\s*>|<([a-zA-Z][\w-]*)((?:\s+[^\s"'>\/=]+(?:\s*=\s*(?:"[^"]*"|'[^']*'|[^\s>]+))?)*)\s*(\/?)>|([^<]+|<)/g;
    const stack = [parent];
    let m;
    while ((m = re.exec(html))) {
      const top = stack[stack.length - 1];
      if (m[1] !== undefined) top.appendChild(new Comment(m[1]));
      else if (m[2]) {
        const t = m[2].toLowerCase();
        for (let i = stack.length - 1; i > 0; i--) if (stack[i].localName === t) { stack.length = i; break; }
      } else if (m[3]) {
        const el = makeElement(m[3]);
        const ar = /([^\s"'>\/=]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+)))?/g;
        let a;
        while ((a = ar.exec(m[4]))) el.setAttribute(a[1], decodeEntities(a[2] ?? a[3] ?? a[4] ?? ""));
        top.appendChild(el);
        if (!m[5] && !VOID_TAGS.has(el.localName)) stack.push(el);
      } else top.appendChild(new Text(decodeEntities(m[6])));
    }
  }
  const escText = (t) => t.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/\u00a0/g, "&nbsp;");
  const escAttr = (t) => t.replace(/&/g, "&amp;").replace(/"/g, "&quot;").replace(/\u00a0/g, "&nbsp;");
  function serialize(n) {
    if (n.nodeType === 3) return n.parentNode && /^(script|style)$/.test(n.parentNode.localName) ? n.data : escText(n.data);
    if (n.nodeType === 8) return `<!--${n.data}-->`;
    if (n.nodeType !== 1) return n.childNodes.map(serialize).join("");
    const attrs = n.attributes.map((a) => ` ${a.name}="${escAttr(a.value)}"`).join("");
    if (VOID_TAGS.has(n.localName)) return `<${n.localName}${attrs}>`;
    return `<${n.localName}${attrs}>${n.childNodes.map(serialize).join("")}</${n.localName}>`;
  }
  // Inline style: known CSS properties read as "" until set; unknown names are undefined, as
  // in a browser (feature detection such as `"x" in style` or `style.x !== undefined` relies
  // on it).
  const CSS_PROPERTIES = ("accentColor alignContent alignItems alignSelf all animation animationDelay animationDirection " +
    "animationDuration animationFillMode animationIterationCount animationName animationPlayState animationTimingFunction " +
    "appearance aspectRatio backdropFilter backfaceVisibility background backgroundAttachment backgroundBlendMode backgroundClip " +
    "backgroundColor backgroundImage backgroundOrigin backgroundPosition backgroundRepeat backgroundSize blockSize border " +
    "borderBottom borderBottomColor borderBottomLeftRadius borderBottomRightRadius borderBottomStyle borderBottomWidth " +
    "borderCollapse borderColor borderImage borderLeft borderLeftColor borderLeftStyle borderLeftWidth borderRadius borderRight " +
    "borderRightColor borderRightStyle borderRightWidth borderSpacing borderStyle borderTop borderTopColor borderTopLeftRadius " +
    "borderTopRightRadius borderTopStyle borderTopWidth borderWidth bottom boxShadow boxSizing breakAfter breakBefore " +
    "captionSide caretColor clear clip clipPath color columnCount columnGap columns contain containerName containerType content " +
    "counterIncrement counterReset cursor direction display emptyCells filter flex flexBasis flexDirection flexFlow flexGrow " +
    "flexShrink flexWrap float font fontFamily fontFeatureSettings fontKerning fontSize fontStretch fontStyle fontVariant " +
    "fontWeight gap grid gridArea gridAutoColumns gridAutoFlow gridAutoRows gridColumn gridRow gridTemplate gridTemplateAreas " +
    "gridTemplateColumns gridTemplateRows height hyphens imageRendering inlineSize inset isolation justifyContent justifyItems " +
    "justifySelf left letterSpacing lineHeight listStyle listStyleImage listStylePosition listStyleType margin marginBottom " +
    "marginLeft marginRight marginTop mask maxHeight maxWidth minHeight minWidth mixBlendMode objectFit objectPosition opacity " +
    "order outline outlineColor outlineOffset outlineStyle outlineWidth overflow overflowWrap overflowX overflowY " +
    "overscrollBehavior overscrollBehaviorX overscrollBehaviorY padding paddingBottom paddingLeft paddingRight paddingTop " +
    "perspective perspectiveOrigin placeContent placeItems pointerEvents position quotes resize right rotate rowGap scale " +
    "scrollBehavior scrollMargin scrollPadding scrollSnapAlign scrollSnapType scrollTimeline scrollTimelineAxis " +
    "scrollTimelineName tabSize tableLayout textAlign textDecoration textDecorationColor textDecorationLine textIndent " +
    "textOverflow textShadow textTransform top touchAction transform transformOrigin transformStyle transition " +
    "transitionDelay transitionDuration transitionProperty transitionTimingFunction translate unicodeBidi userSelect " +
    "verticalAlign visibility webkitAppearance webkitBoxOrient webkitLineClamp webkitTextFillColor webkitUserSelect " +
    "whiteSpace width willChange wordBreak wordSpacing wordWrap writingMode zIndex zoom").split(" ");
  const kebab = (p) => p.replace(/[A-Z]/g, (c) => "-" + c.toLowerCase()).replace(/^webkit-/, "-webkit-");
  class CSSStyleDeclaration {
    constructor() { own(this).v = new Map(); }
    get length() { return st(this).v.size; }
    item(i) { return [...st(this).v.keys()][i] || ""; }
    getPropertyValue(p) { return st(this).v.get(String(p)) || ""; }
    getPropertyPriority() { return ""; }
    setProperty(p, v) { if (v === null || v === "") st(this).v.delete(String(p)); else st(this).v.set(String(p), String(v)); }
    removeProperty(p) { const v = this.getPropertyValue(p); st(this).v.delete(String(p)); return v; }
    get cssText() { return [...st(this).v].map(([a, b]) => `${a}: ${b};`).join(" "); }
    set cssText(t) { st(this).v.clear(); for (const decl of String(t).split(";")) { const i = decl.indexOf(":"); if (i > 0) st(this).v.set(decl.slice(0, i).trim(), decl.slice(i + 1).trim()); } }
    get cssFloat() { return this.getPropertyValue("float"); } set cssFloat(v) { this.setProperty("float", v); }
  }
  for (const prop of CSS_PROPERTIES) {
    const name = kebab(prop);
    Object.defineProperty(CSSStyleDeclaration.prototype, prop, {
      get: nat({ [`get ${prop}`]() { return this.getPropertyValue(name); } }[`get ${prop}`]),
      set: nat({ [`set ${prop}`](v) { this.setProperty(name, v); } }[`set ${prop}`]),
      enumerable: true, configurable: true,
    });
  }
  tag(CSSStyleDeclaration, "CSSStyleDeclaration"); idl(CSSStyleDeclaration.prototype);
  g.CSSStyleDeclaration = nat(CSSStyleDeclaration);
  function createStyle() { return new CSSStyleDeclaration(); }
  const DOMTokenList = iface("DOMTokenList");
  function createClassList(el) {
    const list = () => el.className.split(/\s+/).filter(Boolean);
    return Object.setPrototypeOf({
      add(...c) { el.className = [...new Set([...list(), ...c])].join(" "); },
      remove(...c) { el.className = list().filter((x) => !c.includes(x)).join(" "); },
      contains(c) { return list().includes(c); },
      toggle(c) { if (this.contains(c)) { this.remove(c); return false; } this.add(c); return true; },
      get length() { return list().length; },
      item(i) { return list()[i] || null; },
      get value() { return el.className; },
    }, DOMTokenList.prototype);
  }
  function queryAll(root, pred) {
    const out = [];
    const walk = (n) => { for (const c of n.childNodes) { if (c instanceof Element && pred(c)) out.push(c); walk(c); } };
    walk(root);
    return out;
  }
  function selectorMatcher(sel) {
    const alts = String(sel).split(",").map((s) => s.trim().split(/\s+/).pop());
    return (e) => alts.some((s) => {
      const m = /^([a-zA-Z0-9*-]*)(#[\w-]+)?((?:\.[\w-]+)*)(\[[^\]]+\])?$/.exec(s);
      if (!m) return false;
      if (m[1] && m[1] !== "*" && e.tagName !== m[1].toUpperCase()) return false;
      if (m[2] && e.id !== m[2].slice(1)) return false;
      if (m[3]) for (const c of m[3].split(".").filter(Boolean)) if (!e.classList.contains(c)) return false;
      if (m[4]) { const [k, v] = m[4].slice(1, -1).split("="); const a = e.getAttribute(k); if (a === null || (v !== undefined && a !== v.replace(/^["']|["']$/g, ""))) return false; }
      return true;
    });
  }
  const FontFaceSet = iface("FontFaceSet", EventTarget.prototype);
  const documentLocation = nat({ get location() { return g.location; } }.__lookupGetter__("location"));
  class Document extends Node {
    constructor() {
      super();
      this.nodeType = 9; this.nodeName = "#document";
      this.documentElement = makeElement("html");
      this.documentElement.setAttribute("lang", "en");
      this.head = makeElement("head"); this.body = makeElement("body");
      const title = makeElement("title"); this.head.appendChild(title);
      this.documentElement.appendChild(this.head); this.documentElement.appendChild(this.body);
      this.doctype = new DocumentType("html");
      this.appendChild(this.doctype);
      this.appendChild(this.documentElement);
      st(this).cookies = new Map();
      // location is the document's one own ("unforgeable") member.
      Object.defineProperty(this, "location", { get: documentLocation, set: nat({ set location(v) {} }.__lookupSetter__("location")), enumerable: true, configurable: false });
      this.readyState = "complete"; this.visibilityState = "visible"; this.hidden = false;
      this.referrer = "https://www.youtube.com/"; this.title = ""; this.characterSet = "UTF-8";
      this.charset = "UTF-8"; this.inputEncoding = "UTF-8";
      this.compatMode = "CSS1Compat"; this.contentType = "text/html"; this.dir = "ltr";
      this.domain = "www.youtube.com"; this.currentScript = null; this.activeElement = this.body;
      this.fonts = Object.setPrototypeOf({ ready: Promise.resolve(), status: "loaded", size: 0, check() { return true; }, load() { return Promise.resolve([]); } }, FontFaceSet.prototype);
      const d = new Date(), two = (n) => String(n).padStart(2, "0");
      this.lastModified = `${two(d.getMonth() + 1)}/${two(d.getDate())}/${d.getFullYear()} ${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`;
    }
    get defaultView() { return g; }
    get URL() { return g.location.href; }
    get documentURI() { return g.location.href; }
    get scrollingElement() { return this.documentElement; }
    get cookie() { return [...st(this).cookies].map(([k, v]) => `${k}=${v}`).join("; "); }
    set cookie(v) {
      const first = String(v).split(";")[0];
      const i = first.indexOf("=");
      if (i > 0) st(this).cookies.set(first.slice(0, i).trim(), first.slice(i + 1).trim());
    }
    createElement(tag) { return makeElement(tag); }
    createElementNS(ns, tag) { return this.createElement(tag); }
    createTextNode(t) { return new Text(t); }
    createComment(t) { return new Comment(t); }
    createDocumentFragment() { return new DocumentFragment(); }
    createEvent(type) {
      const C = createEventTypes[String(type).toLowerCase()];
      if (!C) throw new DOMException(`The provided event type ("${type}") is invalid`, "NotSupportedError");
      return new C("");
    }
    getElementById(id) { return queryAll(this, (e) => e.id === id)[0] || null; }
    getElementsByTagName(t) { return htmlCollection(queryAll(this, (e) => t === "*" || e.tagName === String(t).toUpperCase())); }
    getElementsByClassName(c) { return htmlCollection(queryAll(this, (e) => e.className.split(/\s+/).includes(c))); }
    getElementsByName(n) { return nodeList(queryAll(this, (e) => e.getAttribute("name") === n)); }
    querySelector(s) { return queryAll(this, selectorMatcher(s))[0] || null; }
    querySelectorAll(s) { return nodeList(queryAll(this, selectorMatcher(s))); }
    hasFocus() { return true; }
    execCommand() { return false; }
    elementFromPoint() { return null; }
  }
  slots(Document.prototype, ["documentElement", "head", "body", "doctype", "readyState", "visibilityState", "hidden", "referrer",
    "title", "characterSet", "charset", "inputEncoding", "compatMode", "contentType", "dir", "domain", "currentScript",
    "activeElement", "fonts", "lastModified"]);
  const domClasses = [Node, CharacterData, Text, Comment, DocumentType, Element, HTMLElement, DocumentFragment, HTMLCanvasElement,
    HTMLIFrameElement, HTMLScriptElement, HTMLImageElement, Document, CanvasRenderingContext2D, ImageData, TextMetrics,
    CanvasGradient, CanvasPattern, DOMRectReadOnly, DOMRect];
  for (const C of domClasses) { tag(C, C.name); idl(C.prototype); define(g, C.name, nat(C)); }
  define(g, "Image", nat(function Image(w, h) { return building(() => new HTMLImageElement(w, h)); }));
  class HTMLDocument extends Document {}
  tag(HTMLDocument, "HTMLDocument"); idl(HTMLDocument.prototype);
  define(g, "HTMLDocument", nat(HTMLDocument));
  const theDocument = new HTMLDocument();
  g.document = theDocument;

  // ---- location, navigator, screen, storage ----------------------------------------------
  const loc = {
    href: "https://www.youtube.com/", origin: "https://www.youtube.com", protocol: "https:",
    host: "www.youtube.com", hostname: "www.youtube.com", port: "", pathname: "/", search: "", hash: "",
    ancestorOrigins: { length: 0, item() { return null; }, contains() { return false; } },
    assign() {}, replace() {}, reload() {}, toString() { return this.href; },
  };
  natAll(loc);
  g.location = loc;

  // The PDF viewer's plugins, as every browser with one lists them (HTML's fixed list).
  const PluginArray = iface("PluginArray"), Plugin = iface("Plugin"), MimeTypeArray = iface("MimeTypeArray"), MimeType = iface("MimeType");
  const mimeTypes = Object.setPrototypeOf(["application/pdf", "text/pdf"].map((type) => Object.setPrototypeOf({ type, suffixes: "pdf", description: "Portable Document Format" }, MimeType.prototype)), MimeTypeArray.prototype);
  const plugins = Object.setPrototypeOf(["PDF Viewer", "Chrome PDF Viewer", "Chromium PDF Viewer", "Microsoft Edge PDF Viewer", "WebKit built-in PDF"].map((name) =>
    Object.setPrototypeOf(Object.assign(Array.prototype.slice.call(mimeTypes), { name, filename: "internal-pdf-viewer", description: "Portable Document Format" }), Plugin.prototype)), PluginArray.prototype);
  for (const [C, extra] of [[PluginArray, { refresh() {} }], [MimeTypeArray, {}], [Plugin, {}]]) {
    Object.assign(C.prototype, { item(i) { return this[i >>> 0] ?? null; }, namedItem(n) { return Array.prototype.find.call(this, (x) => x.name === n || x.type === n) || null; } }, extra);
    Object.defineProperty(C.prototype, "length", { get: nat({ get length() { return Array.prototype.slice.call(this).length; } }.__lookupGetter__("length")), enumerable: true, configurable: true });
    idl(C.prototype);
  }
  for (const C of [PluginArray, MimeTypeArray, Plugin]) define(C.prototype, Symbol.iterator, Array.prototype.values);
  for (const p of mimeTypes) p.enabledPlugin = plugins[0];
  const MediaDevices = iface("MediaDevices", EventTarget.prototype);
  const nav = {
    userAgent: ua, appVersion: ua.replace(/^Mozilla\//, ""), appName: "Netscape", appCodeName: "Mozilla", product: "Gecko",
    productSub: "20030107", vendor: navVendor, vendorSub: "", platform: navPlatform,
    language: "en-US", languages: Object.freeze(["en-US", "en"]), onLine: true, cookieEnabled: true,
    webdriver: false, hardwareConcurrency: 8, maxTouchPoints: 0, doNotTrack: null, pdfViewerEnabled: true,
    plugins, mimeTypes,
    javaEnabled() { return false; }, sendBeacon() { return true; }, vibrate() { return false; },
    getGamepads() { return []; },
    mediaDevices: Object.setPrototypeOf({ enumerateDevices: () => Promise.resolve([]), getUserMedia: () => Promise.reject(new DOMException("Permission denied", "NotAllowedError")) }, MediaDevices.prototype),
    permissions: { query: () => Promise.resolve({ state: "prompt", onchange: null }) },
    storage: { estimate: () => Promise.resolve({ quota: 1e10, usage: 0 }) },
    clipboard: {}, credentials: {}, geolocation: {},
  };
  if (isChrome) {
    // Chromium-only members, and User-Agent Client Hints consistent with the user agent.
    nav.deviceMemory = 8;
    nav.connection = { effectiveType: "4g", rtt: 50, downlink: 10, saveData: false, onchange: null };
    const NavigatorUAData = iface("NavigatorUAData");
    const brands = [{ brand: "Chromium", version: chromeMajor }, { brand: "Not)A;Brand", version: "24" }, { brand: "Google Chrome", version: chromeMajor }];
    const uaPlatform = os;
    const data = { brands, mobile: os === "Android", platform: uaPlatform };
    for (const k of ["brands", "mobile", "platform"]) {
      Object.defineProperty(NavigatorUAData.prototype, k, { get: nat({ [`get ${k}`]() { return k === "brands" ? data.brands.map((b) => Object.assign({}, b)) : data[k]; } }[`get ${k}`]), enumerable: true, configurable: true });
    }
    const full = (/Chrome\/([\d.]+)/.exec(ua) || [])[1] || chromeMajor + ".0.0.0";
    Object.assign(NavigatorUAData.prototype, {
      getHighEntropyValues(hints) {
        const all = { architecture: "x86", bitness: "64", model: "", platformVersion: os === "Windows" ? "10.0.0" : os === "macOS" ? "10.15.7" : "6.1.0",
          uaFullVersion: full, fullVersionList: brands.map((b) => ({ brand: b.brand, version: b.brand === "Not)A;Brand" ? "24.0.0.0" : full })), wow64: false, formFactors: ["Desktop"] };
        if (os === "Linux") { all.architecture = ""; all.bitness = ""; }
        const out = { brands: data.brands.map((b) => Object.assign({}, b)), mobile: data.mobile, platform: uaPlatform };
        for (const h of hints || []) if (h in all) out[h] = all[h];
        return Promise.resolve(out);
      },
      toJSON() { return { brands: data.brands, mobile: data.mobile, platform: data.platform }; },
    });
    idl(NavigatorUAData.prototype);
    nav.userAgentData = Object.create(NavigatorUAData.prototype);
  }
  g.navigator = natAll(nav);
  g.clientInformation = g.navigator;

  g.screen = { width: 1512, height: 982, availWidth: 1512, availHeight: 944, availLeft: 0, availTop: 38,
    colorDepth: 30, pixelDepth: 30, orientation: { type: "landscape-primary", angle: 0, addEventListener() {} } };
  g.innerWidth = 1512; g.innerHeight = 823; g.outerWidth = 1512; g.outerHeight = 944;
  g.devicePixelRatio = 2; g.screenX = 0; g.screenY = 38; g.screenLeft = 0; g.screenTop = 38;
  g.pageXOffset = 0; g.pageYOffset = 0; g.scrollX = 0; g.scrollY = 0;
  g.scrollTo = nat(function scrollTo() {}); g.scroll = nat(function scroll() {}); g.scrollBy = nat(function scrollBy() {});
  g.focus = nat(function focus() {}); g.blur = nat(function blur() {});
  g.alert = nat(function alert() {}); g.confirm = nat(function confirm() { return false; }); g.prompt = nat(function prompt() { return null; });
  g.open = nat(function open() { return null; }); g.close = nat(function close() {}); g.print = nat(function print() {});
  // window.postMessage delivers a MessageEvent to the window as a task, like a browser.
  g.postMessage = nat(function postMessage(data) {
    const clone = data === undefined ? undefined : JSON.parse(JSON.stringify(data) ?? "null");
    g.setTimeout(() => g.dispatchEvent(new MessageEvent("message", { data: clone, origin: g.location.origin, source: g })), 0);
  });
  // Computed style: the element's own declarations over the defaults a page reads most.
  g.getComputedStyle = nat(function getComputedStyle(el) {
    if (!(el instanceof Element)) throw new TypeError("Failed to execute 'getComputedStyle' on 'Window': parameter 1 is not of type 'Element'.");
    const cs = createStyle();
    const b = layout(el);
    const defaults = { display: displayOf(el), visibility: "visible", position: "static", color: "rgb(0, 0, 0)", "font-size": "16px",
      "font-weight": "400", "font-style": "normal", opacity: "1", "background-color": "rgba(0, 0, 0, 0)",
      width: b ? b.w + "px" : "auto", height: b ? b.h + "px" : "auto", "box-sizing": "content-box", float: "none", overflow: "visible" };
    for (const [k, v] of Object.entries(defaults)) cs.setProperty(k, v);
    for (let i = 0; i < el.style.length; i++) { const k = el.style.item(i); cs.setProperty(k, el.style.getPropertyValue(k)); }
    return cs;
  });
  g.matchMedia = nat(function matchMedia(q) {
    return { matches: /prefers-color-scheme: light|min-width: 0|pointer: fine|hover: hover/.test(q), media: String(q),
      onchange: null, addListener() {}, removeListener() {}, addEventListener() {}, removeEventListener() {} };
  });
  g.history = natAll({ length: 1, state: null, scrollRestoration: "auto", back() {}, forward() {}, go() {}, pushState() {}, replaceState() {} });

  class Storage {
    constructor() { throw new TypeError("Illegal constructor"); }
    get length() { return st(this).m.size; }
    key(i) { return [...st(this).m.keys()][i] ?? null; }
    getItem(k) { const m = st(this).m; return m.has(String(k)) ? m.get(String(k)) : null; }
    setItem(k, v) { st(this).m.set(String(k), String(v)); }
    removeItem(k) { st(this).m.delete(String(k)); }
    clear() { st(this).m.clear(); }
  }
  idl(Storage.prototype);
  define(g, "Storage", nat(Storage));
  // Stored items are the storage's own properties (localStorage.key, Object.keys(localStorage)).
  const makeStorage = () => {
    const target = Object.create(Storage.prototype);
    const m = new Map();
    const p = new Proxy(target, {
      get(t, k, r) { return typeof k === "string" && !(k in t) && m.has(k) ? m.get(k) : Reflect.get(t, k, r); },
      set(t, k, v, r) { if (typeof k === "string" && !(k in t)) { m.set(k, String(v)); return true; } return Reflect.set(t, k, v, r); },
      has(t, k) { return (typeof k === "string" && m.has(k)) || k in t; },
      deleteProperty(t, k) { if (typeof k === "string" && m.has(k)) { m.delete(k); return true; } return Reflect.deleteProperty(t, k); },
      ownKeys(t) { return [...m.keys(), ...Reflect.ownKeys(t)]; },
      getOwnPropertyDescriptor(t, k) {
        if (typeof k === "string" && m.has(k)) return { value: m.get(k), writable: true, enumerable: true, configurable: true };
        return Reflect.getOwnPropertyDescriptor(t, k);
      },
    });
    S.set(p, { m });
    return p;
  };
  g.localStorage = makeStorage(); g.sessionStorage = makeStorage();

  // ---- misc web APIs BotGuard or its loaders may touch -----------------------------------
  g.console = g.console || {};
  if (!Object.prototype.hasOwnProperty.call(g.console, Symbol.toStringTag)) Object.defineProperty(g.console, Symbol.toStringTag, { value: "console", configurable: true });
  for (const lvl of ["log", "info", "warn", "error", "debug", "trace"]) {
    g.console[lvl] = method(lvl, 0, function (...a) { __pp_log(lvl, a.map((x) => { try { return typeof x === "string" ? x : JSON.stringify(x); } catch (e) { return String(x); } }).join(" ")); });
  }
  class MutationObserver { constructor(cb) { this.cb = cb; } observe() {} disconnect() {} takeRecords() { return []; } }
  class ResizeObserver { constructor(cb) { this.cb = cb; } observe() {} unobserve() {} disconnect() {} }
  class IntersectionObserver { constructor(cb) { this.cb = cb; } observe() {} unobserve() {} disconnect() {} takeRecords() { return []; } }
  class PerformanceObserver { constructor(cb) { this.cb = cb; } observe() {} disconnect() {} takeRecords() { return []; } }
  PerformanceObserver.supportedEntryTypes = [];
  for (const C of [MutationObserver, ResizeObserver, IntersectionObserver, PerformanceObserver]) { natAll(C.prototype); g[C.name] = nat(C); }
  class MessagePort extends EventTarget { postMessage(d) { const o = this._other; if (o) g.setTimeout(() => o.dispatchEvent(Object.assign(new Event("message"), { data: d })), 0); } start() {} close() {} }
  class MessageChannel { constructor() { this.port1 = new MessagePort(); this.port2 = new MessagePort(); this.port1._other = this.port2; this.port2._other = this.port1; } }
  g.MessageChannel = nat(MessageChannel); g.MessagePort = nat(MessagePort);
  class Blob { constructor(parts = [], opts = {}) { this._parts = parts; this.type = opts.type || ""; this.size = parts.reduce((n, p) => n + (p.length || p.byteLength || 0), 0); } }
  g.Blob = nat(Blob);
  g.URL = g.URL || nat(class URL {
    constructor(u, base) {
      const s = String(u);
      const m = /^([a-z][a-z0-9+.-]*:)\/\/([^/?#]*)([^?#]*)(\?[^#]*)?(#.*)?$/i.exec(s) ||
        /^([a-z][a-z0-9+.-]*:)\/\/([^/?#]*)([^?#]*)(\?[^#]*)?(#.*)?$/i.exec(String(base || "https://www.youtube.com").replace(/\/$/, "") + (s.startsWith("/") ? s : "/" + s));
      if (!m) throw new TypeError("Invalid URL");
      this.protocol = m[1].toLowerCase(); this.host = m[2]; this.hostname = m[2].split(":")[0]; this.port = m[2].split(":")[1] || "";
      this.pathname = m[3] || "/"; this.search = m[4] || ""; this.hash = m[5] || ""; this.origin = this.protocol + "//" + this.host;
      this.href = this.origin + this.pathname + this.search + this.hash;
      this.searchParams = { get: (k) => { const r = new RegExp("[?&]" + k + "=([^&]*)").exec(this.search); return r ? decodeURIComponent(r[1]) : null; } };
    }
    toString() { return this.href; }
    static createObjectURL() { return "blob:https://www.youtube.com/" + g.crypto.randomUUID(); }
    static revokeObjectURL() {}
  });
  g.XMLHttpRequest = nat(class XMLHttpRequest extends EventTarget {
    open() {} setRequestHeader() {} abort() {} getAllResponseHeaders() { return ""; } getResponseHeader() { return null; }
    send() { this.readyState = 4; this.status = 0; g.setTimeout(() => this.dispatchEvent(new Event("error")), 0); }
  });
  g.fetch = nat(function fetch() { return Promise.reject(new TypeError("Failed to fetch")); });
  g.Worker = undefined; g.SharedWorker = undefined;
  g.trustedTypes = undefined;
  // WebRTC's surface (no network: no candidates are ever gathered).
  class RTCPeerConnection extends EventTarget {
    constructor() { super(); Object.assign(own(this), { local: null, remote: null }); }
    createDataChannel(label) { return { label, readyState: "connecting", close() {}, send() {} }; }
    createOffer() { return Promise.resolve({ type: "offer", sdp: "v=0\r\n" }); }
    createAnswer() { return Promise.resolve({ type: "answer", sdp: "v=0\r\n" }); }
    setLocalDescription(d) { st(this).local = d; return Promise.resolve(); }
    setRemoteDescription(d) { st(this).remote = d; return Promise.resolve(); }
    get localDescription() { return st(this).local; } get remoteDescription() { return st(this).remote; }
    addIceCandidate() { return Promise.resolve(); } getStats() { return Promise.resolve(new Map()); }
    getSenders() { return []; } getReceivers() { return []; } getTransceivers() { return []; } close() {}
    get iceGatheringState() { return "new"; } get connectionState() { return "new"; } get signalingState() { return "stable"; }
  }
  tag(RTCPeerConnection, "RTCPeerConnection"); idl(RTCPeerConnection.prototype);
  define(g, "RTCPeerConnection", nat(RTCPeerConnection));
  if (isChrome) {
    g.chrome = { app: { isInstalled: false, InstallState: { DISABLED: "disabled", INSTALLED: "installed", NOT_INSTALLED: "not_installed" },
      RunningState: { CANNOT_RUN: "cannot_run", READY_TO_RUN: "ready_to_run", RUNNING: "running" },
      getDetails: method("getDetails", 0, () => null), getIsInstalled: method("getIsInstalled", 0, () => false), runningState: method("runningState", 0, () => "cannot_run") },
      csi: method("csi", 0, () => ({ startE: timeOrigin, onloadT: timeOrigin + 120, pageT: g.performance.now(), tran: 15 })),
      loadTimes: method("loadTimes", 0, () => ({ requestTime: timeOrigin / 1000, startLoadTime: timeOrigin / 1000, commitLoadTime: timeOrigin / 1000 + 0.05,
        finishDocumentLoadTime: timeOrigin / 1000 + 0.1, finishLoadTime: timeOrigin / 1000 + 0.12, firstPaintTime: timeOrigin / 1000 + 0.08,
        firstPaintAfterLoadTime: 0, navigationType: "Other", wasFetchedViaSpdy: true, wasNpnNegotiated: true, npnNegotiatedProtocol: "h2",
        wasAlternateProtocolAvailable: false, connectionInfo: "h2" })) };
    g.webkitRTCPeerConnection = g.RTCPeerConnection;
    g.webkitRequestAnimationFrame = g.requestAnimationFrame; g.webkitCancelAnimationFrame = g.cancelAnimationFrame;
    g.onwebkitanimationend = null; g.onwebkitanimationiteration = null; g.onwebkitanimationstart = null; g.onwebkittransitionend = null;
  }
  g.onerror = null; g.onload = null; g.onunhandledrejection = null;

  // ---- interfaces ------------------------------------------------------------------------
  // In a browser these objects are instances of interfaces: members live on the prototype
  // (data as getters), the prototype carries Symbol.toStringTag, and the constructor throws
  // "Illegal constructor". Scripts probe exactly that (Object.prototype.toString, own keys).
  for (const [C, name] of [[EventTarget, "EventTarget"], [Event, "Event"], [CustomEvent, "CustomEvent"], [Node, "Node"],
    [Text, "Text"], [Element, "Element"], [HTMLElement, "HTMLElement"], [DocumentFragment, "DocumentFragment"],
    [HTMLCanvasElement, "HTMLCanvasElement"], [HTMLIFrameElement, "HTMLIFrameElement"], [HTMLScriptElement, "HTMLScriptElement"],
    [HTMLImageElement, "HTMLImageElement"], [Document, "Document"], [HTMLDocument, "HTMLDocument"], [Storage, "Storage"],
    [MutationObserver, "MutationObserver"], [MessageChannel, "MessageChannel"], [MessagePort, "MessagePort"], [Blob, "Blob"],
    [TextEncoder, "TextEncoder"], [TextDecoder, "TextDecoder"], [DOMException, "DOMException"]]) tag(C, name);
  const rebrand = (obj, name, parentProto) => {
    const C = iface(name, parentProto);
    for (const k of Object.getOwnPropertyNames(obj)) {
      const d = Object.getOwnPropertyDescriptor(obj, k);
      if ("value" in d && typeof d.value !== "function") {
        const v = d.value;
        // Getters check their receiver, as WebIDL's do ("Illegal invocation").
        const get = nat({ [`get ${k}`]() { if (!(this instanceof C)) throw illegal(); return v; } }[`get ${k}`]);
        Object.defineProperty(C.prototype, k, { get, enumerable: true, configurable: true });
      } else {
        Object.defineProperty(C.prototype, k, Object.assign(d, { enumerable: true }));
      }
      delete obj[k];
    }
    Object.setPrototypeOf(obj, C.prototype);
    return obj;
  };
  rebrand(g.navigator, "Navigator");
  rebrand(g.screen, "Screen", EventTarget.prototype);
  rebrand(g.history, "History");
  if (isChrome) g.performance.memory = Object.setPrototypeOf(g.performance.memory, iface("MemoryInfo").prototype);
  else delete g.performance.memory;
  rebrand(g.performance, "Performance", EventTarget.prototype);
  rebrand(g.crypto, "Crypto");
  // Location's members are own ("unforgeable") in browsers: accessors and methods on the
  // object itself, none of them configurable.
  {
    const l = g.location;
    for (const k of Object.getOwnPropertyNames(l)) {
      const d = Object.getOwnPropertyDescriptor(l, k);
      if (typeof d.value === "function") { Object.defineProperty(l, k, { value: d.value, writable: false, enumerable: true, configurable: false }); continue; }
      let v = d.value;
      const get = nat({ [`get ${k}`]() { return v; } }[`get ${k}`]);
      const set = k === "origin" || k === "ancestorOrigins" ? undefined : nat({ [`set ${k}`](x) { if (k === "hash") v = String(x); } }[`set ${k}`]);
      Object.defineProperty(l, k, { get, set, enumerable: true, configurable: false });
    }
    Object.setPrototypeOf(l, iface("Location").prototype);
  }
  // window -> Window.prototype -> WindowProperties (named properties) -> EventTarget.prototype
  const WindowProperties = Object.create(EventTarget.prototype, { [Symbol.toStringTag]: { value: "WindowProperties", configurable: true } });
  const Window = iface("Window", WindowProperties);
  Object.setPrototypeOf(g, Window.prototype);
  // The window's own accessors, with the attributes WebIDL gives them.
  {
    const acc = (name, get, setter, configurable) => Object.defineProperty(g, name, {
      get: nat({ [`get ${name}`]() { return get(); } }[`get ${name}`]),
      set: setter ? nat({ [`set ${name}`](v) { setter(v); } }[`set ${name}`]) : undefined,
      enumerable: true, configurable,
    });
    const doc = g.document, navi = g.navigator, loc = g.location;
    let selfValue = g;
    acc("window", () => g, null, false);
    acc("self", () => selfValue, (v) => { selfValue = v; }, true);
    acc("document", () => doc, null, false);
    acc("location", () => loc, () => {}, false);
    acc("navigator", () => navi, null, true);
    acc("length", () => frameCount, null, true);
  }
  // Globals a browser does not have in this context.
  if (isChrome && !g.crossOriginIsolated) delete g.SharedArrayBuffer;
  // Window functions: not constructors, browser arities.
  for (const [k, n] of Object.entries({ setTimeout: 1, setInterval: 1, clearTimeout: 0, clearInterval: 0, queueMicrotask: 1,
    requestAnimationFrame: 1, cancelAnimationFrame: 1, requestIdleCallback: 1, cancelIdleCallback: 1, btoa: 1, atob: 1, fetch: 1,
    scrollTo: 0, scroll: 0, scrollBy: 0, focus: 0, blur: 0, alert: 0, confirm: 0, prompt: 0, open: 0, close: 0, print: 0,
    postMessage: 1, getComputedStyle: 1, matchMedia: 1, webkitRequestAnimationFrame: 1, webkitCancelAnimationFrame: 1 })) {
    if (typeof g[k] === "function") g[k] = method(k, n, g[k]);
  }
  // ---- V8's error stacks: "Error: message" then "    at fn (url:line:col)". Our own frames
  // (env.js, flow.js) are left out as a browser leaves out its native code.
  {
    const origin = g.location.href;
    const frame = (c) => {
      const file = c.getFileName(), fn = c.getFunctionName();
      if (c.isNative()) return `    at ${fn || "<anonymous>"} (<anonymous>)`;
      if (file && /^potproxy-/.test(file)) return null;
      const url = file && /^(https?|file|blob|data|chrome-extension):/.test(file) ? file : origin;
      const where = c.getLineNumber() == null ? url : `${url}:${c.getLineNumber()}:${c.getColumnNumber()}`;
      return fn && fn !== "<anonymous>" ? `    at ${fn} (${where})` : `    at ${where}`;
    };
    Error.prepareStackTrace = (e, calls) => {
      let head;
      try { head = e instanceof Error || (e && "message" in e) ? String(e) : Object.prototype.toString.call(e); } catch (x) { head = "Error"; }
      return [head, ...calls.map(frame).filter((x) => x !== null)].join("\n");
    };
    // The engine keeps the formatter; the property itself is absent in V8 until a page sets it.
    delete Error.prepareStackTrace;
  }

  // ---- Intl (QuickJS has none): en-US formats, the host's time zone ------------------------
  if (typeof g.Intl === "undefined") {
    const offsetMin = (d) => d.getTimezoneOffset();
    const zoneName = host.timeZone || (offsetMin(new Date(Date.UTC(2020, 0, 1))) === 0 && offsetMin(new Date(Date.UTC(2020, 6, 1))) === 0 ? "UTC" : "UTC");
    const pickLocale = (l) => { const x = Array.isArray(l) ? l[0] : l; return x ? String(x).replace("_", "-") : "en-US"; };
    const SEPARATORS = { de: [".", ","], fr: ["\u202f", ","], es: [".", ","], it: [".", ","], pt: [".", ","], ru: ["\u00a0", ","], nl: [".", ","] };
    const formatNumber = (n, locale, o = {}) => {
      n = Number(n);
      if (Number.isNaN(n)) return "NaN";
      const [group, dec] = SEPARATORS[locale.split("-")[0]] || [",", "."];
      let style = o.style || "decimal";
      if (style === "percent") n *= 100;
      const maxF = o.maximumFractionDigits ?? (style === "currency" ? 2 : style === "percent" ? 0 : 3);
      const minF = o.minimumFractionDigits ?? (style === "currency" ? 2 : 0);
      if (!Number.isFinite(n)) return (n < 0 ? "-" : "") + "∞";
      const neg = n < 0 || Object.is(n, -0);
      let [int, frac = ""] = Math.abs(n).toFixed(Math.min(20, maxF)).split(".");
      frac = frac.replace(/0+$/, ""); while (frac.length < minF) frac += "0";
      if (o.useGrouping !== false && !(locale.startsWith("es") && int.length <= 4)) int = int.replace(/\B(?=(\d{3})+(?!\d))/g, group);
      let out = int + (frac ? dec + frac : "");
      if (style === "percent") out += "%";
      if (style === "currency") out = ({ USD: "$", EUR: "€", GBP: "£", JPY: "¥" }[o.currency] ?? o.currency + "\u00a0") + out;
      return (neg ? "-" : "") + out;
    };
    const parts = (d, tz) => {
      const utc = tz === "UTC" || tz === "Etc/UTC" || tz === "GMT";
      return utc ? { y: d.getUTCFullYear(), mo: d.getUTCMonth(), d: d.getUTCDate(), h: d.getUTCHours(), mi: d.getUTCMinutes(), s: d.getUTCSeconds(), wd: d.getUTCDay() }
        : { y: d.getFullYear(), mo: d.getMonth(), d: d.getDate(), h: d.getHours(), mi: d.getMinutes(), s: d.getSeconds(), wd: d.getDay() };
    };
    const MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"];
    const DAYS = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];
    const formatDate = (date, o, defaults) => {
      const d = date === undefined ? new Date() : new Date(typeof date === "object" ? date.valueOf() : date);
      if (Number.isNaN(d.valueOf())) throw new RangeError("Invalid time value");
      const p = parts(d, o.timeZone || zoneName);
      const has = ["year", "month", "day", "weekday", "hour", "minute", "second"].some((k) => o[k] !== undefined) || o.dateStyle || o.timeStyle;
      const f = has ? o : Object.assign({}, o, defaults);
      const date1 = [];
      if (f.dateStyle === "long" || f.month === "long") date1.push(`${MONTHS[p.mo]} ${p.d}, ${p.y}`);
      else if (f.year || f.month || f.day || f.dateStyle) date1.push([f.month || f.dateStyle ? p.mo + 1 : null, f.day || f.dateStyle ? p.d : null, f.year || f.dateStyle ? p.y : null].filter((x) => x !== null).join("/"));
      if (f.weekday) date1.unshift(DAYS[p.wd]);
      let time = "";
      if (f.hour || f.minute || f.second || f.timeStyle) {
        const h12 = o.hour12 !== false && o.hourCycle !== "h23";
        const hh = h12 ? ((p.h + 11) % 12) + 1 : String(p.h).padStart(2, "0");
        time = [hh, String(p.mi).padStart(2, "0")].concat(f.second || f.timeStyle ? [String(p.s).padStart(2, "0")] : []).join(":") + (h12 ? (p.h < 12 ? " AM" : " PM") : "");
      }
      return [date1.join(", "), time].filter(Boolean).join(", ");
    };
    class DateTimeFormat {
      constructor(locale, options = {}) { own(this); Object.assign(st(this), { locale: pickLocale(locale), o: Object.assign({}, options) }); }
      format(d) { return formatDate(d, st(this).o, { year: "numeric", month: "numeric", day: "numeric" }); }
      formatToParts(d) { return [{ type: "literal", value: this.format(d) }]; }
      formatRange(a, b) { return this.format(a) + " – " + this.format(b); }
      resolvedOptions() {
        const { locale, o } = st(this);
        const r = { locale, calendar: "gregory", numberingSystem: "latn", timeZone: o.timeZone || zoneName };
        if (!o.hour && !o.minute && !o.second && !o.timeStyle && !o.dateStyle) Object.assign(r, { year: "numeric", month: "numeric", day: "numeric" });
        return Object.assign(r, o.hour ? { hourCycle: "h12", hour12: true } : {});
      }
      static supportedLocalesOf(l) { return [].concat(l || []).map(pickLocale); }
    }
    class NumberFormat {
      constructor(locale, options = {}) { own(this); Object.assign(st(this), { locale: pickLocale(locale), o: Object.assign({}, options) }); }
      format(n) { return formatNumber(n, st(this).locale, st(this).o); }
      formatToParts(n) { return [{ type: "literal", value: this.format(n) }]; }
      resolvedOptions() {
        const { locale, o } = st(this);
        return { locale, numberingSystem: "latn", style: o.style || "decimal", minimumIntegerDigits: 1, minimumFractionDigits: 0,
          maximumFractionDigits: 3, useGrouping: "auto", notation: "standard", signDisplay: "auto", roundingMode: "halfExpand" };
      }
      static supportedLocalesOf(l) { return [].concat(l || []).map(pickLocale); }
    }
    class Collator {
      constructor(locale, options = {}) { own(this); st(this).locale = pickLocale(locale); st(this).o = options; }
      compare(a, b) { a = String(a); b = String(b); const x = a.toLowerCase(), y = b.toLowerCase(); return x < y ? -1 : x > y ? 1 : a < b ? 1 : a > b ? -1 : 0; }
      resolvedOptions() { return { locale: st(this).locale, usage: "sort", sensitivity: "variant", ignorePunctuation: false, collation: "default", numeric: false, caseFirst: "false" }; }
    }
    class PluralRules {
      constructor(locale) { own(this); st(this).locale = pickLocale(locale); }
      select(n) { return Number(n) === 1 ? "one" : "other"; }
      resolvedOptions() { return { locale: st(this).locale, type: "cardinal", pluralCategories: ["one", "other"] }; }
    }
    class ListFormat {
      constructor(locale, o = {}) { own(this); st(this).locale = pickLocale(locale); st(this).o = o; }
      format(list) { const a = [...list].map(String); const w = st(this).o.type === "disjunction" ? "or" : "and"; return a.length < 3 ? a.join(` ${w} `) : a.slice(0, -1).join(", ") + `, ${w} ` + a[a.length - 1]; }
    }
    class RelativeTimeFormat {
      constructor(locale) { own(this); st(this).locale = pickLocale(locale); }
      format(v, unit) { v = Number(v); const u = String(unit).replace(/s$/, ""); const n = Math.abs(v); const w = `${n} ${u}${n === 1 ? "" : "s"}`; return v < 0 || Object.is(v, -0) ? `${w} ago` : `in ${w}`; }
    }
    class Segmenter {
      constructor(locale) { own(this); st(this).locale = pickLocale(locale); }
      segment(input) { input = String(input); const out = []; let i = 0; for (const ch of input) { out.push({ segment: ch, index: i, input }); i += ch.length; } return out; }
    }
    class Locale {
      constructor(tag) { own(this); const [language, region] = String(tag).split("-"); Object.assign(st(this), { baseName: String(tag), language, region }); }
      get baseName() { return st(this).baseName; } get language() { return st(this).language; } get region() { return st(this).region; }
      toString() { return st(this).baseName; }
    }
    class DisplayNames {
      constructor(locale, o = {}) { own(this); st(this).o = o; }
      of(code) { return String(code); }
    }
    const Intl = {};
    for (const C of [DateTimeFormat, NumberFormat, Collator, PluralRules, ListFormat, RelativeTimeFormat, Segmenter, Locale, DisplayNames]) {
      tag(C, "Intl." + C.name); natAll(C.prototype); natAll(C);
      define(Intl, C.name, nat(C));
    }
    Object.assign(Intl, {
      getCanonicalLocales: method("getCanonicalLocales", 1, (l) => [].concat(l || []).map(pickLocale)),
      supportedValuesOf: method("supportedValuesOf", 1, (k) => ({ calendar: ["gregory", "iso8601"], currency: ["EUR", "USD"], numberingSystem: ["latn"], timeZone: [zoneName], unit: ["meter", "second"], collation: ["default"] }[k] || [])),
    });
    for (const k of ["getCanonicalLocales", "supportedValuesOf"]) Object.defineProperty(Intl, k, { enumerable: false });
    Object.defineProperty(Intl, Symbol.toStringTag, { value: "Intl", configurable: true });
    define(g, "Intl", Intl);
    // The locale-sensitive methods of the builtins go through it, as in V8.
    define(Number.prototype, "toLocaleString", method("toLocaleString", 0, function (l, o) { return formatNumber(this, pickLocale(l), o || {}); }));
    define(Date.prototype, "toLocaleString", method("toLocaleString", 0, function (l, o) { return Number.isNaN(this.valueOf()) ? "Invalid Date" : formatDate(this, o || {}, { year: "numeric", month: "numeric", day: "numeric", hour: "numeric", minute: "numeric", second: "numeric" }); }));
    define(Date.prototype, "toLocaleDateString", method("toLocaleDateString", 0, function (l, o) { return Number.isNaN(this.valueOf()) ? "Invalid Date" : formatDate(this, o || {}, { year: "numeric", month: "numeric", day: "numeric" }); }));
    define(Date.prototype, "toLocaleTimeString", method("toLocaleTimeString", 0, function (l, o) { return Number.isNaN(this.valueOf()) ? "Invalid Date" : formatDate(this, o || {}, { hour: "numeric", minute: "numeric", second: "numeric" }); }));
    // V8 ends Date strings with the zone's long name.
    const dateToString = Date.prototype.toString;
    const longName = (d) => {
      const off = -d.getTimezoneOffset();
      if (off === 0) return "Coordinated Universal Time";
      const a = Math.abs(off);
      return `GMT${off < 0 ? "-" : "+"}${String(Math.floor(a / 60)).padStart(2, "0")}:${String(a % 60).padStart(2, "0")}`;
    };
    define(Date.prototype, "toString", method("toString", 0, function () {
      const t = dateToString.call(this);
      return t === "Invalid Date" || /\)$/.test(t) ? t : `${t} (${longName(this)})`;
    }));
  }

  class Notification extends EventTarget {
    constructor() { super(); throw new TypeError("Failed to construct 'Notification': Illegal constructor. Use ServiceWorkerRegistration.showNotification() instead."); }
    static get permission() { return "default"; }
    static requestPermission() { return Promise.resolve("default"); }
    static get maxActions() { return 2; }
  }
  tag(Notification, "Notification"); idl(Notification.prototype); natAll(Notification);
  define(g, "Notification", nat(Notification));
  // Interface objects and namespaces are not enumerable on the window.
  for (const k of Object.getOwnPropertyNames(g)) {
    const d = Object.getOwnPropertyDescriptor(g, k);
    if (!d.enumerable || !d.configurable || !("value" in d)) continue;
    const v = d.value;
    if ((typeof v === "function" && /^[A-Z]/.test(k) && v.prototype) || k === "Intl" || k === "console" || k === "CSS") {
      Object.defineProperty(g, k, { enumerable: false });
    }
  }
  // QuickJS brands its global object "global".
  if (Object.getOwnPropertyDescriptor(g, Symbol.toStringTag)) delete g[Symbol.toStringTag];
  g.external = Object.setPrototypeOf({ AddSearchProvider: nat(function AddSearchProvider() {}), IsSearchProviderInstalled: nat(function IsSearchProviderInstalled() { return 0; }) }, iface("External").prototype);
  const BarProp = iface("BarProp");
  for (const b of ["locationbar", "menubar", "personalbar", "scrollbars", "statusbar", "toolbar"]) {
    g[b] = Object.setPrototypeOf({ visible: true }, BarProp.prototype);
  }
  return I;
})
