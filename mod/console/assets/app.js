// The console page: one live view of a whole cluster. It reads /api/stream (a snapshot,
// then node changes and events as they happen) and redraws at most a few times a second.
// Plain JavaScript and SVG; the multicast diagram is drawn by spacetime.js, the same
// module `peerd trace --svg` uses.
import { layoutSpaceTime, renderSpaceTimeSvg } from "./spacetime.js";
import { networkOf } from "./network.js";

const KEEP_EVENTS = 500;
const state = {
  cluster: "",
  /** @type {Map<string, any>} */
  nodes: new Map(),
  /** @type {Map<string, any[]>} */
  events: new Map(),
  /** @type {Map<string, {at: number, status: any, rates: Record<string, number>}>} */
  prev: new Map(),
  connected: false,
};

const ROLE_ORDER = [
  "ring",
  "gossip",
  "multicast",
  "broker",
  "daemon",
  "queue",
  "leader",
  "follower",
  "replica",
  "frontend",
  "lottery-server",
  "agency",
  "echo",
];
const ROLE_TITLES = {
  ring: "Token ring",
  gossip: "Gossip",
  multicast: "Total-order multicast",
  mom: "MOM: broker and daemons",
  queue: "Queue",
  leader: "Leader / followers",
  ratings: "Ratings replicas",
  lottery: "Lottery",
  echo: "Echo",
};
const GROUP = {
  broker: "mom",
  daemon: "mom",
  leader: "leader",
  follower: "leader",
  replica: "ratings",
  frontend: "ratings",
  "lottery-server": "lottery",
  agency: "lottery",
};

/** @param {unknown} s */
function esc(s) {
  return String(s ?? "").replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;");
}

/** @param {any} v */
function num(v) {
  return typeof v === "number" && Number.isFinite(v) ? v : 0;
}

function setNode(n) {
  const old = state.prev.get(n.name);
  if (n.up && n.status) {
    const rates = {};
    if (old && old.status && n.at > old.at) {
      const dt = (n.at - old.at) / 1000;
      for (
        const k of ["published", "delivered", "acked", "messages_in", "messages_out", "passes"]
      ) {
        if (typeof n.status[k] === "number" && typeof old.status[k] === "number") {
          rates[k] = Math.max(0, (n.status[k] - old.status[k]) / dt);
        }
      }
    }
    state.prev.set(n.name, { at: n.at, status: n.status, rates });
  }
  state.nodes.set(n.name, n);
}

function addEvent(e) {
  let list = state.events.get(e.node);
  if (!list) state.events.set(e.node, list = []);
  list.push(e);
  if (list.length > KEEP_EVENTS) list.splice(0, list.length - KEEP_EVENTS);
}

let scheduled = false;
function schedule() {
  if (scheduled) return;
  scheduled = true;
  setTimeout(() => {
    scheduled = false;
    render();
  }, 120);
}

function connect() {
  const es = new EventSource("/api/stream");
  es.addEventListener("snapshot", (m) => {
    const s = JSON.parse(m.data);
    state.cluster = s.cluster;
    state.nodes.clear();
    state.events.clear();
    for (const n of s.nodes) setNode(n);
    for (const e of s.events) addEvent(e);
    state.connected = true;
    document.body.dataset.loaded = "true";
    schedule();
  });
  es.addEventListener("node", (m) => {
    setNode(JSON.parse(m.data));
    schedule();
  });
  es.addEventListener("event", (m) => {
    addEvent(JSON.parse(m.data));
    schedule();
  });
  es.onerror = () => {
    state.connected = false;
    schedule();
  };
  es.onopen = () => {
    state.connected = true;
    schedule();
  };
}

function eventsOf(nodes) {
  return nodes.flatMap((n) => state.events.get(n.name) ?? []).sort((a, b) => a.ts - b.ts);
}

function badge(n) {
  return n.up
    ? `<span class="badge">up</span>`
    : `<span class="badge down" title="${esc(n.error)}">down</span>`;
}

