/* Live page: meters from the SSE stream, transport (preset, A/B, learn, capture, REF, Listen), virtual front panel. */
"use strict";
(() => {
  const { api, el, fmt, fail, toast, on, optimistic } = MB;
  let schema = {}, state = null, capturing = false, captureSince = null;

  // ---- meters -----------------------------------------------------------------------
  const ROWS = [
    // the engine's peaks are maxima since the last reset (Reset button), as in `masterbox analyze`
    ["peak_dbfs", "Max peak", -60, 0, "dB"], ["true_peak_dbtp", "Max true pk", -60, 0, "dB"],
    ["momentary_lufs", "Momentary", -48, 0, "LU"], ["short_term_lufs", "Short-term", -48, 0, "LU"],
    ["integrated_lufs", "Integrated", -48, 0, "LU"], ["loudness_range_lu", "LRA", 0, 20, "LU"],
    // the meter's peak to loudness ratio: how much the peaks stand above the loudness (input against output: what
    // the chain took off them)
    ["plr_db", "PLR", 0, 30, "dB", "Peak to loudness ratio: the max true peak less the integrated loudness"],
  ];
  const GR = [["gr_low_db", "Low"], ["gr_mid_db", "Mid"], ["gr_high_db", "High"], ["gr_limiter_db", "Limiter"]];
  const bars = {};
  function meterRow(key, name, cls = "", title = null) {
    const fill = el("div", { class: "fill" }), hold = el("div", { class: "hold" }), val = el("span", { class: "val", text: "—" });
    const bar = el("div", { class: "bar " + cls }, el("div", { class: "ticks" }), fill, hold);
    if (cls === "corr") bar.append(el("div", { class: "zero" }));
    bars[key] = { fill, hold, val, bar, peak: -Infinity, peakAt: 0, mark: null };
    return el("div", { class: "meter", "data-key": key, title }, el("span", { class: "name", text: name }), bar, val);
  }
  for (const side of ["in", "out"]) {
    const box = document.getElementById("meters-" + side);
    for (const [k, name, , , , title] of ROWS) box.append(meterRow(`${side}_${k}`, name, "", title));
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
  let frames = 0, rateT0 = performance.now(), counted = false;
  const rateEl = document.getElementById("meter-rate");
  // the dry start-up's xruns (the chain still loading) are named apart, as on the System page
  const xrunText = (m) => m.xruns == null ? "—" : String(m.xruns) + (m.xruns_loading ? ` (${m.xruns_loading} at start)` : "");
  const rateLine = (rate, m) => `${rate} · load ${fmt(m.load != null ? m.load * 100 : null, 0)} % · xruns ${xrunText(m)}`;
  function showMeters(m) {
    if (!m) { rateEl.textContent = MB.stalled ? "engine not responding" : "engine not running"; frames = 0; counted = false; rateT0 = performance.now(); refFlag(false); return; }
    frames++;
    const now = performance.now();
    // the first frame says the meters are live at once; the frame rate needs a second of frames
    if (!counted && frames === 1) rateEl.textContent = rateLine("live", m);
    if (now - rateT0 > 1000) { rateEl.textContent = rateLine(`${(frames * 1000 / (now - rateT0)).toFixed(0)} frames/s`, m); frames = 0; rateT0 = now; counted = true; }
    for (const side of ["in", "out"]) for (const [k, , lo, hi] of ROWS) {
      const key = `${side}_${k}`, b = bars[key], v = m[key];
      b.val.textContent = fmt(v, 1);
      const w = v == null ? 0 : pct(v, lo, hi);
      b.fill.style.width = w + "%";
      b.hold.style.display = "none";
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
    if (typeof m.bypass === "boolean" && !bypassSwitch.held()) setPressed("btn-bypass", m.bypass);
    if (typeof m.learning === "boolean") setPressed("btn-learn", m.learning);
    if (typeof m.reference === "boolean" && !refSwitch.held()) refFlag(m.reference);
    if (typeof m.monitor === "string" && !listenSwitch.held()) showListen(m.monitor);
    lastMeters = m;
    if (typeof m.preview === "string" && !previewSwitch.held()) showPreview(m.preview);
  }
  on("meters", showMeters);

  // ---- transport ------------------------------------------------------------------------
  function setPressed(id, on_) { document.getElementById(id).setAttribute("aria-pressed", on_ ? "true" : "false"); }
  function pressed(id) { return document.getElementById(id).getAttribute("aria-pressed") === "true"; }
  const bypassSwitch = optimistic((on_) => setPressed("btn-bypass", on_));
  // The quick recall's list follows the presets: listed again when the state's presets_version moves (a
  // preset saved, renamed, deleted or imported here, in another browser or on the panel) and when the
  // active preset is not among its options; one listing at a time, the newest change listed last.
  const presetSel = document.getElementById("live-preset-select");
  let presetsVersion = null, presetNames = null, listing = null, listAgain = false;
  async function loadPresets() {
    const r = await api("GET", "/presets");
    const rows = r.presets.filter((p) => p.name !== null), chosen = presetSel.value;
    presetsVersion = r.version;
    presetNames = new Set(rows.map((p) => p.name));
    presetSel.replaceChildren(...rows.map((p) => el("option", { value: p.name, text: p.name + (p.factory ? " (factory)" : "") })));
    const want = state && state.active_preset && presetNames.has(state.active_preset) ? state.active_preset : chosen;
    if (presetNames.has(want)) presetSel.value = want;
  }
  function relistPresets() {
    if (listing) { listAgain = true; return; }
    listing = loadPresets().catch(fail).finally(() => {
      listing = null;
      if (listAgain) { listAgain = false; relistPresets(); }
    });
  }
  function followPresets(s) {
    if (presetNames === null) return;          // the first listing is on its way
    if ((s.presets_version !== undefined && s.presets_version !== presetsVersion)
        || (s.active_preset && !presetNames.has(s.active_preset))) relistPresets();
  }
  document.getElementById("live-recall").addEventListener("click", async () => {
    const name = presetSel.value;
    if (!name) return;
    try { showState(await api("POST", `/presets/${encodeURIComponent(name)}/recall`)); toast(`Recalled ${name}`); } catch (e) {
      fail(e);
      if (e.status === 404) relistPresets();   // gone meanwhile: the list says what there is now
    }
  });
  document.getElementById("btn-bypass").addEventListener("click", () => {
    bypassSwitch.press(!pressed("btn-bypass"), async (on_) => (await api("POST", "/bypass", { on: on_ })).bypass);
  });
  const levelMatchSwitch = optimistic((s) => {
    if (typeof s === "boolean") { setPressed("btn-levelmatch", s); return; }
    setPressed("btn-levelmatch", !!s.values["ab.level_match"]);
    showState(s);
  });
  document.getElementById("btn-levelmatch").addEventListener("click", () => {
    levelMatchSwitch.press(!pressed("btn-levelmatch"),
      (on_) => api("PATCH", "/state", { values: { "ab.level_match": on_ } }));
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
    try {
      await api("POST", "/meters/reset", {});
      document.dispatchEvent(new Event("masterbox:meters-reset"));       // the history starts again too
    } catch (e) { fail(e); }
  });
  // ---- REF: a capture (chosen on the Captures page) in place of the master, level-matched ----------
  // Lit while the engine lets the reference be heard (the meters' "reference" flag, so a switch from
  // another browser or a script shows here too); its name, and how it was matched, from GET /reference,
  // asked again whenever that flag changes.
  const refBtn = document.getElementById("btn-ref"), refName = document.getElementById("ref-name");
  const refNote = document.getElementById("ref-note");
  let refHeard = null;
  const signedDb = (v) => `${v > 0 ? "+" : v < 0 ? "−" : ""}${Math.abs(v).toFixed(1)} dB`;
  function refNoteText(r) {
    const e = r.engine;
    if (!e || !e.on) return "";
    const head = `Reference “${r.capture}” · `;
    if (e.matched_to === "given") return head + `gain ${signedDb(e.gain_db)}, as set`;
    if (!e.matched_to) return head + "gain 0 dB (the master has no loudness yet)";
    return head + `matched ${signedDb(e.gain_db)} to the master's ${e.matched_to === "short_term" ? "short-term" : "integrated"} loudness`
      + (e.short_by_db != null ? `, held ${fmt(e.short_by_db, 1)} dB short to keep its peaks under the ceiling` : "");
  }
  function showReference(r) {
    const name = r && r.capture;
    refBtn.disabled = !name;
    refBtn.title = name ? `Hear “${name}” in place of the master, at the master's loudness (key F)`
      : "No reference: choose a reference on the Captures page";
    refName.textContent = name || "no reference";
    const text = name ? refNoteText(r) : "";
    refNote.textContent = text;
    refNote.classList.toggle("hidden", !text);
    // the spectrum card compares the master with the reference's long-term spectrum (spectrum.js)
    document.dispatchEvent(new CustomEvent("masterbox:reference", { detail: r }));
  }
  async function loadReference() {
    try { showReference((await api("GET", "/reference")).reference); } catch (e) { /* shown as it was; asked again on the next change */ }
  }
  function refFlag(heard) {
    setPressed("btn-ref", heard);
    if (refHeard !== null && heard !== refHeard) loadReference();
    refHeard = heard;
  }
  // a press shows at once; the answer says what the engine does and how the reference is matched
  const refSwitch = optimistic((r) => {
    if (typeof r === "boolean") { setPressed("btn-ref", r); return; }
    if (r && r.engine && typeof r.engine.on === "boolean") setPressed("btn-ref", r.engine.on);
    showReference(r);
  });
  refBtn.addEventListener("click", () => {
    refSwitch.press(!pressed("btn-ref"), async (on_) => (await api("POST", "/reference/switch", { on: on_ })).reference);
  });
  // chosen on the Captures page (here or in another browser) while this page was in the background
  document.addEventListener("visibilitychange", () => { if (!document.hidden) loadReference(); });

  // ---- Listen: what the speakers hear (POST /monitor); recordings and meters stay the stereo master ----
  // Lit from the meters' "monitor" field (the engine's mode, so a change from another browser or a script
  // shows here too), and from the state's "monitor" (what the box keeps for an engine that is down).
  // Pressing the lit Mono/Side/L/R again goes back to stereo, as on a monitor controller.
  const listen = document.getElementById("listen"), listenNote = document.getElementById("listen-note");
  const listenBtns = [...listen.querySelectorAll(".btn-listen")];
  const LISTEN_NOTES = {
    mono: "Speakers: mono, (L+R)/2", side: "Speakers: the side only, (L−R)/2",
    left: "Speakers: the left channel only", right: "Speakers: the right channel only",
  };
  function showListen(mode) {
    if (!listenBtns.some((b) => b.dataset.mode === mode)) return;
    listen.dataset.mode = mode;
    for (const b of listenBtns) b.setAttribute("aria-pressed", b.dataset.mode === mode ? "true" : "false");
    const text = mode === "stereo" ? "" : `${LISTEN_NOTES[mode]}, not the stereo master (recordings and meters stay stereo)`;
    if (listenNote.textContent !== text) listenNote.textContent = text;
    listenNote.classList.toggle("hidden", !text);
  }
  const listenSwitch = optimistic(showListen);
  for (const b of listenBtns) b.addEventListener("click", () => {
    const mode = b.dataset.mode !== "stereo" && b.getAttribute("aria-pressed") === "true" ? "stereo" : b.dataset.mode;
    listenSwitch.press(mode, async (m) => (await api("POST", "/monitor", { mode: m })).monitor);
  });

  // ---- As streamed (POST /preview): the speakers hear the master at a streaming service's gain ----
  // The engine works the gain out from the output's integrated loudness since the meters were reset; the
  // meters carry the service and the gain, so the note says what is heard and why.
  const previewSel = document.getElementById("preview-select"), previewNote = document.getElementById("preview-note");
  let lastMeters = null;
  function showPreview(service) {
    const opt = [...previewSel.options].find((o) => o.value === service);
    if (!opt) return;
    listen.dataset.preview = service;
    if (previewSel.value !== service) previewSel.value = service;
    let text = "";
    if (service !== "off") {
      const name = opt.dataset.name, target = Number(opt.dataset.target);
      const m = lastMeters || {}, lufs = m.out_integrated_lufs, gain = m.preview_gain_db;
      if (lastMeters && m.preview !== service) {
        text = `Speakers: as ${name} plays it…`;     // just chosen: the box's gain for it comes with its next frame
      } else if (lufs == null || gain == null) {
        text = `Speakers: as ${name} plays it, once the master has been measured (reset the meters at the song's start)`;
      } else {
        const full = target - lufs;
        const what = Math.abs(gain) < 0.05 ? (full > 0.05 && opt.dataset.ups === "0" ? `not turned up (${name} never raises a quiet track)` : "unchanged")
          : gain < 0 ? `turned down ${fmt(-gain, 1)} dB`
          : `turned up ${fmt(gain, 1)} dB${gain < full - 0.05 ? ` (only as far as ${fmt(-Number(opt.dataset.tpLimit), 0)} dB of true-peak headroom allows)` : ""}`;
        text = `Speakers: as ${name} plays it, ${what}: the master measures ${fmt(lufs, 1)} LUFS since the meters were reset, ${name} plays at ${fmt(target, 0)} LUFS (recordings and meters stay the master)`;
      }
    }
    if (previewNote.textContent !== text) previewNote.textContent = text;
    previewNote.classList.toggle("hidden", !text);
  }
  const previewSwitch = optimistic(showPreview);
  previewSel.addEventListener("change", () => {
    previewSwitch.press(previewSel.value, async (service) => (await api("POST", "/preview", { service })).preview);
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
    followPresets(s);
    if (!levelMatchSwitch.held()) setPressed("btn-levelmatch", !!s.values["ab.level_match"]);
    if (typeof s.bypass === "boolean" && !bypassSwitch.held()) setPressed("btn-bypass", s.bypass);
    if (typeof s.learning === "boolean") setPressed("btn-learn", s.learning);
    if (typeof s.monitor === "string" && !listenSwitch.held()) showListen(s.monitor);
    if (typeof s.preview === "string" && !previewSwitch.held()) showPreview(s.preview);
    const ls = s.learn || {};
    document.getElementById("learn-status").textContent =
      ls.state === "listening" || ls.state === "adjusting" ? `${ls.state}${ls.measured_lufs != null ? ` ${fmt(ls.measured_lufs, 1)}` : ""}`
      : ls.state === "settled" || ls.state === "done" ? `drive ${fmt(ls.drive_db, 1)} dB` : ls.state === "failed" ? "failed" : "target";
    document.getElementById("btn-learn").title = ls.reason || "Set the output drive so the output lands on the preset's loudness target";
    setTargetMark(s.values["target.lufs"]);
    renderKnobValues();
  }
  on("state", showState);

  // ---- virtual front panel ------------------------------------------------------------
  // GET /api/v1/panel: {knobs: {name: {param|macro, position, ...}}, buttons: {role: {hold}},
  //                     bars: {name: {leds: [bool]}}, needles: {name: {deflection}}, clip, status}
  const vpanel = document.getElementById("vpanel");
  const knobBox = document.getElementById("vpanel-knobs"), btnBox = document.getElementById("vpanel-buttons"), ledBox = document.getElementById("vpanel-leds");
  // role: [label, what the button says under it, a tap, a long press] (as firmware/panel_controller.py maps them;
  // how long a long press is comes from the panel itself)
  const BUTTONS = {
    bypass: ["BYPASS", "hold 5 s: shut down", "A/B (bypass)", "save the state and shut the box down"],
    preset_down: ["PRESET −", "previous · hold: 1 ⇄ 2", "previous preset",
      "settings 1 ⇄ 2 (compare the two versions of the settings)"],
    preset_up: ["PRESET +", "hold 2 s: save", "next preset", "save into the active user preset"],
    learn: ["LEARN", "start / stop · hold: mono", "start / stop learning the loudness",
      "mono check (mono, held again stereo; from side, L or R: stereo)"],
    capture: ["CAPTURE", "start / stop · hold: REF", "start / stop a capture",
      "REF: the reference track in place of the master, level-matched (held again: the master; no reference chosen: start / stop)"],
  };
  let panel = null, panelKey = "";
  const knobs = {};
  function knobText(name, k) {
    const p = schema[k.param];
    if (p && state && state.values[k.param] !== undefined) return MB.formatValue(p, state.values[k.param]);
    if (k.macro) return `${Math.round(k.position * 100)} %`;
    return fmt(k.position, 2);
  }
  function renderKnobValues() {
    if (!panel) return;
    for (const [name, k] of Object.entries(panel.knobs || {})) {
      const w = knobs[name];
      if (!w) continue;
      // the pointer is where the knob physically is; the dot is the parameter's value
      const clamp = (x) => Math.max(0, Math.min(1, x));
      const pos = clamp(k.position), phys = k.physical == null ? pos : clamp(k.physical);
      const angle = (x) => (-135 + 270 * x).toFixed(1);
      w.pointer.style.transform = `rotate(${angle(phys)}deg)`;
      w.mark.style.transform = `rotate(${angle(pos)}deg)`;
      w.dial.setAttribute("aria-valuenow", phys.toFixed(3));
      w.val.textContent = knobText(name, k);
      const waiting = k.picked_up === false && Math.abs(phys - pos) > 0.01;
      w.mark.classList.toggle("hidden", !waiting);
      w.hint.textContent = waiting ? (phys < pos ? "turn up to pick up ●" : "turn down to pick up ●") : "";
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
    for (let [name, d] of Object.entries(batch)) {
      while (d) {  // a fast spin is sent in requests of at most 48 detents, none lost
        const n = Math.max(-48, Math.min(48, d));
        d -= n;
        try { showPanel(await api("POST", `/panel/knobs/${encodeURIComponent(name)}/turn`, { detents: n })); } catch (e) { fail(e); break; }
      }
    }
  }
  function buildPanel(p) {
    knobBox.replaceChildren(); btnBox.replaceChildren();
    for (const [name, k] of Object.entries(p.knobs || {})) {
      const label = name.toUpperCase();
      const pointer = el("div", { class: "pointer" }), mark = el("div", { class: "pickup hidden" });
      const dial = el("div", { class: "dial", role: "slider", tabindex: "0", "aria-label": label, "aria-valuemin": "0", "aria-valuemax": "1", "data-knob": name }, mark, pointer);
      const val = el("div", { class: "kval" }), hint = el("div", { class: "muted small" });
      const minus = el("button", { class: "btn", "aria-label": `${label} down`, "data-knob-step": "-1", onclick: () => turn(name, -1) }, "−");
      const plus = el("button", { class: "btn", "aria-label": `${label} up`, "data-knob-step": "1", onclick: () => turn(name, 1) }, "+");
      knobBox.append(el("div", { class: "knob", "data-name": name, title: k.param || k.macro || "" },
        el("div", { class: "kname", text: label }), dial, val, el("div", { class: "kbtns" }, minus, plus), hint));
      knobs[name] = { pointer, mark, val, dial, hint };
      // drag up/down anywhere once the dial is grabbed: 6 px per detent
      dial.addEventListener("pointerdown", (ev) => {
        ev.preventDefault();
        const y0 = ev.clientY;
        let sent = 0;
        const move = (e) => {
          const steps = Math.trunc((y0 - e.clientY) / 6) - sent;
          if (steps) { sent += steps; turn(name, steps); }
        };
        const up = () => { window.removeEventListener("pointermove", move); window.removeEventListener("pointerup", up); window.removeEventListener("pointercancel", up); };
        window.addEventListener("pointermove", move);
        window.addEventListener("pointerup", up);
        window.addEventListener("pointercancel", up);
      });
      dial.addEventListener("wheel", (ev) => { ev.preventDefault(); turn(name, ev.deltaY < 0 ? 2 : -2); }, { passive: false });
      dial.addEventListener("keydown", (ev) => {
        if (ev.key === "ArrowUp" || ev.key === "ArrowRight") { turn(name, 1); ev.preventDefault(); }
        if (ev.key === "ArrowDown" || ev.key === "ArrowLeft") { turn(name, -1); ev.preventDefault(); }
      });
    }
    for (const [role, b] of Object.entries(p.buttons || {})) {
      const [label, sub, tap, long] = BUTTONS[role] || [role.toUpperCase(), "", "press", "long press"];
      // As on the box: the press lasts as long as it is held here; held for the button's hold
      // time or longer it is the long action (the button lights when that is reached).
      let downAt = 0, holdTimer = 0;
      const btn = el("button", { class: "btn btn-big", "data-button": role, title: `tap: ${tap}` + (long ? ` · hold ${b.hold} s: ${long}` : "") }, label, el("small", { text: sub }));
      btn.addEventListener("pointerdown", () => {
        downAt = Date.now();
        clearTimeout(holdTimer);
        holdTimer = setTimeout(() => btn.classList.add("on"), (b.hold || 1) * 1000);
      });
      btn.addEventListener("pointerleave", () => { clearTimeout(holdTimer); });
      btn.addEventListener("click", async () => {
        const held = downAt ? (Date.now() - downAt) / 1000 : 0; downAt = 0;
        clearTimeout(holdTimer); btn.classList.remove("on");
        const body = held >= 0.3 ? { hold_s: Math.min(held, 8) } : {};
        try { showPanel(await api("POST", `/panel/buttons/${encodeURIComponent(role)}/press`, body)); } catch (e) { fail(e); }
      });
      btnBox.append(btn);
    }
  }
  function ledBar(name, leds) {
    const n = leds.length;
    return el("span", { class: "pled-bar", "data-led": name }, el("span", { class: "pled-name", text: name }),
      leds.map((on_, i) => el("i", { class: `seg ${on_ ? "on" : ""} ${i >= n - 1 ? "red" : i >= n - 2 ? "amber" : ""}` })));
  }
  function showPanel(p) {
    if (!p || !Object.keys(p.knobs || {}).length) return;
    const key = Object.keys(p.knobs).join("|") + "/" + Object.keys(p.buttons || {}).join("|");
    panel = p;
    if (key !== panelKey) { panelKey = key; buildPanel(p); }
    vpanel.classList.remove("hidden");
    document.getElementById("vpanel-kind").textContent = p.simulated === false ? "drives the box's own panel" : "simulated";
    renderKnobValues();
    const items = [];
    for (const [name, b] of Object.entries(p.bars || {})) items.push(ledBar(name, b.leds || []));
    for (const [name, n] of Object.entries(p.needles || {})) {
      const g = el("span", { class: "needle" }, el("i"));
      g.firstChild.style.transform = `rotate(${(-45 + 90 * Math.max(0, Math.min(1, n.deflection))).toFixed(1)}deg)`;
      items.push(el("span", { class: "pled-bar", "data-needle": name }, el("span", { class: "pled-name", text: name.replace("_", " ") }), g));
    }
    if (p.clip !== null && p.clip !== undefined) items.push(el("span", { class: `pled red ${p.clip ? "on" : ""}`, "data-led": "clip" }, el("i"), "clip"));
    if (p.status) items.push(el("span", { class: `pled ${p.status.pattern === "error" ? "red" : p.status.pattern === "running" ? "" : "amber"} ${p.status.lit ? "on" : ""}`, "data-led": "status" }, el("i"), (p.status.pattern || "status").replace("_", " ")));
    ledBox.replaceChildren(...items);
  }
  on("panel", showPanel);

  (async () => {
    try {
      const s = await api("GET", "/schema");
      for (const p of s.params) schema[p.id] = p;
      showState(await api("GET", "/state"));
      loadReference();
      await loadPresets();
      showPanel(await api("GET", "/panel"));
    } catch (e) { fail(e); }
  })();
})();
