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

// The live log viewer (templates/pages/logs.stpl). Alpine's CSP build: no expressions in the
// template beyond property and method names, so everything lives here.
document.addEventListener("alpine:init", function () {
  var LEVELS = { trace: 0, debug: 1, info: 2, warn: 3, error: 4 };
  var KEEP = 2000; // lines kept in the page; older ones are removed
  var MAX_DELAY_MS = 10000;

  window.Alpine.data("logViewer", function () {
    // Items made since the last frame, shown together at the next one (outside Alpine's
    // reactive data: nothing in the template reads them).
    var pending = [];
    return {
      level: "",
      search: "",
      paused: false,
      held: [],
      behind: false,
      state: "connecting",
      note: "",
      socket: null,
      attempts: 0,
      lastSeq: {},
      unaccounted: 0,
      flushQueued: false,
      stopped: false,

      init: function () {
        this.connect();
      },

      get pauseLabel() {
        return this.paused ? "Resume (" + this.held.length + " waiting)" : "Pause";
      },
      get pausedText() {
        return this.paused ? "true" : "false";
      },
      get stateText() {
        var base = {
          connecting: "Connecting…",
          open: "Live.",
          closed: "Disconnected.",
          ended: "Stopped."
        }[this.state] || "";
        return this.note ? base + " " + this.note : base;
      },

      connect: function () {
        var self = this;
        var scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
        var socket = new WebSocket(scheme + "//" + window.location.host + "/ws/logs");
        this.socket = socket;
        this.state = "connecting";
        socket.onopen = function () {
          if (self.attempts > 0) self.notice("Reconnected; the recent backlog follows.");
          self.attempts = 0;
          self.state = "open";
          self.sendFilter();
        };
        socket.onmessage = function (event) {
          self.receive(event.data);
        };
        socket.onclose = function (event) {
          self.socket = null;
          if (event.code === 4001 || event.code === 4003) {
            self.state = "ended";
            self.notice(event.code === 4001
              ? "Your session ended: reload the page to sign in again."
              : "You no longer have permission to watch the logs.");
            return;
          }
          self.state = "closed";
          var delay = Math.min(MAX_DELAY_MS, 500 * Math.pow(2, self.attempts));
          self.attempts += 1;
          var when = "reconnecting in " + Math.max(1, Math.round(delay / 1000)) + " s.";
          // 4008: the server gave up on this viewer after it stayed behind; a fresh connection
          // starts again from the recent backlog, so reconnecting is the right answer here.
          self.notice(event.code === 4008
            ? "Disconnected: this viewer fell too far behind the log stream; " + when
            : "Connection lost; " + when);
          window.setTimeout(function () { self.connect(); }, delay);
        };
      },

      sendFilter: function () {
        if (!this.socket || this.socket.readyState !== WebSocket.OPEN) return;
        this.socket.send(JSON.stringify({ level: this.level || null, search: this.search || null }));
      },

      applyFilter: function () {
        this.sendFilter();
        var list = this.$refs.list;
        for (var i = 0; i < list.children.length; i++) {
          var item = list.children[i];
          if (item.dataset.level === undefined) continue;
          item.hidden = !this.matches(item.dataset.level, item.dataset.text);
        }
        this.scrollIfFollowing();
      },

      matches: function (level, text) {
        if (this.level && (LEVELS[(level || "").toLowerCase()] || 0) < LEVELS[this.level]) return false;
        if (this.search && text.indexOf(this.search.toLowerCase()) === -1) return false;
        return true;
      },

      receive: function (data) {
        var frame;
        try { frame = JSON.parse(data); } catch (e) { return; }
        if (frame.type === "line") {
          var instance = frame.instance || "";
          var last = this.lastSeq[instance];
          // A reconnect replays the backlog: lines already shown are skipped.
          if (last !== undefined && frame.seq <= last) return;
          var unfiltered = !this.level && !this.search;
          if (last !== undefined && frame.seq > last + 1) {
            // A gap in the sequence is lines this viewer never got: those a "missed" event
            // already counted, else lost while disconnected (the backlog replayed on
            // reconnecting did not reach back far enough). With a filter, gaps are normal.
            var gap = frame.seq - last - 1;
            var known = Math.min(gap, this.unaccounted);
            this.unaccounted -= known;
            if (unfiltered && gap > known) {
              this.notice("Missed " + (gap - known) + " lines while disconnected.");
            }
          }
          this.lastSeq[instance] = frame.seq;
          if (this.paused) {
            this.held.push(frame);
            // Only the newest KEEP would be shown on resuming anyway.
            if (this.held.length > KEEP) this.held.splice(0, this.held.length - KEEP);
          } else {
            this.append(frame);
          }
        } else if (frame.type === "missed") {
          // The server skipped lines this viewer could not take in time and continues with the
          // newest: the gaps that follow in the sequence numbers are these lines.
          this.unaccounted += frame.count;
          this.notice("Missed " + frame.count + " lines: this viewer fell behind; continuing with the newest.");
        } else if (frame.type === "error") {
          this.notice("The stream refused the filter: " + frame.message);
        }
      },

      append: function (frame) {
        var item = document.createElement("li");
        var level = (frame.level || "").toLowerCase();
        var when = new Date(frame.timestamp_ms).toISOString().replace("T", " ").replace("Z", "");
        var text = [frame.message, frame.target, frame.request_id || "", frame.instance || ""].join(" ").toLowerCase();
        item.dataset.level = level;
        item.dataset.text = text;
        item.dataset.seq = String(frame.seq);
        item.dataset.instance = frame.instance || "";
        var lvl = document.createElement("span");
        lvl.className = "lvl lvl-" + level;
        lvl.textContent = (frame.level || "").toUpperCase();
        item.appendChild(document.createTextNode(when + " "));
        item.appendChild(lvl);
        item.appendChild(document.createTextNode(
          frame.message + "  " + frame.target + (frame.request_id ? "  request_id=" + frame.request_id : "")));
        this.add(item);
      },

      notice: function (text) {
        this.note = text;
        var item = document.createElement("li");
        item.className = "notice";
        item.textContent = "— " + text;
        this.add(item);
      },

      // Lines and notices reach the list once per frame, in the order they came: a burst of a
      // thousand lines then costs one layout and one scroll, not a thousand (reading
      // scrollHeight forces a layout). A hidden page gets no frames, so what waits is bounded
      // like the list itself.
      add: function (item) {
        pending.push(item);
        if (pending.length > KEEP) pending.splice(0, pending.length - KEEP);
        if (this.flushQueued) return;
        this.flushQueued = true;
        var self = this;
        window.requestAnimationFrame(function () { self.flush(); });
      },

      flush: function () {
        this.flushQueued = false;
        var list = this.$refs.list;
        var items = pending;
        pending = [];
        var fragment = document.createDocumentFragment();
        for (var i = 0; i < items.length; i++) {
          var item = items[i];
          // The filter may have changed since the item was made.
          if (item.dataset.level !== undefined) {
            item.hidden = !this.matches(item.dataset.level, item.dataset.text);
          }
          fragment.appendChild(item);
        }
        list.appendChild(fragment);
        while (list.children.length > KEEP) list.removeChild(list.firstChild);
        this.scrollIfFollowing();
      },

      togglePause: function () {
        this.paused = !this.paused;
        if (!this.paused) {
          var held = this.held;
          this.held = [];
          for (var i = 0; i < held.length; i++) this.append(held[i]);
          // Shown now, in answer to the click, rather than at the next frame.
          this.flush();
        }
      },

      clearLines: function () {
        pending = [];
        var list = this.$refs.list;
        while (list.firstChild) list.removeChild(list.firstChild);
      },

      // Auto-scroll follows the newest line until the reader scrolls up; scrolling back to the
      // bottom (or "Jump to newest") resumes it.
      onScroll: function () {
        var list = this.$refs.list;
        this.behind = list.scrollTop + list.clientHeight < list.scrollHeight - 8;
      },

      scrollIfFollowing: function () {
        if (this.behind) return;
        var list = this.$refs.list;
        list.scrollTop = list.scrollHeight;
      },

      jumpToNewest: function () {
        this.behind = false;
        this.scrollIfFollowing();
      }
    };
  });
});
