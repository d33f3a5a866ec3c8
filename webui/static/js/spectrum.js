/* Live page: the spectrum analyser, 1/6-octave bands of the output (mid and side) over the input's mid. */
"use strict";
(() => {
  const { api, fmt, svg } = MB;
  const graph = document.getElementById("spectrum-graph");
  if (!graph) return;
  // The box analyses its newest ~0.7 s of audio when asked (GET /meters/spectrum, at most 10 times
  // a second however many pages ask); this page asks only while it is visible, so a phone in a
  // pocket costs the box nothing.
  const EVERY = 125, BACKOFF = 1000;          // ms between requests; after a failure
  const TOP = 0, BOTTOM = -90, LO = 20, HI = 20000;
  const GRID_HZ = [50, 100, 200, 500, 1000, 2000, 5000, 10000];
  let spectrum = null, timer = null, asking = false;

  async function tick() {
    timer = null;
    if (document.hidden || asking) return;    // visibilitychange starts it again; one request at a time
    let wait = EVERY;
    asking = true;
    try {
      spectrum = (await api("GET", "/meters/spectrum")).spectrum;
      draw();
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
    graph.setAttribute("aria-label", `Spectrum, 1/6 octave: the output's strongest band ${bandText(hz[peak])} `
      + `at ${fmt(spectrum.out_mid_db[peak], 1)} dB`);
  }

  draw();
  tick();
})();
