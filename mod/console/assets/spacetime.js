// @ts-self-types="./spacetime.d.ts"
/**
 * Space-time diagrams of a multicast run: one lane per node, time left to right, each
 * message an arrow from its sender's `mc.sent` to every other node's `mc.delivered`,
 * labelled with its Lamport stamp and delivery index; view changes and crashes marked on
 * the lanes. Pure functions over event records, shared by the console page (the browser
 * imports this file as it is) and `peerd trace --svg` (Deno imports it with its types
 * from spacetime.d.ts). Plain JavaScript so that both can run it without a build step.
 *
 * @module
 */

const MARGIN_LEFT = 90;
const MARGIN_RIGHT = 30;
const MARGIN_TOP = 60;
const ORDER_ROW = 14;
const LANE_GAP = 70;

/** @param {unknown} v */
function str(v) {
  return typeof v === "string" ? v : v === undefined || v === null ? "" : String(v);
}

/**
 * Lays out the diagram of `events` (records with ts, node, ev, …).
 * @param {Array<Record<string, unknown>>} events
 * @param {{width?: number, axis?: "order" | "time", nodes?: string[], down?: Record<string, number>, maxMessages?: number}} [options]
 */
export function layoutSpaceTime(events, options = {}) {
  const width = options.width ?? 1000;
  const axis = options.axis ?? "order";
  const relevant = events
    .filter((e) =>
      e.ev === "mc.sent" || e.ev === "mc.delivered" || e.ev === "view.changed" ||
      e.ev === "stopped" || e.ev === "ready" || e.ev === "mc.excluded"
    )
    .slice()
    .sort((a, b) => Number(a.ts) - Number(b.ts));
  // keep the last maxMessages messages (a live page shows a window, not all history)
  const maxMessages = options.maxMessages ?? Infinity;
  /** @type {Map<string, number>} */
  const firstSeen = new Map();
  for (const e of relevant) {
    if ((e.ev === "mc.sent" || e.ev === "mc.delivered") && !firstSeen.has(str(e.id))) {
      firstSeen.set(str(e.id), Number(e.ts));
    }
  }
  let shown = relevant;
  if (firstSeen.size > maxMessages) {
    const cut = [...firstSeen.values()].sort((a, b) => a - b)[firstSeen.size - maxMessages];
    const keep = new Set([...firstSeen].filter(([, t]) => t >= cut).map(([id]) => id));
    shown = relevant.filter((e) =>
      e.ev === "mc.sent" || e.ev === "mc.delivered" ? keep.has(str(e.id)) : Number(e.ts) >= cut
    );
  }
  const names = options.nodes ? [...options.nodes] : [];
  const more = [...new Set(shown.map((e) => str(e.node)))].filter((n) => !names.includes(n));
  names.push(...more.sort((a, b) => a.localeCompare(b, undefined, { numeric: true })));
  const lanes = names.map((name, i) => ({ node: name, y: MARGIN_TOP + i * LANE_GAP }));
  const laneY = new Map(lanes.map((l) => [l.node, l.y]));
  const t0 = shown.length ? Number(shown[0].ts) : 0;
  const t1 = shown.length ? Number(shown[shown.length - 1].ts) : 1;
  const span = MAX(t1 - t0, 1e-9);
  const inner = width - MARGIN_LEFT - MARGIN_RIGHT;
  /** @type {Map<Record<string, unknown>, number>} */
  const xOf = new Map();
  shown.forEach((e, i) => {
    const x = axis === "time"
      ? MARGIN_LEFT + ((Number(e.ts) - t0) / span) * inner
      : MARGIN_LEFT + (shown.length <= 1 ? 0 : (i / (shown.length - 1)) * inner);
    xOf.set(e, Math.round(x * 10) / 10);
  });
  /** @type {Map<string, {node: string, x: number, y: number, lamport: number}>} */
  const sends = new Map();
  for (const e of shown) {
    if (e.ev === "mc.sent") {
      sends.set(str(e.id), {
        node: str(e.node),
        x: xOf.get(e) ?? 0,
        y: laneY.get(str(e.node)) ?? 0,
        lamport: Number(e.lamport),
      });
    }
  }
  const arrows = [];
  const deliveries = [];
  const views = [];
  const ends = [];
  for (const e of shown) {
    const x = xOf.get(e) ?? 0;
    const y = laneY.get(str(e.node)) ?? 0;
    if (e.ev === "mc.delivered") {
      const id = str(e.id);
      deliveries.push({
        node: str(e.node),
        id,
        x,
        y,
        idx: Number(e.idx),
        lamport: Number(e.lamport),
      });
      const s = sends.get(id);
      const from = str(e.from) || s?.node || "";
      if (from !== str(e.node)) {
        const sy = laneY.get(from);
        arrows.push({
          id,
          from,
          to: str(e.node),
          x1: s ? s.x : x,
          y1: s ? s.y : (sy ?? y),
          x2: x,
          y2: y,
          lamport: Number(e.lamport),
          sent: s !== undefined,
        });
      }
    } else if (e.ev === "view.changed") {
      views.push({
        node: str(e.node),
        x,
        y,
        view: Number(e.view),
        members: Array.isArray(e.members) ? e.members.map(str) : [],
      });
    } else if (e.ev === "stopped" || e.ev === "mc.excluded") {
      ends.push({ node: str(e.node), x, y, how: e.ev === "stopped" ? "stopped" : "excluded" });
    }
  }
  for (const [node, ts] of Object.entries(options.down ?? {})) {
    const y = laneY.get(node);
    if (y === undefined) continue;
    const x = axis === "time" ? MARGIN_LEFT + ((ts - t0) / span) * inner : width - MARGIN_RIGHT;
    ends.push({ node, x: MIN(MAX(x, MARGIN_LEFT), width - MARGIN_RIGHT), y, how: "down" });
  }
  /** @type {Record<string, string[]>} */
  const orders = {};
  for (const d of deliveries.slice().sort((a, b) => a.idx - b.idx)) {
    (orders[d.node] ??= []).push(d.id);
  }
  const sameOrder = sameOrderOf(Object.values(orders));
  return {
    width,
    height: MARGIN_TOP + MAX(lanes.length - 1, 0) * LANE_GAP + 60 + lanes.length * ORDER_ROW,
    axis,
    t0,
    t1,
    lanes,
    arrows,
    sends: [...sends.entries()].map(([id, s]) => ({ id, ...s })),
    deliveries,
    views,
    ends,
    orders,
    sameOrder,
  };
}

