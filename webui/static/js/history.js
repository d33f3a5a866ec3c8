/* Live page: the loudness history, short-term loudness in and out over the last minutes. */
"use strict";
(() => {
  const { api, fmt, on, svg } = MB;
  const graph = document.getElementById("history-graph");
  if (!graph) return;
  // The box keeps the last ten minutes (GET /meters/history, recorded whether or not a page is
  // open); this page adds a point from the live stream every period and fetches the box's copy
  // again now and then (and when a phone wakes up), so gaps and drift never last.
  const PERIOD = 500, RESYNC = 60000;
  const WINDOWS = [60, 120, 300, 600];        // s: the graph zooms to the shortest that holds the data
  const ABOVE = 12, BELOW = 24;               // LU around the target shown
  const LONGEST = WINDOWS[WINDOWS.length - 1];
  let period = PERIOD / 1000, keep = LONGEST / period, pts = { in: [], out: [] };
  let latest = null, latestAt = 0, target = null;

  async function load() {
    try {
      // the stream's first state frame may have come before this script ran
      if (target == null) target = (await api("GET", "/state")).values["target.lufs"];
      const h = await api("GET", "/meters/history");
      period = h.period; keep = Math.round(LONGEST / period);
      pts = { in: h.in_short_term_lufs, out: h.out_short_term_lufs };
      draw();
    } catch (e) { /* the live points keep coming; the next resync tries again */ }
  }
  function push(vin, vout) {
    pts.in.push(vin); pts.out.push(vout);
    if (pts.out.length > keep) { pts.in.splice(0, pts.in.length - keep); pts.out.splice(0, pts.out.length - keep); }
  }
  on("meters", (m) => { if (m) { latest = m; latestAt = Date.now(); } });
  on("state", (s) => {
    const t = s.values ? s.values["target.lufs"] : null;
    if (t !== target) { target = t; draw(); }
  });
  setInterval(() => {
    const m = latest && Date.now() - latestAt < 1500 ? latest : null;     // no fresh frame: a gap
    push(m ? m.in_short_term_lufs ?? null : null, m ? m.out_short_term_lufs ?? null : null);
    draw();
  }, PERIOD);
  setInterval(load, RESYNC);
  document.addEventListener("visibilitychange", () => { if (!document.hidden) load(); });
  document.addEventListener("masterbox:meters-reset", () => { pts = { in: [], out: [] }; draw(); load(); });
  new ResizeObserver(() => draw()).observe(graph);

  const spanText = (s) => (s >= 60 ? `${s / 60} min` : `${s} s`);
  function draw() {
    const W = graph.clientWidth || 600, H = graph.clientHeight || 170;
    const n = pts.out.length;
    const span = WINDOWS.find((w) => w >= n * period) || LONGEST;
    const t = target ?? -14, top = t + ABOVE, bottom = t - BELOW;
    const fy = (v) => 6 + ((top - Math.max(bottom, Math.min(top, v))) / (top - bottom)) * (H - 26);
    const fx = (i) => W - ((n - 1 - i) * period / span) * W;
    const first = Math.max(0, n - Math.floor(span / period) - 1);
    const line = (vals) => {
      let d = "", pen = false;
      for (let i = first; i < n; i++) {
        const v = vals[i];
        if (v == null) { pen = false; continue; }
        d += (pen ? "L" : "M") + fx(i).toFixed(1) + " " + fy(v).toFixed(1);
        pen = true;
      }
      return d;
    };
    graph.setAttribute("viewBox", `0 0 ${W} ${H}`);
    graph.replaceChildren();
    for (let k = 1; k < 5; k++) {
      const x = W - (k / 5) * W, ago = (k / 5) * span;
      graph.append(svg("line", { class: "grid", x1: x, x2: x, y1: 0, y2: H - 20 }));
      graph.append(svg("text", { x: x + 4, y: H - 6 }, `−${spanText(ago)}`));
    }
    for (let v = Math.ceil(bottom / 6) * 6; v <= top; v += 6) {
      graph.append(svg("line", { class: "grid", x1: 0, x2: W, y1: fy(v), y2: fy(v) }));
      graph.append(svg("text", { x: 4, y: fy(v) - 4 }, String(v)));
    }
    if (target != null) {
      graph.append(svg("line", { class: "target", x1: 0, x2: W, y1: fy(t), y2: fy(t) }));
      graph.append(svg("text", { class: "target", x: W - 6, y: fy(t) - 5, "text-anchor": "end" }, `target ${fmt(t, 1)}`));
    }
    graph.append(svg("path", { class: "in", "data-line": "in", d: line(pts.in) }));
    graph.append(svg("path", { class: "out", "data-line": "out", d: line(pts.out) }));
    const seen = pts.out.slice(first).filter((v) => v != null);
    graph.setAttribute("aria-label", !seen.length ? "Loudness history: nothing measured yet"
      : `Loudness history, last ${spanText(span)}: output short-term ${fmt(seen[seen.length - 1], 1)} LUFS latest, `
        + `${fmt(Math.min(...seen), 1)} to ${fmt(Math.max(...seen), 1)}`);
  }

  load();
})();
