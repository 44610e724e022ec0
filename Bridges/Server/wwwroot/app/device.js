// Device view: one live chart per numeric JSON field published under devices/<id>/#, backfilled from history
// (Telemetry's /api/history buckets when its address is known, then the bridges' own history with from=earliest).
// Messages are queued as they arrive and drawn once per animation frame; every series keeps at most maxPoints.
import { connectRealtime, notice, query, formatTime, formatRate, payloadText, RateMeter, frameScheduler } from "/app/common.js";

const maxPoints = clampInt(query.get("points"), 2000, 10, 100_000);
// How far back Telemetry's history is asked for (?minutes=).
const historyMinutes = clampInt(query.get("minutes"), 60, 1, 60 * 24 * 30);
// Fields a device publishes are few; a payload with hundreds of numbers must not create hundreds of charts.
const maxCharts = 24;

const deviceId = query.get("id");
const series = new Map(); // key -> {key, xs: number[], ys: number[], chart, el, lastEl}
const pending = []; // messages received since the last frame
const rate = new RateMeter();
let count = 0;
let lastMessage = null;
let uPlot = null;
let draws = 0;
const draw = frameScheduler(flush);

// Read by the browser tests and handy in the console: the points each chart holds.
window.iotDashboard = {
  page: "device",
  deviceId,
  maxPoints,
  fields: () => [...series.keys()],
  series: (key) => {
    const s = series.get(key);
    return s ? { xs: [...s.xs], ys: [...s.ys] } : null;
  },
  messages: () => count,
  // How many batches were drawn: far fewer than messages when they arrive faster than frames.
  draws: () => draws,
  pending: () => pending.length,
  subscriptionState: () => subscription?.readyState ?? null,
};
let subscription = null;

function clampInt(text, fallback, min, max) {
  const n = Number.parseInt(text ?? "", 10);
  return Number.isFinite(n) ? Math.min(max, Math.max(min, n)) : fallback;
}

if (!deviceId) {
  const pick = document.getElementById("pick");
  pick.hidden = false;
  pick.addEventListener("submit", (e) => {
    e.preventDefault();
    location.search = `?id=${encodeURIComponent(pick.id.value.trim())}`;
  });
  notice("Choose a device: its client id, as listed on the fleet page.");
} else {
  await start();
}

async function start() {
  const filter = `devices/${deviceId}/#`;
  document.title = `${deviceId} · IotRealtime`;
  document.getElementById("device-id").textContent = deviceId;
  document.getElementById("filter").textContent = filter;
  try {
    uPlot = (await import("/lib/uPlot.esm.js")).default;
  } catch {
    notice("The chart library (/lib/uPlot.esm.js) is missing: the server was built without npm. Values still show as numbers.", "bad");
  }

  let client;
  try {
    client = await connectRealtime();
  } catch (err) {
    notice(`Cannot connect: ${err.message}`, "bad");
    return;
  }
  window.iotDashboard.client = client;

  await backfillFromTelemetry();
  // The bridges replay what they still hold, then go live; Telemetry's older buckets stay in front of it.
  const sub = client.subscribe(filter, onMessage, { from: "earliest" });
  subscription = sub;
  sub.addEventListener("gap", (e) => {
    const gap = e.detail;
    notice(`Some messages are missing (${gap.reason ?? "gap"}); the charts continue from the oldest message still held. ${gap.advice ?? ""}`);
  });
}

/**
 * Older history from Telemetry's API when its address is known: ?history=<base URL> on this page (Telemetry answers
 * cross-origin). One request per metric
 * (GET /api/history/metrics?device=, then /api/history?device=&metric=&from=) gives bucket averages for the last
 * historyMinutes; they are drawn as points until the bridges' own (newer, exact) messages for that field arrive.
 */
