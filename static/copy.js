// Copy buttons: <button data-copy="text" hidden> copies its text to the clipboard. The buttons
// ship hidden and are shown only here, where the Clipboard API is available; without it (or
// without JavaScript) the full text stays on the page to select by hand.
(function () {
  "use strict";
  if (window.rlhfCopy || !navigator.clipboard) return;
  window.rlhfCopy = true;
  const show = () => document.querySelectorAll("button[data-copy]").forEach((b) => { b.hidden = false; });
  document.addEventListener("click", async (ev) => {
    const b = ev.target instanceof Element ? ev.target.closest("button[data-copy]") : null;
    if (!b) return;
    const label = b.dataset.label || (b.dataset.label = b.textContent);
    try {
      await navigator.clipboard.writeText(b.dataset.copy);
      b.textContent = "Copied";
    } catch (e) {
      b.textContent = "Select it instead";
    }
    setTimeout(() => { b.textContent = label; }, 1500);
  });
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", show);
  else show();
  document.addEventListener("htmx:afterSwap", show);
})();