function renderOverview(net) {
  const cards = [...state.nodes.values()].map((n) => {
    const cut = net.unreachable[n.name] ?? [];
    return `<div class="node-card${cut.length ? " cut-off" : ""}" data-node="${
      esc(n.name)
    }" data-up="${n.up}" data-role="${esc(n.role)}" data-cannot-reach="${
      esc(cut.join(","))
    }"><div class="name">${esc(n.name)} ${badge(n)}</div><div class="role">${
      esc(n.role || "?")
    }</div><div class="addr">${esc(n.address)}${n.http ? ` · http ${esc(n.http)}` : ""}</div>${
      cut.length ? `<div class="cut-note">cannot reach ${esc(cut.join(", "))}</div>` : ""
    }</div>`;
  });
  return cards.join("");
}

/**
 * The links between peers as the nodes report them: solid when both ends reach each
 * other, dashed red with ✂ when cut (a partition: both ends answer the console, one or
 * both cannot reach the other), dotted grey when an end is down; and the groups that
 * still reach each other.
 */
function renderNetwork(net) {
  const names = [...new Set(net.edges.flatMap((e) => [e.a, e.b]))];
  if (names.length === 0) return "";
  const n = names.length;
  const size = Math.max(220, Math.min(420, 60 * n));
  const R = size / 2 - 34, cx = size / 2, cy = size / 2;
  const pos = new Map(names.map((name, i) => {
    const a = -Math.PI / 2 + (2 * Math.PI * i) / n;
    return [name, [cx + R * Math.cos(a), cy + R * Math.sin(a)]];
  }));
  const parts = [`<svg class="network" width="${size}" height="${size}">`];
  for (const e of net.edges) {
    const [x1, y1] = pos.get(e.a), [x2, y2] = pos.get(e.b);
    const style = e.state === "cut"
      ? `stroke="#cf222e" stroke-width="3" stroke-dasharray="7 5"`
      : e.state === "down"
      ? `stroke="#afb8c1" stroke-width="1.5" stroke-dasharray="2 4"`
      : `stroke="#57606a" stroke-width="1.5"`;
    const why = e.state === "cut"
      ? `${e.a}–${e.b} cut: ${e.by.join(" and ")} cannot reach the other${
        e.by.length === 1 ? " (one way)" : ""
      }`
      : e.state === "down"
      ? `${e.a}–${e.b}: an end is down`
      : `${e.a}–${e.b} ok`;
    parts.push(
      `<line class="net-edge" data-a="${esc(e.a)}" data-b="${
        esc(e.b)
      }" data-state="${e.state}" data-by="${
        esc(e.by.join(","))
      }" x1="${x1}" y1="${y1}" x2="${x2}" y2="${y2}" ${style}><title>${esc(why)}</title></line>`,
    );
    if (e.state === "cut") {
      parts.push(
        `<text x="${(x1 + x2) / 2}" y="${
          (y1 + y2) / 2 + 5
        }" text-anchor="middle" font-size="15" fill="#cf222e">✂</text>`,
      );
    }
  }
  for (const name of names) {
    const [x, y] = pos.get(name);
    const node = state.nodes.get(name);
    const cut = (net.unreachable[name] ?? []).length > 0;
    const fill = !node?.up ? "#ffebe9" : cut ? "#fff1e5" : "#fff";
    const stroke = !node?.up ? "#cf222e" : cut ? "#bc4c00" : "#57606a";
    parts.push(
      `<g class="net-node" data-node="${
        esc(name)
      }"><circle cx="${x}" cy="${y}" r="19" fill="${fill}" stroke="${stroke}" stroke-width="2"/><text x="${x}" y="${
        y + 4
      }" text-anchor="middle" font-size="12">${esc(name)}</text>${
        node?.up ? "" : `<text x="${x + 12}" y="${y - 12}" fill="#cf222e" font-size="14">✕</text>`
      }</g>`,
    );
  }
  parts.push("</svg>");
  const partitioned = net.cuts.length > 0;
  const groups = net.groups.map((g) => `{${g.join(", ")}}`).join(" | ");
  const rows = Object.entries(net.unreachable).map(([node, peers]) => ({
    cells: [esc(node), esc(peers.join(", "))],
  }));
  return `<section class="role" id="network" data-partitioned="${partitioned}" data-cuts="${net.cuts.length}"><h2>Network <small>${
    partitioned
      ? `<span class="bad">partitioned: ${net.cuts.length} link${
        net.cuts.length === 1 ? "" : "s"
      } cut</span>`
      : "every link up"
  }</small></h2><div class="flex">${parts.join("")}<div><div id="partitions" data-groups="${
    esc(net.groups.map((g) => g.join(",")).join("|"))
  }"><b>${partitioned ? "groups that reach each other" : "one group"}:</b> ${esc(groups)}</div>${
    rows.length
      ? `<br>${table(["node", "cannot reach (its own view)"], rows)}`
      : `<div class="muted">no node reports an unreachable peer</div>`
  }<div class="muted" style="margin-top:8px">solid: both ends reach each other · dashed red ✂: cut while both ends answer (a partition; one way when only one end says so) · dotted: an end is down</div></div></div></section>`;
}