async function backfillFromTelemetry() {
  const source = document.getElementById("source");
  source.textContent = "bridge history (from earliest)";
  const base = query.get("history");
  if (!base) return;
  try {
    const root = new URL(base, location.href);
    const get = async (path, params) => {
      const url = new URL(path, root);
      for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v);
      const response = await fetch(url);
      if (!response.ok) throw new Error(`${url.pathname}: HTTP ${response.status} ${(await response.text()).slice(0, 200)}`);
      return response.json();
    };
    const { metrics = [] } = await get("/api/history/metrics", { device: deviceId });
    const from = new Date(Date.now() - historyMinutes * 60_000).toISOString();
    let buckets = 0;
    await Promise.all(metrics.slice(0, maxCharts).map(async (metric) => {
      const answer = await get("/api/history", { device: deviceId, metric, from });
      const s = series.get(metric) ?? addSeries(metric);
      if (!s) return;
      s.telemetryStep = answer.step ?? 0;
      for (const b of answer.buckets ?? []) {
        const y = b.avg ?? b.last;
        if (typeof y !== "number") continue;
        insert(s, Date.parse(b.t) / 1000, y);
        s.telemetryPoints++;
        buckets++;
      }
      trimAndDraw(s);
    }));
    source.textContent = `Telemetry (${metrics.length} metrics, ${buckets} buckets) + bridge history`;
  } catch (err) {
    notice(`History from Telemetry is unavailable (${err.message}); the charts start with what the bridges hold.`);
  }
}

function onMessage(msg) {
  count++;
  rate.add();
  pending.push(msg);
  // Bounded even when frames stall (hidden tab): older queued messages beyond what the charts keep are useless.
  if (pending.length > maxPoints * 4) pending.splice(0, pending.length - maxPoints * 4);
  draw();
}

function flush() {
  draws++;
  const batch = pending.splice(0, pending.length);
  const touched = new Set();
  for (const msg of batch) {
    lastMessage = msg;
    const text = payloadText(msg);
    let value;
    try {
      value = JSON.parse(text);
    } catch {
      continue;
    }
    const x = deviceTime(value) ?? (Date.parse(msg.ts) || Date.now()) / 1000;
    const rest = (msg.topic ?? "").split("/").slice(2).join("/");
    for (const [field, y] of numericFields(value, "")) {
      if (timeFields.includes(field)) continue;
      const key = rest && rest !== "telemetry" ? `${rest} · ${field}` : field;
      const s = series.get(key) ?? addSeries(key);
      if (!s) continue;
      if (s.telemetryPoints > 0) dropOverlappingBuckets(s, x);
      insert(s, x, y);
      touched.add(s);
    }
  }
  for (const s of touched) trimAndDraw(s);
  document.getElementById("count").textContent = count.toLocaleString();
  document.getElementById("rate").textContent = formatRate(rate.perSecond());
  if (lastMessage) {
    document.getElementById("last").textContent = formatTime(lastMessage.ts);
    document.getElementById("raw-topic").textContent = lastMessage.topic ?? "";
    document.getElementById("raw").textContent = prettyPayload(payloadText(lastMessage));
  }
  document.getElementById("no-fields").classList.toggle("hidden", series.size > 0);
}

function trimAndDraw(s) {
  if (s.xs.length > maxPoints) {
    const cut = s.xs.length - maxPoints;
    s.xs.splice(0, cut);
    s.ys.splice(0, cut);
    s.telemetryPoints = Math.max(0, s.telemetryPoints - cut);
  }
  if (s.ys.length === 0) return;
  s.lastEl.textContent = formatNumber(s.ys.at(-1));
  s.el.dataset.points = String(s.ys.length);
  s.el.dataset.last = String(s.ys.at(-1));
  s.chart?.setData([s.xs, s.ys]);
}

/** The first exact message of a field ends its Telemetry part: buckets reaching into its time are dropped. */
function dropOverlappingBuckets(s, x) {
  let keep = 0;
  while (keep < s.telemetryPoints && s.xs[keep] + s.telemetryStep <= x) keep++;
  s.xs.splice(keep, s.telemetryPoints - keep);
  s.ys.splice(keep, s.telemetryPoints - keep);
  s.telemetryPoints = 0;
}

