/* The Chain page's picture of the multiband compressor: where the three bands split, and each band's
   static curve with its live gain reduction.

   Both are computed by the box (GET /multiband/response, dsp/multiband_design.py: the same static curve
   the chain's kernel runs, the exact magnitudes of its Linkwitz-Riley split), drawn here in CSS pixels
   (the viewBox follows the element's size). The live part comes with the meters (gr_low_db, gr_mid_db,
   gr_high_db): each band's curve in the split picture moves by its gain (makeup less the live
   reduction), and a dot rides the band's static curve at the level that asks for that reduction.
   chain.js places the frames and passes the state and the meters on; this file knows nothing else about the page. */
"use strict";
window.MultibandView = (() => {
  const { svg } = MB;
  const BANDS = ["low", "mid", "high"];
  const FLO = 20, FHI = 20000, TOP_DB = 6, BOTTOM_DB = -24;  // the split picture: 20 Hz..20 kHz, +6..-24 dB
  let splitSvg = null, data = null;
  const curveSvgs = {}, gr = { low: 0, mid: 0, high: 0 };
  const fmtHz = (f) => (f >= 1000 ? `${(f / 1000).toFixed(f >= 10000 ? 1 : 2)} kHz` : `${Math.round(f)} Hz`);
  const fmtDb = (v) => `${v < 0 ? "−" : ""}${Math.abs(v).toFixed(1)} dB`;

  function observe(node, draw) { new ResizeObserver(draw).observe(node); return node; }

  /* The split: the three bands' responses on a log frequency axis, each moved by its live gain. */
  function splitFrame() {
    splitSvg = svg("svg", { class: "mb-split", role: "img", "aria-label": "Multiband split" });
    return observe(splitSvg, drawSplit);
  }
  // (a band's slope runs out of the bottom of the picture, not along it: clamped well below it, for finite numbers)
  function splitScale() {
    const W = splitSvg.clientWidth || 600, H = splitSvg.clientHeight || 150;
    return { W, H, fx: (f) => (Math.log(f / FLO) / Math.log(FHI / FLO)) * W,
             dy: (d) => 8 + ((TOP_DB - Math.min(TOP_DB, Math.max(BOTTOM_DB - 40, d))) / (TOP_DB - BOTTOM_DB)) * (H - 26) };
  }
  function drawSplit() {
    if (!splitSvg) return;
    const { W, H, fx, dy } = splitScale();
    splitSvg.setAttribute("viewBox", `0 0 ${W} ${H}`);
    splitSvg.replaceChildren();
    for (const f of [50, 100, 200, 500, 1000, 2000, 5000, 10000]) splitSvg.append(svg("line", { class: "grid", x1: fx(f), x2: fx(f), y1: 0, y2: H }));
    for (const d of [6, 0, -6, -12, -18, -24]) {
      splitSvg.append(svg("line", { class: d ? "grid" : "grid zero", x1: 0, x2: W, y1: dy(d), y2: dy(d) }));
      if (d) splitSvg.append(svg("text", { x: 4, y: dy(d) - 3 }, `${d > 0 ? "+" : ""}${d} dB`));
    }
    if (!data) return;
    const soloed = BANDS.filter((b) => data.bands[b].solo);
    for (const b of BANDS) {
      const d = data.bands[b];
      const line = data.freqs.map((f, i) => (i ? "L" : "M") + fx(f).toFixed(1) + " " + dy(d.split_db[i]).toFixed(1)).join("");
      const muted = soloed.length && !d.solo;
      const cls = `band ${b}` + (d.bypass ? " bypassed" : "") + (muted || !data.on ? " muted" : "");
      splitSvg.append(svg("path", { class: cls, "data-band": b, d: line }));
    }
    data.splits.forEach((f, i) => {
      splitSvg.append(svg("line", { class: "split", x1: fx(f), x2: fx(f), y1: 0, y2: H - 18 }));
      splitSvg.append(svg("text", { class: "split", x: fx(f) + (i ? 4 : -4), y: H - 5, "text-anchor": i ? "start" : "end" }, fmtHz(f)));
    });
    if (!data.on) splitSvg.append(svg("text", { class: "off", x: W / 2, y: H / 2, "text-anchor": "middle" }, "multiband off"));
    showReduction();
  }

  /* A band's static curve: band level in (its peak, dBFS) against level out, unity as the diagonal. */
  function curveFrame(band) {
    const node = svg("svg", { class: "mb-curve", "data-band": band, role: "img", "aria-label": `${band} band's static curve` });
    curveSvgs[band] = node;
    return observe(node, () => drawCurve(band));
  }
  function curveScale(node) {
    const W = node.clientWidth || 260, H = node.clientHeight || 180;
    const lo = data ? data.levels_db[0] : -60, hi = data ? data.levels_db[data.levels_db.length - 1] : 0;
    // out runs above 0 dBFS by the makeup: the top of the picture follows, in 6 dB steps
    const top = data ? Math.max(hi, Math.ceil(Math.max(...data.bands[node.dataset.band].out_db) / 6) * 6) : hi;
    return { W, H, lo, hi, top, fx: (v) => ((v - lo) / (hi - lo)) * (W - 10) + 6,
             fy: (v) => H - 6 - ((Math.max(lo, v) - lo) / (top - lo)) * (H - 14) };
  }
  function drawCurve(b) {
    const node = curveSvgs[b];
    const { W, H, lo, hi, top, fx, fy } = curveScale(node);
    node.setAttribute("viewBox", `0 0 ${W} ${H}`);
    node.replaceChildren();
    for (let v = lo; v <= top; v += 12) {
      node.append(svg("line", { class: "grid", x1: fx(lo), x2: fx(hi), y1: fy(v), y2: fy(v) }));
      if (v <= hi) node.append(svg("line", { class: "grid", x1: fx(v), x2: fx(v), y1: fy(lo), y2: fy(top) }));
    }
    node.append(svg("line", { class: "unity", x1: fx(lo), y1: fy(lo), x2: fx(Math.min(hi, top)), y2: fy(Math.min(hi, top)) }));
    if (!data) return;
    const d = data.bands[b];
    if (data.on && !d.bypass) {
      node.append(svg("line", { class: "threshold", x1: fx(d.threshold_db), x2: fx(d.threshold_db), y1: fy(lo), y2: fy(top) }));
    }
    const line = data.levels_db.map((v, i) => (i ? "L" : "M") + fx(v).toFixed(1) + " " + fy(d.out_db[i]).toFixed(1)).join("");
    node.append(svg("path", { class: "curve", d: line }));
    node.append(svg("text", { x: fx(lo) + 4, y: 14 }, "out"), svg("text", { x: fx(hi) - 4, y: H - 10, "text-anchor": "end" }, "in"));
    node.append(svg("circle", { class: "dot", r: 5, cx: -20, cy: -20 }));
    node.append(svg("text", { class: "gr", x: fx(hi) - 4, y: 14, "text-anchor": "end" }, ""));
    node.setAttribute("aria-label", !data.on ? `${b} band: multiband off`
      : d.bypass ? `${b} band: bypassed`
      : `${b} band: threshold ${fmtDb(d.threshold_db)}, ratio ${d.ratio.toFixed(2)}:1, knee ${fmtDb(d.knee_db)}, makeup ${fmtDb(d.makeup_db)}`);
    showReduction();
  }

  /* The live part, at the meters' rate: nothing is redrawn, the bands' paths move and the dots ride. */
  function bandGainDb(b) {
    // what the band is given now: makeup less the live reduction, mixed in amplitude with the dry part
    const d = data.bands[b], mix = data.mix / 100;
    if (!data.on || d.bypass) return 0;
    return 20 * Math.log10(Math.max(1e-6, mix * Math.pow(10, (d.makeup_db - (gr[b] || 0)) / 20) + 1 - mix));
  }
  function levelFor(d, want) {
    // the lowest level whose reduction reaches ``want`` (the static curve rises from 0 above the knee)
    const g = d.gr_db;
    for (let i = 1; i < g.length; i++) {
      if (g[i] >= want) {
        const t = g[i] > g[i - 1] ? (want - g[i - 1]) / (g[i] - g[i - 1]) : 1;
        return [data.levels_db[i - 1] + t * (data.levels_db[i] - data.levels_db[i - 1]), d.out_db[i - 1] + t * (d.out_db[i] - d.out_db[i - 1])];
      }
    }
    return [data.levels_db[g.length - 1], d.out_db[g.length - 1]];  // more than 0 dBFS asks for: at the end
  }
  function showReduction() {
    if (!data) return;
    if (splitSvg) {
      const { dy } = splitScale();
      for (const p of splitSvg.querySelectorAll("path.band")) {
        p.setAttribute("transform", `translate(0 ${(dy(bandGainDb(p.dataset.band)) - dy(0)).toFixed(1)})`);
      }
    }
    for (const b of BANDS) {
      const node = curveSvgs[b], d = data.bands[b];
      const dot = node && node.querySelector(".dot");
      if (!dot) continue;
      const r = data.on && !d.bypass ? gr[b] || 0 : 0, on = r >= 0.05;
      node.querySelector(".gr").textContent = on ? `GR ${r.toFixed(1)} dB` : "";
      node.classList.toggle("reducing", on);
      if (!on) { dot.setAttribute("cx", -20); dot.setAttribute("cy", -20); continue; }
      const { fx, fy } = curveScale(node), [x, y] = levelFor(d, r);
      dot.setAttribute("cx", fx(x).toFixed(1));
      dot.setAttribute("cy", fy(y).toFixed(1));
    }
  }

  // drawn again when a multiband parameter changes, or the engine comes back at another rate
  const picture = MB.boxPicture("/multiband/response", (id) => id.startsWith("mb."), (r) => {
    data = r;
    drawSplit();
    BANDS.forEach((b) => curveSvgs[b] && drawCurve(b));
    const d = data.bands, soloed = BANDS.filter((b) => d[b].solo);
    splitSvg && splitSvg.setAttribute("aria-label", data.on
      ? `Multiband split at ${fmtHz(data.splits[0])} and ${fmtHz(data.splits[1])}`
        + (soloed.length ? `, ${soloed.join(" and ")} soloed` : "")
      : "Multiband off");
  });

  /* chain.js: every state it shows, and every meter frame. */
  function meters(m) {
    if (!m) return;
    picture.meters(m);
    for (const b of BANDS) gr[b] = Number(m[`gr_${b}_db`]) || 0;
    showReduction();
  }
  return { splitFrame, curveFrame, state: picture.state, meters };
})();