function table(headers, rows) {
  return `<table><tr>${headers.map((h) => `<th>${esc(h)}</th>`).join("")}</tr>${
    rows.map((r) =>
      `<tr class="${r.cls ?? ""}" ${r.attrs ?? ""}>${
        r.cells.map((c) => `<td>${c}</td>`).join("")
      }</tr>`
    ).join("")
  }</table>`;
}

function renderRing(nodes) {
  const n = nodes.length;
  const R = 95, cx = 130, cy = 125;
  const holder = nodes.find((x) => x.up && x.status?.held);
  const tokenAt = nodes.find((x) => x.up && x.status?.token);
  const parts = [
    `<svg class="ring" width="260" height="250" viewBox="0 0 260 250"><circle cx="${cx}" cy="${cy}" r="${R}" fill="none" stroke="#d0d7de" stroke-width="2"/>`,
  ];
  nodes.forEach((x, i) => {
    const a = -Math.PI / 2 + (2 * Math.PI * i) / Math.max(n, 1);
    const px = cx + R * Math.cos(a), py = cy + R * Math.sin(a);
    const fill = !x.up ? "#ffebe9" : x.status?.held ? "#ffd8b5" : "#fff";
    const stroke = !x.up ? "#cf222e" : "#57606a";
    parts.push(
      `<g class="ring-node" data-node="${
        esc(x.name)
      }"><circle cx="${px}" cy="${py}" r="20" fill="${fill}" stroke="${stroke}" stroke-width="2"/><text x="${px}" y="${
        py + 4
      }" text-anchor="middle" font-size="12">${esc(x.name)}</text>${
        x.up ? "" : `<text x="${px + 12}" y="${py - 12}" fill="#cf222e" font-size="14">✕</text>`
      }</g>`,
    );
    if (x === tokenAt) {
      const tx = cx + (R - 38) * Math.cos(a), ty = cy + (R - 38) * Math.sin(a);
      parts.push(
        `<g class="token" data-at="${
          esc(x.name)
        }"><circle cx="${tx}" cy="${ty}" r="10" fill="#f2c94c" stroke="#9a6700"/><text x="${tx}" y="${
          ty + 4
        }" text-anchor="middle" font-size="10">T</text></g>`,
      );
    }
  });
  parts.push(
    `<text x="${cx}" y="${cy}" text-anchor="middle" font-size="12">${
      holder
        ? `held by ${esc(holder.name)}`
        : tokenAt
        ? `token at ${esc(tokenAt.name)}`
        : "token in transit"
    }</text>`,
  );
  if (holder?.status?.fence) {
    parts.push(
      `<text x="${cx}" y="${cy + 16}" text-anchor="middle" font-size="11" fill="#57606a">fence ${
        esc(holder.status.fence)
      }</text>`,
    );
  }
  parts.push(`</svg>`);
  const rows = nodes.map((x) => ({
    cls: x.up ? "" : "down",
    attrs: `data-node="${esc(x.name)}"`,
    cells: x.up
      ? [
        esc(x.name),
        badge(x),
        x.status?.token ? (x.status.parked ? "parked here" : "here") : "",
        x.status?.held ? `held, fence ${esc(x.status.fence)}` : "",
        esc(x.status?.gen),
        esc(x.status?.last_fence),
        esc(x.status?.waiting),
        esc(x.status?.regenerations),
        `<span class="grants">${esc(x.counts?.["lock.acquired"] ?? "")}</span>`,
      ]
      : [esc(x.name), badge(x), "", "", "", "", "", "", esc(x.counts?.["lock.acquired"] ?? "")],
  }));
  const events = eventsOf(nodes).filter((e) =>
    e.ev.startsWith("lock.") || e.ev.startsWith("token.")
  )
    .slice(-6).reverse().map((e) =>
      `<div class="muted">${esc(e.node)} ${esc(e.ev)} ${e.fence ? `fence ${esc(e.fence)}` : ""}${
        e.reason ? ` (${esc(e.reason)})` : ""
      }${
        e.thinned > 1
          ? ` <span title="the last of ${esc(e.thinned)} in this window">×${esc(e.thinned)}</span>`
          : ""
      }</div>`
    ).join("");
  return `<div class="flex">${parts.join("")}<div>${
    table(
      ["node", "", "token", "lock", "gen", "last fence", "waiting", "regen.", "grants seen"],
      rows,
    )
  }<div style="margin-top:8px">${events}</div></div></div>`;
}

