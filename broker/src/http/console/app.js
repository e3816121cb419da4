// The Riffle console: a single-page app with hash routing over the broker's read-only
// JSON (/api/...) and the stream processor's routes (/apps...). No library, no network
// besides this listener; charts and the topology graph are drawn as SVG here.
"use strict";

// How often an open page polls for fresh samples (the broker samples every 5 s).
const POLL_INTERVAL_MS = 5000;
// Application throughput points kept in the page (polled records_processed_total).
const APP_THROUGHPUT_MAX_POINTS = 360;
const SVG_NS = "http://www.w3.org/2000/svg";
const SERIES_COLORS = ["#2563eb", "#16a34a", "#ea580c", "#9333ea", "#db2777", "#0891b2", "#ca8a04", "#64748b"];

// Timers of the page on screen, cleared when the route changes.
let pageTimers = [];
// Bumped on each route change, so a slow answer for an old page draws nothing.
let pageGeneration = 0;

// ---- Routing ----

const routes = [
  { pattern: [], section: "broker", render: renderBroker },
  { pattern: ["topics"], section: "topics", render: renderTopics },
  { pattern: ["topics", ":topic"], section: "topics", render: renderTopic },
  { pattern: ["groups"], section: "groups", render: renderGroups },
  { pattern: ["groups", ":group"], section: "groups", render: renderGroup },
  { pattern: ["apps"], section: "apps", render: renderApps },
  { pattern: ["apps", ":app"], section: "apps", render: renderApp },
];

