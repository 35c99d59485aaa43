// steward fleet dashboard: one page, no build step. Reads /api/events (server-sent events:
// a snapshot, then each change) and /api/graph/NODE/MACHINE; changes nothing anywhere.
// Every value from the bucket reaches the page as text (textContent), never as markup.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const fleet = { nodes: new Map(), machines: new Map() }; // node -> doc, "node\0machine" -> doc
let skew = 0; // server clock minus ours, seconds
let selected = null; // key of the machine in the side panel
let graphFor = null; // "key@version" of the graph drawn
let shown = null; // the machine document the panel's history and watchers show
const rowOf = new Map(); // key -> <tr>
const $ = (id) => document.getElementById(id);
const keyOf = (node, machine) => `${node}\u0000${machine}`;
const now = () => Date.now() / 1000 + skew;

// ---- time ----------------------------------------------------------------------------------
function ago(t) {
  if (t == null) return "never";
  const s = Math.max(0, Math.round(now() - t));
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s ago`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m ago`;
  return `${Math.floor(s / 86400)}d ${Math.floor((s % 86400) / 3600)}h ago`;
}
const stamp = (t) => (t == null ? "" : new Date(t * 1000).toLocaleString());

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === "text") node.textContent = v;
    else if (k === "class") node.className = v;
    else if (k === "data") Object.assign(node.dataset, v);
    else node.setAttribute(k, v);
  }
  for (const child of children) if (child != null) node.append(child);
  return node;
}

// ---- the stream ----------------------------------------------------------------------------
function connect() {
  const source = new EventSource("api/events");
  const live = (yes) => {
    $("link").dataset.live = String(yes);
    $("link").textContent = yes ? "live" : "reconnecting…";
  };
  const on = (name, apply) =>
    source.addEventListener(name, (ev) => {
      const doc = JSON.parse(ev.data);
      skew = doc.now - Date.now() / 1000;
      apply(doc);
      schedule();
    });
  source.onopen = () => live(true);
  source.onerror = () => live(false);
  on("snapshot", (doc) => {
    fleet.nodes = new Map(doc.nodes.map((n) => [n.node, n]));
    fleet.machines = new Map(doc.machines.map((m) => [keyOf(m.node, m.machine), m]));
  });
  on("node", (doc) => fleet.nodes.set(doc.node, doc));
  on("node-removed", (doc) => fleet.nodes.delete(doc.node));
  on("machine", (doc) => fleet.machines.set(keyOf(doc.node, doc.machine), doc));
  on("machine-removed", (doc) => fleet.machines.delete(keyOf(doc.node, doc.machine)));
}

let pending = false;
function schedule() {
  if (pending) return;
  pending = true;
  requestAnimationFrame(() => {
    pending = false;
    render();
  });
}

// ---- filters -------------------------------------------------------------------------------
function matcher(text) {
  // plain words match anywhere; * and ? make it a glob over one field
  const words = text.trim().toLowerCase().split(/\s+/).filter(Boolean);
  const tests = words.map((w) => {
    if (!/[*?]/.test(w)) return (s) => s.includes(w);
    const re = new RegExp(
      "^" + w.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".") + "$",
    );
    return (s) => re.test(s);
  });
  return (fields) => tests.every((t) => fields.some((f) => t(String(f ?? "").toLowerCase())));
}

function rows() {
  const wanted = matcher($("search").value);
  const state = $("state-filter").value;
  const offlineOnly = $("offline-only").checked;
  const out = [];
  const withMachines = new Set();
  for (const [key, m] of fleet.machines) {
    withMachines.add(m.node);
    out.push({ key, node: m.node, machine: m, status: fleet.nodes.get(m.node) });
  }
  for (const [name, n] of fleet.nodes) {
    if (!withMachines.has(name)) out.push({ key: keyOf(name, ""), node: name, machine: null, status: n });
  }
  return out
    .filter((r) => !offlineOnly || !(r.status && r.status.online))
    .filter((r) => !state || (r.machine && r.machine.state === state))
    .filter((r) => wanted([r.node, r.machine && r.machine.machine, r.machine && r.machine.state]))
    .sort((a, b) =>
      a.node === b.node
        ? String(a.machine?.machine ?? "").localeCompare(String(b.machine?.machine ?? ""))
        : a.node.localeCompare(b.node),
    );
}