/**
 * Whether the nodes' delivery orders agree where they overlap: every two nodes deliver the
 * messages both show in the same relative order (a node that joined late or died early, or
 * a sample of a fast run with gaps, still agrees).
 * @param {string[][]} orders
 */
function sameOrderOf(orders) {
  const positions = orders.map((o) => new Map(o.map((id, i) => [id, i])));
  for (let a = 0; a < orders.length; a++) {
    for (let b = 0; b < orders.length; b++) {
      if (a === b) continue;
      let last = -1;
      for (const id of orders[a]) {
        const p = positions[b].get(id);
        if (p === undefined) continue;
        if (p <= last) return false;
        last = p;
      }
    }
  }
  return true;
}

/** @param {number} a @param {number} b */
function MAX(a, b) {
  return a > b ? a : b;
}
/** @param {number} a @param {number} b */
function MIN(a, b) {
  return a < b ? a : b;
}

/** @param {string} s */
function esc(s) {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(
    /"/g,
    "&quot;",
  );
}

/** A stable colour per message id, so one message looks the same on every lane. @param {string} id */
export function colourOf(id) {
  let h = 2166136261;
  for (let i = 0; i < id.length; i++) h = Math.imul(h ^ id.charCodeAt(i), 16777619);
  return `hsl(${(h >>> 0) % 360} 70% 42%)`;
}

/**
 * Renders a layout as an SVG document (a string): lanes, arrows (class `arrow`, one per
 * message copy delivered at another node), delivery dots labelled `#idx`, Lamport stamps
 * at the sends, view changes and ends of lanes.
 * @param {ReturnType<typeof layoutSpaceTime>} layout
 * @param {{title?: string}} [options]
 */