function route() {
  pageTimers.forEach(clearInterval);
  pageTimers = [];
  pageGeneration += 1;
  // `#/topics/orders?partition=1` links straight to a partition in the message browser.
  const [path, search] = location.hash.replace(/^#\/?/, "").split("?");
  const segments = path.split("/").filter(Boolean).map(decodeURIComponent);
  const main = document.getElementById("main");
  for (const candidate of routes) {
    const params = matchRoute(candidate.pattern, segments);
    if (params) {
      params.query = new URLSearchParams(search || "");
      markSection(candidate.section);
      main.replaceChildren();
      candidate.render(main, params, pageGeneration).catch((error) => showError(main, error));
      return;
    }
  }
  markSection("");
  main.replaceChildren(h("h1", {}, "Not found"), h("p", {}, "No page at ", location.hash, "."));
}

function matchRoute(pattern, segments) {
  if (pattern.length !== segments.length) return null;
  const params = {};
  for (let i = 0; i < pattern.length; i++) {
    if (pattern[i].startsWith(":")) params[pattern[i].slice(1)] = segments[i];
    else if (pattern[i] !== segments[i]) return null;
  }
  return params;
}

function markSection(section) {
  for (const link of document.querySelectorAll("#nav a")) {
    link.classList.toggle("active", link.dataset.section === section);
  }
}

function every(milliseconds, action) {
  pageTimers.push(setInterval(action, milliseconds));
}

// ---- Fetching ----

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function getJson(path) {
  const response = await fetch(path, { headers: { Accept: "application/json" } });
  let body = null;
  try {
    body = await response.json();
  } catch (_) {
    throw new ApiError(response.status, `${path} answered ${response.status} without JSON`);
  }
  if (!response.ok) throw new ApiError(response.status, (body && body.error) || `${path} answered ${response.status}`);
  return body;
}

function segment(text) {
  return encodeURIComponent(text);
}

// ---- Building the DOM ----

// An element with attributes (on* are listeners) and children (strings become text).
function h(tag, attributes, ...children) {
  const element = document.createElement(tag);
  setAttributes(element, attributes);
  appendChildren(element, children);
  return element;
}

function s(tag, attributes, ...children) {
  const element = document.createElementNS(SVG_NS, tag);
  setAttributes(element, attributes);
  appendChildren(element, children);
  return element;
}

function setAttributes(element, attributes) {
  for (const [name, value] of Object.entries(attributes || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else element.setAttribute(name, value === true ? "" : String(value));
  }
}

function appendChildren(element, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    element.append(child instanceof Node ? child : String(child));
  }
}

// A table; a column whose first cell is a number gets a right-aligned header too.
function table(headers, rows, attributes) {
  const first = rows.length ? rows[0].children : [];
  const headerCells = headers.map((header, index) =>
    h("th", { class: first[index] && first[index].classList.contains("number") ? "number" : null }, header));
  return h("table", attributes || {},
    h("thead", {}, h("tr", {}, headerCells)),
    h("tbody", {}, rows.length ? rows : h("tr", {}, h("td", { colspan: headers.length, class: "muted" }, "None"))));
}

function card(title, ...children) {
  return h("section", { class: "card" }, title ? h("h2", {}, title) : null, children);
}

function stat(label, value) {
  return h("div", { class: "stat" }, h("div", { class: "stat-value" }, value), h("div", { class: "stat-label" }, label));
}

function showError(container, error) {
  container.append(h("div", { class: "error" }, error.message || String(error)));
}

function link(href, text) {
  return h("a", { href }, text);
}

// ---- Formatting ----

function formatBytes(bytes) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = Number(bytes);
  let unit = 0;
  while (Math.abs(value) >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${unit === 0 ? value.toFixed(0) : +value.toFixed(1)} ${units[unit]}`;
}

function formatNumber(value) {
  if (value === null || value === undefined) return "–";
  if (Math.abs(value) >= 100 || Number.isInteger(value)) return Math.round(value).toLocaleString("en-US");
  return value.toFixed(Math.abs(value) >= 10 ? 1 : 2);
}

function formatRate(value, unit) {
  return unit === "B/s" ? `${formatBytes(value)}/s` : `${formatNumber(value)} ${unit}`;
}

// A short axis label: 1.5k, 2M; bytes in binary units.
function formatAxis(value, unit) {
  if (unit === "B/s") return `${formatBytes(value)}/s`;
  const suffix = unit === "ms" ? " ms" : "";
  if (value >= 1e6) return `${+(value / 1e6).toFixed(2)}M${suffix}`;
  if (value >= 1e3) return `${+(value / 1e3).toFixed(2)}k${suffix}`;
  return `${+value.toFixed(2)}${suffix}`;
}

function formatTime(ms) {
  return new Date(ms).toISOString().replace("T", " ").replace("Z", "").slice(0, 23);
}

function clockTime(ms, withSeconds) {
  return new Date(ms).toISOString().slice(11, withSeconds ? 19 : 16);
}

function formatDuration(ms) {
  const seconds = Math.floor(ms / 1000);
  const days = Math.floor(seconds / 86400);
  const hours = Math.floor((seconds % 86400) / 3600);
  const minutes = Math.floor((seconds % 3600) / 60);
  if (days) return `${days}d ${hours}h`;
  if (hours) return `${hours}h ${minutes}m`;
  if (minutes) return `${minutes}m ${seconds % 60}s`;
  return `${seconds}s`;
}

// ---- Decoding record bytes ----

function base64Bytes(text) {
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

function utf8(bytes) {
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch (_) {
    return null;
  }
}

function hex(bytes) {
  return Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join(" ");
}

// Shows base64 `data` as `format` (auto, text, json, hex); returns [text, class].
function decodeBytes(data, format) {
  if (data === null || data === undefined) return ["null", "null-value"];
  const bytes = base64Bytes(data);
  const text = utf8(bytes);
  if (format === "hex") return [hex(bytes), "hex"];
  if (format === "json" || format === "auto") {
    if (text !== null) {
      try {
        return [JSON.stringify(JSON.parse(text), null, format === "json" ? 2 : 0), "json"];
      } catch (_) {
        if (format === "json") return [`not JSON: ${text}`, "invalid"];
      }
    }
  }
  if (text !== null) return [text, "text"];
  return [hex(bytes), "hex"];
}

// ---- Charts ----

// A line chart of `series` ([{name, points: [[time_ms, value], ...]}]) as SVG.
// With `wide`, it is drawn for a full-width card, so its text keeps its size.
function lineChart(series, unit, options) {
  const wide = options && options.wide;
  const width = wide ? 1180 : 640;
  const height = wide ? 260 : 220;
  const margin = { left: 72, right: 12, top: 10, bottom: 26 };
  const plotWidth = width - margin.left - margin.right;
  const plotHeight = height - margin.top - margin.bottom;
  const all = series.flatMap((line) => line.points);
  const figure = h("figure", { class: "chart" });
  if (all.length === 0) {
    figure.append(h("div", { class: "chart-empty muted" }, "No samples yet: the broker samples every 5 s."));
    return figure;
  }
  const times = all.map((point) => point[0]);
  let minTime = Math.min(...times);
  const maxTime = Math.max(...times);
  if (maxTime - minTime < 60000) minTime = maxTime - 60000;
  const maxValue = niceCeiling(Math.max(...all.map((point) => point[1]), 0), unit === "B/s" ? 1024 : 1000);
  const x = (time) => margin.left + ((time - minTime) / (maxTime - minTime)) * plotWidth;
  const y = (value) => margin.top + plotHeight - (value / maxValue) * plotHeight;
  const graphic = s("svg", { viewBox: `0 0 ${width} ${height}`, class: "chart-svg", role: "img" });
  for (let i = 0; i <= 4; i++) {
    const value = (maxValue * i) / 4;
    graphic.append(
      s("line", { x1: margin.left, x2: width - margin.right, y1: y(value), y2: y(value), class: "grid" }),
      s("text", { x: margin.left - 6, y: y(value) + 4, class: "axis-label", "text-anchor": "end" }, formatAxis(value, unit)));
  }
  for (let i = 0; i <= 4; i++) {
    const time = minTime + ((maxTime - minTime) * i) / 4;
    const anchor = i === 0 ? "start" : i === 4 ? "end" : "middle";
    graphic.append(s("text", { x: x(time), y: height - 6, class: "axis-label", "text-anchor": anchor }, clockTime(time, maxTime - minTime < 300000)));
  }
  series.forEach((line, index) => {
    const color = SERIES_COLORS[index % SERIES_COLORS.length];
    const path = line.points.map((point, i) => `${i ? "L" : "M"}${x(point[0]).toFixed(1)},${y(point[1]).toFixed(1)}`).join(" ");
    // Every other line is dashed, so a line drawn over another (in = out) still shows.
    const dash = index % 2 ? "6 4" : null;
    graphic.append(s("path", { d: path, fill: "none", stroke: color, "stroke-width": 2, "stroke-linejoin": "round", "stroke-dasharray": dash }));
    if (line.points.length === 1) {
      const [time, value] = line.points[0];
      graphic.append(s("circle", { cx: x(time), cy: y(value), r: 3, fill: color }));
    }
  });
  figure.append(graphic);
  figure.append(h("figcaption", { class: "legend" }, series.map((line, index) => {
    const last = line.points.length ? line.points[line.points.length - 1][1] : null;
    return h("span", { class: "legend-item" },
      h("span", { class: `swatch swatch-${index % SERIES_COLORS.length}` }),
      `${line.name}: ${last === null ? "–" : formatRate(last, unit)}`);
  })));
  return figure;
}

// A round number at or above `value`, round in units of `base` (1024 for bytes).
function niceCeiling(value, base) {
  if (value <= 0) return 1;
  const scale = Math.pow(base, Math.max(0, Math.floor(Math.log(value) / Math.log(base))));
  return scale * decimalCeiling(value / scale);
}

function decimalCeiling(value) {
  const magnitude = Math.pow(10, Math.floor(Math.log10(value)));
  for (const step of [1, 2, 2.5, 5, 10]) {
    if (step * magnitude >= value) return step * magnitude;
  }
  return 10 * magnitude;
}

// ---- Broker page ----

async function renderBroker(main, _params, generation) {
  const cluster = await getJson("/api/cluster");
  if (generation !== pageGeneration) return;
  main.append(
    h("h1", {}, "Broker"),
    h("div", { class: "stats" },
      stat("Version", cluster.version),
      stat("Uptime", formatDuration(cluster.uptime_ms)),
      stat("Topics", formatNumber(cluster.topic_count)),
      stat("Consumer groups", formatNumber(cluster.group_count))),
    card("Cluster", h("dl", { class: "facts" },
      h("dt", {}, "Cluster id"), h("dd", { class: "mono" }, cluster.cluster_id),
      h("dt", {}, "Node id"), h("dd", {}, cluster.node_id),
      h("dt", {}, "Listeners"), h("dd", { class: "mono" }, cluster.listeners),
      h("dt", {}, "Advertised"), h("dd", { class: "mono" }, cluster.advertised),
      h("dt", {}, "Authorizer"), h("dd", {}, cluster.authorizer ? "ACLs (records are not shown over HTTP)" : "none"))));
  const charts = h("div", { class: "chart-grid" });
  main.append(charts);
  const draw = async () => {
    const history = await getJson("/api/history");
    if (generation !== pageGeneration) return;
    charts.replaceChildren(...brokerCharts(history.samples));
  };
  await draw();
  every(POLL_INTERVAL_MS, () => draw().catch(() => {}));
}

function brokerCharts(samples) {
  const points = (field) => samples.map((sample) => [sample.time_ms, sample[field]]);
  // Fetch waits up to its max wait for data, so its latency would flatten the others.
  const apis = [...new Set(samples.flatMap((sample) => Object.keys(sample.latency_ms)))].filter((api) => api !== "Fetch").sort();
  const latency = apis.map((api) => ({
    name: api,
    points: samples.filter((sample) => api in sample.latency_ms).map((sample) => [sample.time_ms, sample.latency_ms[api]]),
  }));
  return [
    card("Throughput, bytes", lineChart([
      { name: "in", points: points("bytes_in_per_second") },
      { name: "out", points: points("bytes_out_per_second") }], "B/s")),
    card("Throughput, records", lineChart([
      { name: "in", points: points("records_in_per_second") },
      { name: "out", points: points("records_out_per_second") }], "rec/s")),
    card("Requests", lineChart([{ name: "all APIs", points: points("requests_per_second") }], "req/s")),
    card("Mean request latency (Fetch, a long poll, left out)", lineChart(latency, "ms")),
  ];
}

// ---- Topics ----

async function renderTopics(main, _params, generation) {
  const { topics } = await getJson("/api/topics");
  if (generation !== pageGeneration) return;
  const rows = (showInternal) => topics
    .filter((topic) => showInternal || !topic.internal)
    .map((topic) => h("tr", {},
      h("td", {}, link(`#/topics/${segment(topic.name)}`, topic.name), topic.internal ? h("span", { class: "badge" }, "internal") : null),
      h("td", { class: "number" }, topic.partitions),
      h("td", { class: "number" }, formatNumber(topic.records)),
      h("td", { class: "number" }, formatBytes(topic.size_bytes))));
  const body = h("div", {});
  const draw = (showInternal) => body.replaceChildren(
    table(["Topic", "Partitions", "Records", "Size"], rows(showInternal), { class: "topics" }));
  const toggle = h("label", { class: "toggle" },
    h("input", { type: "checkbox", onchange: (event) => draw(event.target.checked) }), " show internal topics");
  main.append(h("div", { class: "title-row" }, h("h1", {}, "Topics"), toggle), card(null, body));
  draw(false);
}

