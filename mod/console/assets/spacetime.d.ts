/** Types of spacetime.js (the space-time diagram layout and SVG writer). */

/** Options of {@linkcode layoutSpaceTime}. */
export interface SpaceTimeOptions {
  /** Width of the drawing in px. @default {1000} */
  width?: number;
  /** `order`: events evenly spaced in time order; `time`: to scale. @default {"order"} */
  axis?: "order" | "time";
  /** Lanes in this order (others follow as they appear). */
  nodes?: string[];
  /** Nodes known to be down, with the time (ms) they were seen down. */
  down?: Record<string, number>;
  /** Keep only the last this many messages. */
  maxMessages?: number;
}

/** One arrow: a message copy from its sender to a node that delivered it. */
export interface SpaceTimeArrow {
  id: string;
  from: string;
  to: string;
  x1: number;
  y1: number;
  x2: number;
  y2: number;
  lamport: number;
  /** Whether the send is in the events (else the arrow starts on the sender's lane, dashed). */
  sent: boolean;
}

/** A laid-out diagram. */
export interface SpaceTimeLayout {
  width: number;
  height: number;
  axis: "order" | "time";
  t0: number;
  t1: number;
  lanes: Array<{ node: string; y: number }>;
  arrows: SpaceTimeArrow[];
  sends: Array<{ id: string; node: string; x: number; y: number; lamport: number }>;
  deliveries: Array<
    { node: string; id: string; x: number; y: number; idx: number; lamport: number }
  >;
  views: Array<{ node: string; x: number; y: number; view: number; members: string[] }>;
  ends: Array<{ node: string; x: number; y: number; how: string }>;
  /** Each node's delivered ids in delivery order. */
  orders: Record<string, string[]>;
  /** Whether the nodes' orders agree. */
  sameOrder: boolean;
}

/** Lays out the space-time diagram of multicast events. */
export function layoutSpaceTime(
  events: ReadonlyArray<Record<string, unknown>>,
  options?: SpaceTimeOptions,
): SpaceTimeLayout;

/** A stable colour per message id. */
export function colourOf(id: string): string;

/** Renders a layout as an SVG document. */
export function renderSpaceTimeSvg(layout: SpaceTimeLayout, options?: { title?: string }): string;
