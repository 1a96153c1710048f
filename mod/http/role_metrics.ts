/**
 * What each role's `/metrics` shows, derived without touching the roles: a table per role
 * of event name → counter or histogram (fed by the node's event stream as things happen),
 * and gauges (and counters the role already keeps) read from its `status` at scrape time.
 * Every role also gets `peerd_events_total{ev}` and the node-wide gauges of
 * {@linkcode nodeMetrics}.
 *
 * @module
 */
import type { EventRecord } from "../events/mod.ts";
import type { MetricRegistry } from "./metrics.ts";

/** A role's metrics: events in as they happen, status in at scrape time. */
export interface RoleMetrics {
  /** Called with every event of the node. */
  event(e: EventRecord): void;
  /** Called with the node's status (the `ctl status` JSON, `{}` if unknown) before each render. */
  status(s: Record<string, unknown>): void;
}

type Status = Record<string, unknown>;
type Table = (m: MetricRegistry, role: string) => RoleMetrics;

const num = (v: unknown): number | undefined =>
  typeof v === "number" && Number.isFinite(v) ? v : undefined;
const len = (v: unknown): number | undefined =>
  Array.isArray(v) ? v.length : v && typeof v === "object" ? Object.keys(v).length : undefined;
const obj = (v: unknown): Record<string, unknown> =>
  v && typeof v === "object" && !Array.isArray(v) ? v as Record<string, unknown> : {};

/** Maps event names to handlers; unknown events are ignored. */
function byEvent(
  handlers: Record<string, (e: EventRecord) => void>,
): (e: EventRecord) => void {
  return (e) => {
    const h = Object.hasOwn(handlers, e.ev) ? handlers[e.ev] : undefined;
    if (h) h(e);
  };
}

/** Sets one gauge per status field: `{field: [metric, help]}`. */
function statusGauges(
  m: MetricRegistry,
  map: Record<string, [string, string]>,
): (s: Status) => void {
  const gauges = Object.entries(map).map(([field, [name, help]]) =>
    [field, m.gauge(name, help)] as const
  );
  return (s) => {
    for (const [field, g] of gauges) g.set({}, s[field]);
  };
}

/** Mirrors counters the role keeps in its status: `{field: [metric, help]}`. */
function statusCounters(
  m: MetricRegistry,
  map: Record<string, [string, string]>,
): (s: Status) => void {
  const counters = Object.entries(map).map(([field, [name, help]]) =>
    [field, m.counter(name, help)] as const
  );
  return (s) => {
    for (const [field, c] of counters) {
      const v = num(s[field]);
      if (v !== undefined) c.set({}, v);
    }
  };
}

const ring: Table = (m) => {
  const grants = m.counter("peerd_ring_grants_total", "locks granted on this node");
  const releases = m.counter("peerd_ring_releases_total", "locks released on this node");
  const cancelled = m.counter("peerd_ring_lock_cancelled_total", "lock requests withdrawn");
  const wait = m.histogram("peerd_ring_lock_wait_seconds", "time from lock request to grant");
  const regen = m.counter("peerd_ring_regenerations_total", "tokens regenerated after a loss");
  const created = m.counter("peerd_ring_tokens_created_total", "tokens created by this node");
  const stale = m.counter("peerd_ring_stale_tokens_total", "stale tokens discarded");
  const peerDown = m.counter("peerd_ring_peer_down_total", "times a ring peer was seen down");
  const gauges = statusGauges(m, {
    token: ["peerd_ring_token_here", "1 while this node has the token"],
    held: ["peerd_ring_lock_held", "1 while the lock is held on this node"],
    parked: ["peerd_ring_token_parked", "1 while the token is parked here (idle ring)"],
    waiting: ["peerd_ring_waiting_requests", "lock requests waiting for the token"],
    gen: ["peerd_ring_generation", "token generation this node knows"],
    last_fence: ["peerd_ring_last_fence", "last fencing number this node saw"],
    circulation_rate: ["peerd_ring_circulation_rate", "token visits per second"],
  });
  const counters = statusCounters(m, {
    passes: ["peerd_ring_token_passes_total", "tokens passed on by this node"],
    visits: ["peerd_ring_token_visits_total", "token visits to this node"],
    fences_issued: ["peerd_ring_fences_issued_total", "fencing numbers issued by this node"],
  });
  const members = m.gauge("peerd_ring_members", "ring members by state");
  return {
    event: byEvent({
      "lock.acquired": (e) => {
        grants.inc();
        const ms = num(e.waited_ms);
        if (ms !== undefined) wait.observe({}, ms / 1000);
      },
      "lock.released": () => releases.inc(),
      "lock.cancelled": () => cancelled.inc(),
      "token.regenerated": () => regen.inc(),
      "token.created": () => created.inc(),
      "token.stale": () => stale.inc(),
      "peer.down": () => peerDown.inc(),
    }),
    status: (s) => {
      gauges(s);
      counters(s);
      members.set({ state: "alive" }, len(s.alive));
      members.set({ state: "down" }, len(s.down));
    },
  };
};