// ---- the table -----------------------------------------------------------------------------
function statusCell(status) {
  const online = !!(status && status.online);
  const seen = status && status.last_seen != null ? status.last_seen : null;
  const word = online ? "online" : status && status.stopped != null ? "stopped" : "offline";
  return el(
    "td",
    { class: "status", title: stamp(seen) },
    el("span", { class: `badge ${word}`, text: word }),
    el("span", { class: "seen", data: { at: seen ?? "" }, text: seenText(seen) }),
  );
}

const seenText = (t) => (t == null ? "never seen" : `last seen ${ago(t)}`);

// relative times move on each second: only those cells are rewritten, nothing is fetched
function tick() {
  for (const cell of document.querySelectorAll("#rows td.since[data-at], #detail [data-at]")) {
    if (cell.dataset.at) cell.textContent = ago(Number(cell.dataset.at));
  }
  for (const span of document.querySelectorAll("#rows .seen")) {
    span.textContent = seenText(span.dataset.at ? Number(span.dataset.at) : null);
  }
  renderDetail();
}

function fillRow(tr, r) {
  const m = r.machine;
  const isSelected = r.key === selected;
  if (tr._machine === m && tr._status === r.status && tr._selected === isSelected) return;
  tr._machine = m;
  tr._status = r.status;
  tr._selected = isSelected;
  const online = !!(r.status && r.status.online);
  tr.dataset.node = r.node;
  tr.dataset.machine = m ? m.machine : "";
  tr.dataset.state = m ? m.state ?? "" : "";
  tr.dataset.seq = m ? String(m.seq ?? "") : "";
  tr.dataset.online = String(online);
  tr.setAttribute("aria-selected", String(isSelected));
  const last = (m && m.last) || {};
  tr.replaceChildren(
    el("td", { text: r.node }),
    el("td", { text: m ? m.machine : "(no machines)" }),
    el("td", {}, m ? el("span", { class: "state", text: m.state }) : null),
    el("td", { class: "since", title: m ? stamp(m.since) : "", data: { at: m?.since ?? "" }, text: m ? ago(m.since) : "" }),
    el("td", { class: "seq", text: m ? String(m.seq ?? "") : "" }),
    el("td", { text: last.transition ?? "" }),
    el("td", { class: "cause", title: (last.cause && last.cause.text) || "", text: (last.cause && last.cause.text) || "" }),
    statusCell(r.status),
  );
}

function render() {
  const list = rows();
  const body = $("rows");
  const keep = new Set(list.map((r) => r.key));
  for (const [key, tr] of rowOf) if (!keep.has(key)) { tr.remove(); rowOf.delete(key); }
  list.forEach((r, i) => {
    let tr = rowOf.get(r.key);
    if (!tr) {
      tr = el("tr");
      tr.addEventListener("click", () => r.machine && select(tr.dataset.node, tr.dataset.machine));
      rowOf.set(r.key, tr);
    }
    fillRow(tr, r);
    if (body.children[i] !== tr) body.insertBefore(tr, body.children[i] || null);
  });
  $("empty").hidden = list.length > 0;
  renderSummary(list.length);
  renderStates();
  renderDetail();
}

function renderSummary(shown) {
  const nodes = [...fleet.nodes.values()];
  const online = nodes.filter((n) => n.online).length;
  $("summary").textContent =
    `${nodes.length} nodes (${online} online, ${nodes.length - online} offline), ` +
    `${fleet.machines.size} machines`;
  $("shown").textContent = `${shown} rows shown`;
}

