// potproxy's differential probe suite: what bot detectors look at, as small functions that
// return JSON values. The same file runs in headless Chromium (examples/probe_report.rs puts it
// in a page) and in potproxy's QuickJS runtime (tests/probes.rs, the report), and the results
// are compared value for value. The file is one expression: a function that runs every probe
// (or the named ones) and resolves to { name: value }. Values never depend on the page's URL,
// the clock, randomness or the machine's fonts, so a match means "looks the same", not luck.
(function () {
  "use strict";
  const W = globalThis;
  const tagOf = (x) => Object.prototype.toString.call(x);
  const fnText = (f) => Function.prototype.toString.call(f);
  const desc = (o, k) => {
    const d = Object.getOwnPropertyDescriptor(o, k);
    if (!d) return null;
    const out = {};
    for (const key of ["value", "writable", "get", "set", "enumerable", "configurable"]) {
      if (!(key in d)) continue;
      const v = d[key];
      out[key] = typeof v === "function" ? "function" : v === undefined ? "undefined" : typeof v === "object" && v !== null ? tagOf(v) : v;
    }
    return out;
  };
  // Where a property lives: the name of the first prototype (or "own") that has it.
  const home = (o, k) => {
    if (Object.prototype.hasOwnProperty.call(o, k)) return "own";
    for (let p = Object.getPrototypeOf(o); p; p = Object.getPrototypeOf(p)) {
      if (Object.prototype.hasOwnProperty.call(p, k)) return tagOf(p);
    }
    return null;
  };
  const chain = (o) => {
    const out = [];
    for (let p = Object.getPrototypeOf(o); p; p = Object.getPrototypeOf(p)) {
      const c = Object.prototype.hasOwnProperty.call(p, "constructor") ? p.constructor : null;
      out.push(c && c.name ? c.name : tagOf(p));
    }
    return out;
  };
  const caught = (f) => {
    try { f(); return "no error"; } catch (e) { return (e && e.constructor && e.constructor.name) + ": " + (e && e.message); }
  };
  const errName = (f) => {
    try { f(); return "no error"; } catch (e) { return e && e.constructor && e.constructor.name; }
  };
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  const attached = (tag, text) => {
    const el = document.createElement(tag);
    if (text) el.textContent = text;
    document.body.appendChild(el);
    return el;
  };
  // Stack lines with the script's address and positions blanked out.
  const stackShape = (s) => String(s).split("\n").slice(0, 2)
    .map((l) => l.replace(/\((?:[^()]*):\d+:\d+\)$/, "(URL:N:N)").replace(/at (?:[^ ()]*):\d+:\d+$/, "at URL:N:N"));

  const P = [];
  const probe = (name, kind, fn) => P.push({ name, kind, fn });

  // ---- native functions and Function.prototype.toString -----------------------------------
  probe("tostring_builtin", "native-toString", () => fnText(Math.max));
  probe("tostring_of_tostring", "native-toString", () => fnText(Function.prototype.toString));
  probe("tostring_of_tostring_via_itself", "native-toString", () => Function.prototype.toString.toString());
  probe("tostring_settimeout", "native-toString", () => fnText(setTimeout));
  probe("tostring_dom_method", "native-toString", () => fnText(document.createElement));
  probe("tostring_event_target_method", "native-toString", () => fnText(EventTarget.prototype.addEventListener));
  probe("tostring_getter", "native-toString", () => {
    const d = Object.getOwnPropertyDescriptor(Navigator.prototype, "userAgent");
    return d && d.get ? fnText(d.get) : null;
  });
  probe("tostring_setter", "native-toString", () => {
    const d = Object.getOwnPropertyDescriptor(Document.prototype, "cookie");
    return d && d.set ? fnText(d.set) : null;
  });
  probe("tostring_interface", "native-toString", () => fnText(HTMLDivElement));
  probe("tostring_bound", "native-toString", () => {
    const f = function named() {}.bind(null);
    return [fnText(f), f.name];
  });
  probe("tostring_bound_native", "native-toString", () => fnText(setTimeout.bind(W)));
  probe("tostring_proxy", "native-toString", () => fnText(new Proxy(function x() {}, {})));
  probe("tostring_non_function_throws", "native-toString", () => errName(() => fnText({})));
  probe("tostring_user_function_source", "native-toString", () => fnText(function /* c */ f(a, b) { return a + b; }));
  probe("native_names_and_lengths", "native-toString", () => [
    document.createElement.name, document.createElement.length, setTimeout.name, setTimeout.length,
    EventTarget.prototype.addEventListener.length, Function.prototype.toString.length, fnText.name,
  ]);
  probe("native_methods_have_no_prototype", "native-toString", () => [
    "prototype" in setTimeout, "prototype" in document.createElement, "prototype" in Math.max,
    "prototype" in EventTarget.prototype.addEventListener, "prototype" in atob,
  ]);
  probe("native_method_not_constructible", "native-toString", () => errName(() => new document.createElement("div")));
  probe("tostring_is_own_on_function_prototype", "native-toString", () => [
    home(setTimeout, "toString"), Object.getOwnPropertyNames(setTimeout).sort(),
  ]);
  probe("tostring_console", "native-toString", () => [fnText(console.log), console.log.name, "prototype" in console.log, tagOf(console)]);
  probe("tostring_window_functions", "native-toString", () =>
    ["atob", "btoa", "fetch", "setInterval", "requestAnimationFrame", "getComputedStyle", "queueMicrotask", "postMessage", "addEventListener"]
      .filter((k) => !/^function \w+\(\) \{ \[native code\] \}$/.test(fnText(W[k]))));

  // ---- property descriptors: where getters live -------------------------------------------
  probe("navigator_has_no_own_properties", "descriptors", () => Object.getOwnPropertyNames(navigator));
  probe("navigator_useragent_descriptor", "descriptors", () => desc(Navigator.prototype, "userAgent"));
  probe("navigator_webdriver_descriptor", "descriptors", () => desc(Navigator.prototype, "webdriver"));
  probe("navigator_getter_receiver_check", "descriptors", () =>
    errName(() => Object.getOwnPropertyDescriptor(Navigator.prototype, "userAgent").get.call({})));
  probe("screen_width_home", "descriptors", () => [home(screen, "width"), desc(Screen.prototype, "width")]);
  probe("window_navigator_descriptor", "descriptors", () => desc(W, "navigator"));
  probe("window_document_descriptor", "descriptors", () => desc(W, "document"));
  probe("window_location_descriptor", "descriptors", () => desc(W, "location"));
  probe("window_self_descriptor", "descriptors", () => [desc(W, "window"), desc(W, "self")]);
  probe("document_own_properties", "descriptors", () => Object.getOwnPropertyNames(document));
  probe("element_own_properties", "descriptors", () => Object.getOwnPropertyNames(document.createElement("div")));
  probe("event_own_properties", "descriptors", () => Object.getOwnPropertyNames(new Event("x")));
  probe("document_cookie_descriptor", "descriptors", () => desc(Document.prototype, "cookie"));
  probe("element_getter_homes", "descriptors", () => {
    const d = document.createElement("div");
    return ["offsetWidth", "id", "className", "children", "firstChild", "textContent", "style", "tagName", "nodeType"].map((k) => home(d, k));
  });
  probe("interface_objects_on_window", "descriptors", () =>
    ["Event", "EventTarget", "Node", "HTMLDivElement", "Navigator", "TextEncoder", "MutationObserver", "Storage", "Intl", "Notification"]
      .map((k) => { const d = Object.getOwnPropertyDescriptor(W, k); return d ? [d.enumerable, d.writable, d.configurable] : null; }));
  probe("location_href_descriptor", "descriptors", () => desc(location, "href"));

  // ---- prototype chains and instanceof -------------------------------------------------------
  probe("chain_div", "prototype-chain", () => chain(document.createElement("div")));
  probe("chain_document", "prototype-chain", () => chain(document));
  probe("chain_window", "prototype-chain", () => chain(W));
  probe("chain_text_node", "prototype-chain", () => chain(document.createTextNode("x")));
  probe("chain_mouse_event", "prototype-chain", () => chain(new MouseEvent("click")));
  probe("chain_navigator", "prototype-chain", () => chain(navigator));
  probe("illegal_constructor", "prototype-chain", () => [
    errName(() => new HTMLDivElement()), errName(() => new Navigator()), errName(() => new Node()),
  ]);
  probe("constructor_identity", "prototype-chain", () => [
    document.createElement("div").constructor === HTMLDivElement, HTMLElement.prototype.constructor === HTMLElement,
    Object.getPrototypeOf(HTMLDivElement) === HTMLElement, Object.getPrototypeOf(EventTarget) === Function.prototype,
  ]);

  // ---- Symbol.toStringTag -------------------------------------------------------------------
  probe("tag_window_document", "toStringTag", () => [tagOf(W), String(W), tagOf(document), tagOf(document.body)]);
  probe("tag_navigator_location", "toStringTag", () => [tagOf(navigator), tagOf(location), tagOf(history), tagOf(screen)]);
  probe("tag_storage_performance_crypto", "toStringTag", () => [tagOf(localStorage), tagOf(performance), tagOf(crypto)]);
  probe("tag_prototypes", "toStringTag", () => [tagOf(Navigator.prototype), tagOf(HTMLElement.prototype), tagOf(EventTarget.prototype)]);
  probe("tag_collections", "toStringTag", () => {
    const d = document.createElement("div");
    return [tagOf(d.childNodes), tagOf(d.children), tagOf(d.classList), tagOf(d.style), tagOf(d.attributes)];
  });
  probe("tag_misc_objects", "toStringTag", () => [
    tagOf(navigator.plugins), tagOf(navigator.mimeTypes), tagOf(document.fonts), tagOf(navigator.mediaDevices),
    tagOf(document.createElement("div").getBoundingClientRect()),
  ]);

  // ---- automation traces and our own globals ---------------------------------------------------
  probe("navigator_webdriver", "automation", () => [navigator.webdriver, "webdriver" in navigator]);
  const suspicious = /^(__pp|_pp|cdc_|\$cdc|\$wdc|__webdriver|__selenium|__driver|__fxdriver|_phantom|callPhantom|__nightmare|domAutomation|_Selenium|webdriver|__playwright|__pw|__puppeteer)/;
  probe("automation_globals_enumerable", "automation", () => Object.keys(W).filter((k) => suspicious.test(k)));
  probe("automation_globals_own", "automation", () => Object.getOwnPropertyNames(W).filter((k) => suspicious.test(k) || k.startsWith("__")));
  probe("automation_globals_for_in", "automation", () => { const out = []; for (const k in W) if (suspicious.test(k)) out.push(k); return out; });
  probe("automation_document_keys", "automation", () => Object.getOwnPropertyNames(document).filter((k) => suspicious.test(k) || k.startsWith("_")));
  probe("automation_hidden_symbols", "automation", () => Object.getOwnPropertySymbols(W).map(String));
  probe("useragent_headless_marker", "automation", () => /Headless/.test(navigator.userAgent) || /Headless/.test(navigator.appVersion));
  probe("window_chrome_object", "automation", () => [typeof W.chrome, "chrome" in W]);
  probe("plugins_and_mimetypes", "automation", () => [
    navigator.plugins.length, Array.from(navigator.plugins, (p) => p.name), navigator.mimeTypes.length, navigator.pdfViewerEnabled,
  ]);
  probe("notification_permission_consistency", "automation", async () => {
    const perm = typeof Notification === "function" ? Notification.permission : "none";
    const q = navigator.permissions && await navigator.permissions.query({ name: "notifications" });
    return [perm, q && q.state];
  });

  // ---- user agent, vendor, platform, client hints --------------------------------------------
  probe("ua_vendor_product", "user-agent", () => [navigator.vendor, navigator.vendorSub, navigator.product, navigator.productSub, navigator.appName, navigator.appCodeName]);
  probe("ua_appversion_consistent", "user-agent", () => navigator.appVersion === navigator.userAgent.replace(/^Mozilla\//, ""));
  probe("ua_platform_consistent", "user-agent", () => {
    const ua = navigator.userAgent;
    const os = /Windows/.test(ua) ? "Win32" : /Mac OS X/.test(ua) ? "MacIntel" : /Linux x86_64/.test(ua) ? "Linux x86_64" : "?";
    return [navigator.platform, navigator.platform === os];
  });
  probe("ua_engine_family", "user-agent", () => {
    const ua = navigator.userAgent;
    return [/Chrome\/\d+/.test(ua), /Version\/[\d.]+ Safari/.test(ua), /Firefox/.test(ua), navigator.vendor];
  });
  probe("ua_client_hints", "user-agent", () => {
    const d = navigator.userAgentData;
    if (!d) return null;
    const major = (/Chrome\/(\d+)/.exec(navigator.userAgent) || [])[1];
    const brands = d.brands.map((b) => b.brand);
    return [tagOf(d), d.mobile, d.platform, brands.includes("Chromium"), d.brands.some((b) => b.brand === "Chromium" && b.version === major)];
  });
  probe("ua_client_hints_high_entropy", "user-agent", async () => {
    const d = navigator.userAgentData;
    if (!d) return null;
    const h = await d.getHighEntropyValues(["platform", "architecture", "bitness", "uaFullVersion", "fullVersionList"]);
    return [h.platform, h.architecture, h.bitness, typeof h.uaFullVersion, Array.isArray(h.fullVersionList)];
  });
  probe("ua_languages", "user-agent", () => [navigator.language, navigator.languages.slice(0, 1), Object.isFrozen(navigator.languages)]);
  probe("ua_hardware", "user-agent", () => [typeof navigator.hardwareConcurrency, navigator.hardwareConcurrency > 0, typeof navigator.deviceMemory, navigator.maxTouchPoints]);
  probe("ua_misc_navigator", "user-agent", () => [navigator.cookieEnabled, navigator.onLine, navigator.doNotTrack, typeof navigator.connection, navigator.oscpu, typeof navigator.javaEnabled]);
  probe("engine_specific_globals", "user-agent", () =>
    ["chrome", "InstallTrigger", "safari", "opr", "netscape", "mozInnerScreenX", "webkitRequestAnimationFrame", "webkitRTCPeerConnection", "ApplePaySession", "onwebkitanimationend"]
      .filter((k) => k in W));
  probe("performance_memory", "user-agent", () => [typeof performance.memory, performance.memory ? tagOf(performance.memory) : null]);

  // ---- JavaScript engine ------------------------------------------------------------------------
  probe("es_globals_present", "engine", () =>
    ["Intl", "WebAssembly", "SharedArrayBuffer", "Atomics", "WeakRef", "FinalizationRegistry", "AggregateError", "Iterator", "structuredClone", "Float16Array"]
      .map((k) => k + ":" + typeof W[k]));
  probe("error_stack_shape", "engine", () => { function probeStackInner() { return new Error("x").stack; } return stackShape(probeStackInner()); });
  probe("error_capture_stack_trace", "engine", () => [typeof Error.captureStackTrace, Error.stackTraceLimit]);
  probe("thrown_type_error_message", "engine", () => caught(() => { const o = null; return o.x; }));
  probe("undefined_function_message", "engine", () => caught(() => { const o = {}; o.nope(); }));
  probe("math_precision", "engine", () => [Math.tan(-1e300), Math.sinh(1), Math.expm1(1), Math.cbrt(100), Math.log1p(10), Math.acosh(1e300), Math.atan2(0.5, 0.3), Math.pow(Math.PI, -100)]);
  probe("number_formatting", "engine", () => [(Math.PI).toString(36), (0.1).toFixed(20), (123.456).toExponential(), (1e21).toString(), (-0).toLocaleString()]);
  probe("sort_inconsistent_comparator", "engine", () => [5, 1, 4, 2, 3, 9, 8, 7, 6, 0, 11, 10].sort(() => 1));
  probe("function_constructor_source", "engine", () => fnText(new Function("a", "b", "return a")));
  probe("regexp_features", "engine", () => {
    const ok = (src, flags) => { try { new RegExp(src, flags); return true; } catch (e) { return false; } };
    return [ok("(?<=a)b", ""), ok("\\p{L}", "u"), ok("[\\p{L}--[a-z]]", "v"), ok("(?i:a)", ""), ok("a", "d")];
  });
  probe("date_parse_formats", "engine", () => ["2020/01/02", "Jan 2 2020", "2020-01-02 03:04", "2 January 2020", "20200102"]
    .map((s) => !Number.isNaN(Date.parse(s))));
  probe("date_to_string_format", "engine", () => {
    const s = new Date(0).toString();
    return [/^\w{3} \w{3} \d\d \d{4} \d\d:\d\d:\d\d GMT[+-]\d{4}/.test(s), /\(.+\)$/.test(s)];
  });
  probe("document_all_quirk", "engine", () => [typeof document.all, document.all === undefined, document.all == null, !!document.all]);

  // ---- Intl and time zone -----------------------------------------------------------------------
  probe("intl_present", "intl", () => typeof Intl === "object" && tagOf(Intl));
  probe("intl_locale_matches_language", "intl", () => {
    if (typeof Intl !== "object") return null;
    const o = new Intl.DateTimeFormat().resolvedOptions();
    return [o.locale, o.locale === navigator.language, o.calendar, o.numberingSystem];
  });
  probe("intl_timezone_consistent_with_date", "intl", () => {
    if (typeof Intl !== "object") return null;
    const tz = new Intl.DateTimeFormat().resolvedOptions().timeZone;
    const off = new Date(Date.UTC(2020, 0, 15)).getTimezoneOffset();
    return [typeof tz, tz.length > 0, (tz === "UTC" || tz === "Etc/UTC") === (off === 0)];
  });
  probe("intl_number_format", "intl", () => {
    if (typeof Intl !== "object") return null;
    return [new Intl.NumberFormat("en-US").format(1234567.891), new Intl.NumberFormat("de-DE").format(1234567.891)];
  });
  probe("locale_string_methods", "intl", () => [(1234567.891).toLocaleString("en-US"), new Date(Date.UTC(2020, 0, 2, 3, 4, 5)).toLocaleString("en-US", { timeZone: "UTC" }), "i".toLocaleUpperCase("en-US")]);
  probe("date_offset_stable", "intl", () => {
    const a = new Date(2020, 0, 1).getTimezoneOffset(), b = new Date(Date.UTC(2020, 0, 1)).getTimezoneOffset();
    return [typeof a, a === b];
  });
  probe("intl_supported_values", "intl", () => {
    if (typeof Intl !== "object") return null;
    return [typeof Intl.supportedValuesOf, typeof Intl.Segmenter, typeof Intl.ListFormat, typeof Intl.PluralRules, typeof Intl.Collator];
  });

  // ---- 2D canvas API shape (not pixels) ---------------------------------------------------------
  probe("canvas_context_type", "canvas", () => {
    const c = document.createElement("canvas");
    const ctx = c.getContext("2d");
    return [c.width, c.height, ctx === null ? null : tagOf(ctx), ctx !== null && ctx.canvas === c, ctx === c.getContext("2d")];
  });
  probe("canvas_context_methods", "canvas", () => {
    const ctx = document.createElement("canvas").getContext("2d");
    if (!ctx) return null;
    return ["fillRect", "fillText", "strokeText", "measureText", "getImageData", "putImageData", "createLinearGradient", "arc", "drawImage", "isPointInPath", "setTransform", "getTransform", "roundRect", "createImageData", "save", "restore"]
      .filter((k) => typeof ctx[k] !== "function");
  });
  probe("canvas_style_normalisation", "canvas", () => {
    const ctx = document.createElement("canvas").getContext("2d");
    if (!ctx) return null;
    const start = [ctx.fillStyle, ctx.font, ctx.globalAlpha, ctx.textBaseline, ctx.lineWidth];
    ctx.fillStyle = "red"; ctx.font = "bold 12px Arial"; ctx.globalAlpha = 2;
    const a = ctx.fillStyle;
    ctx.fillStyle = "rgba(0, 0, 255, 0.5)";
    return [start, a, ctx.fillStyle, ctx.font, ctx.globalAlpha];
  });
  probe("canvas_measure_text_shape", "canvas", () => {
    const ctx = document.createElement("canvas").getContext("2d");
    if (!ctx) return null;
    const m = ctx.measureText("Hello, world");
    return [tagOf(m), m.width > 0, typeof m.actualBoundingBoxAscent, typeof m.fontBoundingBoxAscent];
  });
  probe("canvas_blank_pixels", "canvas", () => {
    const ctx = document.createElement("canvas").getContext("2d");
    if (!ctx) return null;
    const d = ctx.getImageData(0, 0, 2, 2);
    return [tagOf(d), tagOf(d.data), d.data.length, Array.from(d.data).every((x) => x === 0)];
  });
  probe("canvas_fillrect_pixel", "canvas", () => {
    const ctx = document.createElement("canvas").getContext("2d");
    if (!ctx) return null;
    ctx.fillStyle = "#102030"; ctx.fillRect(0, 0, 4, 4);
    return Array.from(ctx.getImageData(1, 1, 1, 1).data);
  });
  probe("canvas_data_url_prefix", "canvas", () => {
    const c = document.createElement("canvas");
    return [c.toDataURL().slice(0, 22), c.toDataURL("image/jpeg").slice(0, 23)];
  });
  probe("webgl_context", "canvas", () => {
    const c = document.createElement("canvas");
    const gl = c.getContext("webgl");
    return gl === null ? null : tagOf(gl);
  });

  // ---- layout of rendered elements --------------------------------------------------------------
  probe("layout_block_div_with_text", "layout", () => {
    const d = attached("div", "Hello, world");
    const r = [d.offsetWidth > 0, d.offsetHeight > 0, d.offsetHeight < 40, d.offsetWidth === document.body.clientWidth];
    d.remove();
    return r;
  });
  probe("layout_inline_span_with_text", "layout", () => {
    const s = attached("span", "Hello, world");
    const r = [s.offsetWidth > 10, s.offsetWidth < 200, s.offsetHeight > 0];
    s.remove();
    return r;
  });
  probe("layout_bounding_rect", "layout", () => {
    const d = attached("div", "Hello");
    const b = d.getBoundingClientRect();
    const r = [tagOf(b), b.width === d.offsetWidth, b.height === d.offsetHeight, b.top >= 0, b.left, typeof b.toJSON];
    d.remove();
    return r;
  });
  probe("layout_detached_is_zero", "layout", () => {
    const d = document.createElement("div");
    d.textContent = "Hello";
    return [d.offsetWidth, d.offsetHeight, d.getClientRects().length];
  });
  probe("layout_viewport", "layout", () => [
    document.documentElement.clientWidth === innerWidth, outerWidth >= innerWidth, outerHeight >= innerHeight,
    screen.width >= screen.availWidth, screen.height >= screen.availHeight, typeof devicePixelRatio,
  ]);
  probe("computed_style", "layout", () => {
    const d = attached("div", "x"), s = attached("span", "y");
    const r = [getComputedStyle(d).display, getComputedStyle(s).display, tagOf(getComputedStyle(d)), getComputedStyle(d).visibility, getComputedStyle(d) === d.style];
    d.remove(); s.remove();
    return r;
  });

  // ---- timers and events ----------------------------------------------------------------------
  probe("timer_microtask_order", "events", async () => {
    const log = [];
    setTimeout(() => log.push("timeout0"), 0);
    Promise.resolve().then(() => log.push("promise"));
    queueMicrotask(() => log.push("microtask"));
    log.push("sync");
    await sleep(50);
    return log;
  });
  probe("timer_message_channel_order", "events", async () => {
    const log = [];
    const ch = new MessageChannel();
    ch.port1.onmessage = () => log.push("channel");
    setTimeout(() => log.push("timeout0"), 0);
    ch.port2.postMessage(1);
    Promise.resolve().then(() => log.push("promise"));
    await sleep(50);
    return log;
  });
  probe("timer_nested_order", "events", async () => {
    const log = [];
    setTimeout(() => { log.push("a"); Promise.resolve().then(() => log.push("a-micro")); setTimeout(() => log.push("c"), 0); }, 0);
    setTimeout(() => log.push("b"), 0);
    await sleep(50);
    return log;
  });
  probe("window_post_message_event", "events", async () => {
    let got = null;
    const h = (e) => { got = [tagOf(e), e.data, typeof e.origin, e.source === W]; };
    W.addEventListener("message", h);
    W.postMessage("ping", "*");
    await sleep(50);
    W.removeEventListener("message", h);
    return got;
  });
  // Whether a frame comes within a given time depends on the headless compositor, so only the
  // API's shape is compared.
  probe("animation_frame", "events", () => {
    const id = requestAnimationFrame(() => {});
    cancelAnimationFrame(id);
    return [typeof id, id > 0, requestAnimationFrame.length, typeof cancelAnimationFrame];
  });
  probe("event_propagation_order", "events", () => {
    const log = [];
    const d = attached("div");
    document.body.addEventListener("click", () => log.push("body-capture"), true);
    document.body.addEventListener("click", function bub(e) { log.push("body-bubble:" + e.eventPhase); document.body.removeEventListener("click", bub); });
    d.addEventListener("click", (e) => log.push("target:" + e.eventPhase + ":" + (e.target === d)));
    d.dispatchEvent(new MouseEvent("click", { bubbles: true }));
    d.remove();
    return log;
  });
  probe("synthetic_event_not_trusted", "events", () => {
    const e = new Event("x");
    return [e.isTrusted, e.eventPhase, e.bubbles, typeof e.timeStamp, desc(e, "isTrusted") && desc(e, "isTrusted").get];
  });

  // ---- iframes and realms -------------------------------------------------------------------
  probe("iframe_realm", "iframe", () => {
    const f = document.createElement("iframe");
    const before = f.contentWindow;
    document.body.appendChild(f);
    const w = f.contentWindow;
    const r = [before, !!w, w !== W, w && w.Array !== Array, w && [] instanceof w.Array, w && new w.Array() instanceof Array,
      w && Array.isArray(new w.Array()), w && w.parent === W, w && w.frameElement === f, w && tagOf(w)];
    f.remove();
    return r;
  });
  probe("iframe_window_length", "iframe", () => {
    const f = document.createElement("iframe");
    document.body.appendChild(f);
    const r = [W.length, W[0] === f.contentWindow, W.frames === W];
    f.remove();
    return r;
  });
  probe("iframe_document", "iframe", () => {
    const f = document.createElement("iframe");
    document.body.appendChild(f);
    const d = f.contentDocument;
    const r = [!!d, d && d !== document, d && tagOf(d), d && d.readyState, d && !!d.body];
    f.remove();
    return r;
  });

  // ---- document, location, history --------------------------------------------------------------
  probe("document_basics", "document", () => [document.readyState, document.compatMode, document.characterSet, document.contentType, document.visibilityState, document.hidden]);
  probe("document_tree", "document", () => [document.documentElement.tagName, document.head && document.head.tagName, document.body.tagName, document.doctype && document.doctype.name, document.childNodes.length]);
  probe("document_collections", "document", () => [typeof document.getElementsByTagName("div").item, tagOf(document.getElementsByTagName("div")), tagOf(document.querySelectorAll("div")), document.querySelectorAll("body").length]);
  probe("location_shape", "document", () => [Object.keys(location).sort(), location.href === document.URL, typeof location.origin, String(location) === location.href]);
  probe("history_shape", "document", () => [history.length >= 1, history.state, history.scrollRestoration, typeof history.pushState, tagOf(history)]);
  probe("storage_named_properties", "document", () => {
    localStorage.setItem("probe-key", "1");
    const r = [Object.keys(localStorage).includes("probe-key"), localStorage["probe-key"], localStorage.length >= 1];
    localStorage.removeItem("probe-key");
    return r;
  });
  probe("element_creation_shape", "document", () => {
    const d = document.createElement("DiV");
    return [d.tagName, d.localName, d.nodeName, d.namespaceURI, d.outerHTML, document.createElement("x-foo").constructor.name, document.createElement("blink").constructor.name];
  });
  probe("inner_html_parsing", "document", () => {
    const d = document.createElement("div");
    d.innerHTML = "<b>bold</b> and <i>it</i>";
    return [d.childNodes.length, d.firstChild && d.firstChild.tagName, d.textContent, d.innerHTML];
  });

  // ---- runner -----------------------------------------------------------------------------
  const normal = (v) => (v === undefined ? "<undefined>" : v);
  return async function runProbes(only) {
    const out = {};
    for (const p of P) {
      if (only && !only.includes(p.name)) continue;
      let v;
      try {
        v = await Promise.race([Promise.resolve().then(p.fn), sleep(1500).then(() => "<timeout>")]);
      } catch (e) {
        v = "<threw " + (e && e.constructor && e.constructor.name) + ": " + (e && e.message) + ">";
      }
      try { out[p.name] = JSON.parse(JSON.stringify(normal(v), (k, x) => (x === undefined ? "<undefined>" : typeof x === "number" && !Number.isFinite(x) ? String(x) : x))); }
      catch (e) { out[p.name] = "<unserialisable>"; }
    }
    return { kinds: Object.fromEntries(P.map((p) => [p.name, p.kind])), values: out };
  };
})()
