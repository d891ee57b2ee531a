// The organizer console's small helpers (no library, nothing from another host).
"use strict";

// A form with data-confirm asks before it is sent (cancel a workshop, send a broadcast).
document.addEventListener("submit", (event) => {
  const form = event.target;
  if (form instanceof HTMLFormElement && form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
    event.preventDefault();
  }
});

// A page with data-refresh reloads its [data-refreshable] parts every that many seconds.
(() => {
  const seconds = Number(document.body.dataset.refresh || 0);
  if (!seconds) return;
  setInterval(async () => {
    try {
      const response = await fetch(window.location.href, {headers: {"X-Console-Refresh": "1"}});
      if (!response.ok) return;
      const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
      for (const part of document.querySelectorAll("[data-refreshable]")) {
        const next = fresh.getElementById(part.id);
        if (next) part.replaceWith(next);
      }
    } catch (error) {
      // offline for a moment: the next tick tries again
    }
  }, seconds * 1000);
})();