function renderGossip(nodes) {
  const rows = nodes.map((x) => {
    const m = x.status?.members ?? {};
    return {
      cls: x.up ? "" : "down",
      cells: [
        esc(x.name),
        badge(x),
        esc(m.alive ?? ""),
        esc(m.suspect ?? ""),
        esc(m.dead ?? ""),
        esc(x.status?.keys ?? ""),
        esc(x.status?.rounds ?? ""),
      ],
    };
  });
  // key → node → the newest version it has ({clock, node} from gossip, or a number)
  /** @type {Map<string, Map<string, {clock: number, by: string}>>} */
  const spread = new Map();
  const versionOf = (v) =>
    v && typeof v === "object"
      ? { clock: Number(v.clock) || 0, by: String(v.node ?? "") }
      : { clock: Number(v) || 0, by: "" };
  const newer = (a, b) => a.clock !== b.clock ? a.clock > b.clock : a.by > b.by;
  for (const e of eventsOf(nodes)) {
    if (e.ev !== "rumor.spread" && e.ev !== "rumor.learned") continue;
    const k = String(e.key);
    if (!spread.has(k)) spread.set(k, new Map());
    const have = spread.get(k);
    const v = versionOf(e.version);
    const old = have.get(e.node);
    if (!old || newer(v, old)) have.set(e.node, v);
  }
  const total = nodes.length;
  const keys = [...spread.entries()].slice(-12).map(([k, have]) => {
    let latest = { clock: -1, by: "" };
    for (const v of have.values()) if (newer(v, latest)) latest = v;
    const holders = [...have.entries()].filter(([, v]) =>
      v.clock === latest.clock && v.by === latest.by
    ).map(([n]) => n);
    const count = holders.length;
    return `<tr class="key" data-key="${esc(k)}" data-count="${count}"><td>${esc(k)}</td><td>${
      esc(latest.clock)
    }${
      latest.by ? "@" + esc(latest.by) : ""
    }</td><td><span class="barbox"><span class="bar" style="width:${
      Math.round((120 * count) / Math.max(total, 1))
    }px"></span></span> ${count}/${total}</td><td class="muted">${
      esc(holders.join(" "))
    }</td></tr>`;
  }).join("");
  return `<div class="flex"><div>${
    table(["node", "", "alive", "suspect", "dead", "keys", "rounds"], rows)
  }</div><div><b>How far each key has spread</b> <span class="muted">(from rumour events)</span>${
    keys
      ? `<table><tr><th>key</th><th>version</th><th>nodes</th><th></th></tr>${keys}</table>`
      : `<div class="muted">no rumours seen yet</div>`
  }</div></div>`;
}