async function renderTopic(main, { topic, query }, generation) {
  const detail = await getJson(`/api/topics/${segment(topic)}`);
  if (generation !== pageGeneration) return;
  const partitionRows = detail.partitions.map((partition) => h("tr", {},
    h("td", { class: "number" }, partition.partition),
    h("td", { class: "number" }, formatNumber(partition.log_start_offset)),
    h("td", { class: "number" }, formatNumber(partition.log_end_offset)),
    h("td", { class: "number" }, formatNumber(partition.log_end_offset - partition.log_start_offset)),
    h("td", { class: "number" }, formatBytes(partition.size_bytes))));
  const overridden = detail.configs.filter((config) => config.source !== "DEFAULT_CONFIG");
  const configRows = (configs) => configs.map((config) => h("tr", {},
    h("td", { class: "mono" }, config.name), h("td", { class: "mono" }, config.value), h("td", {}, config.source)));
  main.append(
    h("p", { class: "crumbs" }, link("#/topics", "Topics"), " / "),
    h("h1", {}, detail.name, detail.internal ? h("span", { class: "badge" }, "internal") : null),
    h("p", { class: "muted mono" }, `id ${detail.id}`),
    card("Partitions", table(["Partition", "Log start", "Log end", "Records", "Size"], partitionRows)),
    messageBrowser(detail, query),
    card("Configs",
      h("p", { class: "muted" }, overridden.length ? "Set on the topic or the broker:" : "Every config has its default."),
      overridden.length ? table(["Name", "Value", "Source"], configRows(overridden)) : null,
      h("details", {}, h("summary", {}, `All ${detail.configs.length} configs`),
        table(["Name", "Value", "Source"], configRows(detail.configs)))));
}

