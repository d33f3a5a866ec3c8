/* Live page: the spectrum analyser (1/6-octave bands of the output, mid and side, over the input's mid)
   and the vectorscope (the output's last 40 ms, mid up, side across). */
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
  const scope = document.getElementById("vectorscope");
  let spectrum = null, timer = null, asking = false;

  async function tick() {
    timer = null;
    if (document.hidden || asking) return;    // visibilitychange starts it again; one request at a time
    let wait = EVERY;
    asking = true;
    try {
      spectrum = (await api("GET", "/meters/spectrum")).spectrum;
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
    graph.setAttribute("aria-label", `Spectrum, 1/6 octave: the output's strongest band ${bandText(hz[peak])} `
      + `at ${fmt(spectrum.out_mid_db[peak], 1)} dB`);
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
