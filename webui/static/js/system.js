/* System page: audio settings, engine and board health, disk, version, web server, log, password. */
"use strict";
(() => {
  const { api, el, fmt, fail, toast } = MB;
  let formFilled = false;
  function facts(box, rows) {
    box.replaceChildren(...rows.flatMap(([k, v]) => [el("dt", { text: k }), el("dd", {}, v)]));
  }
  function gb(n) { return (n / 1e9).toFixed(1) + " GB"; }
  async function load() {
    const s = await api("GET", "/system");
    if (!formFilled) {
      document.getElementById("audio-device").value = s.audio.device ?? "";
      document.getElementById("audio-rate").value = String(s.audio.rate ?? 48000);
      document.getElementById("audio-period").value = String(s.audio.period ?? 128);
      document.getElementById("audio-periods").value = s.audio.periods ?? 2;
      document.getElementById("audio-apply").disabled = !s.can_apply_audio;
      document.getElementById("audio-note").classList.toggle("hidden", s.can_apply_audio);
      formFilled = true;
    }
    const eng = s.engine || {}, dev = eng.device || {};
    const th = s.throttling;
    const used = s.disk.total_bytes ? s.disk.used_bytes / s.disk.total_bytes : 0;
    const bar = el("div", { class: "diskbar" }, el("i"));
    bar.firstChild.style.width = (used * 100).toFixed(1) + "%";
    facts(document.getElementById("health"), [
      ["Engine", eng.running === false ? `not running (${eng.error || "no answer"})` : `${eng.state || "running"}${eng.uptime_s != null ? ` · up ${Math.round(eng.uptime_s)} s` : ""}`],
      ["Device", `${dev.backend ?? s.audio.backend ?? "—"} ${dev.playback_device ?? s.audio.device ?? ""} · ${dev.rate ?? s.audio.rate ?? "—"} Hz · ${dev.periods ?? s.audio.periods ?? "—"} × ${dev.period ?? s.audio.period ?? "—"} frames`],
      ["Latency", eng.latency_samples == null ? "—" : `chain ${eng.latency_samples} + I/O ${eng.io_latency_samples ?? "?"} samples`],
      ["DSP load", s.load == null ? "—" : fmt(s.load * 100, 1, "%")],
      ["Xruns", s.xruns == null ? "—" : String(s.xruns)],
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
  document.getElementById("audio-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try {
      await api("POST", "/system/audio", {
        device: document.getElementById("audio-device").value,
        rate: parseInt(document.getElementById("audio-rate").value, 10),
        period: parseInt(document.getElementById("audio-period").value, 10),
        periods: parseInt(document.getElementById("audio-periods").value, 10),
      });
      toast("Applied: the engine restarts with the new settings");
    } catch (e) { fail(e); }
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