function renderStates() {
  const select = $("state-filter");
  const states = [...new Set([...fleet.machines.values()].map((m) => m.state))].sort();
  const have = [...select.options].slice(1).map((o) => o.value);
  if (have.join("\u0000") === states.join("\u0000")) return;
  const current = select.value;
  select.replaceChildren(el("option", { value: "", text: "any" }), ...states.map((s) => el("option", { value: s, text: s })));
  select.value = states.includes(current) ? current : "";
}

// ---- the side panel ------------------------------------------------------------------------
function select(node, machine) {
  selected = keyOf(node, machine);
  history.replaceState(null, "", `#${encodeURIComponent(node)}/${encodeURIComponent(machine)}`);
  schedule();
}

function renderDetail() {
  const panel = $("detail");
  const m = selected && fleet.machines.get(selected);
  if (!m) { panel.hidden = true; return; }
  panel.hidden = false;
  panel.dataset.node = m.node;
  panel.dataset.machine = m.machine;
  panel.dataset.state = m.state;
  $("detail-title").textContent = `${m.machine} on ${m.node}`;
  $("detail-meta").textContent =
    `version ${m.version ?? "?"} · ${m.state} since ${stamp(m.since)} (${ago(m.since)}) · seq ${m.seq}`;
  if (shown !== m) {
    // rebuilt only when the machine changed: a selection or a hover survives the clock
    shown = m;
    renderHistory(m);
    renderWatchers(m);
  }
  const graphKey = `${selected}@${m.version}`;
  if (graphFor !== graphKey) {
    graphFor = graphKey;
    loadGraph(m.node, m.machine, graphKey);
  } else {
    highlight(m.state);
  }
}

