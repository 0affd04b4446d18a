// guildhall's own browser code: small, no build step, loaded as a file (the page policy allows
// no inline script). htmx and Alpine.js (its CSP build) do the rest.
"use strict";

(function () {
  // /ws/status sends JSON events, not HTML: instead of letting the htmx ws extension swap them,
  // each event asks htmx to fetch the server-rendered status fragment again (hx-trigger
  // "gh-status from:body" on the overview). No polling: nothing is fetched without an event.
  document.addEventListener("htmx:wsBeforeMessage", function (event) {
    var socket = event.target;
    if (!socket || !socket.matches || !socket.matches('[data-live="status"]')) return;
    event.preventDefault();
    document.body.dispatchEvent(new CustomEvent("gh-status"));
  });

  function liveNote(socket, text, state) {
    var note = socket && socket.querySelector(".live-note");
    if (!note) return;
    note.textContent = text;
    note.setAttribute("data-state", state);
  }

  document.addEventListener("htmx:wsOpen", function (event) {
    var socket = event.target;
    if (!socket || !socket.matches || !socket.matches('[data-live="status"]')) return;
    liveNote(socket, "Live: changes appear here as they happen.", "open");
    // Whatever changed while the connection was down is fetched once on reconnect.
    document.body.dispatchEvent(new CustomEvent("gh-status"));
  });

  document.addEventListener("htmx:wsClose", function (event) {
    var socket = event.target;
    if (!socket || !socket.matches || !socket.matches('[data-live="status"]')) return;
    liveNote(socket, "Live updates paused: the connection dropped, reconnecting…", "closed");
  });
})();
