// Broadcasts: characters counted as the texts are written; a broadcast's progress followed
// live (server-sent events) until nothing of it waits.
"use strict";

(() => {
  for (const area of document.querySelectorAll("textarea[data-counter]")) {
    const counter = document.getElementById(area.dataset.counter);
    if (!counter) continue;
    const limit = Number(counter.dataset.limit);
    const show = () => {
      const n = Array.from(area.value.trim()).length;  // code points, as the server counts
      counter.textContent = counter.dataset.template.replace("{n}", n).replace("{limit}", limit);
      counter.classList.toggle("over", n > limit);
    };
    area.addEventListener("input", show);
    show();
  }
})();

(() => {
  const status = document.getElementById("broadcast-status");
  if (!status || status.dataset.done === "1" || !window.EventSource) return;
  const progress = document.getElementById("broadcast-progress");
  const percent = document.getElementById("broadcast-percent");
  const source = new EventSource(status.dataset.events);
  const show = (event) => {
    const state = JSON.parse(event.data);
    progress.max = state.max;
    progress.value = state.value;
    progress.textContent = state.percent;
    percent.textContent = state.percent;
    for (const field of status.querySelectorAll("[data-field]")) {
      if (field.dataset.field in state) field.textContent = state[field.dataset.field];
    }
    if (state.finished) status.dataset.done = "1";
  };
  source.addEventListener("progress", show);
  source.addEventListener("done", (event) => {
    show(event);
    source.close();  // else the browser would open the stream again
    const cancel = document.getElementById("broadcast-cancel");
    if (cancel) cancel.hidden = true;
  });
})();
