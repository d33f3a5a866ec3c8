/* System page: audio settings, engine and board health, disk, version, web server, log, password. */
"use strict";
(() => {
  const { api, el, fmt, fail, toast } = MB;
  let formFilled = false, applying = false, current = null, simulated = false;
  const $ = (id) => document.getElementById(id);
  function ensureOption(select, value) {
    if (![...select.options].some((o) => o.value === String(value))) select.append(el("option", { text: String(value) }));
    select.value = String(value);
  }
  // On the sim backend (masterbox demo) the form shows what runs: the simulated device, which cannot be
  // changed here (the config file's device is kept for the hardware, and never sent by an apply)
  function fillAudio(audio, canApply, sim, config) {
    current = audio;
    simulated = sim;
    $("audio-device").value = audio.device ?? "";
    $("audio-device").readOnly = sim;
    $("audio-device").title = sim ? "the engine runs the simulated device (sim backend)" : "";
    $("audio-sim").classList.toggle("hidden", !sim);
    $("audio-sim").textContent = sim
      ? `The engine runs the simulated device (the sim backend of masterbox demo): no sound card is opened. ` +
        `The config file's device${config && config.device ? ` (${config.device})` : ""} is kept for the box's ` +
        `hardware; rate and period apply to the simulation.` : "";
    ensureOption($("audio-rate"), audio.rate ?? 48000);
    ensureOption($("audio-period"), audio.period ?? 128);
    $("audio-periods").value = audio.periods ?? 2;
    $("audio-apply").disabled = !canApply;
    $("audio-note").classList.toggle("hidden", canApply);
    showLatency();
  }
  function untouched() {
    const v = formValues();
    return !current || ["device", "rate", "period", "periods"].every((k) => v[k] === (current[k] ?? v[k]));
  }
  function formValues() {
    return { device: $("audio-device").value.trim(), rate: parseInt($("audio-rate").value, 10),
             period: parseInt($("audio-period").value, 10), periods: parseInt($("audio-periods").value, 10) };
  }
  function showLatency() {
    const v = formValues();
    $("audio-latency").textContent = v.rate && v.period && v.periods
      ? `Buffer latency ${(v.period * v.periods / v.rate * 1000).toFixed(1)} ms each way` : "";
  }
  function progress(text, kind) {
    const p = $("audio-progress");
    p.textContent = text;
    p.className = "small" + (kind === "error" ? " error" : kind === "ok" ? " ok" : " muted");
  }
  function facts(box, rows) {
    box.replaceChildren(...rows.flatMap(([k, v]) => [el("dt", { text: k }), el("dd", {}, v)]));
  }
  function gb(n) { return (n / 1e9).toFixed(1) + " GB"; }
  async function load() {
    const s = await api("GET", "/system");
    // filled once; again if the engine turns out to run the simulated device (it may still be starting
    // when the page loads) while the form is untouched (an engine down for a moment changes nothing)
    if (!applying && (!formFilled || (s.audio_simulated && !simulated && untouched()))) {
      fillAudio(s.audio_simulated ? s.audio_running : s.audio, s.can_apply_audio, s.audio_simulated, s.audio);
      formFilled = true;
    }
    const eng = s.engine || {}, dev = eng.device || {};
    const th = s.throttling;
    const used = s.disk.total_bytes ? s.disk.used_bytes / s.disk.total_bytes : 0;
    const bar = el("span", { class: "diskbar" }, el("i"));   // a span: it sits in the row's span
    bar.firstChild.style.width = (used * 100).toFixed(1) + "%";
    facts(document.getElementById("health"), [
      ["Engine", eng.running === false
        ? (eng.start_failure ? `not running: its last start failed ${fmt(eng.start_failure.age_s, 0, "s")} ago: ${eng.start_failure.error}`
                             : `not running (${eng.error || "no answer"})`) : `${eng.state || "running"}${eng.uptime_s != null ? ` · up ${Math.round(eng.uptime_s)} s` : ""}`],
      ["Device", `${s.audio_simulated ? s.audio_running.device : `${dev.backend ?? s.audio.backend ?? "—"} ${dev.playback_device ?? s.audio.device ?? ""}`} · ${dev.rate ?? s.audio.rate ?? "—"} Hz · ${dev.periods ?? s.audio.periods ?? "—"} × ${dev.period ?? s.audio.period ?? "—"} frames`],
      ["Latency", eng.latency_samples == null ? "—" : `chain ${eng.latency_samples} + I/O ${eng.io_latency_samples ?? "?"} samples`],
      ["DSP load", s.load == null ? "—" : fmt(s.load * 100, 1, "%")],
      ["Xruns", s.xruns == null ? "—" : String(s.xruns) + (eng.xruns_loading ? ` (${eng.xruns_loading} while the chain loaded at start)` : "")],
      ["CPU temperature", s.cpu_temperature_c == null ? "not reported" : fmt(s.cpu_temperature_c, 1, "°C")],
      ["Throttling", th == null ? "not reported" : th.throttled || th.under_voltage ? `yes (${th.raw})` : `no (${th.raw})`],
      ["Disk", el("span", {}, `${gb(s.disk.free_bytes)} free of ${gb(s.disk.total_bytes)}`, bar)],
      ["Version", s.version],
    ]);
    facts(document.getElementById("webfacts"), [
      ["Worker threads", String(s.web.threads)],
      ["Live streams", `${s.web.sse_clients} of ${s.web.sse_max_clients}`],
      ["Frames skipped", String(s.web.sse_frames_dropped)],
    ]);
    const log = document.getElementById("log");
    const atBottom = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
    log.textContent = s.log.join("\n") || "(nothing logged yet)";
    if (atBottom) log.scrollTop = log.scrollHeight;
  }
  ["audio-rate", "audio-period", "audio-periods"].forEach((id) => $(id).addEventListener("input", showLatency));
  $("audio-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    // the form holds the page's placeholders until the box's settings have filled it: Enter pressed
    // in that moment must not restart the engine with them
    if (applying || !current) return;
    const v = formValues(), changes = {};
    for (const k of ["device", "rate", "period", "periods"]) {
      if (k === "device" && simulated) continue;   // the simulated device is not the config's to change
      if (v[k] !== current[k]) changes[k] = v[k];
    }
    if (!Object.keys(changes).length) { progress("Nothing changed: these are the settings the engine runs with.", "muted"); return; }
    applying = true;
    $("audio-apply").disabled = true;
    const t0 = performance.now();
    const tick = () => progress(`Restarting the engine with ${Object.entries(changes).map(([k, x]) => `${k} ${x}`).join(", ")}… ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    tick();
    const timer = setInterval(tick, 100);
    try {
      const r = await api("POST", "/system/audio", changes);
      const d = (r.result.engine || {}).device || {};
      progress(`Applied: audio back after ${r.result.audio_back_s.toFixed(2)} s, engine running ${d.rate} Hz, ${d.periods} × ${d.period} frames on ${d.backend === "sim" ? "the simulated device" : d.playback_device}.`, "ok");
      toast("Audio settings applied");
    } catch (e) {
      progress(e.body && e.body.result && e.body.result.rolled_back
        ? `Not applied: ${e.message}. The engine runs with ${e.body.result.audio.device}, ${e.body.result.audio.rate} Hz, ${e.body.result.audio.periods} × ${e.body.result.audio.period} frames.`
        : `Not applied: ${e.message}`, "error");
      fail(e);
    } finally {
      clearInterval(timer);
      applying = false;
      formFilled = false;
      await load().catch(() => {});
    }
  });
  document.getElementById("password-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try {
      await api("POST", "/auth/password", { current: document.getElementById("pw-current").value, new: document.getElementById("pw-new").value });
      ev.target.reset(); toast("Password changed; other browsers are logged out");
    } catch (e) { fail(e); }
  });
  load().catch(fail);
  setInterval(() => load().catch(() => {}), 3000);
})();
