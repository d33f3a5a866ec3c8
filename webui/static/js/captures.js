/* Captures page: start/stop, list with analysis, QC, streaming preview, loudness plot, download, delete. */
"use strict";
(() => {
  const { api, el, fmt, fail, toast, on } = MB;
  const list = document.getElementById("capture-list");
  const toggle = document.getElementById("capture-toggle");
  const enc = encodeURIComponent;
  let capturing = false, open = new Set(), lastNames = "";

  function setCapturing(on_) {
    capturing = on_;
    toggle.setAttribute("aria-pressed", on_ ? "true" : "false");
    document.getElementById("capture-toggle-label").textContent = on_ ? "Stop capture" : "Start capture";
  }
  toggle.addEventListener("click", async () => {
    try {
      if (capturing) { await api("POST", "/capture/stop", {}); setCapturing(false); toast("Capture stopped"); setTimeout(load, 500); }
      else {
        const body = { tap: document.getElementById("capture-tap").value, format: document.getElementById("capture-format").value };
        const mins = parseFloat(document.getElementById("capture-max").value);
        if (mins > 0) body.max_seconds = mins * 60;
        await api("POST", "/capture/start", body); setCapturing(true); toast("Capturing");
      }
    } catch (e) { fail(e); }
  });

  function a(c) { return c.analysis || c; }
  function dur(s) { return s == null ? "—" : `${Math.floor(s / 60)}:${String(Math.round(s % 60)).padStart(2, "0")}`; }
  function bytes(n) { return n == null ? "" : n > 1e9 ? (n / 1e9).toFixed(2) + " GB" : (n / 1e6).toFixed(1) + " MB"; }

  function plot(canvas, series, target) {
    const dpr = window.devicePixelRatio || 1, w = canvas.clientWidth, h = canvas.clientHeight;
    canvas.width = w * dpr; canvas.height = h * dpr;
    const g = canvas.getContext("2d"); g.scale(dpr, dpr);
    g.fillStyle = "#0b0c0f"; g.fillRect(0, 0, w, h);
    const lo = -40, hi = 0, y = (v) => h - (Math.max(lo, Math.min(hi, v)) - lo) / (hi - lo) * h;
    g.strokeStyle = "rgba(255,255,255,0.07)"; g.fillStyle = "#8d96a5"; g.font = "11px sans-serif";
    for (let v = lo; v <= hi; v += 10) { g.beginPath(); g.moveTo(0, y(v)); g.lineTo(w, y(v)); g.stroke(); g.fillText(String(v), 4, y(v) - 2); }
    if (target != null) { g.strokeStyle = "#f5b83d"; g.setLineDash([4, 4]); g.beginPath(); g.moveTo(0, y(target)); g.lineTo(w, y(target)); g.stroke(); g.setLineDash([]); }
    const pts = series.filter((v) => v != null);
    if (!pts.length) { g.fillText("silence", w / 2 - 20, h / 2); return; }
    g.strokeStyle = "#3ddc84"; g.lineWidth = 1.6; g.beginPath();
    let started = false;
    series.forEach((v, i) => {
      if (v == null) { started = false; return; }
      const x = (i / Math.max(series.length - 1, 1)) * w;
      if (!started) { g.moveTo(x, y(v)); started = true; } else g.lineTo(x, y(v));
    });
    g.stroke();
  }

  function table(obj, fmtRow) {
    return el("table", {}, Object.entries(obj).map(([k, v]) => el("tr", {}, el("td", { text: k.replace(/_/g, " ") }), el("td", { class: "num", text: fmtRow(v) }))));
  }

  function details(c) {
    const an = a(c), box = el("div", { class: "details" });
    const qc = an.qc || c.qc;
    if (qc && typeof qc === "object") box.append(el("div", {}, el("h3", { text: "Quality check" }), table(qc, (v) => typeof v === "number" ? fmt(v, Number.isInteger(v) ? 0 : 2) : String(v))));
    const svc = an.streaming || an.services || c.streaming;
    if (svc && typeof svc === "object") {
      box.append(el("div", {}, el("h3", { text: "Streaming services" }), el("table", {},
        el("tr", {}, el("th", { text: "service" }), el("th", { text: "gain" }), el("th", { text: "target" })),
        Object.entries(svc).map(([name, v]) => el("tr", {}, el("td", { text: name }),
          el("td", { class: "num", text: fmt(typeof v === "object" ? (v.gain_db ?? v.gain) : v, 1, "dB") }),
          el("td", { class: "num", text: typeof v === "object" ? fmt(v.target_lufs ?? v.target, 1, "LUFS") : "" }))))));
    }
    const curve = an.loudness_curve || an.short_term_curve || c.loudness_curve;
    const series = Array.isArray(curve) ? curve : curve && (curve.short_term_lufs || curve.values);
    const holder = el("div", {}, el("h3", { text: "Short-term loudness over time" }));
    if (Array.isArray(series) && series.length) { const cv = el("canvas", { class: "plot" }); holder.append(cv); requestAnimationFrame(() => plot(cv, series, an.target_lufs)); }
    else holder.append(el("p", { class: "muted small", text: "No loudness curve in this capture's analysis." }));
    box.append(holder);
    return box;
  }

  function row(c) {
    const an = a(c), name = c.name;
    const clips = (an.qc && (an.qc.sample_clips ?? an.qc.clips)) || 0;
    const li = el("li", { "data-capture": name },
      el("div", { class: "title" }, name, clips ? el("span", { class: "badge hot", text: `${clips} clips` }) : null,
        el("small", { text: [c.preset && `preset ${c.preset}`, c.tap, bytes(c.size_bytes ?? c.size)].filter(Boolean).join(" · ") })),
      el("div", { class: "stats" },
        el("span", {}, el("b", { text: "length" }), dur(an.duration_s)),
        el("span", {}, el("b", { text: "int" }), fmt(an.integrated_lufs, 1, "LUFS")),
        el("span", {}, el("b", { text: "TP" }), fmt(an.true_peak_dbtp, 1, "dBTP")),
        el("span", {}, el("b", { text: "LRA" }), fmt(an.loudness_range_lu, 1, "LU"))),
      el("div", { class: "actions" },
        el("button", { class: "btn btn-small", "data-action": "details", onclick: () => { open.has(name) ? open.delete(name) : open.add(name); render(cache); } }, open.has(name) ? "Hide" : "Details"),
        el("a", { class: "btn btn-small btn-primary", href: `/api/v1/captures/${enc(name)}/download`, "data-action": "download" }, "Download"),
        el("button", { class: "btn btn-small btn-danger", "data-action": "delete", onclick: async () => {
          if (!confirm(`Delete the capture “${name}”?`)) return;
          try { await api("DELETE", `/captures/${enc(name)}`); toast(`Deleted ${name}`); load(); } catch (e) { fail(e); }
        } }, "Delete")));
    if (open.has(name)) li.append(details(c));
    return li;
  }
  let cache = [];
  function render(items) {
    cache = items;
    list.replaceChildren(...(items.length ? items.map(row) : [el("li", { class: "muted", text: "No captures yet. Start one above or with the CAPTURE button on the box." })]));
  }
  async function load() {
    try {
      const r = await api("GET", "/captures");
      render(r.captures);
      lastNames = r.captures.map((c) => c.name).join("|");
      setCapturing(!!(r.status && r.status.capturing));
    } catch (e) { fail(e); }
  }
  on("meters", (m) => {
    if (m && !!m.capturing !== capturing) { setCapturing(!!m.capturing); if (!m.capturing) setTimeout(load, 800); }
  });
  (async () => {
    load();
    try { const s = await api("GET", "/system"); document.getElementById("captures-disk").textContent = `${bytes(s.disk.free_bytes)} free`; } catch (e) { /* optional */ }
  })();
})();