function renderMulticast(nodes) {
  const events = eventsOf(nodes);
  const down = {};
  for (const x of nodes) if (!x.up && x.downSince) down[x.name] = x.downSince;
  const width = Math.max(700, Math.min(1400, (document.body.clientWidth || 1200) - 80));
  const layout = layoutSpaceTime(events, {
    nodes: nodes.map((x) => x.name),
    width,
    down,
    maxMessages: 30,
  });
  const rows = nodes.map((x) => ({
    cls: x.up ? "" : "down",
    cells: [
      esc(x.name),
      badge(x),
      esc(x.status?.state ?? ""),
      esc(x.status?.view ?? ""),
      esc((x.status?.members ?? []).join(", ")),
      esc(x.status?.clock ?? ""),
      esc(x.status?.delivered ?? ""),
      esc(x.status?.held ?? ""),
    ],
  }));
  const sampled = events.some((e) => e.thinned && e.ev.startsWith("mc."));
  const seen = nodes.map((x) => `${esc(x.name)} ${esc(x.counts?.["mc.delivered"] ?? 0)}`).join(
    ", ",
  );
  const note = sampled
    ? `<div class="muted" id="mc-sampled">A fast run: each node sends the first of its sends and deliveries in every 250 ms whole and counts the rest, so the diagram shows a sample; the counts are exact (deliveries seen: ${seen}).</div>`
    : "";
  return `${
    table(["node", "", "state", "view", "members", "Lamport", "delivered", "hold-back"], rows)
  }${note}<div class="diagram" data-arrows="${layout.arrows.length}" data-same-order="${layout.sameOrder}">${
    renderSpaceTimeSvg(layout, {
      title:
        `last ${layout.sends.length} messages: ${layout.arrows.length} arrows; delivery orders ${
          layout.sameOrder ? "identical" : "DIFFER"
        }`,
    })
  }</div>`;
}

function rate(name, key) {
  const r = state.prev.get(name)?.rates?.[key];
  return r === undefined ? "" : `${r.toFixed(r < 10 ? 1 : 0)}/s`;
}

function renderMom(nodes) {
  const brokers = nodes.filter((x) => x.role === "broker");
  const daemons = nodes.filter((x) => x.role === "daemon");
  const b = brokers.map((x) => {
    const s = x.status ?? {};
    const ds = Object.entries(s.daemons ?? {}).map(([d, v]) =>
      `${esc(d)}: ${v.connected ? "connected" : "<span class=bad>away</span>"}, backlog ${
        esc(v.backlog)
      }`
    ).join("<br>");
    return {
      cls: x.up ? "" : "down",
      cells: [
        esc(x.name),
        badge(x),
        esc(s.users ?? ""),
        esc(s.topics ?? ""),
        esc(s.subscriptions ?? ""),
        `${esc(s.messages_in ?? "")} <span class="muted">${rate(x.name, "messages_in")}</span>`,
        `${esc(s.messages_out ?? "")} <span class="muted">${rate(x.name, "messages_out")}</span>`,
        ds,
      ],
    };
  });
  const d = daemons.map((x) => {
    const s = x.status ?? {};
    const inbox = Object.entries(s.inbox ?? {}).map(([u, v]) =>
      `${esc(u)}: ${esc(typeof v === "object" ? JSON.stringify(v) : v)}`
    ).join(", ");
    return {
      cls: x.up ? "" : "down",
      cells: [
        esc(x.name),
        badge(x),
        s.link === "up" ? "up" : `<span class="bad">${esc(s.link ?? "")}</span>`,
        esc((s.users ?? []).length ?? ""),
        inbox || "<span class=muted>empty</span>",
        esc(s.outbox ?? ""),
        `${esc(s.published ?? "")} <span class="muted">${rate(x.name, "published")}</span>`,
        `${esc(s.delivered ?? "")} <span class="muted">${rate(x.name, "delivered")}</span>`,
      ],
    };
  });
  return `${
    table(["broker", "", "users", "topics", "subscriptions", "in", "out", "daemons, backlog"], b)
  }<br>${
    table([
      "daemon",
      "",
      "broker link",
      "users",
      "inbox depths",
      "outbox",
      "published",
      "delivered",
    ], d)
  }`;
}

