// The Vestibule console. Plain JavaScript, no libraries: it must work
// offline in a building's network. Every value from the host is put on the
// page as text (never as HTML): events carry what vendors sent.
"use strict";

const TAIL_ROWS = 200;
const REFRESH_MS = 2000;

const state = {
  token: null,
  paused: false,
  held: [],
  rows: [],
  skipped: 0,
  tail: null,
};

const $ = (selector) => document.querySelector(selector);

// An element with attributes (`on…` ones as listeners) and children.
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "class") node.className = value;
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function fill(tbody, rows, empty) {
  tbody.replaceChildren(...rows);
  if (rows.length === 0 && empty) {
    const columns = tbody.parentElement.querySelectorAll("thead th").length;
    tbody.append(el("tr", { class: "empty" }, el("td", { colspan: columns }, empty)));
  }
}

function time(ms) {
  if (!ms) return "—";
  const date = new Date(ms);
  return date.toLocaleTimeString([], { hour12: false }) + "." + String(date.getMilliseconds()).padStart(3, "0");
}

function when(ms) {
  if (!ms) return "never";
  const ago = Math.max(0, Date.now() - ms) / 1000;
  if (ago < 60) return `${Math.round(ago)} s ago`;
  if (ago < 3600) return `${Math.round(ago / 60)} min ago`;
  return new Date(ms).toLocaleString([], { hour12: false });
}

function micros(us) {
  if (us === null || us === undefined) return "—";
  return us < 1000 ? `${us} µs` : `${(us / 1000).toFixed(1)} ms`;
}

function problem(text) {
  const box = $("#problem");
  box.hidden = !text;
  box.textContent = text || "";
}

// A call to the host's console API, with the token.
async function api(path, options = {}) {
  const response = await fetch("/console/api/" + path, {
    ...options,
    headers: { Authorization: "Bearer " + state.token },
    credentials: "omit",
    cache: "no-store",
  });
  if (response.status === 401) {
    forget("The token was refused.");
    throw new Error("unauthorized");
  }
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.message || body.error || `HTTP ${response.status}`);
  return body;
}

// ---- the live tail -------------------------------------------------------

function matches(line) {
  const want = (id) => $(id).value.trim().toLowerCase();
  const has = (value, wanted) => !wanted || String(value || "").toLowerCase().includes(wanted);
  return has(line.source, want("#filter-source")) && has(line.kind, want("#filter-kind")) && has(line.door, want("#filter-door"));
}

function stepCell(steps, dead) {
  return el("td", { class: "steps" }, steps.map((step) =>
    el("span", { class: "step" + (step.failed ? " failed" : ""), title: `${step.plugin}: ${step.result} (${micros(step.micros)})` },
      `${step.plugin}: ${step.result}`)),
    dead ? el("span", { class: "step failed" }, "dead letter") : null);
}

function tailRow(line) {
  return el("tr", { "data-seq": line.seq, class: "event", onclick: () => openStory(line.seq) },
    el("td", {}, time(line.received_at)),
    el("td", {}, line.source),
    el("td", {}, el("span", { class: "kind" }, line.kind)),
    el("td", {}, line.door || "—"),
    el("td", {}, line.actor || "—"),
    stepCell(line.steps, line.dead_letter),
    el("td", { class: "num" }, line.commands));
}

function drawTail() {
  const rows = state.rows.filter(matches).map(tailRow);
  fill($("#tail tbody"), rows, "Waiting for events…");
  const notes = [];
  if (state.paused) notes.push(`paused, ${state.held.length} waiting`);
  if (state.skipped) notes.push(`${state.skipped} skipped while the page fell behind`);
  $("#tail-note").textContent = notes.join("; ");
}

function arrived(line) {
  if (state.paused) {
    state.held.push(line);
  } else {
    state.rows.unshift(line);
    state.rows.length = Math.min(state.rows.length, TAIL_ROWS);
  }
  drawTail();
}

function connection(text, on) {
  const badge = $("#connection");
  badge.textContent = text;
  badge.className = "badge " + (on ? "on" : "off");
}

// Server-sent events read with fetch, so that the token goes in a header.
async function followTail() {
  const controller = new AbortController();
  state.tail = controller;
  while (state.tail === controller) {
    try {
      const response = await fetch("/console/api/tail", {
        headers: { Authorization: "Bearer " + state.token },
        credentials: "omit",
        cache: "no-store",
        signal: controller.signal,
      });
      if (response.status === 401) return forget("The token was refused.");
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      connection("live", true);
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true });
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const message = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          let kind = "message";
          const data = [];
          for (const line of message.split("\n")) {
            if (line.startsWith("event: ")) kind = line.slice(7);
            else if (line.startsWith("data: ")) data.push(line.slice(6));
          }
          if (data.length === 0) continue;
          if (kind === "skipped") {
            state.skipped += Number(data.join(""));
            drawTail();
          } else {
            arrived(JSON.parse(data.join("\n")));
          }
        }
      }
    } catch (error) {
      if (controller.signal.aborted) return;
    }
    connection("reconnecting…", false);
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}

