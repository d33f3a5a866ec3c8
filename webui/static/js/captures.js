/* Captures page: start/stop, list with analysis, QC, streaming preview, loudness plot, download, delete,
   "Master": a capture through `masterbox master` with the box's current settings, and "Master as album":
   the ticked captures through `masterbox album`, one shared drive (firmware/capture_master.py), and
   "Master each": the ticked captures one by one, and "Download ticked": them and their analyses as one ZIP;
   "Upload mix…" (or a drop on the list) brings WAV, AIFF or FLAC mixes from this computer in, in pieces, resuming
   after a dropped link; "Use as reference" (in a row's "More…", with "Delete"): the capture becomes the reference
   track the Live page's REF button plays. */
"use strict";
(() => {
  const { api, el, fmt, fail, toast, on } = MB;
  const list = document.getElementById("capture-list");
  const toggle = document.getElementById("capture-toggle");
  const enc = encodeURIComponent;
  let capturing = false, open = new Set(), shown = "", pendingTimer = null;
  const PENDING_POLL_MS = 1500;   // a finished capture's analysis is written a moment after it stops

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

  function dur(s) { return s == null ? "—" : `${Math.floor(s / 60)}:${String(Math.round(s % 60)).padStart(2, "0")}`; }
  function bytes(n) { return n == null ? "" : n > 1e9 ? (n / 1e9).toFixed(2) + " GB" : (n / 1e6).toFixed(1) + " MB"; }

  function plot(canvas, series, target) {
    const dpr = window.devicePixelRatio || 1, w = canvas.clientWidth, h = canvas.clientHeight;
    canvas.width = w * dpr; canvas.height = h * dpr;
    const g = canvas.getContext("2d"); g.scale(dpr, dpr);
    g.fillStyle = "#0b0c0f"; g.fillRect(0, 0, w, h);
    const lo = -40, hi = 0, y = (v) => h - (Math.max(lo, Math.min(hi, v)) - lo) / (hi - lo) * h;
    g.strokeStyle = "rgba(255,255,255,0.07)"; g.fillStyle = "#8d96a5"; g.font = "11px sans-serif";
    for (let v = lo; v <= hi; v += 10) { g.beginPath(); g.moveTo(0, y(v)); g.lineTo(w, y(v)); g.stroke(); g.fillText(`${v} LUFS`, 4, y(v) - 2); }
    if (target != null) { g.strokeStyle = "#f5b83d"; g.setLineDash([4, 4]); g.beginPath(); g.moveTo(0, y(target)); g.lineTo(w, y(target)); g.stroke(); g.setLineDash([]); }
    const line = (data, colour, width) => {
      g.strokeStyle = colour; g.lineWidth = width; g.beginPath();
      let started = false;
      data.forEach((v, i) => {
        if (v == null) { started = false; return; }
        const x = (i / Math.max(data.length - 1, 1)) * w;
        if (!started) { g.moveTo(x, y(v)); started = true; } else g.lineTo(x, y(v));
      });
      g.stroke();
    };
    const [short, momentary] = series;
    if (![...short, ...momentary].some((v) => v != null)) { g.fillText("silence", w / 2 - 20, h / 2); return; }
    line(momentary, "rgba(77,163,255,0.55)", 1);
    line(short, "#3ddc84", 2);
  }

  const UNITS = { lufs: "LUFS", lu: "LU", dbtp: "dBTP", dbfs: "dBFS", db: "dB", s: "s" };
  const WORDS = { plr: "PLR", dc: "DC" };   // abbreviations that capitalising alone does not spell right
  function label(k) {
    const m = k.match(/^(.*)_(lufs|lu|dbtp|dbfs|db|s)$/);
    const text = (m ? m[1] : k).split("_").map((w) => WORDS[w] || w).join(" ");
    return (text[0].toUpperCase() + text.slice(1)) + (m ? ` (${UNITS[m[2]]})` : "");
  }
  function kv(obj) {
    return el("table", {}, Object.entries(obj).filter(([, v]) => typeof v !== "object" || v === null).map(([k, v]) =>
      el("tr", {}, el("td", { text: label(k) }),
        el("td", { class: "num", text: typeof v === "number" ? fmt(v, Number.isInteger(v) ? 0 : k.includes("correlation") || k.includes("dc") ? 3 : 1) : String(v ?? "—") }))));
  }

  async function details(name, box) {
    try {
      const rec = await api("GET", `/captures/${enc(name)}`);
      const side = rec.sidecar;
      box.replaceChildren();
      if (rec.recording) { box.append(el("p", { class: "muted", text: "Still recording." })); return; }
      if (!side) box.append(el("p", { class: "muted", text: "Analysis pending: it is written shortly after the capture ends." }));
      else {
      const keys = ["integrated_lufs", "loudness_range_lu", "true_peak_dbtp", "sample_peak_dbfs", "max_momentary_lufs", "max_short_term_lufs", "plr_db", "duration_s", "sample_rate", "dropped_frames", "stop_reason"];
      const summary = {};
      for (const k of keys) if (k in side) summary[k] = side[k];
      if (side.uploaded_from) {
        box.append(el("p", { class: "muted small", "data-field": "uploaded-from", text: `Uploaded from ${side.uploaded_from}`
          + (side.converted_from ? ` (${side.converted_from}, made a WAV of the same word length)` : "")
          + (side.uploaded ? ` on ${new Date(side.uploaded).toLocaleString()}` : "") + "." }));
      }
      if (side.mastered_from) {
        box.append(el("p", { class: "muted small", "data-field": "mastered-from", text: `Mastered from ${side.mastered_from}`
          + (side.album ? `, as one of the album ${side.album.join(", ")}` : "")
          + (side.target_lufs != null ? ` towards ${fmt(side.target_lufs, 1, "LUFS")}` : "") + "." }));
      }
      box.append(el("div", {}, el("h3", { text: "Analysis" }), kv(summary)));
      if (side.qc) box.append(el("div", {}, el("h3", { text: "Quality check" }), kv(side.qc)));
      if (side.streaming) {
        box.append(el("div", {}, el("h3", { text: "Streaming services" }), el("table", {},
          el("tr", {}, el("th", { text: "service" }), el("th", { text: "gain" }), el("th", { text: "lands at" })),
          Object.values(side.streaming).map((v) => el("tr", { title: v.note || "" }, el("td", { text: v.service }),
            el("td", { class: "num", text: fmt(v.gain_db, 1, "dB") }), el("td", { class: "num", text: fmt(v.result_lufs, 1, "LUFS") }))))));
      }
      }
      const holder = el("div", { class: "plot-box" }, el("h3", { text: "Loudness over time" }), el("p", { class: "muted small", text: "measuring…" }));
      box.append(holder);
      const curve = await api("GET", `/captures/${enc(name)}/loudness`);
      const cv = el("canvas", { class: "plot", "data-plot": name });
      holder.replaceChildren(holder.firstChild, cv, el("p", { class: "muted small", text: `green: short-term (3 s) · blue: momentary (400 ms) · dashed: −14 LUFS · every ${fmt(curve.step_s, 1)} s` }));
      requestAnimationFrame(() => plot(cv, [curve.short_term_lufs, curve.momentary_lufs], -14));
    } catch (e) { box.append(el("p", { class: "error", text: e.message })); }
  }

  function row(c) {
    const sm = c.summary || {}, name = c.name;
    const box = el("div", { class: "details" });
    const pick = el("input", { type: "checkbox", class: "album-pick", "data-action": "album-pick", checked: picked.includes(name) || null,
      disabled: c.recording || null, title: "Tick to download captures together, or to master two or more as an album", "aria-label": `Tick ${name}` });
    pick.addEventListener("change", () => {
      picked = picked.filter((n) => n !== name);
      if (pick.checked) picked.push(name);       // album order: the order they were ticked
      albumBar();
    });
    const li = el("li", { "data-capture": name }, pick,
      // the name is the row's heading (its details' "Analysis", "Quality check"... are h3 under it)
      el("div", { class: "title" }, el("h2", { text: name }),
        c.recording ? el("span", { class: "badge hot", text: "recording" }) : c.analysis === "pending" ? el("span", { class: "badge", text: "analysing" }) : null,
        name === reference ? refTag() : null,
        el("small", { text: [sm.source === "upload" && "uploaded", sm.preset && `preset ${sm.preset}${sm.modified ? " (modified)" : ""}`, sm.tap, c.sample_rate && `${c.sample_rate / 1000} kHz`, bytes(c.size_bytes)].filter(Boolean).join(" · ") })),
      el("div", { class: "stats" },
        el("span", {}, el("b", { text: "length" }), dur(c.duration_s)),
        el("span", {}, el("b", { text: "int" }), fmt(sm.integrated_lufs, 1, "LUFS")),
        el("span", {}, el("b", { text: "TP" }), fmt(sm.true_peak_dbtp, 1, "dBTP")),
        el("span", {}, el("b", { text: "LRA" }), fmt(sm.loudness_range_lu, 1, "LU"))),
      el("div", { class: "actions" },
        el("button", { class: "btn btn-small", "data-action": "details", onclick: () => {
          if (open.has(name)) { open.delete(name); box.remove(); } else { open.add(name); li.append(box); details(name, box); }
        } }, "Details"),
        el("button", { class: "btn btn-small", "data-action": "master", disabled: c.recording || mastering || null,
          onclick: () => masterForm(li, name) }, "Master…"),
        el("a", { class: "btn btn-small btn-primary", href: `/api/v1/captures/${enc(name)}/download`, download: c.file, "data-action": "download" }, "Download"),
        // the rarer actions behind "More…", so a row's actions stay on one line beside its figures
        moreMenu(name, refButton(name, c.recording),
          el("button", { class: "btn btn-small btn-danger", "data-action": "delete", disabled: c.recording || null, onclick: async () => {
            if (!confirm(`Delete the capture “${name}”?`)) return;
            try { await api("DELETE", `/captures/${enc(name)}`); toast(`Deleted ${name}`); load(); } catch (e) { fail(e); }
          } }, "Delete"))));
    if (open.has(name)) { li.append(box); details(name, box); }
    return li;
  }
  // "More…": a disclosure (details/summary: a tap, Enter or Space opens it) holding the row's rarer
  // actions; a choice, a tap elsewhere or Escape closes it
  function moreMenu(name, ...items) {
    const menu = el("details", { class: "more" },
      el("summary", { class: "btn btn-small", "data-action": "more", title: `More for “${name}”: use it as the reference, delete it` }, "More…"),
      el("div", { class: "more-menu" }, items));
    menu.addEventListener("click", (ev) => { if (ev.target.closest(".more-menu .btn")) menu.open = false; });
    return menu;
  }
  document.addEventListener("click", (ev) => {
    for (const d of list.querySelectorAll("details.more[open]")) if (!d.contains(ev.target)) d.open = false;
  });
  document.addEventListener("keydown", (ev) => {
    const d = ev.key === "Escape" && ev.target.closest && ev.target.closest("details.more[open]");
    if (d) { d.open = false; d.querySelector("summary").focus(); }
  });
  // -- the reference track (REF on the Live page) -------------------------------------------
  // PUT /reference answers once the box has prepared the capture (a few seconds): the button says so
  // meanwhile (one at a time); the buttons and the "reference" tag change in place, so open details
  // and forms stay as they are.
  let reference = null, preparing = null;
  const refTag = () => el("span", { class: "badge ok", "data-field": "reference", title: "The Live page's REF button plays this capture", text: "reference" });
  function refButton(name, recording) {
    return el("button", { class: "btn btn-small", "data-action": "reference", disabled: recording || preparing !== null || null,
      title: "Make this capture the reference track: REF on the Live page plays it in place of the master, at the master's loudness",
      onclick: () => useAsReference(name) }, "Use as reference");
  }
  function showReference() {
    list.querySelectorAll("li[data-capture]").forEach((li) => {
      const name = li.dataset.capture, busy = preparing === name, b = li.querySelector('[data-action="reference"]');
      b.disabled = preparing !== null || li.querySelector(".badge.hot") !== null;
      b.setAttribute("aria-busy", busy ? "true" : "false");
      b.textContent = busy ? "Preparing…" : "Use as reference";
      const more = li.querySelector('[data-action="more"]');     // it shows while its menu is closed
      more.setAttribute("aria-busy", busy ? "true" : "false");
      more.textContent = busy ? "Preparing…" : "More…";
      const tag = li.querySelector('[data-field="reference"]');
      if (name === reference && !tag) li.querySelector(".title small").before(refTag());
      else if (name !== reference && tag) tag.remove();
    });
  }
  async function useAsReference(name) {
    preparing = name;
    showReference();
    try {
      reference = (await api("PUT", "/reference", { capture: name })).reference.capture;
      toast(`“${name}” is the reference: press REF on the Live page`);
    } catch (e) { fail(e); }
    preparing = null;
    showReference();
  }
  async function loadReference() {
    try { reference = (await api("GET", "/reference")).reference.capture; } catch (e) { /* the tag waits for the next look */ }
  }

  // -- mastering a capture -------------------------------------------------------------
  const mstrip = document.getElementById("mastering"), mtext = document.getElementById("mastering-text");
  const mcancel = document.getElementById("mastering-cancel"), mbar = document.getElementById("mastering-progress");
  let mastering = false, masterTimer = null;
  // the form of a job (one capture or an album): settings (the box's or a preset's), target, word length,
  // sample rate; null if the state cannot be read
  async function jobForm(text, label, start) {
    let values = {}, active = null, presets = [];
    try {
      const [s, p] = await Promise.all([api("GET", "/state"), api("GET", "/presets")]);
      values = s.values; active = s.active_preset; presets = p.presets.filter((r) => r.name);
    } catch (e) { fail(e); return null; }
    const target = el("input", { type: "number", step: "0.5", min: "-36", max: "-5", value: String(values["target.lufs"]), "data-field": "target",
      "aria-label": "Loudness target in LUFS" });
    const level = el("input", { type: "checkbox", checked: true, "data-field": "level" });
    const depth = el("select", { "data-field": "bit-depth" }, ["24", "16", "32f"].map((d) => el("option", { value: d, text: d === "32f" ? "32-bit float" : `${d}-bit` })));
    const settings = el("select", { "data-field": "preset" },
      el("option", { value: "", text: `the box's current settings${active ? ` (${active})` : ""}` }),
      presets.map((r) => el("option", { value: r.name, text: `preset ${r.name}` })));
    // a preset brings its own target (its delivery: streaming, CD, broadcast...)
    settings.addEventListener("change", () => {
      const row = presets.find((r) => r.name === settings.value);
      target.value = String(row && row.target_lufs != null ? row.target_lufs : values["target.lufs"]);
    });
    const rate = el("select", { "data-field": "rate" }, el("option", { value: "", text: "as captured" }),
      [44100, 48000, 88200, 96000].map((r) => el("option", { value: String(r), text: `${r / 1000} kHz` })));
    level.addEventListener("change", () => { target.disabled = !level.checked; });
    const form = el("div", { class: "master-form" },
      el("p", { class: "muted small", text: `Through the chain, ${text}` }),
      el("label", { class: "inline" }, "Settings", settings),
      el("label", { class: "inline" }, level, "Loudness target"), el("span", { class: "inline" }, target, "LUFS"),
      el("label", { class: "inline" }, "Word length", depth),
      el("label", { class: "inline" }, "Sample rate", rate),
      el("button", { class: "btn btn-small btn-primary", "data-action": "master-start", onclick: async () => {
        const body = { bit_depth: depth.value, level: level.checked };
        if (level.checked) body.target_lufs = parseFloat(target.value);
        if (settings.value) body.preset = settings.value;
        if (rate.value) body.rate = parseInt(rate.value, 10);
        try { showJob(await start(body)); form.remove(); } catch (e) { fail(e); }
      } }, label));
    return form;
  }
  async function masterForm(li, name) {
    const old = li.querySelector(".master-form");
    if (old) { old.remove(); return; }
    const form = await jobForm("measured first, so the loudness lands on the target. Written as a new capture.", "Master",
      async (body) => (await api("POST", `/captures/${enc(name)}/master`, body)).job);
    if (form) li.append(form);
  }
  // -- mastering ticked captures as an album ----------------------------------------------
  const abar = document.getElementById("album-bar"), abutton = document.getElementById("album-master");
  const azip = document.getElementById("album-zip"), ebutton = document.getElementById("each-master");
  let picked = [];
  function albumBar() {
    const here = new Set(cache.filter((c) => !c.recording).map((c) => c.name));
    picked = picked.filter((n) => here.has(n));        // deleted (or recording again) meanwhile
    abar.classList.toggle("hidden", here.size === 0);
    document.getElementById("album-count").textContent = picked.length ? `${picked.length} ticked: ${picked.join(", ")}`
      : "Tick captures to download them together, master each on its own, or master two or more as an album";
    abutton.disabled = picked.length < 2 || mastering;
    ebutton.disabled = picked.length < 1 || mastering;
    // the ticked captures and their analyses as one ZIP (GET /captures.zip, streamed)
    // a link without a target while nothing is ticked (and "download" only on a link that has one)
    if (picked.length) {
      azip.href = "/api/v1/captures.zip?" + picked.map((n) => `name=${enc(n)}`).join("&");
      azip.setAttribute("download", "");
    } else { azip.removeAttribute("href"); azip.removeAttribute("download"); }
    azip.setAttribute("aria-disabled", picked.length ? "false" : "true");
    const form = abar.querySelector(".master-form");
    if (form && picked.length < (form.dataset.kind === "album" ? 2 : 1)) form.remove();
  }
  // one form in the bar at a time; the button that opened it closes it again
  function barForm(kind) {
    const old = abar.querySelector(".master-form");
    if (old) old.remove();
    return !old || old.dataset.kind !== kind;
  }
  ebutton.addEventListener("click", async () => {
    if (!barForm("each")) return;
    const names = [...picked], taken = new Set(cache.map((c) => c.name));
    const outs = names.map((n) => { let o = `${n}-master`; for (let k = 2; taken.has(o); k++) o = `${n}-master-${k}`; return o; });
    const form = await jobForm(`each on its own, measured first so every one lands on the target (not an album: their levels `
      + `against each other are not kept). Written as new captures (${outs.join(", ")}).`, `Master ${names.length}`,
      async (body) => { const job = (await api("POST", "/mastering/each", { ...body, captures: names })).job; picked = []; load(true); return job; });
    if (form) { form.dataset.kind = "each"; abar.append(form); }
  });
  abutton.addEventListener("click", async () => {
    if (!barForm("album")) return;
    const names = [...picked];
    // the names the box will give them: "-album", or "-album-2", ... when one of them is taken
    const taken = new Set(cache.map((c) => c.name));
    let suffix = "-album";
    for (let k = 2; names.some((n) => taken.has(n + suffix)); k++) suffix = `-album-${k}`;
    const form = await jobForm(`${names.length === 2 ? "both" : `all ${names.length}`} with one shared drive: the album's loudness lands on the target and the songs keep `
      + `their levels against each other. Each is written as a new capture (${names.map((n) => n + suffix).join(", ")}).`, "Master album",
      async (body) => { const job = (await api("POST", "/mastering/album", { ...body, captures: names })).job; picked = []; load(true); return job; });
    if (form) { form.dataset.kind = "album"; abar.append(form); }
  });
  function showJob(job) {
    clearTimeout(masterTimer);
    const was = mastering;
    mastering = !!job && job.state === "running";
    mstrip.classList.toggle("hidden", !job);
    mcancel.classList.toggle("hidden", !mastering);
    if (job) {
      const album = job.kind === "album", each = job.kind === "each";
      const res = job.result && (album ? job.result.album : each ? null : job.result);
      const r = res && res.output;
      const what = album ? `the album of ${job.captures.length}` : each ? `${job.captures.length} captures one by one` : job.capture;
      const into = job.outputs.join(", ");
      mtext.textContent = {
        running: `Mastering ${what} → ${into}` + (job.progress ? ` (${job.progress.stage})` : "") + "…",
        done: `Mastered ${what} → ${into}` + (r ? `: ${fmt(r.integrated_lufs, 1, "LUFS")}, true peak ${fmt(r.true_peak_dbtp, 1, "dBTP")}` : "")
          + (res && res.message ? ` (${res.message})` : ""),
        failed: `Mastering ${what} failed: ${job.error}`
          + (each && job.result ? ` (${job.result.masters.length} of ${job.captures.length} finished and kept)` : ""),
        cancelled: `Mastering ${what} cancelled; ` + (each && job.result && job.result.masters.length
          ? `the ${job.result.masters.length} finished before it are kept.` : "nothing was written."),
      }[job.state] || job.state;
      mstrip.dataset.state = job.state;
      // how far the current pass is (the number of passes is not known in advance)
      mbar.classList.toggle("hidden", !(mastering && job.progress));
      if (mastering && job.progress) mbar.value = job.progress.percent;
    }
    list.querySelectorAll('[data-action="master"]').forEach((b) => {
      b.disabled = mastering || b.closest("li").querySelector(".badge.hot") != null;
    });
    albumBar();
    if (mastering) masterTimer = setTimeout(pollJob, 1000);
    else if (was) load();           // the new capture (or nothing, if it failed)
  }
  async function pollJob() { try { showJob((await api("GET", "/mastering")).job); } catch (e) { masterTimer = setTimeout(pollJob, 3000); } }
  mcancel.addEventListener("click", async () => { try { showJob((await api("DELETE", "/mastering")).job); } catch (e) { fail(e); } });

  // -- uploading mixes from this computer ----------------------------------------------------
  // POST /uploads, then the file in pieces (PUT at the offset the box stands at): a dropped link
  // costs one piece, the box says where to go on. Files go one after the other.
  const ustrip = document.getElementById("upload"), utext = document.getElementById("upload-text");
  const ubar = document.getElementById("upload-progress"), ucancel = document.getElementById("upload-cancel");
  const upick = document.getElementById("upload-pick");
  const RETRIES = 8;                  // a link down for a minute and a half: 2, 4, 8, then every 15 s
  let current = null;                 // {id, stop} of the upload running now
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  function showUpload(file, st, note) {
    ustrip.classList.remove("hidden");
    ustrip.dataset.state = "running";
    const pct = st ? Math.floor(100 * st.offset / file.size) : 0;
    utext.textContent = `Uploading ${file.name}: ${pct} % (${bytes(st ? st.offset : 0)} of ${bytes(file.size)})` + (note ? ` · ${note}` : "");
    ubar.value = pct;
  }
  async function uploadOne(file, n, of) {
    const label = of > 1 ? `${n}/${of} ` : "";
    let st;
    try { st = await api("POST", "/uploads", { file: file.name, size: file.size }); } catch (e) { fail(e); return false; }
    current = { id: st.id, stop: false };
    showUpload(file, st, label);
    for (let tries = 0; st.state === "receiving" && !current.stop;) {
      // the last piece's answer waits for the box to check the file (and turn an AIFF or FLAC into a WAV)
      if (st.offset + st.chunk_bytes >= file.size) showUpload(file, st, label + (/\.wav$/i.test(file.name) ? "last piece; the box checks the file…" : "last piece; the box checks the file and makes it a WAV…"));
      try {
        st = await api("PUT", `/uploads/${st.id}?offset=${st.offset}`, file.slice(st.offset, st.offset + st.chunk_bytes));
        tries = 0;
      } catch (e) {
        if (current.stop) break;
        if (e.status === 409 && e.body && e.body.offset != null) { st = { ...st, offset: e.body.offset }; continue; }
        if (e.status) { fail(e); return false; }   // the box refused (not a WAV, disk full...): it says why
        if (++tries > RETRIES) { fail(new Error(`Upload of ${file.name} stopped: the box has not answered for a minute and a half`)); return false; }
        showUpload(file, st, `${label}connection lost, trying again…`);
        await sleep(Math.min(1000 * 2 ** tries, 15000));
        try { st = await api("GET", `/uploads/${st.id}`); } catch (e2) { /* still down: the next round asks again */ }
      }
      showUpload(file, st, label);
    }
    if (st.state !== "done") return false;          // cancelled
    toast(`Uploaded ${file.name} as “${st.capture}”`);
    load(true);
    return true;
  }
  async function uploadAll(files) {
    if (current) { toast("An upload is running: wait for it, or cancel it", true); return; }
    const wavs = files.filter((f) => /\.(wav|aiff?|flac)$/i.test(f.name));
    if (wavs.length < files.length) toast(`Only WAV, AIFF or FLAC files: ${files.length - wavs.length} left out`, true);
    try {
      for (let k = 0; k < wavs.length; k++) if (!(await uploadOne(wavs[k], k + 1, wavs.length))) break;
    } finally {
      current = null;
      ustrip.classList.add("hidden");
      load(true);
    }
  }
  document.getElementById("upload-button").addEventListener("click", () => upick.click());
  upick.addEventListener("change", () => { const files = [...upick.files]; upick.value = ""; uploadAll(files); });
  ucancel.addEventListener("click", async () => {
    if (!current) return;
    current.stop = true;
    try {
      const r = await api("DELETE", `/uploads/${current.id}`);
      toast(r.state === "done" ? `Too late to cancel: the last piece had arrived (“${r.capture}”)` : "Upload cancelled; nothing was kept");
    } catch (e) { /* already gone */ }
  });
  // drop WAV files anywhere on the list
  const card = document.getElementById("capture-card");
  card.addEventListener("dragover", (ev) => { ev.preventDefault(); card.classList.add("drop"); });
  card.addEventListener("dragleave", () => card.classList.remove("drop"));
  card.addEventListener("drop", (ev) => { ev.preventDefault(); card.classList.remove("drop"); uploadAll([...ev.dataTransfer.files]); });

  let cache = [];
  function render(items) {
    cache = items;
    list.replaceChildren(...(items.length ? items.map(row) : [el("li", { class: "muted", text: "No captures yet. Start one above or with the CAPTURE button on the box, or upload a mix." })]));
    albumBar();
  }
  async function load(again) {
    try {
      const [r] = await Promise.all([api("GET", "/captures"), loadReference()]);
      const now = JSON.stringify(r.captures);
      if (now !== shown || again) { render(r.captures); shown = now; }   // unchanged: open details are not re-fetched
      showReference();
      setCapturing(!!(r.status && r.status.capturing));
      // an analysis still being written: look again until it is there (no reload needed)
      clearTimeout(pendingTimer);
      pendingTimer = r.captures.some((c) => c.analysis === "pending" && !c.recording) ? setTimeout(load, PENDING_POLL_MS) : null;
    } catch (e) { fail(e); }
  }
  on("meters", (m) => {
    if (m && !!m.capturing !== capturing) { setCapturing(!!m.capturing); if (!m.capturing) setTimeout(load, 800); }
  });
  (async () => {
    load();
    pollJob();                       // a job started earlier (or from another browser) shows here too
    try { const s = await api("GET", "/system"); document.getElementById("captures-disk").textContent = `${bytes(s.disk.free_bytes)} free`; } catch (e) { /* optional */ }
  })();
})();