// The message browser; `query` may choose partition, offset, max and format.
function messageBrowser(detail, query) {
  const partition = h("select", { id: "browse-partition" },
    detail.partitions.map((p) => h("option", { value: p.partition, selected: String(p.partition) === query.get("partition") }, `partition ${p.partition}`)));
  const offset = h("input", { id: "browse-offset", type: "number", min: 0, placeholder: "log start", size: 10, value: query.get("offset") });
  const count = h("input", { id: "browse-max", type: "number", min: 1, max: 500, value: query.get("max") || 20, size: 5 });
  const format = h("select", { id: "browse-format" },
    ["auto", "text", "json", "hex"].map((name) => h("option", { value: name, selected: name === query.get("format") }, name === "auto" ? "auto (JSON, text, hex)" : name)));
  const status = h("span", { class: "muted" });
  const results = h("div", { class: "records" });
  let page = null;
  const draw = () => {
    if (page) results.replaceChildren(recordsTable(page.records, format.value));
  };
  const load = async (from) => {
    const request = new URLSearchParams({ max: count.value || "20" });
    if (from !== "" && from !== undefined && from !== null) request.set("offset", from);
    // Keep the address a link to what is shown, without re-rendering the page.
    const shown = new URLSearchParams(request);
    shown.set("partition", partition.value);
    shown.set("format", format.value);
    history.replaceState(null, "", `#/topics/${segment(detail.name)}?${shown}`);
    status.textContent = "loading…";
    try {
      page = await getJson(`/api/topics/${segment(detail.name)}/partitions/${partition.value}/records?${request}`);
      status.textContent = `offsets ${page.log_start_offset} to ${page.high_watermark}; showing ${page.records.length} from ${page.records.length ? page.records[0].offset : page.next_offset}`;
      draw();
    } catch (error) {
      status.textContent = "";
      results.replaceChildren(h("div", { class: "error" }, error.message));
    }
  };
  const newest = () => {
    const selected = detail.partitions.find((p) => String(p.partition) === partition.value);
    const max = Number(count.value) || 20;
    return selected ? Math.max(selected.log_start_offset, selected.log_end_offset - max) : "";
  };
  format.addEventListener("change", draw);
  partition.addEventListener("change", () => load(offset.value));
  const controls = h("form", { class: "controls", onsubmit: (event) => { event.preventDefault(); load(offset.value); } },
    h("label", {}, "Partition ", partition),
    h("label", {}, "From offset ", offset),
    h("label", {}, "Records ", count),
    h("label", {}, "Show as ", format),
    h("button", { type: "submit" }, "Load"),
    h("button", { type: "button", class: "secondary", onclick: () => load(newest()) }, "Newest"),
    h("button", { type: "button", class: "secondary", onclick: () => page && load(page.next_offset) }, "Next page"),
    status);
  load(offset.value);
  return card("Messages", controls, results);
}