// ---- one event's story --------------------------------------------------

function field(name, value) {
  return el("div", { class: "field" }, el("span", { class: "muted" }, name), el("span", {}, value ?? "—"));
}

function commandBlock(command) {
  const where = command.state === "dead" ? `dead letter (${command.dead_reason})` : command.state;
  const attempts = command.attempt_log.length
    ? el("ol", { class: "attempts" }, command.attempt_log.map((a) =>
        el("li", { class: a.delivered ? "ok" : "failed" },
          `${time(a.at)} — ${a.delivered ? "delivered" : a.error} (${micros(a.micros)})`)))
    : el("p", { class: "muted" }, command.attempts ? `${command.attempts} attempts, before this host started` : "not tried yet");
  return el("div", { class: "command", "data-command": command.id },
    el("div", { class: "bar" },
      el("strong", {}, `→ ${command.sink}`),
      el("span", { class: "command-state state-" + command.state }, where),
      el("span", { class: "muted" }, `from ${command.plugin}, ${command.attempts} attempt(s)`),
      command.state === "dead" ? actionButtons("dead-letters", command.id) : null),
    command.last_error ? el("p", { class: "error" }, command.last_error) : null,
    command.body !== null ? el("pre", {}, command.body) : el("p", { class: "muted" }, "body hidden at this secrecy level"),
    attempts);
}

function runBlock(run) {
  const event = run.event || {};
  const actor = event.actor ? event.actor.name || event.actor.id : null;
  return el("div", { class: "run" },
    el("h3", {}, run.run === 0 ? "As it arrived" : `Replay ${run.run}`, " — ", run.state),
    el("div", { class: "fields" },
      field("id", run.id),
      field("source", run.source),
      field("verified by", run.verified_by ? `${run.verified_by} (as configured now)` : null),
      field("kind", run.kind),
      field("vendor's type", event.vendor_event_type),
      field("door", run.door),
      field("actor", actor),
      field("credential", event.credential ? event.credential.method : null),
      field("occurred", event.occurred_at ? new Date(event.occurred_at).toISOString() : null),
      field("received", new Date(run.received_at).toISOString())),
    el("h4", {}, "Plugins"),
    run.steps.length
      ? el("ol", { class: "plugin-steps" }, run.steps.map((step) =>
          el("li", { class: step.failed ? "failed" : "" }, `${step.plugin}: ${step.result}`, el("span", { class: "muted" }, ` ${micros(step.micros)}`))))
      : el("p", { class: "muted" }, "not processed yet"),
    el("h4", {}, "Commands"),
    run.commands.length ? run.commands.map(commandBlock) : el("p", { class: "muted" }, "none"),
    el("details", {}, el("summary", {}, "Vendor's JSON (as your level allows)"), el("pre", {}, JSON.stringify(event.raw, null, 2))));
}

async function openStory(seq) {
  state.story = seq;
  $("#story").hidden = false;
  $("#story-title").textContent = `#${seq}`;
  await drawStory();
  $("#story").scrollIntoView({ block: "nearest" });
}

async function drawStory() {
  if (!state.story) return;
  try {
    const story = await api("events/" + encodeURIComponent(state.story));
    $("#story-body").replaceChildren(...story.runs.map(runBlock));
  } catch (error) {
    $("#story-body").replaceChildren(el("p", { class: "error" }, String(error.message)));
  }
}

// ---- dead letters, plugins, sinks, sources, reloads --------------------

function actionButtons(which, id) {
  const act = (action) => async (event) => {
    event.stopPropagation();
    event.target.disabled = true;
    try {
      await api(`${which}/${id}/${action}`, { method: "POST" });
      problem(null);
    } catch (error) {
      problem(`${action} failed: ${error.message}`);
    }
    await refresh();
  };
  return el("span", { class: "actions" },
    el("button", { type: "button", "data-action": "retry", "data-which": which, "data-id": id, onclick: act("retry") }, "Retry"),
    el("button", { type: "button", "data-action": "drop", "data-which": which, "data-id": id, class: "quiet", onclick: act("drop") }, "Drop"));
}

function drawDead(dead) {
  fill($("#dead-commands tbody"), dead.commands.map((c) =>
    el("tr", { "data-id": c.id },
      el("td", {}, c.id),
      el("td", {}, el("a", { href: "#", onclick: (e) => { e.preventDefault(); openStory(c.seq); } }, `#${c.seq}`)),
      el("td", {}, c.sink), el("td", {}, c.door || "—"), el("td", {}, c.dead_reason),
      el("td", { class: "num" }, c.attempts), el("td", { class: "error" }, c.last_error || ""),
      el("td", {}, actionButtons("dead-letters", c.id)))), "No dead letters.");
  fill($("#dead-events tbody"), dead.events.map((d) =>
    el("tr", { "data-seq": d.seq },
      el("td", {}, el("a", { href: "#", onclick: (e) => { e.preventDefault(); openStory(d.seq); } }, `#${d.seq}`)),
      el("td", {}, d.source), el("td", {}, d.kind), el("td", {}, d.door || "—"), el("td", {}, d.plugin),
      el("td", {}, d.reason), el("td", { class: "error" }, d.error),
      el("td", {}, actionButtons("dead-events", d.seq)))), "None.");
}