function renderQueue(nodes) {
  return nodes.map((x) => {
    const s = x.status ?? {};
    const queues = x.extra?.queues?.queues ?? [];
    const exchanges = x.extra?.exchanges?.exchanges ?? [];
    const summary = table([
      "node",
      "",
      "queues",
      "ready",
      "unacked",
      "published",
      "delivered",
      "acked",
    ], [{
      cls: x.up ? "" : "down",
      cells: [
        esc(x.name),
        badge(x),
        esc(s.queues ?? ""),
        esc(s.messages ?? ""),
        esc(s.unacked ?? ""),
        `${esc(s.published ?? "")} <span class="muted">${rate(x.name, "published")}</span>`,
        `${esc(s.delivered ?? "")} <span class="muted">${rate(x.name, "delivered")}</span>`,
        `${esc(s.acked ?? "")} <span class="muted">${rate(x.name, "acked")}</span>`,
      ],
    }]);
    const q = queues.length
      ? table(
        ["queue", "ready", "unacked", "consumers", "durable"],
        queues.map((qq) => ({
          cells: [
            esc(qq.name),
            esc(qq.messages),
            esc(qq.unacked),
            esc(qq.consumers),
            qq.durable ? "yes" : "no",
          ],
        })),
      )
      : `<div class="muted">no queues</div>`;
    const ex = exchanges.length
      ? table(
        ["exchange", "type", "bindings"],
        exchanges.map((e) => ({
          cells: [esc(e.name || "(default)"), esc(e.type), esc(e.bindings)],
        })),
      )
      : "";
    return `<div class="flex"><div>${summary}</div><div>${q}</div><div>${ex}</div></div>`;
  }).join("");
}

function vts(v) {
  const entries = Object.entries(v ?? {});
  return entries.length ? `⟨${entries.map(([k, n]) => `${esc(k)}:${esc(n)}`).join(", ")}⟩` : "⟨⟩";
}

function renderRatings(nodes) {
  const replicas = nodes.filter((x) => x.role === "replica");
  const fes = nodes.filter((x) => x.role === "frontend");
  const upReplicas = replicas.filter((x) => x.up && x.status);
  const stamps = upReplicas.map((x) => JSON.stringify(x.status.value_ts ?? {}));
  const converged = stamps.length > 0 && stamps.every((s) => s === stamps[0]);
  const r = replicas.map((x) => ({
    cls: x.up ? "" : "down",
    cells: [
      esc(x.name),
      badge(x),
      esc(x.status?.status ?? ""),
      `<span class="vts">${x.status ? vts(x.status.value_ts) : ""}</span>`,
      esc(x.status?.log_size ?? ""),
      esc(x.status?.executed ?? ""),
      esc(x.status?.checksum ? String(x.status.checksum).slice(0, 8) : ""),
    ],
  }));
  const f = fes.map((x) => ({
    cls: x.up ? "" : "down",
    cells: [
      esc(x.name),
      badge(x),
      esc(x.status?.requests ?? ""),
      esc(x.status?.failovers ?? ""),
      esc((x.status?.rms ?? []).map((rm) => `${rm.name}:${rm.up ? rm.status : "down"}`).join(" ")),
    ],
  }));
  return `<div>${
    converged
      ? `<span class="ok" id="ratings-converged">value timestamps identical on ${upReplicas.length} replicas</span>`
      : `<span class="bad">replicas not converged yet</span>`
  }</div>${
    table(["replica", "", "status", "value timestamp", "log", "executed", "checksum"], r)
  }<br>${table(["front end", "", "requests", "failovers", "replicas"], f)}`;
}

