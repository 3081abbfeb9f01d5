// The live status page: /status.json every second; each worker's jobs and restarts kept for five minutes here.
"use strict";

const KEEP = 300; // samples (one a second) per worker
const history = new Map(); // "server/worker" -> [{time, done, failed, restarts}]

function text(value) {
  return value === null || value === undefined ? "-" : String(value);
}

function duration(seconds) {
  if (seconds === null || seconds === undefined) return "-";
  if (seconds < 60) return seconds.toFixed(1) + "s";
  const minutes = Math.floor(seconds / 60), hours = Math.floor(minutes / 60), days = Math.floor(hours / 24);
  if (days) return days + "d" + String(hours % 24).padStart(2, "0") + "h";
  if (hours) return hours + "h" + String(minutes % 60).padStart(2, "0") + "m";
  return minutes + "m" + String(Math.floor(seconds % 60)).padStart(2, "0") + "s";
}

function element(tag, attributes, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes || {})) node.setAttribute(key, value);
  for (const child of children) node.append(child instanceof Node ? child : document.createTextNode(text(child)));
  return node;
}

function remember(key, time, worker) {
  const samples = history.get(key) || [];
  const jobs = worker.jobs || {done: 0, failed: 0};
  samples.push({time, done: jobs.done, failed: jobs.failed, restarts: worker.restarts});
  while (samples.length > KEEP) samples.shift();
  history.set(key, samples);
  return samples;
}

function perSecond(samples, field) {
  if (samples.length < 2) return null;
  const last = samples[samples.length - 1], before = samples[samples.length - 2];
  const seconds = last.time - before.time;
  return seconds > 0 ? Math.max(0, last[field] - before[field]) / seconds : null;
}

function chart(samples, withJobs) {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("class", "chart");
  const span = Math.max(60, samples.length); // the last minute at least, the last five at most
  svg.setAttribute("viewBox", `0 0 ${span} 32`);
  svg.setAttribute("preserveAspectRatio", "none");
  const rates = {done: [], failed: []};
  for (let i = 1; i < samples.length; i++) {
    const seconds = samples[i].time - samples[i - 1].time || 1;
    rates.done.push(Math.max(0, samples[i].done - samples[i - 1].done) / seconds);
    rates.failed.push(Math.max(0, samples[i].failed - samples[i - 1].failed) / seconds);
  }
  const top = Math.max(1, ...rates.done, ...rates.failed);
  const offset = span - samples.length;
  for (const [name, values] of withJobs ? Object.entries(rates) : []) {
    const line = document.createElementNS(ns, "polyline");
    line.setAttribute("class", name === "done" ? "jobs" : "failed");
    line.setAttribute("points", values.map((v, i) => `${offset + i + 1},${31 - (v / top) * 30}`).join(" "));
    svg.append(line);
  }
  for (let i = 1; i < samples.length; i++) {
    if (samples[i].restarts > samples[i - 1].restarts) {
      const mark = document.createElementNS(ns, "line");
      mark.setAttribute("class", "restart");
      mark.setAttribute("x1", offset + i);
      mark.setAttribute("x2", offset + i);
      mark.setAttribute("y1", 0);
      mark.setAttribute("y2", 32);
      svg.append(mark);
    }
  }
  return svg;
}

const COLUMNS = ["worker", "state", "pid", "uptime", "restarts", "jobs done/s", "failed/s", "last minutes",
  "last exit or error"];
const sections = new Map(); // server name -> {section, body, rows: Map(worker name -> row)}

function section(main, server) {
  let found = sections.get(server.server);
  if (!found) {
    const heading = element("h2", {});
    const body = element("tbody");
    const head = element("tr", {}, ...COLUMNS.map((name) => element("th", {}, name)));
    const table = element("table", {}, element("thead", {}, head), body);
    found = {section: element("section", {"data-server": server.server}, heading, table), heading, body,
      rows: new Map()};
    sections.set(server.server, found);
    main.append(found.section);
  }
  found.heading.textContent = `${server.server} (pid ${server.pid})`;
  return found;
}

function newRow(name) {
  // Built once per worker and updated in place: an opened traceback stays open, a selection stays selected.
  const cells = COLUMNS.map(() => element("td"));
  const row = element("tr", {"data-worker": name}, ...cells);
  cells[0].textContent = name;
  for (const i of [2, 3, 4, 5, 6]) cells[i].classList.add("number");
  cells[4].classList.add("restarts");
  const details = element("details", {class: "traceback"}, element("summary", {class: "error"}), element("pre"));
  const plain = element("span");
  cells[8].append(details, plain);
  return {row, cells, details, plain};
}

function update(entry, worker, samples) {
  const {row, cells, details, plain} = entry;
  row.dataset.state = worker.state;
  cells[1].textContent = worker.state;
  cells[1].className = "state state-" + worker.state.replaceAll(" ", "-");
  cells[2].textContent = text(worker.pid);
  cells[3].textContent = duration(worker.uptime);
  cells[4].textContent = text(worker.restarts);
  const done = worker.jobs ? perSecond(samples, "done") : null;
  const failed = worker.jobs ? perSecond(samples, "failed") : null;
  cells[5].textContent = done === null ? "-" : done.toFixed(1);
  cells[6].textContent = failed === null ? "-" : failed.toFixed(1);
  cells[7].replaceChildren(chart(samples, Boolean(worker.jobs)));
  details.hidden = !worker.error;
  plain.hidden = Boolean(worker.error);
  if (worker.error) {
    details.firstChild.textContent = worker.last_exit || `${worker.error.type}: ${worker.error.message}`;
    details.lastChild.textContent = worker.error.traceback;
  } else {
    plain.textContent = text(worker.last_exit);
  }
}

function render(document_) {
  const main = document.getElementById("servers");
  const seen = new Set();
  for (const server of document_.servers) {
    seen.add(server.server);
    const found = section(main, server);
    const names = new Set();
    for (const worker of server.workers) {
      names.add(worker.name);
      let entry = found.rows.get(worker.name);
      if (!entry) {
        entry = newRow(worker.name);
        found.rows.set(worker.name, entry);
      }
      found.body.append(entry.row); // in the server's order (a move, for a row already there)
      update(entry, worker, remember(`${server.server}/${worker.name}`, document_.time, worker));
    }
    for (const [name, entry] of found.rows) {
      if (!names.has(name)) {
        entry.row.remove();
        found.rows.delete(name);
      }
    }
  }
  for (const [name, found] of sections) {
    if (!seen.has(name)) {
      found.section.remove();
      sections.delete(name);
    }
  }
  document.getElementById("none").hidden = document_.servers.length > 0;
  document.getElementById("updated").textContent = "updated " + new Date(document_.time * 1000).toLocaleTimeString();
}

async function refresh() {
  try {
    const response = await fetch("/status.json", {cache: "no-store"});
    render(await response.json());
  } catch (error) {
    document.getElementById("updated").textContent = "cannot reach the server: " + error;
  }
}

refresh();
setInterval(refresh, 1000);