function recordsTable(records, format) {
  const cell = (data) => {
    const [text, kind] = decodeBytes(data, format);
    return h("td", {}, h("pre", { class: `value ${kind}` }, text));
  };
  const rows = records.map((record) => h("tr", {},
    h("td", { class: "number" }, record.offset),
    h("td", { class: "nowrap" }, formatTime(record.timestamp_ms)),
    cell(record.key),
    cell(record.value),
    h("td", {}, record.headers.map((header) => {
      const [text, kind] = decodeBytes(header.value, format);
      return h("div", { class: "header" }, h("span", { class: "header-key" }, header.key), "=", h("span", { class: kind }, text));
    }))));
  return table(["Offset", "Timestamp (UTC)", "Key", "Value", "Headers"], rows, { class: "records-table" });
}

// ---- Consumer groups ----

async function renderGroups(main, _params, generation) {
  const { groups } = await getJson("/api/groups");
  if (generation !== pageGeneration) return;
  const rows = groups.map((group) => h("tr", {},
    h("td", {}, link(`#/groups/${segment(group.group_id)}`, group.group_id)),
    h("td", {}, stateBadge(group.state)),
    h("td", {}, group.protocol_type || "–"),
    h("td", { class: "number" }, group.member_count),
    h("td", { class: "number" }, group.partition_count),
    h("td", { class: "number" }, formatNumber(group.total_lag))));
  main.append(h("h1", {}, "Consumer groups"),
    card(null, table(["Group", "State", "Protocol", "Members", "Partitions", "Lag"], rows)));
}

