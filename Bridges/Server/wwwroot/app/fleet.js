// Fleet view: who is online (GET /api/fleet, kept live by the $presence channel) and the broker's message rate.
import { connectRealtime, getJson, notice, formatRate, frameScheduler } from "/app/common.js";

const pollMs = 2000;
// A device list longer than this is cut (search narrows it); thousands of table rows help nobody.
const maxRows = 500;

const online = new Map(); // clientId -> {clientId, username, connectedAt, transport}
const tbody = document.getElementById("devices");
const search = document.getElementById("search");
const render = frameScheduler(draw);

let presence = null;
// Read by the browser tests: subscriptionState is the $presence channel's (1 = open).
window.iotDashboard = { page: "fleet", online, presenceEvents: 0, subscriptionState: () => presence?.readyState ?? null };

function draw() {
  const term = search.value.trim().toLowerCase();
  const all = [...online.values()].sort((a, b) => a.clientId.localeCompare(b.clientId));
  const matching = term
    ? all.filter((d) => d.clientId.toLowerCase().includes(term) || (d.username ?? "").toLowerCase().includes(term))
    : all;
  const rows = matching.slice(0, maxRows).map((d) => {
    const tr = document.createElement("tr");
    tr.dataset.clientId = d.clientId;
    const link = document.createElement("a");
    link.href = `/device.html?id=${encodeURIComponent(d.clientId)}`;
    link.textContent = d.clientId;
    const cells = [link, d.username ?? "—", d.transport ?? "—", d.connectedAt ? new Date(d.connectedAt).toLocaleString() : "—"];
    for (const content of cells) {
      const td = document.createElement("td");
      td.append(content);
      tr.append(td);
    }
    return tr;
  });
  tbody.replaceChildren(...rows);
  document.getElementById("online-count").textContent = online.size.toLocaleString();
  document.getElementById("empty").classList.toggle("hidden", online.size > 0);
  document.getElementById("shown").textContent = matching.length === all.length
    ? `${all.length} device${all.length === 1 ? "" : "s"}`
    : `${matching.length} of ${all.length} match`;
  if (matching.length > maxRows) document.getElementById("shown").textContent += ` (first ${maxRows} shown)`;
}

async function poll() {
  try {
    const fleet = await getJson("/api/fleet");
    // The snapshot is authoritative; presence events only make changes show up before the next poll.
    online.clear();
    for (const device of fleet.online ?? []) online.set(device.clientId, device);
    document.getElementById("rate").textContent = formatRate(fleet.messagesPerSecond);
    document.getElementById("received").textContent = (fleet.messagesReceived ?? 0).toLocaleString();
    notice(null);
    render();
  } catch (err) {
    notice(`Cannot read the fleet: ${err.message}`, "bad");
  } finally {
    setTimeout(poll, pollMs);
  }
}

search.addEventListener("input", render);

await poll();
try {
  const client = await connectRealtime();
  // Presence events arrive as messages on the $presence channel: data = {clientId, kind, at}.
  presence = client.subscribe("$presence", (msg) => onPresence(msg.data));
  window.iotDashboard.client = client;
} catch (err) {
  notice(`Live presence is unavailable (${err.message}); the list refreshes every ${pollMs / 1000} s.`);
}

function onPresence(event) {
  if (!event?.clientId) return;
  window.iotDashboard.presenceEvents++;
  if (event.kind === "connected") {
    online.set(event.clientId, { ...online.get(event.clientId), clientId: event.clientId, connectedAt: event.at, username: event.username ?? null, transport: event.transport ?? null });
  } else if (event.kind === "disconnected") {
    online.delete(event.clientId);
  }
  render();
}
