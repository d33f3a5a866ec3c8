/* Chain page: every parameter, rendered from the schema, grouped by stage; changes apply live. */
"use strict";
(() => {
  const { api, el, fail, formatValue, on, svg } = MB;
  const root = document.getElementById("chain"), nav = document.getElementById("chain-nav");
  const widgets = {};
  const STEPS = 1000;
  const TITLES = { eq: "EQ" };   // group names that capitalising alone does not spell right
  const WIDE = ["input", "eq", "multiband"];
  const MBV = window.MultibandView;
  let sending = {}, timer = null, editingUntil = {};

  function toPos(p, v) {
    if (p.curve === "log") return Math.log(v / p.min) / Math.log(p.max / p.min);
    return (v - p.min) / (p.max - p.min);
  }
  function fromPos(p, x) {
    const v = p.curve === "log" ? p.min * Math.pow(p.max / p.min, x) : p.min + x * (p.max - p.min);
    const a = Math.abs(v), q = a >= 1000 ? 1 : a >= 100 ? 0.1 : a >= 10 ? 0.01 : 0.001;
    return Math.min(p.max, Math.max(p.min, Math.round(v / q) * q));
  }
  function send(id, v) {
    sending[id] = v; editingUntil[id] = Date.now() + 400;
    if (!timer) timer = setTimeout(flush, 40);
  }
  async function flush() {
    timer = null;
    const values = sending; sending = {};
    if (!Object.keys(values).length) return;
    try { show(await api("PATCH", "/state", { values })); } catch (e) { fail(e); }
  }

  // An exact value typed over a continuous parameter's readout: a number in the parameter's unit
  // ("3150" or, for a frequency, "3.15k"; a unit typed after it is ignored), or null. The box checks
  // the range and says what it is (PATCH /state, 422).
  function parseExact(p, text) {
    const m = /^\s*([+-]?(?:\d+[.,]?\d*|[.,]\d+)(?:e[+-]?\d+)?)\s*(k)?/i.exec(text.replace(/\u2212/g, "-"));
    if (!m) return null;
    const v = parseFloat(m[1].replace(",", ".")) * (m[2] && p.unit === "Hz" ? 1000 : 1);
    return Number.isFinite(v) ? v : null;
  }
  // a label inside a sentence: "Output drive" -> "output drive", an acronym kept ("EQ 4 frequency")
  const inSentence = (label) => (/^[A-Z]{2}/.test(label) ? label : label[0].toLowerCase() + label.slice(1));
  function exactEntry(p, out, now, show) {
    const input = el("input", { class: "pval-edit", type: "text", inputmode: "decimal", autocomplete: "off",
      "aria-label": `${p.label}, exact value${p.unit ? " in " + p.unit : ""}`, value: String(Number(now().toPrecision(6))) });
    let done = false;
    // Enter or Escape give the focus back to the readout; a click elsewhere leaves it where it went
    const close = (refocus) => { if (done) return; done = true; input.replaceWith(out); if (refocus) out.focus(); };
    input.addEventListener("keydown", (ev) => {
      if (ev.key === "Escape") { ev.preventDefault(); close(true); return; }
      if (ev.key !== "Enter") return;
      ev.preventDefault();
      const v = parseExact(p, input.value);
      if (v === null) { fail(new Error(`“${input.value}” is not a number: type the ${inSentence(p.label)} in ${p.unit || "its unit"}`)); return; }
      if (v >= p.min && v <= p.max) { editingUntil[p.id] = 0; show(v); }   // the slider and the readout, at once
      send(p.id, v);                // out of range: the box refuses it and says the range
      close(true);
    });
    input.addEventListener("blur", () => close(false));
    out.replaceWith(input);
    input.focus();
    input.select();
  }

  function control(p) {
    const continuous = p.curve !== "bool" && p.curve !== "enum";
    // a continuous parameter's readout is a button: click it (or Enter) to type an exact value
    const out = continuous ? el("button", { type: "button", class: "pval", title: `Type an exact ${inSentence(p.label)}` })
      : el("span", { class: "pval" });
    let ctl, set;
    if (p.curve === "bool") {
      ctl = el("button", { type: "button", class: "switch", role: "switch", "aria-checked": "false", "aria-label": p.label, "data-param": p.id });
      ctl.addEventListener("click", () => send(p.id, ctl.getAttribute("aria-checked") !== "true"));
      set = (v) => { ctl.setAttribute("aria-checked", v ? "true" : "false"); out.textContent = v ? "on" : "off"; };
    } else if (p.curve === "enum") {
      ctl = el("select", { "aria-label": p.label, "data-param": p.id }, p.choices.map((c) => el("option", { value: c, text: c.replace(/_/g, " ") })));
      ctl.addEventListener("change", () => send(p.id, ctl.value));
      set = (v) => { ctl.value = v; out.textContent = ""; };
    } else {
      ctl = el("input", { type: "range", min: 0, max: STEPS, step: 1, "aria-label": p.label, "data-param": p.id });
      ctl.addEventListener("input", () => { const v = fromPos(p, ctl.value / STEPS); out.textContent = formatValue(p, v); send(p.id, v); });
      ctl.addEventListener("dblclick", () => send(p.id, p.default));
      let now = p.default;
      set = (v) => { now = v; if (!(Date.now() < (editingUntil[p.id] || 0))) ctl.value = Math.round(toPos(p, v) * STEPS); out.textContent = formatValue(p, v); };
      out.addEventListener("click", () => exactEntry(p, out, () => now, set));
    }
    widgets[p.id] = set;
    // a choice shows its value in the menu itself: the menu takes the value column too, so
    // "low shelf" or "stereo" are never cut off in a narrow card
    const kind = p.curve === "enum" ? "param choice" : "param";
    const row = el("div", { class: kind, title: p.help || null }, el("span", { class: "plabel", text: p.label }), el("span", { class: "pctl" }, ctl));
    if (p.curve !== "enum") row.append(out);
    return row;
  }

  function subgroup(id) { const parts = id.split("."); return parts.length > 2 ? parts.slice(0, 2).join(".") : parts[0]; }
  function subTitle(key) {
    if (/^eq\d$/.test(key)) return "Band " + key.slice(2);
    if (key === "eq") return "Tone";
    if (key.startsWith("mb.")) return key.slice(3) + " band";
    return null;
  }

  // -- the EQ's response, computed by the box (GET /eq/response) and drawn here ----------------
  // Drawn in CSS pixels (the viewBox follows the element's size), so the labels stay legible
  // from a phone to a wide screen.
  const FLO = 20, FHI = 20000;
  let curveSvg = null, curve = null;
  function curveFrame() {
    curveSvg = svg("svg", { class: "eq-curve", role: "img", "aria-label": "EQ response" });
    new ResizeObserver(drawCurve).observe(curveSvg);
    return curveSvg;
  }
  function drawCurve() {
    const W = curveSvg.clientWidth || 600, H = curveSvg.clientHeight || 180;
    // +-12 dB shows a mastering EQ's small moves; +-24 once a boost goes beyond (a cut's slope
    // below 12 dB down is simply clipped at the edge)
    const boost = curve ? Math.max(...curve.mid_db, ...curve.side_db) : 0;
    const DB = boost > 11 ? 24 : 12, step = DB / 4;
    const fx = (f) => (Math.log(f / FLO) / Math.log(FHI / FLO)) * W;
    const dy = (d) => H / 2 - (Math.max(-DB - 2, Math.min(DB + 2, d)) / DB) * (H / 2 - 8);
    const line = (f, dbs) => f.map((v, i) => (i ? "L" : "M") + fx(v).toFixed(1) + " " + dy(dbs[i]).toFixed(1)).join("");
    curveSvg.setAttribute("viewBox", `0 0 ${W} ${H}`);
    curveSvg.replaceChildren();
    for (const f of [50, 100, 200, 500, 1000, 2000, 5000, 10000]) {
      curveSvg.append(svg("line", { class: "grid", x1: fx(f), x2: fx(f), y1: 0, y2: H }));
      if ([100, 1000, 10000].includes(f)) curveSvg.append(svg("text", { x: fx(f) + 4, y: H - 6 }, f >= 1000 ? f / 1000 + "k" : String(f)));
    }
    for (const d of [-3, -2, -1, 0, 1, 2, 3].map((i) => i * step)) {
      curveSvg.append(svg("line", { class: d ? "grid" : "grid zero", x1: 0, x2: W, y1: dy(d), y2: dy(d) }));
      if (d) curveSvg.append(svg("text", { x: 4, y: dy(d) - 4 }, (d > 0 ? "+" : "") + d + " dB"));
    }
    if (!curve) return;
    if (!curve.same) {
      curveSvg.append(svg("path", { class: "side", "data-curve": "side", d: line(curve.freqs, curve.side_db) }));
      const legend = svg("text", { class: "legend", x: W - 8, y: 18, "text-anchor": "end" });
      legend.append(svg("tspan", { class: "mid" }, "mid"), svg("tspan", { class: "side", dx: 12 }, "side"));
      curveSvg.append(legend);
    }
    curveSvg.append(svg("path", { class: "mid", "data-curve": "mid", d: line(curve.freqs, curve.mid_db) }));
  }
  function extreme(freqs, dbs) {
    let i = 0;
    dbs.forEach((d, j) => { if (Math.abs(d) > Math.abs(dbs[i])) i = j; });
    const f = freqs[i];
    return `${dbs[i] > 0 ? "+" : ""}${dbs[i].toFixed(1)} dB at ${f >= 1000 ? (f / 1000).toFixed(1) + " kHz" : Math.round(f) + " Hz"}`;
  }
  // drawn again when an EQ parameter changes, or the engine comes back at another rate
  const eqPicture = MB.boxPicture("/eq/response", (id) => /^eq\d?\./.test(id), (r) => {
    curve = r;
    drawCurve();
    const flat = Math.max(...r.mid_db.map(Math.abs), ...r.side_db.map(Math.abs)) < 0.05;
    curveSvg.setAttribute("aria-label", flat ? "EQ response: flat"
      : r.same ? `EQ response: ${extreme(r.freqs, r.mid_db)}`
      : `EQ response: mid ${extreme(r.freqs, r.mid_db)}, side ${extreme(r.freqs, r.side_db)}`);
  });

  function build(s) {
    for (const g of s.groups) {
      const params = s.params.filter((p) => p.group === g);
      // the two first stages span the page, their controls in columns: the EQ with its curve on
      // top and the six bands and the tone side by side, and the input stage above it (no hole beside it)
      const wide = WIDE.includes(g), cols = wide ? el("div", { class: "cols" }) : null;
      const card = el("section", { class: wide ? "card stage wide" : "card stage", id: "stage-" + g },
                      el("h2", { text: TITLES[g] || g }));
      if (g === "eq") card.append(curveFrame());
      if (g === "multiband") card.append(MBV.splitFrame());
      if (cols) card.append(cols);
      const home = cols || card;
      // the multiband's own switches and splits in a row above its three bands' columns
      const globals = g === "multiband" ? el("div", { class: "globals" }) : home;
      if (globals !== home) home.append(globals);
      let current = null, box = home;
      for (const p of params) {
        const key = subgroup(p.id), title = subTitle(key);
        if (title && key !== current) {
          current = key;
          box = el("div", { class: "sub" }, el("h3", { text: title }));
          if (key.startsWith("mb.")) box.append(MBV.curveFrame(key.slice(3)));
          home.append(box);
        } else if (!title) box = globals;
        box.append(control(p));
      }
      root.append(card);
      nav.append(el("a", { class: "chip", href: "#stage-" + g, text: TITLES[g] || g }));
    }
  }
  function show(st) {
    for (const [id, v] of Object.entries(st.values || {})) if (widgets[id]) widgets[id](v);
    eqPicture.state(st.values || {});
    MBV.state(st.values || {});
  }

  (async () => {
    try {
      // the controls appear only with the box's values in them: a slider drawn before the state
      // arrived sat at a browser default, and a key or touch in that moment sent that position
      // (the input trim jumped to -21 dB)
      const [schema, state] = await Promise.all([api("GET", "/schema"), api("GET", "/state")]);
      build(schema);
      show(state);
      on("state", show);
      on("meters", eqPicture.meters);
      on("meters", MBV.meters);
    } catch (e) { fail(e); }
  })();
})();
