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
  const nativeToString = Function.prototype.toString;
  // QuickJS prints engine built-ins over three lines; browsers print them on one.
  const toString = function toString() {
    if (natives.has(this)) return "function " + (this.name || "") + "() { [native code] }";
    const src = nativeToString.call(this);
    const m = /^function ([^(]*)\(\) \{\n {4}\[native code\]\n\}$/.exec(src);
    return m ? "function " + m[1] + "() { [native code] }" : src;
  };
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

  // ---- window ---------------------------------------------------------------------------
  for (const n of ["window", "self", "top", "parent", "frames"]) define(g, n, g);
  g.closed = false; g.length = 0; g.name = ""; g.opener = null; g.frameElement = null;
  g.isSecureContext = true; g.origin = "https://www.youtube.com"; g.crossOriginIsolated = false;

  // ---- timers (driven by the Rust event loop through __pp_timers) -------------------------
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
      this.type = String(type); this.bubbles = !!init.bubbles; this.cancelable = !!init.cancelable;
      this.composed = !!init.composed; this.defaultPrevented = false; this.isTrusted = false;
      this.timeStamp = g.performance.now(); this.target = null; this.currentTarget = null; this.eventPhase = 0;
    }
    preventDefault() { if (this.cancelable) this.defaultPrevented = true; }
    stopPropagation() { this._stop = true; }
    stopImmediatePropagation() { this._stop = true; this._stopNow = true; }
    composedPath() { return this.target ? [this.target] : []; }
  }
  class CustomEvent extends Event {
    constructor(type, init = {}) { super(type, init); this.detail = init.detail === undefined ? null : init.detail; }
  }
  class EventTarget {
    addEventListener(type, fn, opts) {
      if (!fn) return;
      const m = this.__listeners || define(this, "__listeners", {}) && this.__listeners;
      const once = typeof opts === "object" && opts !== null && !!opts.once;
      (m[type] = m[type] || []).push({ fn, once });
    }
    removeEventListener(type, fn) {
      const l = this.__listeners && this.__listeners[type];
      if (l) this.__listeners[type] = l.filter((e) => e.fn !== fn);
    }
    dispatchEvent(ev) {
      ev.target = ev.target || this; ev.currentTarget = this;
      const l = (this.__listeners && this.__listeners[ev.type]) || [];
      for (const e of l.slice()) {
        if (e.once) this.removeEventListener(ev.type, e.fn);
        if (typeof e.fn === "function") e.fn.call(this, ev); else if (e.fn && e.fn.handleEvent) e.fn.handleEvent(ev);
        if (ev._stopNow) break;
      }
      const h = this["on" + ev.type];
      if (typeof h === "function") h.call(this, ev);
      return !ev.defaultPrevented;
    }
  }
  natAll(EventTarget.prototype); natAll(Event.prototype);
  g.Event = nat(Event); g.CustomEvent = nat(CustomEvent); g.EventTarget = nat(EventTarget);
  for (const [k, v] of [["NONE", 0], ["CAPTURING_PHASE", 1], ["AT_TARGET", 2], ["BUBBLING_PHASE", 3]]) {
    Object.defineProperty(Event, k, { value: v, enumerable: true }); Object.defineProperty(Event.prototype, k, { value: v, enumerable: true });
  }
  Object.assign(Event.prototype, { returnValue: true, cancelBubble: false });
  Object.defineProperty(Event.prototype, "srcElement", { get() { return this.target; }, configurable: true });
  Event.prototype.initEvent = function initEvent(t, b, c) { this.type = String(t); this.bubbles = !!b; this.cancelable = !!c; };
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
  for (const k of Object.getOwnPropertyNames(EventTarget.prototype)) {
    if (k === "constructor") continue;
    const m = EventTarget.prototype[k];
    define(g, k, nat({ [k](...a) { return m.apply(this == null ? g : this, a); } }[k]));
  }

  // ---- DOM -------------------------------------------------------------------------------
  class Node extends EventTarget {
    constructor() { super(); this.childNodes = []; this.parentNode = null; }
    get firstChild() { return this.childNodes[0] || null; }
    get lastChild() { return this.childNodes[this.childNodes.length - 1] || null; }
    get parentElement() { return this.parentNode instanceof Element ? this.parentNode : null; }
    get nextSibling() { const p = this.parentNode; if (!p) return null; return p.childNodes[p.childNodes.indexOf(this) + 1] || null; }
    get previousSibling() { const p = this.parentNode; if (!p) return null; return p.childNodes[p.childNodes.indexOf(this) - 1] || null; }
    get ownerDocument() { return g.document; }
    get isConnected() { let n = this; while (n.parentNode) n = n.parentNode; return n === g.document; }
    appendChild(c) { if (c.parentNode) c.parentNode.removeChild(c); this.childNodes.push(c); c.parentNode = this; return c; }
    removeChild(c) { const i = this.childNodes.indexOf(c); if (i >= 0) this.childNodes.splice(i, 1); c.parentNode = null; return c; }
    insertBefore(c, ref) {
      if (!ref) return this.appendChild(c);
      if (c.parentNode) c.parentNode.removeChild(c);
      const i = this.childNodes.indexOf(ref); this.childNodes.splice(i < 0 ? this.childNodes.length : i, 0, c); c.parentNode = this; return c;
    }
    replaceChild(n, o) { this.insertBefore(n, o); return this.removeChild(o); }
    remove() { if (this.parentNode) this.parentNode.removeChild(this); }
    contains(n) { while (n) { if (n === this) return true; n = n.parentNode; } return false; }
    hasChildNodes() { return this.childNodes.length > 0; }
    cloneNode() { const c = Object.create(Object.getPrototypeOf(this)); Object.assign(c, this); c.childNodes = []; c.parentNode = null; return c; }
    get textContent() { return this.childNodes.map((c) => c.textContent).join(""); }
    set textContent(v) { this.childNodes = []; if (v !== "") this.appendChild(g.document.createTextNode(String(v))); }
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
  class Text extends Node {
    constructor(data) { super(); this.data = String(data); this.nodeType = 3; this.nodeName = "#text"; }
    get textContent() { return this.data; }
  }
  class Element extends Node {
    constructor(tag) {
      super(); this.tagName = String(tag).toUpperCase(); this.nodeName = this.tagName; this.nodeType = 1;
      this.attributes = []; this.style = createStyle(); this.dataset = {};
      this.classList = createClassList(this);
    }
    get localName() { return this.tagName.toLowerCase(); }
    get id() { return this.getAttribute("id") || ""; } set id(v) { this.setAttribute("id", v); }
    get className() { return this.getAttribute("class") || ""; } set className(v) { this.setAttribute("class", v); }
    get children() { return this.childNodes.filter((c) => c instanceof Element); }
    get childElementCount() { return this.children.length; }
    get firstElementChild() { return this.children[0] || null; }
    get innerHTML() { return ""; } set innerHTML(v) { this.childNodes = []; }
    get outerHTML() { return `<${this.localName}></${this.localName}>`; }
    get innerText() { return this.textContent; } set innerText(v) { this.textContent = v; }
    setAttribute(k, v) { k = String(k).toLowerCase(); const a = this.attributes.find((x) => x.name === k); if (a) a.value = String(v); else this.attributes.push({ name: k, value: String(v) }); }
    getAttribute(k) { const a = this.attributes.find((x) => x.name === String(k).toLowerCase()); return a ? a.value : null; }
    hasAttribute(k) { return this.getAttribute(k) !== null; }
    removeAttribute(k) { this.attributes = this.attributes.filter((x) => x.name !== String(k).toLowerCase()); }
    getAttributeNames() { return this.attributes.map((a) => a.name); }
    getElementsByTagName(t) { return queryAll(this, (e) => t === "*" || e.tagName === String(t).toUpperCase()); }
    getElementsByClassName(c) { return queryAll(this, (e) => e.className.split(/\s+/).includes(c)); }
    querySelector(s) { return this.querySelectorAll(s)[0] || null; }
    querySelectorAll(s) { return queryAll(this, selectorMatcher(s)); }
    matches(s) { return selectorMatcher(s)(this); }
    closest(s) { let n = this; const m = selectorMatcher(s); while (n instanceof Element) { if (m(n)) return n; n = n.parentNode; } return null; }
    getBoundingClientRect() { return { x: 0, y: 0, top: 0, left: 0, bottom: 0, right: 0, width: 0, height: 0, toJSON() { return this; } }; }
    getClientRects() { return []; }
    get offsetWidth() { return 0; } get offsetHeight() { return 0; } get clientWidth() { return 0; } get clientHeight() { return 0; }
    get offsetTop() { return 0; } get offsetLeft() { return 0; } get offsetParent() { return null; }
    get scrollWidth() { return 0; } get scrollHeight() { return 0; } scrollTop = 0; scrollLeft = 0;
    focus() {} blur() {} click() { this.dispatchEvent(new g.MouseEvent("click", { bubbles: true })); }
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
  class HTMLElement extends Element {}
  class DocumentFragment extends Node {
    constructor() { super(); this.nodeType = 11; this.nodeName = "#document-fragment"; }
    querySelector(s) { return queryAll(this, selectorMatcher(s))[0] || null; }
    querySelectorAll(s) { return queryAll(this, selectorMatcher(s)); }
  }
  class HTMLCanvasElement extends HTMLElement {
    constructor() { super("canvas"); this.width = 300; this.height = 150; }
    getContext() { return null; }
    toDataURL() { return "data:,"; }
    toBlob(cb) { g.setTimeout(() => cb(null), 0); }
  }
  // An attached iframe gets a window of its own: a separate realm (fresh builtins) prepared by
  // the host in __pp_realms. Detached iframes have none, as in a browser.
  class HTMLIFrameElement extends HTMLElement {
    constructor() { super("iframe"); this.src = ""; }
    get contentWindow() {
      if (!this.isConnected) return null;
      if (!this.__realm) {
        const w = I.realms.shift();
        if (!w) return null;
        define(this, "__realm", w);
        w.parent = g; w.top = g.top; w.frameElement = this;
      }
      return this.__realm;
    }
    get contentDocument() { const w = this.contentWindow; return w ? w.document : null; }
  }
  class HTMLScriptElement extends HTMLElement { constructor() { super("script"); this.src = ""; this.async = false; this.nonce = ""; } }
  class HTMLImageElement extends HTMLElement {
    constructor(w, h) { super("img"); this.width = w || 0; this.height = h || 0; this.complete = true; this.naturalWidth = 0; this.naturalHeight = 0; }
    set src(v) { this._src = String(v); g.setTimeout(() => this.dispatchEvent(new Event("error")), 0); }
    get src() { return this._src || ""; }
    get currentSrc() { return this._src || ""; }
    get srcset() { return ""; } get sizes() { return ""; } get alt() { return ""; } get crossOrigin() { return null; }
    get decoding() { return "auto"; } get loading() { return "eager"; } get referrerPolicy() { return ""; }
    decode() { return Promise.reject(new DOMException("The source image cannot be decoded.", "EncodingError")); }
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
  const makeElement = (tag) => {
    const C = elementClassFor(tag);
    return C ? (C === HTMLCanvasElement || C === HTMLIFrameElement || C === HTMLScriptElement || C === HTMLImageElement ? new C() : new C(tag)) : new HTMLElement(tag);
  };
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
    constructor() { define(this, "__v", new Map()); }
    get length() { return this.__v.size; }
    item(i) { return [...this.__v.keys()][i] || ""; }
    getPropertyValue(p) { return this.__v.get(String(p)) || ""; }
    getPropertyPriority() { return ""; }
    setProperty(p, v) { if (v === null || v === "") this.__v.delete(String(p)); else this.__v.set(String(p), String(v)); }
    removeProperty(p) { const v = this.getPropertyValue(p); this.__v.delete(String(p)); return v; }
    get cssText() { return [...this.__v].map(([a, b]) => `${a}: ${b};`).join(" "); }
    set cssText(t) { this.__v.clear(); for (const decl of String(t).split(";")) { const i = decl.indexOf(":"); if (i > 0) this.__v.set(decl.slice(0, i).trim(), decl.slice(i + 1).trim()); } }
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
  natAll(CSSStyleDeclaration.prototype);
  g.CSSStyleDeclaration = nat(CSSStyleDeclaration);
  function createStyle() { return new CSSStyleDeclaration(); }
  function createClassList(el) {
    const list = () => el.className.split(/\s+/).filter(Boolean);
    return {
      add(...c) { el.className = [...new Set([...list(), ...c])].join(" "); },
      remove(...c) { el.className = list().filter((x) => !c.includes(x)).join(" "); },
      contains(c) { return list().includes(c); },
      toggle(c) { if (this.contains(c)) { this.remove(c); return false; } this.add(c); return true; },
      get length() { return list().length; },
      item(i) { return list()[i] || null; },
    };
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
  class Document extends Node {
    constructor() {
      super();
      this.nodeType = 9; this.nodeName = "#document";
      this.documentElement = makeElement("html");
      this.documentElement.setAttribute("lang", "en");
      this.head = makeElement("head"); this.body = makeElement("body");
      const title = makeElement("title"); this.head.appendChild(title);
      this.documentElement.appendChild(this.head); this.documentElement.appendChild(this.body);
      this.appendChild(this.documentElement);
      this._cookies = new Map();
      this.readyState = "complete"; this.visibilityState = "visible"; this.hidden = false;
      this.referrer = "https://www.youtube.com/"; this.title = ""; this.characterSet = "UTF-8";
      this.charset = "UTF-8"; this.inputEncoding = "UTF-8";
      this.compatMode = "CSS1Compat"; this.contentType = "text/html"; this.dir = "ltr";
      this.domain = "www.youtube.com"; this.currentScript = null; this.activeElement = this.body;
      this.fonts = { ready: Promise.resolve(), check() { return true; }, addEventListener() {} };
      this.lastModified = new Date().toLocaleString();
    }
    get defaultView() { return g; }
    get location() { return g.location; }
    get URL() { return g.location.href; }
    get documentURI() { return g.location.href; }
    get scrollingElement() { return this.documentElement; }
    get cookie() { return [...this._cookies].map(([k, v]) => `${k}=${v}`).join("; "); }
    set cookie(v) {
      const first = String(v).split(";")[0];
      const i = first.indexOf("=");
      if (i > 0) this._cookies.set(first.slice(0, i).trim(), first.slice(i + 1).trim());
    }
    createElement(tag) { return makeElement(tag); }
    createElementNS(ns, tag) { return this.createElement(tag); }
    createTextNode(t) { return new Text(t); }
    createComment(t) { const c = new Text(t); c.nodeType = 8; c.nodeName = "#comment"; return c; }
    createDocumentFragment() { return new DocumentFragment(); }
    createEvent(type) {
      const C = createEventTypes[String(type).toLowerCase()];
      if (!C) throw new DOMException(`The provided event type ("${type}") is invalid`, "NotSupportedError");
      return new C("");
    }
    getElementById(id) { return queryAll(this, (e) => e.id === id)[0] || null; }
    getElementsByTagName(t) { return queryAll(this, (e) => t === "*" || e.tagName === String(t).toUpperCase()); }
    getElementsByClassName(c) { return queryAll(this, (e) => e.className.split(/\s+/).includes(c)); }
    getElementsByName(n) { return queryAll(this, (e) => e.getAttribute("name") === n); }
    querySelector(s) { return queryAll(this, selectorMatcher(s))[0] || null; }
    querySelectorAll(s) { return queryAll(this, selectorMatcher(s)); }
    hasFocus() { return true; }
    execCommand() { return false; }
    elementFromPoint() { return null; }
  }
  for (const C of [Node, Text, Element, HTMLElement, DocumentFragment, HTMLCanvasElement, HTMLIFrameElement, HTMLScriptElement, HTMLImageElement, Document]) {
    natAll(C.prototype); g[C.name] = nat(C);
  }
  g.Image = nat(function Image(w, h) { return new HTMLImageElement(w, h); });
  class HTMLDocument extends Document {}
  natAll(HTMLDocument.prototype);
  g.HTMLDocument = nat(HTMLDocument);
  g.document = new HTMLDocument();

  // ---- location, navigator, screen, storage ----------------------------------------------
  const loc = {
    href: "https://www.youtube.com/", origin: "https://www.youtube.com", protocol: "https:",
    host: "www.youtube.com", hostname: "www.youtube.com", port: "", pathname: "/", search: "", hash: "",
    ancestorOrigins: { length: 0, item() { return null; }, contains() { return false; } },
    assign() {}, replace() {}, reload() {}, toString() { return this.href; },
  };
  natAll(loc);
  g.location = loc;

  const ua = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15";
  const pluginList = Object.assign([], { item() { return null; }, namedItem() { return null; }, refresh() {} });
  g.navigator = natAll({
    userAgent: ua, appVersion: ua.slice(8), appName: "Netscape", appCodeName: "Mozilla", product: "Gecko",
    productSub: "20030107", vendor: "Apple Computer, Inc.", vendorSub: "", platform: "MacIntel",
    language: "en-US", languages: Object.freeze(["en-US", "en"]), onLine: true, cookieEnabled: true,
    webdriver: false, hardwareConcurrency: 8, maxTouchPoints: 0, doNotTrack: null, pdfViewerEnabled: true,
    plugins: pluginList, mimeTypes: Object.assign([], { item() { return null; }, namedItem() { return null; } }),
    javaEnabled() { return false; }, sendBeacon() { return true; }, vibrate() { return false; },
    getGamepads() { return []; },
    mediaDevices: { enumerateDevices: () => Promise.resolve([]), addEventListener() {} },
    permissions: { query: () => Promise.resolve({ state: "prompt", onchange: null }) },
    storage: { estimate: () => Promise.resolve({ quota: 1e10, usage: 0 }) },
    clipboard: {}, credentials: {}, geolocation: {}, serviceWorker: undefined,
  });
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
  g.postMessage = nat(function postMessage() {});
  g.getComputedStyle = nat(function getComputedStyle(el) { return el && el.style ? el.style : createStyle(); });
  g.matchMedia = nat(function matchMedia(q) {
    return { matches: /prefers-color-scheme: light|min-width: 0|pointer: fine|hover: hover/.test(q), media: String(q),
      onchange: null, addListener() {}, removeListener() {}, addEventListener() {}, removeEventListener() {} };
  });
  g.history = natAll({ length: 1, state: null, scrollRestoration: "auto", back() {}, forward() {}, go() {}, pushState() {}, replaceState() {} });

  class Storage {
    constructor() { define(this, "_m", new Map()); }
    get length() { return this._m.size; }
    key(i) { return [...this._m.keys()][i] ?? null; }
    getItem(k) { return this._m.has(String(k)) ? this._m.get(String(k)) : null; }
    setItem(k, v) { this._m.set(String(k), String(v)); }
    removeItem(k) { this._m.delete(String(k)); }
    clear() { this._m.clear(); }
  }
  natAll(Storage.prototype);
  g.Storage = nat(Storage);
  g.localStorage = new Storage(); g.sessionStorage = new Storage();

  // ---- misc web APIs BotGuard or its loaders may touch -----------------------------------
  g.console = g.console || {};
  for (const lvl of ["log", "info", "warn", "error", "debug", "trace"]) {
    g.console[lvl] = nat(function (...a) { __pp_log(lvl, a.map((x) => { try { return typeof x === "string" ? x : JSON.stringify(x); } catch (e) { return String(x); } }).join(" ")); });
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
  g.chrome = undefined;
  g.onerror = null; g.onload = null; g.onunhandledrejection = null;

  // ---- interfaces ------------------------------------------------------------------------
  // In a browser these objects are instances of interfaces: members live on the prototype
  // (data as getters), the prototype carries Symbol.toStringTag, and the constructor throws
  // "Illegal constructor". Scripts probe exactly that (Object.prototype.toString, own keys).
  const tag = (C, name) => Object.defineProperty(C.prototype, Symbol.toStringTag, { value: name, configurable: true });
  for (const [C, name] of [[EventTarget, "EventTarget"], [Event, "Event"], [CustomEvent, "CustomEvent"], [Node, "Node"],
    [Text, "Text"], [Element, "Element"], [HTMLElement, "HTMLElement"], [DocumentFragment, "DocumentFragment"],
    [HTMLCanvasElement, "HTMLCanvasElement"], [HTMLIFrameElement, "HTMLIFrameElement"], [HTMLScriptElement, "HTMLScriptElement"],
    [HTMLImageElement, "HTMLImageElement"], [Document, "Document"], [HTMLDocument, "HTMLDocument"], [Storage, "Storage"],
    [MutationObserver, "MutationObserver"], [MessageChannel, "MessageChannel"], [MessagePort, "MessagePort"], [Blob, "Blob"],
    [TextEncoder, "TextEncoder"], [TextDecoder, "TextDecoder"], [DOMException, "DOMException"]]) tag(C, name);
  const iface = (name, parentProto) => {
    const C = nat({ [name]: function () { throw new TypeError("Illegal constructor"); } }[name]);
    C.prototype = Object.create(parentProto || Object.prototype);
    define(C.prototype, "constructor", C);
    tag(C, name);
    define(g, name, C);
    return C;
  };
  const rebrand = (obj, name, parentProto) => {
    const C = iface(name, parentProto);
    for (const k of Object.getOwnPropertyNames(obj)) {
      const d = Object.getOwnPropertyDescriptor(obj, k);
      if ("value" in d && typeof d.value !== "function") {
        const v = d.value;
        const get = nat({ [`get ${k}`]() { return v; } }[`get ${k}`]);
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
  rebrand(g.performance, "Performance", EventTarget.prototype);
  rebrand(g.crypto, "Crypto");
  // Location's members are own ("unforgeable") in browsers: only brand it.
  Object.setPrototypeOf(g.location, iface("Location").prototype);
  const Window = iface("Window", EventTarget.prototype);
  Object.setPrototypeOf(g, Window.prototype);
  // QuickJS brands its global object "global".
  if (Object.getOwnPropertyDescriptor(g, Symbol.toStringTag)) delete g[Symbol.toStringTag];
  g.external = Object.setPrototypeOf({ AddSearchProvider: nat(function AddSearchProvider() {}), IsSearchProviderInstalled: nat(function IsSearchProviderInstalled() { return 0; }) }, iface("External").prototype);
  const BarProp = iface("BarProp");
  for (const b of ["locationbar", "menubar", "personalbar", "scrollbars", "statusbar", "toolbar"]) {
    g[b] = Object.setPrototypeOf({ visible: true }, BarProp.prototype);
  }
  return I;
})