const gossip: Table = (m) => {
  const spread = m.counter("peerd_gossip_rumours_started_total", "rumours started on this node");
  const learnedEv = m.counter("peerd_gossip_rumours_learned_events_total", "rumours learned");
  const hops = m.histogram("peerd_gossip_rumour_hops", "hops a learned rumour travelled", [
    1,
    2,
    3,
    4,
    6,
    8,
    12,
    16,
  ]);
  const changes = m.counter("peerd_gossip_member_changes_total", "membership changes seen");
  const members = m.gauge("peerd_gossip_members", "members by state");
  const sentByType = m.counter("peerd_gossip_messages_sent_total", "messages sent by type");
  const gauges = statusGauges(m, {
    keys: ["peerd_gossip_keys", "keys stored"],
    hot: ["peerd_gossip_hot_rumours", "rumours still being spread"],
    gossip_connections: ["peerd_gossip_connections", "open gossip connections"],
    incarnation: ["peerd_gossip_incarnation", "this node's SWIM incarnation"],
  });
  const counters = statusCounters(m, {
    rounds: ["peerd_gossip_rounds_total", "gossip rounds run"],
    learned: ["peerd_gossip_rumours_learned_total", "keys learned from peers"],
    duplicates: ["peerd_gossip_duplicates_total", "rumours received again"],
    discarded: ["peerd_gossip_discarded_total", "messages discarded"],
    bytes_sent: ["peerd_gossip_sent_bytes_total", "bytes sent to peers"],
    frames_sent: ["peerd_gossip_frames_sent_total", "frames sent to peers"],
    dropped: ["peerd_gossip_dropped_total", "messages dropped (peer unreachable or full)"],
  });
  return {
    event: byEvent({
      "rumor.spread": () => spread.inc(),
      "rumor.learned": (e) => {
        learnedEv.inc();
        const h = num(e.hops);
        if (h !== undefined) hops.observe({}, h);
      },
      "member.up": () => changes.inc({ to: "alive" }),
      "member.suspect": () => changes.inc({ to: "suspect" }),
      "member.down": () => changes.inc({ to: "dead" }),
    }),
    status: (s) => {
      gauges(s);
      counters(s);
      for (const [state, n] of Object.entries(obj(s.members))) members.set({ state }, n);
      for (const [type, n] of Object.entries(obj(s.sent_by_type))) {
        sentByType.set({ type }, Number(n));
      }
    },
  };
};

const multicast: Table = (m, _role) => {
  const delivered = m.counter("peerd_multicast_deliveries_total", "messages delivered in order");
  const sent = m.counter("peerd_multicast_sent_total", "messages multicast by this node");
  const views = m.counter("peerd_multicast_view_changes_total", "views installed");
  const discards = m.counter("peerd_multicast_discarded_total", "messages discarded");
  const suspects = m.counter("peerd_multicast_suspicions_total", "peers suspected");
  const latency = m.histogram(
    "peerd_multicast_delivery_latency_seconds",
    "from sending to delivering one's own message (it is then in the agreed order)",
  );
  const gauges = statusGauges(m, {
    view: ["peerd_multicast_view", "current view id"],
    clock: ["peerd_multicast_lamport_clock", "Lamport clock"],
    held: ["peerd_multicast_holdback", "messages in the hold-back queue"],
    outbox: ["peerd_multicast_outbox", "messages waiting to be sent"],
  });
  const members = m.gauge("peerd_multicast_members", "members of the current view");
  const member = m.gauge("peerd_multicast_member", "1 while this node is a member of a view");
  // own messages sent and not yet delivered, oldest first from `head`: a node delivers its
  // own messages in the order it sent them, so the one delivered is at the head (or a few
  // after it, when earlier ones were discarded) — no map churn per message
  let sentAt: Array<{ id: string; ts: number }> = [];
  let head = 0;
  return {
    event: byEvent({
      "mc.sent": (e) => {
        sent.inc();
        sentAt.push({ id: String(e.id), ts: e.ts });
        if (sentAt.length - head > 10_000) head++;
        if (head > 1024 && head * 2 > sentAt.length) {
          sentAt = sentAt.slice(head);
          head = 0;
        }
      },
      "mc.delivered": (e) => {
        delivered.inc();
        const id = typeof e.id === "string" ? e.id : String(e.id);
        const end = Math.min(sentAt.length, head + 64);
        for (let k = head; k < end; k++) {
          if (sentAt[k].id !== id) continue;
          latency.observe({}, (e.ts - sentAt[k].ts) / 1000);
          head = k + 1; // those before it were discarded: never delivered after it
          break;
        }
      },
      "view.changed": () => views.inc(),
      "mc.discard": () => discards.inc(),
      "mc.suspect": () => suspects.inc(),
    }),
    status: (s) => {
      gauges(s);
      members.set({}, len(s.members));
      member.set({}, s.state === "member");
    },
  };
};