export function renderSpaceTimeSvg(layout, options = {}) {
  const { width, height } = layout;
  const out = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" class="spacetime" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`,
  );
  out.push(
    `<defs><marker id="head" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="context-stroke"/></marker></defs>`,
  );
  out.push(`<rect x="0" y="0" width="${width}" height="${height}" fill="#fff"/>`);
  const title = options.title ??
    `multicast: ${layout.sends.length} messages, ${layout.arrows.length} arrows; orders ${
      layout.sameOrder ? "identical" : "DIFFER"
    }`;
  out.push(`<text x="10" y="18" font-size="13" font-weight="bold">${esc(title)}</text>`);
  for (const lane of layout.lanes) {
    out.push(
      `<g class="lane" data-node="${esc(lane.node)}"><line x1="${
        MARGIN_LEFT - 10
      }" y1="${lane.y}" x2="${
        width - MARGIN_RIGHT
      }" y2="${lane.y}" stroke="#999" stroke-width="1.5"/><text x="10" y="${
        lane.y + 4
      }" font-weight="bold">${esc(lane.node)}</text></g>`,
    );
  }
  for (const v of layout.views) {
    out.push(
      `<g class="view"><line x1="${v.x}" y1="${v.y - 14}" x2="${v.x}" y2="${
        v.y + 14
      }" stroke="#c60" stroke-width="2" stroke-dasharray="3 2"/><text x="${
        v.x > width - 160 ? v.x - 3 : v.x + 3
      }" y="${v.y - 16}" fill="#c60"${
        v.x > width - 160 ? ' text-anchor="end"' : ""
      }>view ${v.view} {${esc(v.members.join(","))}}</text></g>`,
    );
  }
  for (const a of layout.arrows) {
    const c = colourOf(a.id);
    out.push(
      `<line class="arrow" data-id="${
        esc(a.id)
      }" x1="${a.x1}" y1="${a.y1}" x2="${a.x2}" y2="${a.y2}" stroke="${c}" stroke-width="1.2" marker-end="url(#head)"${
        a.sent ? "" : ' stroke-dasharray="4 3"'
      }><title>${esc(a.id)} ${esc(a.from)} → ${esc(a.to)} (Lamport ${a.lamport})</title></line>`,
    );
  }
  for (const s of layout.sends) {
    out.push(
      `<g class="send"><circle cx="${s.x}" cy="${s.y}" r="3.5" fill="${colourOf(s.id)}"/><text x="${
        s.x - 4
      }" y="${s.y - 7}" font-size="9" fill="#333">L${s.lamport}</text></g>`,
    );
  }
  for (const d of layout.deliveries) {
    out.push(
      `<g class="delivery"><rect x="${d.x - 3}" y="${d.y - 3}" width="6" height="6" fill="${
        colourOf(d.id)
      }"/><text x="${d.x - 5}" y="${d.y + 15}" font-size="9" fill="#333">#${d.idx}</text></g>`,
    );
  }
  for (const e of layout.ends) {
    out.push(
      `<g class="end" data-node="${esc(e.node)}"><text x="${e.x - 5}" y="${
        e.y + 5
      }" font-size="16" fill="#c00">✕</text><text x="${e.x - 14}" y="${e.y + 26}" fill="#c00">${
        esc(e.how)
      }</text></g>`,
    );
  }
  // the delivery orders side by side: one row of colours per node, identical rows = one order
  const top = (layout.lanes.at(-1)?.y ?? MARGIN_TOP) + 44;
  const cell = MIN(
    12,
    MAX(
      2,
      Math.floor(
        (width - MARGIN_LEFT - MARGIN_RIGHT) / MAX(
          1,
          ...Object.values(layout.orders).map((o) => o.length),
        ),
      ),
    ),
  );
  out.push(`<text x="10" y="${top - 6}" fill="#333">delivery order</text>`);
  layout.lanes.forEach((lane, i) => {
    const y = top + i * ORDER_ROW;
    const order = layout.orders[lane.node] ?? [];
    out.push(
      `<g class="order" data-node="${esc(lane.node)}"><text x="10" y="${y + 9}" font-size="10">${
        esc(lane.node)
      }</text>${
        order.map((id, k) =>
          `<rect x="${MARGIN_LEFT + k * cell}" y="${y}" width="${
            MAX(1, cell - 1)
          }" height="10" fill="${colourOf(id)}"><title>#${k + 1} ${esc(id)}</title></rect>`
        ).join("")
      }</g>`,
    );
  });
  out.push(`</svg>`);
  return out.join("\n");
}
