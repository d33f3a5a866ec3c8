/* Live page: meters from the SSE stream, transport (preset, A/B, learn, capture), virtual front panel. */
"use strict";
(() => {
  const { api, el, fmt, fail, toast, on } = MB;
  let schema = {}, state = null, capturing = false, captureSince = null;

  // ---- meters -----------------------------------------------------------------------
  const ROWS = [
    ["peak_dbfs", "Peak", -60, 0, "dB"], ["true_peak_dbtp", "True peak", -60, 0, "dB"],
    ["momentary_lufs", "Momentary", -48, 0, "LU"], ["short_term_lufs", "Short-term", -48, 0, "LU"],
    ["integrated_lufs", "Integrated", -48, 0, "LU"], ["loudness_range_lu", "LRA", 0, 20, "LU"],
  ];
  const GR = [["gr_low_db", "Low"], ["gr_mid_db", "Mid"], ["gr_high_db", "High"], ["gr_limiter_db", "Limiter"]];
  const bars = {};
  function meterRow(key, name, cls = "") {
    const fill = el("div", { class: "fill" }), hold = el("div", { class: "hold" }), val = el("span", { class: "val", text: "—" });
    const bar = el("div", { class: "bar " + cls }, el("div", { class: "ticks" }), fill, hold);
    if (cls === "corr") bar.append(el("div", { class: "zero" }));
    bars[key] = { fill, hold, val, bar, peak: -Infinity, peakAt: 0, mark: null };
    return el("div", { class: "meter", "data-key": key }, el("span", { class: "name", text: name }), bar, val);
  }
  for (const side of ["in", "out"]) {
    const box = document.getElementById("meters-" + side);
    for (const [k, name] of ROWS) box.append(meterRow(`${side}_${k}`, name));
  }
  const grBox = document.getElementById("meters-gr");
  for (const [k, name] of GR) grBox.append(meterRow(k, name, "gr"));
  document.getElementById("meters-corr").append(meterRow("correlation", "Correlation", "corr"));

  function setTargetMark(target) {
    for (const side of ["in", "out"]) for (const k of ["momentary_lufs", "short_term_lufs", "integrated_lufs"]) {
      const b = bars[`${side}_${k}`];
      if (!b.mark) { b.mark = el("div", { class: "mark" }); b.bar.append(b.mark); }
      b.mark.style.left = (100 * (target + 48) / 48).toFixed(1) + "%";
    }
    document.getElementById("big-target").textContent = fmt(target, 1);
  }

  function pct(v, lo, hi) { return Math.max(0, Math.min(100, 100 * (v - lo) / (hi - lo))); }
  let frames = 0, rateT0 = performance.now();
  const rateEl = document.getElementById("meter-rate");
  function showMeters(m) {
    if (!m) { rateEl.textContent = "engine not running"; return; }
    frames++;
    const now = performance.now();
    if (now - rateT0 > 1000) { rateEl.textContent = `${(frames * 1000 / (now - rateT0)).toFixed(0)} frames/s · load ${fmt(m.load != null ? m.load * 100 : null, 0)} % · xruns ${m.xruns ?? "—"}`; frames = 0; rateT0 = now; }
    for (const side of ["in", "out"]) for (const [k, , lo, hi] of ROWS) {
      const key = `${side}_${k}`, b = bars[key], v = m[key];
      b.val.textContent = fmt(v, 1);
      const w = v == null ? 0 : pct(v, lo, hi);
      b.fill.style.width = w + "%";
      if (k.includes("peak")) {
        if (v != null && (v > b.peak || now - b.peakAt > 1500)) { b.peak = v ?? -Infinity; b.peakAt = now; }
        b.hold.style.left = `calc(${pct(b.peak, lo, hi)}% - 2px)`;
      } else b.hold.style.display = "none";
    }
    for (const [k] of GR) {
      const b = bars[k], v = m[k];
      b.val.textContent = fmt(v, 1);
      b.fill.style.width = (v == null ? 0 : pct(v, 0, 20)) + "%";
      b.hold.style.display = "none";
    }
    const c = bars.correlation, cv = m.correlation;
    c.val.textContent = fmt(cv, 2);
    if (cv == null) c.fill.style.width = "0";
    else { const a = pct(Math.min(cv, 0), -1, 1), z = pct(Math.max(cv, 0), -1, 1); c.fill.style.left = a + "%"; c.fill.style.width = (z - a) + "%"; }
    c.hold.style.display = "none";
    document.getElementById("big-short").textContent = fmt(m.out_short_term_lufs, 1);
    document.getElementById("big-int").textContent = fmt(m.out_integrated_lufs, 1);
    const tp = document.getElementById("big-tp");
    tp.textContent = fmt(m.out_true_peak_dbtp, 1);
    const ceiling = state && state.values["lim.ceiling_dbtp"];
    tp.classList.toggle("hot", m.out_true_peak_dbtp != null && ceiling != null && m.out_true_peak_dbtp > ceiling + 0.05);
    setCapturing(!!m.capturing, m.capture_seconds);
    if (typeof m.bypass === "boolean") setPressed("btn-bypass", m.bypass);
    if (typeof m.learning === "boolean") setPressed("btn-learn", m.learning);
  }
  on("meters", showMeters);

  // ---- transport ------------------------------------------------------------------------
  function setPressed(id, on_) { document.getElementById(id).setAttribute("aria-pressed", on_ ? "true" : "false"); }
  function pressed(id) { return document.getElementById(id).getAttribute("aria-pressed") === "true"; }
  const presetSel = document.getElementById("live-preset-select");
  async function loadPresets() {
    const r = await api("GET", "/presets");
    presetSel.replaceChildren(...r.presets.map((p) => el("option", { value: p.name, text: p.name + (p.factory ? " (factory)" : "") })));
    if (state && state.active_preset) presetSel.value = state.active_preset;
  }
  document.getElementById("live-recall").addEventListener("click", async () => {
    try { showState(await api("POST", `/presets/${encodeURIComponent(presetSel.value)}/recall`)); toast(`Recalled ${presetSel.value}`); } catch (e) { fail(e); }
  });
  document.getElementById("btn-bypass").addEventListener("click", async () => {
    try { const r = await api("POST", "/bypass", { on: !pressed("btn-bypass") }); setPressed("btn-bypass", r.bypass); } catch (e) { fail(e); }
  });
  document.getElementById("btn-levelmatch").addEventListener("click", async () => {
    try { showState(await api("PATCH", "/state", { values: { "ab.level_match": !pressed("btn-levelmatch") } })); } catch (e) { fail(e); }
  });
  document.getElementById("btn-learn").addEventListener("click", async () => {
    const on_ = !pressed("btn-learn");
    try { await api("POST", on_ ? "/learn/start" : "/learn/stop", {}); setPressed("btn-learn", on_); toast(on_ ? "Learning the programme's loudness…" : "Learning stopped"); } catch (e) { fail(e); }
  });
  document.getElementById("btn-capture").addEventListener("click", async () => {
    try {
      if (capturing) { await api("POST", "/capture/stop", {}); setCapturing(false); toast("Capture stopped"); }
      else { await api("POST", "/capture/start", { tap: "output" }); setCapturing(true); toast("Capturing the output"); }
    } catch (e) { fail(e); }
  });
  document.getElementById("meters-reset").addEventListener("click", async () => {
    try { await api("POST", "/meters/reset", {}); } catch (e) { fail(e); }
  });
  function setCapturing(on_, seconds) {
    if (on_ && !capturing) captureSince = Date.now();
    capturing = on_;
    setPressed("btn-capture", on_);
    document.getElementById("capture-label").textContent = on_ ? "Stop" : "Capture";
    const s = seconds != null ? seconds : on_ ? (Date.now() - captureSince) / 1000 : null;
    document.getElementById("capture-time").textContent = s == null ? "stopped" : `${Math.floor(s / 60)}:${String(Math.floor(s % 60)).padStart(2, "0")}`;
  }

  function showState(s) {
    state = s;
    const name = document.getElementById("live-preset");
    name.replaceChildren(s.active_preset || "no preset", s.modified ? el("span", { class: "mod", text: "modified" }) : "");
    if (s.active_preset && presetSel.querySelector(`option[value="${CSS.escape(s.active_preset)}"]`)) presetSel.value = s.active_preset;
    setPressed("btn-levelmatch", !!s.values["ab.level_match"]);
    if (typeof s.bypass === "boolean") setPressed("btn-bypass", s.bypass);
    if (typeof s.learning === "boolean") setPressed("btn-learn", s.learning);
    setTargetMark(s.values["target.lufs"]);
    renderKnobValues();
  }
  on("state", showState);

  // ---- virtual front panel ------------------------------------------------------------
  const vpanel = document.getElementById("vpanel");
  const knobBox = document.getElementById("vpanel-knobs"), btnBox = document.getElementById("vpanel-buttons"), ledBox = document.getElementById("vpanel-leds");
  let panel = null;
  const knobs = {};
  function knobPosition(k) {
    if (typeof k.position === "number") return k.position;
    const p = schema[k.param];
    const v = state && k.param ? state.values[k.param] : k.value;
    if (!p || v == null) return 0.5;
    if (p.curve === "bool") return v ? 1 : 0;
    if (p.curve === "enum") return p.choices.indexOf(v) / Math.max(p.choices.length - 1, 1);
    if (p.curve === "log") return Math.log(v / p.min) / Math.log(p.max / p.min);
    return (v - p.min) / (p.max - p.min);
  }
  function knobText(k) {
    const p = schema[k.param];
    const v = state && k.param && state.values[k.param] !== undefined ? state.values[k.param] : k.value;
    if (p && v != null) return MB.formatValue(p, v);
    if (typeof k.value === "number") return fmt(k.value, 2);
    return k.value ?? "";
  }
  function renderKnobValues() {
    if (!panel) return;
    for (const k of panel.knobs || []) {
      const w = knobs[k.name];
      if (!w) continue;
      w.pointer.style.transform = `rotate(${(-135 + 270 * Math.max(0, Math.min(1, knobPosition(k)))).toFixed(1)}deg)`;
      w.val.textContent = knobText(k);
    }
  }
  let pending = {}, flushTimer = null;
  function turn(name, detents) {
    pending[name] = (pending[name] || 0) + detents;
    if (!flushTimer) flushTimer = setTimeout(flush, 50);
  }
  async function flush() {
    flushTimer = null;
    const batch = pending; pending = {};
    for (const [name, d] of Object.entries(batch)) {
      if (!d) continue;
      const n = Math.max(-48, Math.min(48, d));
      try { showPanel(await api("POST", `/panel/knobs/${encodeURIComponent(name)}/turn`, { detents: n })); } catch (e) { fail(e); }
    }
  }
  function buildPanel(p) {
    knobBox.replaceChildren(); btnBox.replaceChildren();
    for (const k of p.knobs || []) {
      const pointer = el("div", { class: "pointer" });
      const dial = el("div", { class: "dial", role: "slider", tabindex: "0", "aria-label": k.label || k.name, "data-knob": k.name }, pointer);
      const val = el("div", { class: "kval" });
      const minus = el("button", { class: "btn", "aria-label": `${k.label || k.name} down`, "data-knob-step": "-1", onclick: () => turn(k.name, -1) }, "−");
      const plus = el("button", { class: "btn", "aria-label": `${k.label || k.name} up`, "data-knob-step": "1", onclick: () => turn(k.name, 1) }, "+");
      knobBox.append(el("div", { class: "knob", "data-name": k.name }, el("div", { class: "kname", text: k.label || k.name }), dial, val, el("div", { class: "kbtns" }, minus, plus)));
      knobs[k.name] = { pointer, val };
      let y0 = null, acc = 0;
      dial.addEventListener("pointerdown", (ev) => { y0 = ev.clientY; acc = 0; dial.setPointerCapture(ev.pointerId); });
      dial.addEventListener("pointermove", (ev) => {
        if (y0 === null) return;
        acc += (y0 - ev.clientY); y0 = ev.clientY;
        const steps = Math.trunc(acc / 10);
        if (steps) { acc -= steps * 10; turn(k.name, steps); }
      });
      dial.addEventListener("pointerup", () => { y0 = null; });
      dial.addEventListener("wheel", (ev) => { ev.preventDefault(); turn(k.name, ev.deltaY < 0 ? 1 : -1); }, { passive: false });
      dial.addEventListener("keydown", (ev) => {
        if (ev.key === "ArrowUp" || ev.key === "ArrowRight") { turn(k.name, 1); ev.preventDefault(); }
        if (ev.key === "ArrowDown" || ev.key === "ArrowLeft") { turn(k.name, -1); ev.preventDefault(); }
      });
    }
    for (const b of p.buttons || []) {
      const name = b.name || b;
      let downAt = 0;
      const btn = el("button", { class: "btn btn-big", "data-button": name }, b.label || name, el("small", { text: "hold for long press" }));
      btn.addEventListener("pointerdown", () => { downAt = Date.now(); });
      btn.addEventListener("click", async () => {
        const held = downAt ? (Date.now() - downAt) / 1000 : 0; downAt = 0;
        try { showPanel(await api("POST", `/panel/buttons/${encodeURIComponent(name)}/press`, { hold_s: held > 0.8 ? Math.min(held, 10) : 0 })); } catch (e) { fail(e); }
      });
      btnBox.append(btn);
    }
  }
  function showPanel(p) {
    if (!p || !(p.knobs || []).length) return;
    const first = !panel || JSON.stringify((panel.knobs || []).map((k) => k.name)) !== JSON.stringify(p.knobs.map((k) => k.name));
    panel = p;
    if (first) buildPanel(p);
    vpanel.classList.remove("hidden");
    renderKnobValues();
    let leds = p.leds || [];
    if (!Array.isArray(leds)) leds = Object.entries(leds).map(([name, v]) => (typeof v === "object" ? { name, ...v } : { name, on: !!v }));
    ledBox.replaceChildren(...leds.map((l) => {
      const lit = l.on ?? l.lit ?? (typeof l.value === "number" ? l.value > 0 : !!l.value);
      return el("span", { class: `pled ${l.color || ""} ${lit ? "on" : ""}`, "data-led": l.name }, el("i"), l.label || l.name);
    }));
  }
  on("panel", showPanel);

  (async () => {
    try {
      const s = await api("GET", "/schema");
      for (const p of s.params) schema[p.id] = p;
      showState(await api("GET", "/state"));
      await loadPresets();
      showPanel(await api("GET", "/panel"));
    } catch (e) { fail(e); }
  })();
})();
