/* First-time setup: wait for a front-panel button press, then choose the password. */
"use strict";
(() => {
  const arm = document.getElementById("claim-arm");
  const status = document.getElementById("claim-status");
  const form = document.getElementById("claim-form");
  const err = document.getElementById("claim-error");
  let timer = null;

  async function check() {
    try {
      const s = await MB.api("GET", "/auth/claim");
      if (s.state === "waiting") {
        status.textContent = `Waiting for a button press on the box… ${s.remaining_s} s`;
        status.className = "claim-status waiting";
      } else if (s.state === "pressed") {
        clearInterval(timer);
        status.textContent = "Button pressed. Choose the password.";
        status.className = "claim-status";
        arm.classList.add("hidden");
        form.classList.remove("hidden");
        document.getElementById("new-password").focus();
      } else if (s.state === "done") {
        location.href = "/login";
      } else {
        clearInterval(timer);
        status.textContent = s.state === "expired" ? "Time is up. Try again." : "Not waiting.";
        status.className = "claim-status muted";
        arm.disabled = false;
      }
    } catch (e) { MB.fail(e); }
  }

  arm.addEventListener("click", async () => {
    try {
      arm.disabled = true;
      await MB.api("POST", "/auth/claim", {});
      clearInterval(timer);
      timer = setInterval(check, 1000);
      check();
    } catch (e) { arm.disabled = false; MB.fail(e); }
  });

  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const a = document.getElementById("new-password").value;
    const b = document.getElementById("new-password2").value;
    err.classList.add("hidden");
    if (a !== b) { err.textContent = "The two passwords differ."; err.classList.remove("hidden"); return; }
    try {
      await MB.api("POST", "/auth/claim/password", { password: a });
      location.href = "/live";
    } catch (e) { err.textContent = e.message; err.classList.remove("hidden"); }
  });
})();
