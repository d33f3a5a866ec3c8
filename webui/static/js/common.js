/* masterbox: shared helpers for every page (API calls with CSRF, live stream, small DOM helpers). */
"use strict";
const MB = (() => {
  const meta = document.querySelector('meta[name="csrf-token"]');
  let csrf = meta ? meta.content : "";

  class ApiError extends Error {
    constructor(status, body) {
      super((body && body.error) || `HTTP ${status}`);
      this.status = status; this.body = body;
    }
  }

  async function api(method, path, body, opts = {}) {
    const headers = { "Accept": "application/json" };
    const init = { method, headers, credentials: "same-origin" };
    if (method !== "GET" && method !== "HEAD") headers["X-CSRF-Token"] = csrf;
    if (body instanceof Blob || body instanceof ArrayBuffer) {
      headers["Content-Type"] = opts.type || "application/octet-stream"; init.body = body;
    } else if (body !== undefined) {
      headers["Content-Type"] = "application/json"; init.body = JSON.stringify(body);
    }
    const resp = await fetch("/api/v1" + path, init);
    let data = null;
    const ct = resp.headers.get("Content-Type") || "";
    if (ct.includes("application/json")) data = await resp.json();
    if (resp.status === 401) { location.href = "/login?next=" + encodeURIComponent(location.pathname); }
    // a body over the server's limit is refused by the web server itself, before the box sees it: its
    // answer is plain text, so the page says what the limit is (a preset zip too big to import)
    if (resp.status === 413 && !(data && data.error)) data = { error: `too large for the box: it takes at most ${limitText()} in one request` };
    if (!resp.ok) throw new ApiError(resp.status, data);
    if (data && data.csrf_token) csrf = data.csrf_token;
    return data;
  }

  function limitText() {
    const n = Number(document.body.dataset.maxBody) || 8 * 1048576;
    return n >= 1048576 ? `${+(n / 1048576).toFixed(1)} MB` : `${Math.round(n / 1024)} kB`;
  }

  const toastEl = document.getElementById("toast");
  let toastTimer = null;
  function toast(msg, isError = false) {
    if (!toastEl) return;
    toastEl.textContent = msg;
    toastEl.classList.toggle("err", isError);
    toastEl.classList.add("show");
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => toastEl.classList.remove("show"), isError ? 5000 : 2200);
  }
  function fail(e) { toast(e.message || String(e), true); }

  /* A switch the page shows at once, as a button under the finger should: a second press before the box
     has answered acts on what the first asked for (B B quickly: bypassed and back, not bypassed twice).
     The presses reach the box one after the other, in order (each request waits for the one before).
     Only the newest press's answer is shown; the box's own frames take over 300 ms after it (a frame read
     before the answer must not undo it), or at once when the press failed. */
  function optimistic(show) {
    let seq = 0, heldUntil = 0, queue = Promise.resolve();
    return {
      held: () => performance.now() < heldUntil,
      async press(want, send) {
        const mine = ++seq;
        heldUntil = Infinity;
        show(want);
        const sent = queue.then(() => send(want));
        queue = sent.catch(() => {});
        try {
          const got = await sent;
          if (mine === seq) { heldUntil = performance.now() + 300; show(got); }
        } catch (e) {
          if (mine === seq) heldUntil = 0;
          fail(e);
        }
      },
    };
  }

  /* A picture the box computes for the state shown (GET ``path``: the EQ's response, the multiband's
     split and curves), for the parameters ``wants(id)`` picks. Asked again 60 ms after the first change of
     a burst (a slider drag asks once per 60 ms, not once per move) and when the engine comes back at
     another rate (filters near Nyquist depend on it); only the newest answer is drawn, so one arriving
     late never replaces it. The page passes on its states (``state(values)``) and meter frames. */
  function boxPicture(path, wants, draw) {
    let timer = null, seq = 0, seen = "", rateSeen = 0, drawnRate = null;
    async function ask() {
      timer = null;
      const mine = ++seq;
      try {
        const r = await api("GET", path);
        if (mine !== seq) return;             // a newer request is on its way: keep its answer
        drawnRate = r.rate;
        draw(r);
      } catch (e) { fail(e); }
    }
    const schedule = () => { if (!timer) timer = setTimeout(ask, 60); };
    return {
      state(values) {
        const now = JSON.stringify(Object.entries(values).filter(([k]) => wants(k)).sort());
        if (now === seen || now === "[]") return;
        seen = now;
        schedule();
      },
      meters(m) {
        if (!m || !m.rate || m.rate === rateSeen) return;
        rateSeen = m.rate;
        if (drawnRate !== null && drawnRate !== m.rate) schedule();
      },
    };
  }

  function el(tag, attrs = {}, ...children) {
    const n = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") n.className = v;
      else if (k === "text") n.textContent = v;
      else if (k.startsWith("on")) n.addEventListener(k.slice(2), v);
      else n.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children.flat()) if (c !== null && c !== undefined) n.append(c instanceof Node ? c : document.createTextNode(c));
    return n;
  }

  function fmt(v, digits = 1, unit = "") {
    if (v === null || v === undefined || Number.isNaN(v)) return "—";
    if (typeof v !== "number") return String(v);
    return v.toFixed(digits) + (unit ? " " + unit : "");
  }

  function formatValue(p, v) {
    if (p.curve === "bool") return v ? "on" : "off";
    if (p.curve === "enum") return String(v).replace(/_/g, " ");
    const a = Math.abs(v);
    let s;
    if (p.unit === "Hz" && a >= 1000) return (v / 1000).toFixed(a >= 10000 ? 1 : 2) + " kHz";
    if (a >= 100) s = v.toFixed(0); else if (a >= 10) s = v.toFixed(1); else s = v.toFixed(2);
    return p.unit ? `${s} ${p.unit}` : s;
  }

  /* The live stream: one EventSource per page; polling when the server has no stream slot left. */
  const handlers = {};
  let source = null, pollTimer = null;
  function on(kind, fn) { (handlers[kind] = handlers[kind] || []).push(fn); start(); if (kind === "meters") watchMeters(); }
  function emit(kind, data) { (handlers[kind] || []).forEach((fn) => { try { fn(data); } catch (e) { console.error(e); } }); }

  /* A stalled engine (stopped, or stuck) writes no new meter frames, and the box sends only frames that
     changed: nothing arrives, and the last frame would stay on every page as if live (for the ~5 s
     until the supervisor restarts the engine). So the page watches the frames' seq, which the audio
     loop advances: none newer for STALE_MS and the pages are given null (what they show for no
     engine), with `stalled` set so they can say "not responding"; the old frame again (as polling
     reads it) is not taken for a live one. */
  const STALE_MS = 2000;
  let meterSeq = null, meterFresh = 0, stalled = false, watching = null;
  function meters(m) {
    if (m && typeof m.seq === "number") {
      if (m.seq === meterSeq && stalled) return;
      if (m.seq !== meterSeq) { meterSeq = m.seq; meterFresh = Date.now(); stalled = false; }
    } else if (!m) { meterSeq = null; stalled = false; }
    emit("meters", m);
  }
  function watchMeters() {
    if (watching) return;
    watching = setInterval(() => {
      if (stalled || meterSeq === null || Date.now() - meterFresh <= STALE_MS) return;
      stalled = true;
      emit("meters", null);
    }, 250);
  }
  function start() {
    if (source || pollTimer) return;
    source = new EventSource("/api/v1/events");
    for (const kind of ["meters", "state", "panel"]) {
      source.addEventListener(kind, (ev) => (kind === "meters" ? meters : (d) => emit(kind, d))(JSON.parse(ev.data)));
    }
    source.onerror = () => {
      if (source.readyState === EventSource.CLOSED) { source = null; poll(); }
    };
  }
  function poll() {
    let n = 0;
    pollTimer = setInterval(async () => {
      try {
        const m = await api("GET", "/meters");
        meters(m.meters);
        if (n++ % 5 === 0) emit("state", await api("GET", "/state"));
        if (n % 50 === 0) { clearInterval(pollTimer); pollTimer = null; start(); }
      } catch (e) { /* keep polling */ }
    }, 200);
  }

  // Header pills on every page.
  const pillEngine = document.getElementById("st-engine");
  const STREAMING_NAMES = JSON.parse(document.body.dataset.streamingNames || "{}");   // service key: its name
  const pillPreset = document.getElementById("st-preset");
  if (pillEngine) {
    let lastSeq = null, lastSeen = 0;
    on("meters", (m) => {
      if (m && m.seq !== lastSeq) { lastSeq = m.seq; lastSeen = Date.now(); }
      const running = m && Date.now() - lastSeen < 2000;
      // a listening mode other than stereo (the Live page's Listen) shows on every page: the speakers
      // are not hearing the stereo master
      const mode = running && typeof m.monitor === "string" && m.monitor !== "stereo" ? m.monitor : null;
      // likewise As streamed: the speakers hear the master at a streaming service's level
      const streamed = running && typeof m.preview === "string" && m.preview !== "off" ? STREAMING_NAMES[m.preview] || m.preview : null;
      pillEngine.textContent = running ? (m.bypass ? "engine · bypass" : "engine running") + (mode ? ` · ${mode}` : "") + (streamed ? ` · as ${streamed}` : "")
        : stalled ? "engine not responding" : "engine stopped";
      pillEngine.className = "pill " + (running ? (mode || streamed ? "warn" : "ok") : "bad");
      const heard = [mode ? (mode === "left" || mode === "right" ? `the ${mode} channel only` : mode === "side" ? "the side only" : "mono") : "",
                     streamed ? `the level ${streamed} would play it at` : ""].filter(Boolean).join(", ");
      pillEngine.title = heard ? `Audio engine; the speakers hear ${heard} (Listen on the Live page)` : "Audio engine";
    });
    on("state", (s) => {
      // once both settings slots are in use, which one is heard (saving a preset saves that one)
      const slot = s.slots && !s.slots.other_empty ? s.slots.current : null;
      pillPreset.textContent = (s.active_preset || "no preset") + (s.modified ? " •" : "") + (slot ? ` · ${slot}` : "");
      pillPreset.title = slot ? `Active preset; settings ${slot} is heard (Settings 1 / 2 on the Live and Chain pages)` : "Active preset";
    });
  }

  // An SVG element (the EQ curve, the loudness history): attributes set as given, optional text.
  function svg(tag, attrs = {}, text) {
    const n = document.createElementNS("http://www.w3.org/2000/svg", tag);
    for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, v);
    if (text) n.textContent = text;
    return n;
  }

  /* Undo / redo (POST /state/undo, /state/redo; firmware/undo.py): the buttons #btn-undo / #btn-redo
     where a page has them, and Ctrl+Z, Ctrl+Shift+Z or Ctrl+Y (Cmd on a Mac) on every page, except
     while typing in a field (the browser's own undo is meant there). */
  async function undo(which) {
    try {
      emit("state", await api("POST", `/state/${which}`, {}));
      toast(which === "undo" ? "Undone" : "Redone");
    } catch (e) { if (e.status === 409) toast(`Nothing to ${which}`); else fail(e); }
  }
  // a key pressed in a text field, a menu or an editable area is the field's, never a shortcut
  function typing(t) {
    return t && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName)
      && !(t.tagName === "INPUT" && ["range", "checkbox", "radio", "button"].includes(t.type)));
  }
  document.addEventListener("keydown", (ev) => {
    if (!(ev.ctrlKey || ev.metaKey) || ev.altKey || typing(ev.target)) return;
    const k = ev.key.toLowerCase();
    if (k === "z" || k === "y") { ev.preventDefault(); undo(k === "y" || ev.shiftKey ? "redo" : "undo"); }
  });

  /* One-key shortcuts for what is switched while listening: a button that declares
     aria-keyshortcuts="B" (the ARIA attribute screen readers announce) is pressed by that key.
     Not with a modifier (the browser's own keys), not while typing, and not on a key's auto-repeat:
     a held key switches once. A disabled or hidden button is left alone. */
  document.addEventListener("keydown", (ev) => {
    if (ev.ctrlKey || ev.metaKey || ev.altKey || ev.repeat || ev.key.length !== 1 || typing(ev.target)) return;
    const key = ev.key.toUpperCase();
    const btn = [...document.querySelectorAll("button[aria-keyshortcuts]")]
      .find((b) => b.getAttribute("aria-keyshortcuts") === key);
    if (!btn || btn.disabled || !btn.offsetParent) return;
    ev.preventDefault();
    btn.click();
  });
  const btnUndo = document.getElementById("btn-undo"), btnRedo = document.getElementById("btn-redo");
  if (btnUndo && btnRedo) {
    btnUndo.addEventListener("click", () => undo("undo"));
    btnRedo.addEventListener("click", () => undo("redo"));
    on("state", (s) => { btnUndo.disabled = !s.can_undo; btnRedo.disabled = !s.can_redo; });
  }

  /* Settings slots 1 and 2 (POST /state/slot, /state/slot/copy; firmware/settings_slots.py): the
     group #slots where a page has it. Its note says what a switch would change, by the parameters'
     labels (all of them in its tooltip). */
  const slotsBox = document.getElementById("slots");
  if (slotsBox) {
    const btns = slotsBox.querySelectorAll(".btn-slot");
    const copy = document.getElementById("slot-copy"), note = document.getElementById("slots-note");
    let params = {}, last = null;
    const lit = (slot) => btns.forEach((b) => b.setAttribute("aria-pressed", String(Number(b.dataset.slot) === slot)));
    // shows the slot pressed, then the state the box answered with (lit here: showSlots leaves the
    // buttons alone while the switch is held)
    const slotSwitch = optimistic((s) => {
      lit(typeof s === "number" ? s : s.slots.current);
      if (typeof s !== "number") emit("state", s);
    });
    const showSlots = (s) => {
      const sl = s && s.slots;
      if (!sl) return;
      last = s;
      const other = 3 - sl.current;
      if (!slotSwitch.held()) lit(sl.current);
      copy.textContent = `Copy to ${other}`;
      copy.title = `Put the settings you hear now (${sl.current}) over settings ${other}`;
      const from = sl.other_preset ? ` (${sl.other_preset}${sl.other_modified ? " •" : ""})` : "";
      const names = sl.differs.map((id) => (params[id] ? params[id].label : id));
      slotsBox.classList.toggle("differ", names.length > 0);
      // the tooltip: every difference with both values ("Output drive: 6.00 dB here, 2.00 dB in 1")
      const value = (id, v) => (params[id] ? formatValue(params[id], v) : String(v));
      note.title = sl.differs.map((id, i) => `${names[i]}: ${value(id, s.values[id])} here, `
        + `${value(id, (sl.other_values || {})[id])} in ${other}`).join("\n");
      if (sl.other_empty) note.textContent = `${other} starts as a copy of ${sl.current}`;
      else if (!names.length) note.textContent = `${other}${from} is the same`;
      else note.textContent = `${other}${from} differs in ${names.length === 1 ? "1 setting" : `${names.length} settings`}: `
        + names.slice(0, 3).join(", ") + (names.length > 3 ? ` and ${names.length - 3} more` : "");
    };
    btns.forEach((b) => b.addEventListener("click", () => {
      if (b.getAttribute("aria-pressed") === "true") return;
      slotSwitch.press(Number(b.dataset.slot), (slot) => api("POST", "/state/slot", { slot }));
    }));
    copy.addEventListener("click", async () => {
      try {
        const s = await api("POST", "/state/slot/copy", {});
        emit("state", s);
        toast(`Settings ${s.slots.current} copied to ${3 - s.slots.current}`);
      } catch (e) { fail(e); }
    });
    on("state", showSlots);
    // the equal-loudness compare (dsp.chain.Chain.match_compare): the meters say how much the
    // settings heard are turned down
    const match = document.getElementById("slots-match");
    on("meters", (m) => {
      const g = m && typeof m.compare_gain_db === "number" ? m.compare_gain_db : 0;
      const shown = g <= -0.1 && last && last.slots;
      match.hidden = !shown;
      if (!shown) return;
      const heard = last.slots.current, other = 3 - heard, db = `${(-g).toFixed(1)} dB`;
      match.textContent = `level-matched: −${db}`;
      match.title = `Settings ${heard} is louder than settings ${other}: you hear it ${db} down, so the two `
        + "are compared at equal loudness (Level match). A change to the settings ends the match.";
    });
    (async () => {
      try {
        const [sch, st] = await Promise.all([api("GET", "/schema"), api("GET", "/state")]);
        params = Object.fromEntries(sch.params.map((p) => [p.id, p]));
        showSlots(last || st);
      } catch (e) { fail(e); }
    })();
  }

  return { api, toast, fail, optimistic, boxPicture, el, svg, fmt, formatValue, on, ApiError, get csrf() { return csrf; },
    get stalled() { return stalled; } };
})();