function describeResult(result) {
  if (!result || typeof result !== "object") return "";
  return Object.entries(result)
    .map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`)
    .join("  ");
}

function renderHistory(m) {
  const list = $("history");
  const recent = [...(m.recent || [])].reverse();
  const last = m.last;
  list.replaceChildren(
    ...recent.map((h) => {
      const full = last && last.seq === h.seq ? last.cause || {} : null;
      const why = full ? full.text : h.cause;
      const li = el(
        "li",
        { data: { seq: String(h.seq), transition: h.transition } },
        el("div", {},
          el("span", { class: "move", text: `${h.transition}: ${h.from_state} → ${h.to_state}` }),
          el("span", { class: "when", title: stamp(h.at), data: { at: h.at }, text: ago(h.at) }),
        ),
        el("div", { class: "why", text: why || "" }),
      );
      if (full && full.outcome) {
        const detail = full.detail ? `: ${full.detail}` : "";
        li.append(el("div", { class: `outcome outcome-${full.outcome}`, text: `${full.watcher_type ?? ""} ${full.outcome}${detail}` }));
      }
      const result = full ? describeResult(full.result) : "";
      if (result) li.append(el("div", { class: "result", text: result }));
      return li;
    }),
  );
  if (!recent.length) list.append(el("li", { text: "no transition yet" }));
}

function renderWatchers(m) {
  const body = $("watchers").tBodies[0];
  const entries = Object.entries(m.watchers || {}).sort(([a], [b]) => a.localeCompare(b));
  body.replaceChildren(
    ...entries.map(([name, w]) =>
      el("tr", { data: { watcher: name } },
        el("td", { text: name }),
        el("td", { text: w.type ?? "" }),
        el("td", { class: `outcome-${w.outcome}`, text: w.outcome ?? "not run" }),
        el("td", { text: w.detail ?? "" }),
      ),
    ),
  );
  if (!entries.length) body.append(el("tr", {}, el("td", { text: "no watchers" })));
}

async function loadGraph(node, machine, graphKey) {
  const box = $("graph");
  box.replaceChildren(el("p", { class: "missing", text: "loading…" }));
  let doc = null;
  try {
    const r = await fetch(`api/graph/${encodeURIComponent(node)}/${encodeURIComponent(machine)}`);
    if (r.ok) doc = await r.json();
  } catch (e) { /* shown below */ }
  if (graphFor !== graphKey) return; // another machine was picked meanwhile
  if (!doc) { box.replaceChildren(el("p", { class: "missing", text: "no graph in the bucket for this machine" })); return; }
  box.replaceChildren(drawGraph(doc));
  const m = fleet.machines.get(selected);
  if (m) highlight(m.state);
}

function highlight(state) {
  for (const g of document.querySelectorAll("#graph .state-node")) {
    g.classList.toggle("current", g.dataset.state === state);
  }
}

// ---- the graph: layered from the initial state (BFS), left to right ------------------------
function layers(doc) {
  const next = new Map(doc.states.map((s) => [s, []]));
  for (const t of doc.transitions) for (const f of t.from) if (next.has(f)) next.get(f).push(t.to);
  const depth = new Map([[doc.initial_state, 0]]);
  const queue = [doc.initial_state];
  while (queue.length) {
    const s = queue.shift();
    for (const d of next.get(s) || []) if (!depth.has(d)) { depth.set(d, depth.get(s) + 1); queue.push(d); }
  }
  const deepest = Math.max(0, ...depth.values());
  for (const s of doc.states) if (!depth.has(s)) depth.set(s, deepest + 1); // unreachable
  return depth;
}

function svg(tag, attrs = {}, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text != null) node.textContent = text;
  return node;
}

// one coordinate of a cubic Bézier curve at t
const bezier = (p0, p1, p2, p3, t) =>
  (1 - t) ** 3 * p0 + 3 * (1 - t) ** 2 * t * p1 + 3 * (1 - t) * t * t * p2 + t ** 3 * p3;

function drawGraph(doc) {
  const depth = layers(doc);
  const columns = [];
  for (const s of doc.states) (columns[depth.get(s)] ||= []).push(s);
  const H = 30, VGAP = 40, HGAP = 130, PAD = 20, TOP = 44; // TOP: room for self-loops
  const width = (s) => 18 + 7.4 * s.length;
  const tallest = Math.max(...columns.map((c) => (c ? c.length : 0)));
  const middle = TOP + (tallest * H + (tallest - 1) * VGAP) / 2;
  const box = new Map();
  let x = PAD;
  for (const column of columns) {
    if (!column) continue;
    const w = Math.max(...column.map(width));
    const top = middle - (column.length * H + (column.length - 1) * VGAP) / 2;
    column.forEach((s, i) => box.set(s, { x, y: top + i * (H + VGAP), w, layer: depth.get(s) }));
    x += w + HGAP;
  }
  const root = svg("svg", { role: "img", "aria-label": `graph of ${doc.machine}` });
  const defs = svg("defs");
  const marker = svg("marker", {
    id: "arrow", viewBox: "0 0 10 10", refX: "9", refY: "5",
    markerWidth: "7", markerHeight: "7", orient: "auto-start-reverse",
  });
  marker.append(svg("path", { d: "M0,0 L10,5 L0,10 z", fill: "#98a2b3" }));
  defs.append(marker);
  root.append(defs);

  // one arrow per (from, to) pair, labelled with every transition name it carries
  const edges = new Map();
  for (const t of doc.transitions) for (const f of t.from) {
    if (!box.has(f) || !box.has(t.to)) continue;
    const k = `${f}\u0000${t.to}`;
    if (!edges.has(k)) edges.set(k, { from: f, to: t.to, names: [] });
    edges.get(k).names.push(t.name);
  }
  const lowest = Math.max(...[...box.values()].map((b) => b.y + H));
  const labels = svg("g", { class: "labels" }); // drawn last: over boxes and arrows
  let below = 0, maxX = x - HGAP, maxY = lowest;
  for (const e of edges.values()) {
    const a = box.get(e.from), b = box.get(e.to);
    let d, lx, ly, anchor = "middle";
    if (e.from === e.to) {
      // a loop above the box
      const cx = a.x + a.w / 2;
      d = `M${cx - 10},${a.y} C${cx - 30},${a.y - 34} ${cx + 30},${a.y - 34} ${cx + 10},${a.y}`;
      lx = cx; ly = a.y - 30;
    } else if (b.layer > a.layer) {
      // forward: right side to left side; labelled near its start, so arrows that cross
      // keep their labels apart
      const x1 = a.x + a.w, y1 = a.y + H / 2, x2 = b.x, y2 = b.y + H / 2, mx = (x1 + x2) / 2;
      d = `M${x1},${y1} C${mx},${y1} ${mx},${y2} ${x2},${y2}`;
      lx = bezier(x1, mx, mx, x2, 0.35); ly = bezier(y1, y1, y2, y2, 0.35) - 5;
    } else if (b.layer === a.layer && Math.abs(b.y - a.y) <= H + VGAP) {
      // next in its column: a straight arrow, downwards right of centre, upwards left of it
      const down = b.y > a.y;
      const cx = a.x + a.w / 2 + (down ? 8 : -8);
      const y1 = down ? a.y + H : a.y, y2 = down ? b.y : b.y + H;
      d = `M${cx},${y1} L${cx},${y2}`;
      lx = cx + (down ? 5 : -5); ly = (y1 + y2) / 2 + 4;
      anchor = down ? "start" : "end";
    } else {
      // back to an earlier column, or further along its own: under every box, each deeper
      below += 1;
      const x1 = a.x + a.w / 2 + 6, y1 = a.y + H, x2 = b.x + b.w / 2 - 6, y2 = b.y + H;
      const cy = lowest + 4 + 24 * below;
      d = `M${x1},${y1} C${x1},${cy} ${x2},${cy} ${x2},${y2}`;
      const bottom = bezier(y1, cy, cy, y2, 0.5);
      lx = (x1 + x2) / 2; ly = bottom + 12; // under the curve's lowest point
      maxY = Math.max(maxY, ly + 4);
    }
    const g = svg("g", { class: "edge", "data-from": e.from, "data-to": e.to });
    g.append(svg("path", { d, "marker-end": "url(#arrow)" }));
    root.append(g);
    labels.append(svg("text", { x: lx, y: ly, "text-anchor": anchor }, e.names.join(", ")));
  }
  for (const [s, b] of box) {
    const g = svg("g", { class: `state-node${s === doc.initial_state ? " initial" : ""}`, "data-state": s });
    g.append(svg("rect", { x: b.x, y: b.y, width: b.w, height: H, rx: 6 }));
    g.append(svg("text", { x: b.x + b.w / 2, y: b.y + H / 2 + 4, "text-anchor": "middle" }, s));
    root.append(g);
    maxX = Math.max(maxX, b.x + b.w);
  }
  root.append(labels);
  // natural size, shrunk to fit the panel but never blown up (CSS: max-width 100%)
  root.setAttribute("viewBox", `0 0 ${maxX + PAD} ${maxY + PAD}`);
  root.setAttribute("width", String(maxX + PAD));
  root.setAttribute("height", String(maxY + PAD));
  return root;
}

// ---- start ---------------------------------------------------------------------------------
function fromHash() {
  const [node, machine] = location.hash.slice(1).split("/").map(decodeURIComponent);
  if (node && machine) selected = keyOf(node, machine);
}

document.addEventListener("DOMContentLoaded", () => {
  for (const id of ["search", "state-filter", "offline-only"]) $(id).addEventListener("input", schedule);
  $("filters").addEventListener("submit", (ev) => ev.preventDefault());
  $("detail-close").addEventListener("click", () => {
    selected = null;
    history.replaceState(null, "", location.pathname);
    schedule();
  });
  fromHash();
  connect();
  setInterval(tick, 1000);
});