const broker: Table = (m) => {
  const dropped = m.counter("peerd_broker_dropped_total", "publications dropped (unroutable)");
  const links = m.counter("peerd_broker_daemon_links_total", "daemon links by change");
  const backlog = m.gauge("peerd_broker_backlog", "messages waiting for a daemon");
  const connected = m.gauge("peerd_broker_daemon_connected", "1 while a daemon is connected");
  const gauges = statusGauges(m, {
    users: ["peerd_broker_users", "users known"],
    topics: ["peerd_broker_topics", "topics with subscribers"],
    subscriptions: ["peerd_broker_subscriptions", "subscriptions"],
  });
  const counters = statusCounters(m, {
    messages_in: ["peerd_broker_publications_in_total", "publications received from daemons"],
    messages_out: ["peerd_broker_publications_out_total", "copies sent to daemons"],
  });
  return {
    event: byEvent({
      "msg.dropped": () => dropped.inc(),
      "link.up": () => links.inc({ change: "up" }),
      "link.down": () => links.inc({ change: "down" }),
    }),
    status: (s) => {
      gauges(s);
      counters(s);
      m.resetGauge("peerd_broker_backlog");
      m.resetGauge("peerd_broker_daemon_connected");
      for (const [daemon, d] of Object.entries(obj(s.daemons))) {
        backlog.set({ daemon }, obj(d).backlog);
        connected.set({ daemon }, obj(d).connected === true);
      }
    },
  };
};

const daemon: Table = (m) => {
  const dropped = m.counter("peerd_daemon_dropped_total", "deliveries dropped");
  const users = m.counter("peerd_daemon_user_changes_total", "users created or destroyed");
  const inbox = m.gauge("peerd_daemon_inbox_depth", "messages waiting in a user's inbox");
  const gauges = statusGauges(m, {
    outbox: ["peerd_daemon_outbox_depth", "publications not yet acknowledged by the broker"],
    local_subscriptions: ["peerd_daemon_local_subscriptions", "subscriptions of local users"],
    inbox_memory_bytes: ["peerd_daemon_inbox_memory_bytes", "bytes of inboxes held in memory"],
  });
  const counters = statusCounters(m, {
    published: ["peerd_daemon_publications_in_total", "publications from local users"],
    delivered: ["peerd_daemon_deliveries_total", "messages delivered to local users"],
  });
  const link = m.gauge("peerd_daemon_broker_link_up", "1 while the broker link is up");
  const usersNow = m.gauge("peerd_daemon_users", "local users");
  return {
    event: byEvent({
      "msg.dropped": () => dropped.inc(),
      "user.created": () => users.inc({ change: "created" }),
      "user.destroyed": () => users.inc({ change: "destroyed" }),
    }),
    status: (s) => {
      gauges(s);
      counters(s);
      link.set({}, s.link === "up");
      usersNow.set({}, len(s.users));
      m.resetGauge("peerd_daemon_inbox_depth");
      for (const [user, depth] of Object.entries(obj(s.inbox))) {
        inbox.set({ user }, typeof depth === "number" ? depth : obj(depth).depth ?? depth);
      }
    },
  };
};