function stateBadge(state) {
  return h("span", { class: `state state-${state.toLowerCase()}` }, state);
}

async function renderGroup(main, { group }, generation) {
  const detail = await getJson(`/api/groups/${segment(group)}`);
  if (generation !== pageGeneration) return;
  const memberRows = detail.members.map((member) => h("tr", {},
    h("td", { class: "mono" }, member.client_id),
    h("td", { class: "mono" }, member.client_host),
    h("td", { class: "mono small" }, member.member_id),
    h("td", {}, member.assignment.length
      ? member.assignment.map((tp) => h("span", { class: "chip" }, `${tp.topic}-${tp.partition}`))
      : h("span", { class: "muted" }, "none"))));
  const offsetRows = detail.offsets.map((offset) => h("tr", {},
    h("td", {}, link(`#/topics/${segment(offset.topic)}`, offset.topic)),
    h("td", { class: "number" }, offset.partition),
    h("td", { class: "number" }, formatNumber(offset.committed_offset)),
    h("td", { class: "number" }, formatNumber(offset.high_watermark)),
    h("td", { class: "number lag" }, formatNumber(offset.lag)),
    h("td", { class: "nowrap" }, formatTime(offset.commit_timestamp_ms))));
  const totalLag = detail.offsets.reduce((sum, offset) => sum + (offset.lag || 0), 0);
  const chart = h("div", {});
  main.append(
    h("p", { class: "crumbs" }, link("#/groups", "Consumer groups"), " / "),
    h("h1", {}, detail.group_id, " ", stateBadge(detail.state)),
    h("div", { class: "stats" },
      stat("Members", detail.members.length),
      stat("Partitions", detail.offsets.length),
      stat("Total lag", formatNumber(totalLag)),
      stat("Assignor", detail.protocol || "–")),
    card("Members", table(["Client id", "Host", "Member id", "Assigned partitions"], memberRows)),
    card("Committed offsets and lag", table(["Topic", "Partition", "Committed", "End", "Lag", "Committed at (UTC)"], offsetRows)),
    card("Lag per partition over time", chart));
  const draw = async () => {
    const history = await getJson(`/api/history?group=${segment(group)}`);
    if (generation !== pageGeneration) return;
    const series = history.lag.map((line) => ({ name: `${line.topic}-${line.partition}`, points: line.points }));
    chart.replaceChildren(lineChart(series, "records", { wide: true }));
  };
  await draw();
  every(POLL_INTERVAL_MS, () => draw().catch(() => {}));
}

// ---- Stream-processing applications ----

async function renderApps(main, _params, generation) {
  const { apps } = await getJson("/apps");
  if (generation !== pageGeneration) return;
  main.append(h("h1", {}, "Applications"));
  if (!apps || apps.length === 0) {
    main.append(card(null, h("p", { class: "empty" }, "No stream-processing applications run in this broker."),
      h("p", { class: "muted" }, "An application embedded in this broker, or a remote one it hosts, appears here with its topology, tasks and state stores.")));
    return;
  }
  const rows = apps.map((app) => h("tr", {},
    h("td", {}, link(`#/apps/${segment(app.application_id)}`, app.application_id)),
    h("td", {}, app.runtime),
    h("td", {}, stateBadge(app.state)),
    h("td", { class: "number" }, (app.tasks || []).length),
    h("td", { class: "number" }, (app.stores || []).length),
    h("td", { class: "number" }, formatNumber(app.records_processed_total))));
  main.append(card(null, table(["Application", "Runtime", "State", "Tasks", "Stores", "Records processed"], rows)));
}