// A payload's own timestamp (ISO text, epoch seconds or milliseconds) places its point; else the broker's receive time.
const timeFields = ["ts", "timestamp", "time"];

function deviceTime(value) {
  if (!value || typeof value !== "object") return null;
  for (const name of timeFields) {
    const t = value[name];
    if (typeof t === "string" && Number.isFinite(Date.parse(t))) return Date.parse(t) / 1000;
    if (typeof t === "number" && t > 1e12) return t / 1000;
    if (typeof t === "number" && t > 1e9) return t;
  }
  return null;
}

/** Appends (x, y), or inserts it in time order when a device's clock or a backfill brings an older point. */
function insert(s, x, y) {
  let i = s.xs.length;
  while (i > 0 && s.xs[i - 1] > x) i--;
  if (i === s.xs.length) {
    s.xs.push(x);
    s.ys.push(y);
  } else {
    s.xs.splice(i, 0, x);
    s.ys.splice(i, 0, y);
  }
}

function* numericFields(value, prefix) {
  if (typeof value === "number" && Number.isFinite(value)) {
    yield [prefix || "value", value];
  } else if (value && typeof value === "object" && !Array.isArray(value)) {
    for (const [name, inner] of Object.entries(value)) yield* numericFields(inner, prefix ? `${prefix}.${name}` : name);
  }
}

function addSeries(key) {
  if (series.size >= maxCharts) return null;
  const el = document.createElement("figure");
  el.className = "chart";
  el.dataset.field = key;
  el.style.margin = "0";
  const title = document.createElement("h3");
  const name = document.createElement("span");
  name.textContent = key;
  const lastEl = document.createElement("span");
  lastEl.className = "last";
  lastEl.setAttribute("aria-label", `latest ${key}`);
  title.append(name, lastEl);
  el.append(title);
  const plot = document.createElement("div");
  plot.setAttribute("role", "img");
  plot.setAttribute("aria-label", `Chart of ${key} over time`);
  el.append(plot);
  // Sorted by name so charts do not jump around as fields appear.
  const charts = document.getElementById("charts");
  const after = [...charts.children].find((c) => c.dataset.field.localeCompare(key) > 0);
  charts.insertBefore(el, after ?? null);
  // telemetryPoints: how many leading points are Telemetry buckets, replaced where the bridges' messages begin.
  const s = { key, xs: [], ys: [], chart: null, el, lastEl, telemetryPoints: 0, telemetryStep: 0 };
  if (uPlot) {
    const styles = getComputedStyle(document.documentElement);
    const axisColor = styles.getPropertyValue("--muted").trim() || "#57606a";
    const gridColor = styles.getPropertyValue("--border").trim() || "#d0d7de";
    const axis = { stroke: axisColor, grid: { stroke: gridColor, width: 1 }, ticks: { stroke: gridColor } };
    s.chart = new uPlot({
      width: Math.max(300, el.clientWidth - 24),
      height: 220,
      scales: { x: { time: true } },
      axes: [axis, { ...axis, size: 60 }],
      series: [{}, { label: key, stroke: styles.getPropertyValue("--accent").trim() || "#0a58ca", width: 2, points: { show: false } }],
      legend: { show: false },
    }, [[], []], plot);
  }
  return (series.set(key, s), s);
}

function formatNumber(n) {
  return Number.isInteger(n) ? n.toLocaleString() : n.toLocaleString(undefined, { maximumFractionDigits: 4 });
}

function prettyPayload(text) {
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text;
  }
}

window.addEventListener("resize", frameScheduler(() => {
  for (const s of series.values()) s.chart?.setSize({ width: Math.max(300, s.el.clientWidth - 24), height: 220 });
}));
