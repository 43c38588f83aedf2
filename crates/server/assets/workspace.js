// The workspace pages' few behaviours, for every page (no inline scripts: the pages' Content
// Security Policy allows only scripts served from here).

// Copy buttons: `data-copy="ID"` copies the value of the input with that id.
document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-copy]");
  if (!button) return;
  const input = document.getElementById(button.dataset.copy);
  navigator.clipboard.writeText(input.value).then(
    () => { button.textContent = "Copied"; },
    () => { input.select(); },
  );
});

// Forms marked `data-confirm="QUESTION"` ask before they are sent (deleting an endpoint).
document.addEventListener("submit", (event) => {
  const message = event.target.dataset.confirm;
  if (message && !window.confirm(message)) event.preventDefault();
});

// Selects marked `data-autosubmit` submit their form when changed.
document.addEventListener("change", (event) => {
  if (event.target.matches("select[data-autosubmit]")) event.target.form.submit();
});

// The interview list: calls that are not over change while the page is open, so the page
// fetches itself again every few seconds and swaps in the fresh rows, until none is live.
(function refresh() {
  const rows = document.getElementById("interview-rows");
  if (!rows || !rows.hasAttribute("data-live")) return;
  setTimeout(async () => {
    try {
      const reply = await fetch(location.href, { credentials: "same-origin" });
      // Signed out or the server gone: stop rather than poll an error page.
      if (!reply.ok) return;
      const page = new DOMParser().parseFromString(await reply.text(), "text/html");
      const fresh = page.getElementById("interview-rows");
      if (!fresh) return;
      rows.replaceWith(fresh);
    } catch (_) {
      // Offline for a moment: try again.
    }
    refresh();
  }, 3000);
})();
