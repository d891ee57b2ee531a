// The catalogue page's own script (console.js holds what pages share).
"use strict";

// A check or an import takes a few seconds: a second click would only send the file again.
// (console.js, loaded first, may have cancelled the submit with its confirmation.)
document.addEventListener("submit", (event) => {
  const form = event.target;
  if (!(form instanceof HTMLFormElement) || event.defaultPrevented) return;
  if (form.id !== "catalogue-upload" && form.id !== "catalogue-apply") return;
  for (const button of form.querySelectorAll("button[type=submit]")) {
    setTimeout(() => { button.disabled = true; }, 0);
  }
});