function queueLike(prefix: string): Table {
  return (m) => {
    const redelivered = m.counter(
      `${prefix}_redelivery_batches_total`,
      "batches of messages redelivered",
    );
    const declared = m.counter(`${prefix}_declared_total`, "queues and exchanges declared");
    const gauges = statusGauges(m, {
      queues: [`${prefix}_queues`, "queues"],
      messages: [`${prefix}_depth`, "messages ready in all queues"],
      unacked: [`${prefix}_unacked`, "messages delivered and not yet acknowledged"],
      engine_connections: [`${prefix}_connections`, "client connections"],
    });
    const counters = statusCounters(m, {
      published: [`${prefix}_published_total`, "messages published"],
      delivered: [`${prefix}_delivered_total`, "messages delivered"],
      acked: [`${prefix}_acked_total`, "messages acknowledged"],
      redelivered: [`${prefix}_redelivered_total`, "messages redelivered"],
      returned: [`${prefix}_returned_total`, "unroutable mandatory messages returned"],
      commits: [`${prefix}_commits_total`, "storage commits"],
    });
    return {
      event: byEvent({
        "msg.redelivered": () => redelivered.inc(),
        "q.declared": () => declared.inc({ what: "queue" }),
        "x.declared": () => declared.inc({ what: "exchange" }),
      }),
      status: (s) => {
        gauges(s);
        counters(s);
      },
    };
  };
}

const leader: Table = (m) => {
  const grants = m.counter("peerd_leader_grants_total", "turns granted to followers");
  const timeouts = m.counter("peerd_leader_grant_timeouts_total", "grants that timed out");
  const turns = m.counter("peerd_leader_turns_done_total", "turns finished");
  const writes = m.counter("peerd_leader_writes_total", "writes accepted");
  const gauges = statusGauges(m, {
    followers: ["peerd_leader_followers", "followers the job expects"],
    requested: ["peerd_leader_followers_requested", "followers that asked for a turn"],
    turn: ["peerd_leader_turn", "the turn granted last"],
    finals: ["peerd_leader_final_lists", "final lists received"],
  });
  return {
    event: byEvent({
      grant: () => grants.inc(),
      "grant.timeout": () => timeouts.inc(),
      "turn.done": () => turns.inc(),
      write: () => writes.inc(),
    }),
    status: gauges,
  };
};

const replica: Table = (m) => {
  const requests = m.counter("peerd_replica_requests_total", "client updates by kind");
  const waited = m.counter(
    "peerd_replica_queries_waited_total",
    "queries that waited for updates they depend on",
  );
  const gossipIn = m.counter("peerd_replica_gossip_total", "gossip messages handled");
  const lag = m.gauge(
    "peerd_replica_gossip_lag_updates",
    "updates a peer has that this replica has not seen (per peer, from vector timestamps)",
  );
  const ts = m.gauge("peerd_replica_value_timestamp", "this replica's value timestamp by entry");
  const active = m.gauge("peerd_replica_active", "1 while the replica is ACTIVE");
  const peerUp = m.gauge("peerd_replica_peer_up", "1 while a peer replica answers");
  const gauges = statusGauges(m, {
    log_size: ["peerd_replica_log_size", "updates in the log"],
    in_flight: ["peerd_replica_in_flight", "requests being served"],
    waiting_queries: ["peerd_replica_waiting_queries", "queries waiting for updates"],
    ratings: ["peerd_replica_ratings", "ratings stored"],
  });
  const counters = statusCounters(m, {
    executed: ["peerd_replica_updates_executed_total", "updates executed"],
    applied: ["peerd_replica_updates_applied_total", "updates applied"],
  });
  return {
    event: byEvent({
      "rm.update": () => requests.inc({ kind: "update" }),
      "rm.query": () => waited.inc(),
      "rm.gossip": () => gossipIn.inc(),
    }),
    status: (s) => {
      gauges(s);
      counters(s);
      active.set({}, s.status === "ACTIVE");
      const mine = obj(s.value_ts);
      m.resetGauge("peerd_replica_value_timestamp");
      for (const [k, v] of Object.entries(mine)) ts.set({ entry: k }, v);
      m.resetGauge("peerd_replica_gossip_lag_updates");
      m.resetGauge("peerd_replica_peer_up");
      for (const p of Array.isArray(s.peers) ? s.peers : []) {
        const peer = obj(p);
        const name = String(peer.name);
        peerUp.set({ peer: name }, peer.up === true);
        let behind = 0;
        for (const [k, v] of Object.entries(obj(peer.ts))) {
          behind += Math.max(0, Number(v) - Number(mine[k] ?? 0));
        }
        lag.set({ peer: name }, behind);
      }
    },
  };
};

