/* Chain page: every parameter, rendered from the schema, grouped by stage; changes apply live. */
"use strict";
(() => {
  const { api, el, fail, formatValue, on } = MB;
  const root = document.getElementById("chain"), nav = document.getElementById("chain-nav");
  const widgets = {};
  const STEPS = 1000;
  const TITLES = { eq: "EQ" };   // group names that capitalising alone does not spell right
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

  function control(p) {
    const out = el("span", { class: "pval" });
    let ctl, set;
    if (p.curve === "bool") {
      ctl = el("button", { class: "switch", role: "switch", "aria-checked": "false", "aria-label": p.label, "data-param": p.id });
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
      set = (v) => { if (!(Date.now() < (editingUntil[p.id] || 0))) ctl.value = Math.round(toPos(p, v) * STEPS); out.textContent = formatValue(p, v); };
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
    if (key.startsWith("mb.")) return key.slice(3) + " band";
    return null;
  }

  function build(s) {
    for (const g of s.groups) {
      const params = s.params.filter((p) => p.group === g);
      const card = el("section", { class: "card stage", id: "stage-" + g }, el("h2", { text: TITLES[g] || g }));
      let current = null, box = card;
      for (const p of params) {
        const key = subgroup(p.id), title = subTitle(key);
        if (title && key !== current) { current = key; box = el("div", { class: "sub" }, el("h3", { text: title })); card.append(box); }
        else if (!title) box = card;
        box.append(control(p));
      }
      root.append(card);
      nav.append(el("a", { class: "chip", href: "#stage-" + g, text: TITLES[g] || g }));
    }
  }
  function show(st) { for (const [id, v] of Object.entries(st.values || {})) if (widgets[id]) widgets[id](v); }

  (async () => {
    try {
      build(await api("GET", "/schema"));
      show(await api("GET", "/state"));
      on("state", show);
    } catch (e) { fail(e); }
  })();
})();