function drawOverview(o) {
  $("#queue").textContent = `queue ${o.queue.depth} / ${o.queue.capacity}`;
  $("#level").textContent = `secrecy level ${o.secrecy}`;
  fill($("#plugins tbody"), o.plugins.map((p) => {
    const failures = Object.entries(p.health.failures).map(([r, n]) => `${r} ${n}`).join(", ");
    return el("tr", {},
      el("td", {}, p.name), el("td", {}, p.world),
      el("td", {}, el("span", { class: "badge " + (p.health.state === "active" ? "on" : "off") },
        p.health.state === "active" ? "active" : `suspended until ${p.health.suspended_until}`)),
      el("td", { class: "num" }, p.health.calls), el("td", {}, failures || "none"),
      el("td", { class: "num" }, micros(p.p50_us)), el("td", { class: "num" }, micros(p.p99_us)),
      el("td", { class: "hash", title: p.sha256 }, p.sha256.slice(0, 12)),
      el("td", {}, when(p.loaded_at * 1000)));
  }), "No plugins.");
  fill($("#sinks tbody"), o.sinks.map((s) =>
    el("tr", {},
      el("td", {}, s.name), el("td", {}, s.kind || "—"),
      el("td", { class: "num" }, s.pending),
      el("td", {}, s.oldest_due_at ? when(s.oldest_due_at) : "—"),
      el("td", { class: "num" }, s.delivered), el("td", { class: "num" }, s.failed),
      el("td", { class: "error" }, s.last_error ? `${s.last_error} (${when(s.last_error_at)})` : ""))), "No sinks.");
  fill($("#sources tbody"), o.sources.map((s) => {
    const silence = s.silent ? "SILENT" : s.silent_doors.length ? `silent doors: ${s.silent_doors.join(", ")}` :
      s.silent_after_s ? `alerts after ${s.silent_after_s} s` : "not watched";
    return el("tr", { class: s.silent ? "silent" : "" },
      el("td", {}, s.name), el("td", {}, s.vendor), el("td", {}, when(s.last_event_at)),
      el("td", { class: "num" }, s.per_minute), el("td", { class: "num" }, s.events), el("td", {}, silence));
  }), "No sources.");
  fill($("#reloads tbody"), [...o.reloads.recent].reverse().map((r) =>
    el("tr", { class: r.result === "ok" ? "" : "refused" },
      el("td", {}, r.at), el("td", {}, r.trigger), el("td", {}, r.result === "ok" ? "ok" : "refused"),
      el("td", { class: r.error ? "error" : "" }, r.error || r.changes.join("; ") || "nothing changed"),
      el("td", { class: "num" }, `${r.took_ms} ms`))), "No reloads since the host started.");
}

async function refresh() {
  try {
    const [overview, dead] = await Promise.all([api("overview"), api("dead-letters").catch((e) => ({ error: e }))]);
    drawOverview(overview);
    if (dead.error) problem(`Dead letters: ${dead.error.message}`);
    else drawDead(dead);
    await drawStory();
  } catch (error) {
    if (state.token) problem(`The host did not answer: ${error.message}`);
  }
}

// ---- the token -----------------------------------------------------------

function forget(why) {
  sessionStorage.removeItem("vestibule-token");
  state.token = null;
  if (state.tail) state.tail.abort();
  state.tail = null;
  connection("not connected", false);
  $("#login").hidden = false;
  $("#logout").hidden = true;
  problem(why);
}

function start(token) {
  state.token = token;
  sessionStorage.setItem("vestibule-token", token);
  $("#login").hidden = true;
  $("#logout").hidden = false;
  problem(null);
  followTail();
  refresh();
}

document.addEventListener("DOMContentLoaded", () => {
  // `/console#token=…` hands the page its token without sending it to the
  // server in a URL; it is moved to this tab's session storage at once.
  const hash = new URLSearchParams(location.hash.slice(1));
  if (hash.get("token")) {
    sessionStorage.setItem("vestibule-token", hash.get("token"));
    history.replaceState(null, "", location.pathname);
  }
  $("#login").addEventListener("submit", (event) => {
    event.preventDefault();
    start($("#token").value);
  });
  $("#logout").addEventListener("click", () => forget(null));
  $("#pause").addEventListener("click", () => {
    state.paused = !state.paused;
    $("#pause").textContent = state.paused ? "Resume" : "Pause";
    if (!state.paused) {
      state.rows = [...state.held.reverse(), ...state.rows].slice(0, TAIL_ROWS);
      state.held = [];
    }
    drawTail();
  });
  for (const id of ["#filter-source", "#filter-kind", "#filter-door"]) $(id).addEventListener("input", drawTail);
  $("#story-close").addEventListener("click", () => { state.story = null; $("#story").hidden = true; });
  drawTail();
  const token = sessionStorage.getItem("vestibule-token");
  if (token) start(token);
  else forget(null);
  setInterval(() => state.token && refresh(), REFRESH_MS);
});
