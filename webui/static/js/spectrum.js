/* Live page: the spectrum analyser (1/6-octave bands of the output, mid and side, over the input's mid),
   the tonal balance against the reference (the master's long-term average beside the reference's, at
   the master's loudness; the maths in tonal.js) and the vectorscope (the output's last 40 ms, mid up,
   side across). */
"use strict";
(() => {
  const { api, el, fmt, svg } = MB;
  const graph = document.getElementById("spectrum-graph");
  if (!graph) return;
  // The box analyses its newest ~0.7 s of audio when asked (GET /meters/spectrum, at most 10 times
  // a second however many pages ask); this page asks only while it is visible, so a phone in a
  // pocket costs the box nothing.
  const EVERY = 125, BACKOFF = 1000;          // ms between requests; after a failure
  const TOP = 0, BOTTOM = -90, LO = 20, HI = 20000;
  const GRID_HZ = [50, 100, 200, 500, 1000, 2000, 5000, 10000];
  const scope = document.getElementById("vectorscope");
  let spectrum = null, timer = null, asking = false;
  // the comparison with the reference (below): GET /reference's answer, the newest meter frame, the
  // master's running average (null: not comparing) and when its last reading came
  let ref = null, meters = null, avg = null, lastAt = 0, refTimer = null;

  async function tick() {
    timer = null;
    if (document.hidden || asking) return;    // visibilitychange starts it again; one request at a time
    let wait = EVERY;
    asking = true;
    try {
      spectrum = (await api("GET", "/meters/spectrum")).spectrum;
      if (spectrum) average(spectrum);
      draw();
      if (scope) drawScope((await api("GET", "/meters/vectorscope")).vectorscope);
    } catch (e) { wait = BACKOFF; }
    asking = false;
    if (!timer && !document.hidden) timer = setTimeout(tick, wait);
  }
  document.addEventListener("visibilitychange", () => { if (!document.hidden && !timer) tick(); });
  new ResizeObserver(() => draw()).observe(graph);

  const hzText = (f) => (f >= 1000 ? `${f / 1000}k` : String(f));
  const bandText = (f) => (f >= 1000 ? `${(f / 1000).toFixed(f >= 10000 ? 0 : 1)} kHz` : `${Math.round(f)} Hz`);
  function draw() {
    const W = graph.clientWidth || 600, H = graph.clientHeight || 190;
    const fx = (f) => (Math.log(f / LO) / Math.log(HI / LO)) * W;
    const fy = (v) => 6 + ((TOP - Math.max(BOTTOM, Math.min(TOP, v))) / (TOP - BOTTOM)) * (H - 26);
    graph.setAttribute("viewBox", `0 0 ${W} ${H}`);
    graph.replaceChildren();
    for (const f of GRID_HZ) {
      graph.append(svg("line", { class: "grid", x1: fx(f), x2: fx(f), y1: 0, y2: H - 20 }));
      graph.append(svg("text", { x: fx(f) + 3, y: H - 6 }, hzText(f)));
    }
    for (let v = TOP - 12; v > BOTTOM; v -= 12) {
      graph.append(svg("line", { class: "grid", x1: 0, x2: W, y1: fy(v), y2: fy(v) }));
      graph.append(svg("text", { x: 4, y: fy(v) - 4 }, String(v)));
    }
    if (!spectrum) {
      graph.setAttribute("aria-label", "Spectrum: no engine running");
      return;
    }
    const hz = spectrum.bands_hz;
    const line = (vals) => vals.map((v, i) => (i ? "L" : "M") + fx(hz[i]).toFixed(1) + " " + fy(v).toFixed(1)).join("");
    const out = line(spectrum.out_mid_db);
    graph.append(svg("path", { class: "area", d: `${out}L${fx(hz[hz.length - 1]).toFixed(1)} ${H - 20}L${fx(hz[0]).toFixed(1)} ${H - 20}Z` }));
    graph.append(svg("path", { class: "side", "data-line": "out-side", d: line(spectrum.out_side_db) }));
    graph.append(svg("path", { class: "in", "data-line": "in-mid", d: line(spectrum.in_mid_db) }));
    graph.append(svg("path", { class: "out", "data-line": "out-mid", d: out }));
    const peak = spectrum.out_mid_db.reduce((k, v, i, a) => (v > a[k] ? i : k), 0);
    let label = `Spectrum, 1/6 octave: the output's strongest band ${bandText(hz[peak])} `
      + `at ${fmt(spectrum.out_mid_db[peak], 1)} dB`;
    graph.classList.toggle("comparing", !!avg);
    if (avg) label += drawComparison(hz, line);
    graph.setAttribute("aria-label", label);
  }

  // ---- tonal balance against the reference ------------------------------------------------
  // While "Compare with reference" is on, every analyser reading this page receives is added to a
  // running mean of powers (Tonal, tonal.js): the master's long-term spectrum, built here, so the box
  // does nothing more than it already does for the analyser. Beside it, the reference's long-term
  // spectrum (measured by the box when it prepared the reference: GET /reference, prepared.spectrum),
  // moved to the master's loudness as REF's level match would play it.
  const cmpBtn = document.getElementById("compare-toggle"), cmpWhat = document.getElementById("compare-what");
  const cmpTime = document.getElementById("compare-time"), cmpReset = document.getElementById("compare-reset");
  const tonal = document.getElementById("tonal"), tonalLegend = document.getElementById("tonal-legend");
  const tonalTable = document.getElementById("tonal-table");
  const NO_REF = "No reference: choose one on the Captures page (a capture's More… menu: Use as reference)";
  const signed = (v) => { const t = Math.abs(v).toFixed(1); return `${t === "0.0" ? "" : v > 0 ? "+" : "−"}${t} dB`; };
  const lufsText = (v) => `${v < 0 ? "−" : ""}${Math.abs(v).toFixed(1)} LUFS`;
  const clock = (s) => (s < 60 ? `${Math.floor(s)} s` : `${Math.floor(s / 60)}:${String(Math.floor(s % 60)).padStart(2, "0")}`);
  function refSpectrum() {
    const sp = ref && ref.capture && ref.prepared && ref.prepared.spectrum;
    return sp && Array.isArray(sp.mid_db) && Array.isArray(sp.side_db) ? sp : null;
  }
  function showRef(r) {
    ref = r;
    clearTimeout(refTimer);
    const name = r && r.capture, sp = refSpectrum();
    cmpBtn.disabled = !sp;
    let why;
    if (!name) why = NO_REF;
    else if (!sp) {
      why = `“${name}” has no long-term spectrum yet: the box is preparing it again`;
      refTimer = setTimeout(askRef, 5000);        // it appears once the box has prepared it again
    }
    cmpBtn.title = why || `Compare the master's long-term spectrum with “${name}”'s, at the master's loudness`;
    if (!sp && avg) stopComparing();
    cmpWhat.textContent = why || (avg ? `against “${name}”` : `reference: “${name}”`);
    draw();
  }
  async function askRef() {
    if (document.hidden) return;                   // live.js asks again when the page is shown
    try { showRef((await api("GET", "/reference")).reference); } catch (e) { refTimer = setTimeout(askRef, 5000); }
  }
  document.addEventListener("masterbox:reference", (ev) => showRef(ev.detail));
  MB.on("meters", (m) => { meters = m; });
  // settings 1 / 2: a switch puts another version of the master on the analyser, so the average
  // starts again; once both are in use the readout says which one it is of
  let slotHeard = null, bothSlots = false;
  MB.on("state", (s) => {
    const sl = s && s.slots;
    if (!sl) return;
    const restart = avg && slotHeard !== null && sl.current !== slotHeard;
    slotHeard = sl.current;
    bothSlots = !sl.other_empty;
    if (restart) { startAverage(); draw(); }
  });

  function startAverage() {
    avg = Tonal.newAverage(spectrum ? spectrum.out_mid_db.length : 61);
    lastAt = performance.now();
  }
  function stopComparing() {
    avg = null;
    cmpBtn.setAttribute("aria-pressed", "false");
    cmpReset.classList.add("hidden"); cmpTime.classList.add("hidden"); tonal.classList.add("hidden");
  }
  cmpBtn.addEventListener("click", () => {
    if (cmpBtn.getAttribute("aria-pressed") === "true") stopComparing();
    else {
      startAverage();
      cmpBtn.setAttribute("aria-pressed", "true");
      cmpReset.classList.remove("hidden"); cmpTime.classList.remove("hidden"); tonal.classList.remove("hidden");
    }
    showRef(ref);
  });
  cmpReset.addEventListener("click", () => {
    startAverage();
    draw();
  });
  function average(s) {
    if (!avg) return;
    if (avg.mid.length !== s.out_mid_db.length) avg = Tonal.newAverage(s.out_mid_db.length);
    const now = performance.now(), elapsed = Math.min(1, (now - lastAt) / 1000);   // a hidden page (no readings) pauses it
    lastAt = now;
    // bypassed, the analyser shows the mix as it came in, not the master: those readings are left out
    avg.paused = Boolean(meters && meters.bypass);
    if (avg.paused) return;
    avg.seconds += elapsed;
    Tonal.addReading(avg, s.out_mid_db, s.out_side_db);
  }

  // Draws the two long-term curves and fills the readout; returns what the graph's label adds.
  function drawComparison(hz, line) {
    const sp = refSpectrum();
    cmpTime.textContent = `averaged ${clock(avg.seconds)} · ${avg.readings} reading${avg.readings === 1 ? "" : "s"}`
      + (avg.paused ? " · paused while bypassed" : "") + (bothSlots ? ` · settings ${slotHeard}` : "");
    cmpTime.dataset.readings = String(avg.readings);
    if (!sp || sp.mid_db.length !== hz.length) return "";
    const off = Tonal.levelOffset(meters, ref.prepared.integrated_lufs);
    graph.append(svg("path", { class: "ref", "data-line": "ref-mid", "data-offset-db": off.db.toFixed(2),
      "data-aligned-to": off.alignedTo || "none", d: line(sp.mid_db.map((v) => v + off.db)) }));
    const where = off.alignedTo
      ? `, aligned to the master's ${off.alignedTo === "integrated" ? "integrated" : "short-term"} loudness (${lufsText(off.masterLufs)})`
        + (off.clamped ? `, held at the ${Tonal.MAX_OFFSET_DB} dB limit` : "")
      : `, not moved: ${Number.isFinite(ref.prepared.integrated_lufs) ? "the master has no loudness yet" : "the reference has no loudness"}`;
    tonalLegend.replaceChildren(
      el("span", { class: "key-avg" }, el("i", { class: "swatch" }), "master, long-term"), " · ",
      el("span", { class: "key-ref" }, el("i", { class: "swatch" }), `“${ref.capture}” ${signed(off.db)}`), where);
    tonalLegend.dataset.alignedTo = off.alignedTo || "none";
    if (!avg.readings) {
      for (const td of tonalTable.querySelectorAll("tbody td")) { td.textContent = "—"; td.className = ""; delete td.dataset.diffDb; }
      return "";
    }
    const mid = Tonal.averageDb(avg, "mid");
    graph.append(svg("path", { class: "avg", "data-line": "avg-mid", "data-readings": String(avg.readings), d: line(mid) }));
    const rows = { mid: Tonal.regionDifferences(hz, mid, sp.mid_db, off.db),
                   side: Tonal.regionDifferences(hz, Tonal.averageDb(avg, "side"), sp.side_db, off.db) };
    for (const [channel, regions] of Object.entries(rows)) for (const r of regions) {
      const td = tonalTable.querySelector(`tr[data-channel="${channel}"] td[data-region="${r.name}"]`);
      if (r.diff_db === null) {                       // nothing there in either: no number to read
        td.textContent = "—"; td.className = ""; td.title = "nothing there in either"; delete td.dataset.diffDb;
        continue;
      }
      td.title = "";
      const text = signed(r.diff_db);                // the unit is left out on a phone (the caption says dB)
      td.replaceChildren(text.slice(0, -3), el("span", { class: "unit", text: " dB" }));
      td.dataset.diffDb = r.diff_db.toFixed(3);
      td.className = r.diff_db > 1 ? "more" : r.diff_db < -1 ? "less" : "";
    }
    return `; master minus “${ref.capture}”: ` + rows.mid.map((r) => `${r.name} ${r.diff_db === null ? "—" : signed(r.diff_db)}`).join(", ");
  }

  // The vectorscope keeps a fading trace of the last few frames (persistence), as a CRT one would.
  function drawScope(v) {
    const dpr = window.devicePixelRatio || 1, S = scope.clientWidth || 190;
    if (scope.width !== Math.round(S * dpr)) { scope.width = scope.height = Math.round(S * dpr); }
    const g = scope.getContext("2d");
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.fillStyle = "rgba(21, 23, 28, 0.55)";           // --bg2, partly: older frames fade
    g.fillRect(0, 0, S, S);
    const c = S / 2, r = S / 2 - 8;
    g.strokeStyle = "rgba(255,255,255,0.10)"; g.lineWidth = 1;
    g.beginPath();
    g.moveTo(c, c - r); g.lineTo(c, c + r); g.moveTo(c - r, c); g.lineTo(c + r, c);            // M and S
    g.moveTo(c - r * 0.7, c - r * 0.7); g.lineTo(c + r * 0.7, c + r * 0.7);                      // L and R
    g.moveTo(c + r * 0.7, c - r * 0.7); g.lineTo(c - r * 0.7, c + r * 0.7);
    g.stroke();
    g.fillStyle = "#8d96a5"; g.font = "11px sans-serif";
    g.fillText("L", c - r * 0.7 - 10, c - r * 0.7); g.fillText("R", c + r * 0.7 + 3, c - r * 0.7); g.fillText("M", c + 3, 12);
    if (!v) { scope.setAttribute("aria-label", "Vectorscope: no engine running"); return; }
    g.fillStyle = "rgba(245, 184, 61, 0.75)";
    for (const [x, y] of v.points) g.fillRect(c + x * r - 0.75, c - y * r - 0.75, 1.5, 1.5);
    scope.dataset.points = String(v.points.length);
    scope.setAttribute("aria-label", `Vectorscope: correlation ${v.correlation == null ? "—" : fmt(v.correlation, 2)}, `
      + `side ${v.side_to_mid_db == null ? "—" : fmt(v.side_to_mid_db, 1)} dB against the mid`);
  }

  draw();
  tick();
})();