async function renderApp(main, { app }, generation) {
  const path = `/apps/${segment(app)}`;
  const detail = await getJson(path);
  if (generation !== pageGeneration) return;
  const taskRows = (detail.tasks || []).map((task) => h("tr", {},
    h("td", { class: "mono" }, task.id),
    h("td", {}, task.partitions.map((tp) => h("span", { class: "chip" }, `${tp.topic}-${tp.partition}`))),
    h("td", { class: "mono" }, task.instance)));
  const throughput = h("div", {});
  main.append(
    h("p", { class: "crumbs" }, link("#/apps", "Applications"), " / "),
    h("h1", {}, detail.application_id, " ", stateBadge(detail.state)),
    h("div", { class: "stats" },
      stat("Runtime", detail.runtime),
      stat("Tasks", (detail.tasks || []).length),
      stat("Stores", (detail.stores || []).length),
      stat("Records processed", formatNumber(detail.records_processed_total))),
    card("Topology", topologyGraph(detail.topology)),
    card("Throughput", throughput),
    card("Tasks", table(["Task", "Input partitions", "Instance"], taskRows)),
    card("State stores", (detail.stores || []).length
      ? (detail.stores || []).map((store) => storeQuery(path, store))
      : h("p", { class: "muted" }, "This application keeps no state.")));
  const points = [];
  let previous = { time: Date.now(), total: detail.records_processed_total };
  const draw = () => throughput.replaceChildren(lineChart([{ name: "records processed", points }], "rec/s", { wide: true }));
  draw();
  every(POLL_INTERVAL_MS, async () => {
    try {
      const now = await getJson(path);
      const time = Date.now();
      const rate = Math.max(0, now.records_processed_total - previous.total) / ((time - previous.time) / 1000);
      previous = { time, total: now.records_processed_total };
      points.push([time, rate]);
      if (points.length > APP_THROUGHPUT_MAX_POINTS) points.shift();
      if (generation === pageGeneration) draw();
    } catch (_) {
      // The next poll tries again.
    }
  });
}

function storeQuery(appPath, store) {
  const base = `${appPath}/stores/${segment(store.name)}`;
  const key = h("input", { type: "text", placeholder: "key (JSON or text)", class: "key-input" });
  const output = h("pre", { class: "query-output" });
  const query = async (url) => {
    output.textContent = "…";
    try {
      output.textContent = JSON.stringify(await getJson(url), null, 2);
      output.classList.remove("invalid");
    } catch (error) {
      output.textContent = error.message;
      output.classList.add("invalid");
    }
  };
  const fetches = { key_value: "keys", window: "windows", session: "sessions" };
  const lookUp = () => query(`${base}/${fetches[store.kind] || "keys"}/${segment(key.value)}`);
  return h("div", { class: "store" },
    h("div", { class: "store-title" }, h("strong", { class: "mono" }, store.name), " ",
      h("span", { class: "badge" }, store.kind.replace("_", "-")),
      h("span", { class: "muted" }, store.entries === null || store.entries === undefined ? "" : ` ${formatNumber(store.entries)} entries`)),
    h("form", { class: "controls", onsubmit: (event) => { event.preventDefault(); lookUp(); } },
      key, h("button", { type: "submit" }, "Look up"),
      store.kind === "key_value"
        ? h("button", { type: "button", class: "secondary", onclick: () => query(`${base}/keys?limit=20`) }, "First 20 entries")
        : null),
    output);
}

// The topology as a layered graph per sub-topology: sources on top, sinks at the
// bottom, one box per node and an arrow per edge.
function topologyGraph(topology) {
  if (!topology || !topology.subtopologies) return h("p", { class: "muted" }, "No topology described.");
  const graphs = topology.subtopologies.map((sub) => h("div", { class: "subtopology" },
    h("h3", {}, `Sub-topology ${sub.id}`), subtopologyGraph(sub)));
  const repartitions = (topology.repartition_topics || []).map((topic) =>
    h("li", { class: "mono" }, `${topic.topic}: sub-topology ${topic.from_subtopology} → ${topic.to_subtopology}`));
  return h("div", {}, h("div", { class: "topology" }, graphs),
    repartitions.length ? h("div", {}, h("h3", {}, "Repartition topics"), h("ul", {}, repartitions)) : null);
}

