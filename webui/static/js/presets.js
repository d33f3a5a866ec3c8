/* Presets page: recall, save, save as, rename, duplicate, delete, import and export. */
"use strict";
(() => {
  const { api, el, fail, toast, on } = MB;
  const list = document.getElementById("preset-list");
  const dialog = document.getElementById("name-dialog");
  let active = null, version = null;     // the active preset and the presets' version (GET /presets) listed
  const enc = encodeURIComponent;

  function askName(label, initial) {
    return new Promise((resolve) => {
      document.getElementById("name-dialog-label").textContent = label;
      const input = document.getElementById("name-dialog-input");
      input.value = initial || "";
      dialog.onclose = () => resolve(dialog.returnValue === "ok" ? input.value.trim() : null);
      dialog.showModal();
      input.select();
    });
  }

  async function act(fn, msg) {
    try { await fn(); if (msg) toast(msg); await load(); } catch (e) { fail(e); }
  }

  function row(p) {
    const name = p.name;
    if (name === null) {  // a damaged file in the presets folder: shown, never silently dropped
      return el("li", { class: "broken" }, el("div", { class: "title" }, p.file, el("span", { class: "badge hot", text: "damaged" }),
        el("small", { text: p.error || "" })));
    }
    const actions = el("div", { class: "actions" },
      el("button", { class: "btn btn-primary btn-small", "data-action": "recall", onclick: () => act(() => api("POST", `/presets/${enc(name)}/recall`), `Recalled ${name}`) }, "Recall"),
      el("button", { class: "btn btn-small", "data-action": "duplicate", onclick: async () => {
        const n = await askName(`Duplicate “${name}” as`, `${name} copy`);
        if (n) act(() => api("POST", `/presets/${enc(name)}/duplicate`, { new_name: n }), `Duplicated as ${n}`);
      } }, "Duplicate"),
      p.factory ? null : el("button", { class: "btn btn-small", "data-action": "rename", onclick: async () => {
        const n = await askName(`Rename “${name}” to`, name);
        if (n && n !== name) act(() => api("POST", `/presets/${enc(name)}/rename`, { new_name: n }), `Renamed to ${n}`);
      } }, "Rename"),
      el("a", { class: "btn btn-small", href: `/api/v1/presets/${enc(name)}/export`, download: `${name}.json`, "data-action": "export" }, "Export"),
      p.factory ? null : el("button", { class: "btn btn-small btn-danger", "data-action": "delete", onclick: () => {
        if (confirm(`Delete the preset “${name}”?`)) act(() => api("DELETE", `/presets/${enc(name)}`), `Deleted ${name}`);
      } }, "Delete"));
    return el("li", { class: name === active ? "active" : "", "data-preset": name },
      el("div", { class: "title" }, name, p.factory ? el("span", { class: "badge", text: "factory" }) : null,
        name === active ? el("span", { class: "badge ok", text: "active" }) : null,
        el("small", { text: p.description || "" })),
      actions);
  }

  async function load() {
    const r = await api("GET", "/presets");
    active = r.active;
    version = r.version;
    document.getElementById("presets-active").textContent = active ? `active: ${active}` : "";
    list.replaceChildren(...r.presets.map(row));
    const save = document.getElementById("preset-save");
    const rec = r.presets.find((p) => p.name === active);
    save.disabled = !rec || rec.factory;
    save.title = save.disabled ? "The active preset is a factory preset: use Save as" : `Save into ${active}`;
  }

  document.getElementById("preset-save").addEventListener("click", () => act(() => api("PUT", `/presets/${enc(active)}`, {}), `Saved ${active}`));
  document.getElementById("preset-saveas").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const input = document.getElementById("saveas-name"), n = input.value.trim();
    if (n) act(async () => { await api("POST", "/presets", { name: n }); await api("POST", `/presets/${enc(n)}/recall`); input.value = ""; }, `Saved as ${n}`);
  });
  document.getElementById("preset-import").addEventListener("change", async (ev) => {
    const f = ev.target.files[0];
    ev.target.value = "";
    if (!f) return;
    const zip = f.name.toLowerCase().endsWith(".zip");
    const body = zip ? new Blob([await f.arrayBuffer()]) : new Blob([await f.text()]);
    act(() => api("POST", "/presets-import", body, { type: zip ? "application/zip" : "application/json" }), `Imported ${f.name}`);
  });
  // listed again when the active preset changes or a preset is saved, renamed, deleted or imported
  // (the state's presets_version), here or elsewhere
  on("state", (s) => {
    if (s.active_preset !== active || (s.presets_version !== undefined && version !== null && s.presets_version !== version)) {
      version = s.presets_version;
      load().catch(fail);
    }
  });
  load().catch(fail);
})();