const frontend: Table = (m) => {
  const routes = m.counter("peerd_frontend_requests_total", "requests routed by kind");
  const rmChanges = m.counter("peerd_frontend_replica_changes_total", "replica status changes");
  const up = m.gauge("peerd_frontend_replica_up", "1 while a replica answers");
  const counters = statusCounters(m, {
    requests: ["peerd_frontend_requests_served_total", "requests served"],
    failovers: ["peerd_frontend_failovers_total", "requests retried on another replica"],
  });
  return {
    event: byEvent({
      "fe.route": (e) => routes.inc({ kind: String(e.kind ?? e.op ?? "request") }),
      "fe.rm_status": () => rmChanges.inc(),
    }),
    status: (s) => {
      counters(s);
      m.resetGauge("peerd_frontend_replica_up");
      for (const rm of Array.isArray(s.rms) ? s.rms : []) {
        up.set({ replica: String(obj(rm).name) }, obj(rm).up === true);
      }
    },
  };
};

const lotteryServer: Table = (m) => {
  const batches = m.counter("peerd_lottery_batches_stored_total", "bet batches stored");
  const bets = m.counter("peerd_lottery_bets_stored_total", "bets stored");
  const agencies = m.counter("peerd_lottery_agencies_done_total", "agencies that finished");
  const draws = m.counter("peerd_lottery_draws_total", "draws held");
  const gauges = statusGauges(m, {
    bets: ["peerd_lottery_bets", "bets stored so far"],
    agencies: ["peerd_lottery_agencies", "agencies expected"],
    drawn: ["peerd_lottery_drawn", "1 once the draw is held"],
    pending_batches: ["peerd_lottery_pending_batches", "batches waiting to be stored"],
  });
  const done = m.gauge("peerd_lottery_agencies_done", "agencies done so far");
  return {
    event: byEvent({
      "batch.stored": (e) => {
        batches.inc();
        const n = num(e.count) ?? num(e.bets);
        if (n !== undefined) bets.inc({}, n);
      },
      "agency.done": () => agencies.inc(),
      draw: () => draws.inc(),
    }),
    status: (s) => {
      gauges(s);
      done.set({}, len(s.done));
    },
  };
};

const agency: Table = (m) => {
  const winners = m.counter("peerd_agency_winners_total", "winners received");
  const bets = m.gauge("peerd_agency_bets", "valid bets in the agency's file");
  const batches = m.gauge("peerd_agency_batches", "batches the agency's bets are sent in");
  const invalid = m.gauge("peerd_agency_invalid_lines", "invalid lines in the agency's file");
  const round = m.gauge("peerd_agency_round", "the lottery round the agency's bets are for");
  return {
    // an agency has no status of its own: what it does is in its events
    event: byEvent({
      ready: (e) => {
        bets.set({}, e.bets);
        batches.set({}, e.batches);
        invalid.set({}, e.invalid);
      },
      round: (e) => round.set({}, e.round),
      winners: (e) => winners.inc({}, num(e.count) ?? 0),
    }),
    status: () => {},
  };
};

const follower: Table = (m) => {
  const writes = m.counter("peerd_follower_writes_total", "values written in its turns");
  const ignored = m.counter(
    "peerd_follower_writes_ignored_total",
    "writes seen out of turn and ignored",
  );
  const gauges = statusGauges(m, {
    turn: ["peerd_follower_turn", "the turn the follower last saw granted"],
    values: ["peerd_follower_values", "values in the follower's list so far"],
  });
  return {
    event: byEvent({ write: () => writes.inc(), "write.ignored": () => ignored.inc() }),
    status: gauges,
  };
};

const echo: Table = (m) => {
  const counters = statusCounters(m, { echoed: ["peerd_echo_echoed_total", "frames echoed"] });
  return { event: () => {}, status: counters };
};

const TABLES: Record<string, Table> = {
  ring,
  gossip,
  multicast,
  broker,
  daemon,
  queue: queueLike("peerd_queue"),
  leader,
  follower,
  replica,
  frontend,
  "lottery-server": lotteryServer,
  agency,
  echo,
};

/** The roles that have a metrics table of their own. */
export const ROLES_WITH_METRICS: readonly string[] = Object.keys(TABLES);

/**
 * The metrics of `role` on `registry`, plus `peerd_events_total{ev}` for every event.
 * A role without a table of its own gets only the generic figures.
 */
export function roleMetrics(registry: MetricRegistry, role: string): RoleMetrics {
  const events = registry.counter("peerd_events_total", "events emitted, by name");
  const table = Object.hasOwn(TABLES, role) ? TABLES[role](registry, role) : undefined;
  // counted here per name (no label key built per event), copied at scrape time
  const counts = new Map<string, number>();
  return {
    event: (e) => {
      counts.set(e.ev, (counts.get(e.ev) ?? 0) + 1);
      table?.event(e);
    },
    status: (s) => {
      for (const [ev, n] of counts) events.set({ ev }, n);
      table?.status(s);
    },
  };
}