function subtopologyGraph(sub) {
  const layers = layerNodes(sub.nodes);
  const boxWidth = 214;
  const boxHeight = 46;
  const gapX = 24;
  const gapY = 40;
  const widest = Math.max(1, ...layers.map((layer) => layer.length));
  const width = widest * (boxWidth + gapX) + gapX;
  const height = layers.length * (boxHeight + gapY) + gapY / 2;
  const position = {};
  layers.forEach((layer, row) => {
    const offset = (width - layer.length * (boxWidth + gapX) + gapX) / 2;
    layer.forEach((node, column) => {
      position[node.name] = { x: offset + column * (boxWidth + gapX), y: gapY / 2 + row * (boxHeight + gapY) };
    });
  });
  const graphic = s("svg", { viewBox: `0 0 ${width} ${height}`, class: "topology-svg", width: Math.min(width, 900) },
    s("defs", {}, s("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto" },
      s("path", { d: "M0,0 L10,5 L0,10 z", class: "arrow-head" }))));
  for (const node of sub.nodes) {
    for (const successor of node.successors) {
      const from = position[node.name];
      const to = position[successor];
      if (!from || !to) continue;
      const x1 = from.x + boxWidth / 2;
      const y1 = from.y + boxHeight;
      const x2 = to.x + boxWidth / 2;
      const y2 = to.y;
      const middle = (y1 + y2) / 2;
      graphic.append(s("path", { d: `M${x1},${y1} C${x1},${middle} ${x2},${middle} ${x2},${y2 - 2}`, class: "edge", "marker-end": "url(#arrow)" }));
    }
  }
  for (const node of sub.nodes) {
    const { x, y } = position[node.name];
    const detail = node.type === "source" ? `topics: ${(node.topics || []).join(", ")}`
      : node.type === "sink" ? `topic: ${node.topic}`
        : (node.stores || []).length ? `stores: ${node.stores.join(", ")}` : "processor";
    graphic.append(s("g", { class: `node node-${node.type}` },
      s("title", {}, `${node.name}\n${detail}`),
      s("rect", { x, y, width: boxWidth, height: boxHeight, rx: 6 }),
      s("text", { x: x + 10, y: y + 19, class: "node-name" }, clip(node.name, 29)),
      s("text", { x: x + 10, y: y + 36, class: "node-detail" }, clip(detail, 34))));
  }
  return graphic;
}

// Nodes by layer: a node sits one below its lowest predecessor (Kahn's algorithm, so a
// graph from the network picks no recursion depth).
function layerNodes(nodes) {
  const byName = new Map(nodes.map((node) => [node.name, node]));
  const waiting = new Map(nodes.map((node) => [node.name, node.predecessors.filter((name) => byName.has(name)).length]));
  const layer = new Map();
  const ready = nodes.filter((node) => waiting.get(node.name) === 0).map((node) => node.name);
  ready.forEach((name) => layer.set(name, 0));
  while (ready.length) {
    const name = ready.shift();
    for (const successor of byName.get(name).successors) {
      if (!byName.has(successor)) continue;
      layer.set(successor, Math.max(layer.get(successor) || 0, layer.get(name) + 1));
      waiting.set(successor, waiting.get(successor) - 1);
      if (waiting.get(successor) === 0) ready.push(successor);
    }
  }
  // A cycle leaves nodes unplaced: put them on a last row rather than lose them.
  const deepest = Math.max(0, ...layer.values());
  nodes.forEach((node) => { if (!layer.has(node.name)) layer.set(node.name, deepest + 1); });
  const layers = [];
  for (const node of nodes) {
    const row = layer.get(node.name);
    (layers[row] = layers[row] || []).push(node);
  }
  return layers.filter(Boolean);
}

function clip(text, length) {
  return text.length > length ? `${text.slice(0, length - 1)}…` : text;
}

// ---- Start ----

async function showClusterInfo() {
  try {
    const cluster = await getJson("/api/cluster");
    document.getElementById("cluster-info").textContent = `${cluster.advertised} · v${cluster.version}`;
  } catch (_) {
    // The header stays empty; pages show their own errors.
  }
}

window.addEventListener("hashchange", route);
showClusterInfo();
route();