function renderLottery(nodes) {
  const servers = nodes.filter((x) => x.role === "lottery-server");
  const agencies = nodes.filter((x) => x.role === "agency");
  const events = eventsOf(nodes);
  return servers.map((x) => {
    const s = x.status ?? {};
    const expected = num(s.agencies);
    const done = Array.isArray(s.done) ? s.done : [];
    const per = new Map();
    for (const e of events) {
      if (e.ev === "batch.stored" && e.node === x.name) {
        per.set(e.agency, (per.get(e.agency) ?? 0) + num(e.count));
      }
    }
    const rows = [];
    for (let a = 1; a <= expected; a++) {
      rows.push({
        cells: [
          esc(a),
          done.includes(a) ? `<span class="ok">done</span>` : "sending",
          esc(per.get(a) ?? ""),
        ],
      });
    }
    return `${
      table(["server", "", "bets stored", "agencies done", "draw", "winners"], [{
        cls: x.up ? "" : "down",
        cells: [
          esc(x.name),
          badge(x),
          esc(s.bets ?? ""),
          `${done.length}/${expected}`,
          s.drawn ? `<span class="ok">drawn</span> (number ${esc(s.winning_number)})` : "waiting",
          esc(s.winners === null || s.winners === undefined ? "" : JSON.stringify(s.winners)),
        ],
      }])
    }<br>${table(["agency", "progress", "bets stored (seen)"], rows)}${
      agencies.length
        ? `<div class="muted">agency processes: ${
          agencies.map((g) => `${esc(g.name)} ${badge(g)}`).join(" ")
        }</div>`
        : ""
    }`;
  }).join("");
}

function renderGeneric(nodes) {
  return nodes.map((x) => {
    const { role: _r, name: _n, ...rest } = x.status ?? {};
    return `<div><b>${esc(x.name)}</b> ${badge(x)}<pre class="json">${
      esc(JSON.stringify(rest, null, 1))
    }</pre></div>`;
  }).join("");
}

const RENDER = {
  ring: renderRing,
  gossip: renderGossip,
  multicast: renderMulticast,
  mom: renderMom,
  queue: renderQueue,
  ratings: renderRatings,
  lottery: renderLottery,
};

function render() {
  document.getElementById("cluster").textContent = state.cluster ? `· ${state.cluster}` : "";
  const all = [...state.nodes.values()];
  const up = all.filter((n) => n.up).length;
  const summary = document.getElementById("summary");
  summary.textContent = `${all.length} nodes, ${up} up, ${all.length - up} down`;
  summary.dataset.up = String(up);
  summary.dataset.total = String(all.length);
  const banner = document.getElementById("banner");
  banner.hidden = state.connected;
  banner.textContent = state.connected ? "" : "console server unreachable: retrying";
  const net = networkOf(all);
  document.getElementById("overview").innerHTML = renderOverview(net);
  document.getElementById("network-box").innerHTML = renderNetwork(net);
  const groups = new Map();
  const roles = [...new Set(all.map((n) => n.role))].sort((a, b) =>
    (ROLE_ORDER.indexOf(a) + 1 || 99) - (ROLE_ORDER.indexOf(b) + 1 || 99)
  );
  for (const role of roles) {
    const g = GROUP[role] ?? role;
    if (!groups.has(g)) groups.set(g, []);
    groups.get(g).push(...all.filter((n) => n.role === role));
  }
  const html = [];
  for (const [g, nodes] of groups) {
    const draw = RENDER[g] ?? renderGeneric;
    let body;
    try {
      body = draw(nodes);
    } catch (err) {
      body = `<div class="bad">cannot draw: ${esc(err?.message ?? err)}</div>`;
    }
    const upN = nodes.filter((n) => n.up).length;
    html.push(
      `<section class="role" id="role-${esc(g)}" data-group="${esc(g)}"><h2>${
        esc(ROLE_TITLES[g] ?? g)
      } <small>${upN}/${nodes.length} up</small></h2>${body}</section>`,
    );
  }
  document.getElementById("roles").innerHTML = html.join("");
}

connect();
