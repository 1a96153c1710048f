/**
 * The catalogue form of a protocol: one entry per frame type, the single source of a
 * subsystem's message table in its docs page (a test compares the two, both ways).
 *
 * @module
 */

/** One frame type of a protocol, as the docs' message table shows it. */
export interface FrameSpec {
  /** The `t` value. */
  readonly t: string;
  /** Who sends it to whom: `app → daemon`. */
  readonly route: string;
  /** Its fields besides `t` and `rid`, optional ones marked `?`: `user, topic, own?`; `""` for none. */
  readonly fields: string;
  /** The frame that answers it with its fields (`created {user}`), `""` when none. */
  readonly reply: string;
  /** What it does, in one sentence. */
  readonly note: string;
}

/** The frame types of `catalogue` that `route` carries, in catalogue order. */
export function framesOf(catalogue: readonly FrameSpec[], route: string): string[] {
  return catalogue.filter((f) => f.route === route).map((f) => f.t);
}

/** The names in a {@linkcode FrameSpec} `fields` string, as written (`"a, b?"` → `"a" | "b?"`). */
type FieldList<S extends string> = S extends "" ? never
  : S extends `${infer A}, ${infer B}` ? A | FieldList<B>
  : S;

/** The required field names of a `fields` string (`"a, b?"` → `"a"`). */
export type RequiredFields<S extends string> = Exclude<FieldList<S>, `${string}?`>;

/** The optional field names of a `fields` string (`"a, b?"` → `"b"`). */
export type OptionalFields<S extends string> = FieldList<S> extends infer F
  ? F extends `${infer N}?` ? N : never
  : never;

/** The keys of `M` that are not optional. */
type RequiredKeys<M> = { [K in keyof M]-?: object extends Pick<M, K> ? never : K }[keyof M];

/** Whether two unions of names are the same set. */
type SameNames<A, B> = [A] extends [B] ? [B] extends [A] ? true : false : false;

/**
 * What differs between a catalogue `C` (declared `as const`) and the union `M` of the
 * message types the code sends, keyed by `K` (`"t"`, or `"type"` for JSON bodies): one
 * string per problem, `never` when they agree frame for frame and field for field. Used as
 * `const ok: [FrameMismatch<…>] extends [never] ? true : FrameMismatch<…> = true`, so a
 * drift is a type error that names it.
 */
export type FrameMismatch<
  C extends readonly FrameSpec[],
  M extends Record<K, string>,
  K extends string = "t",
> = {
  [T in C[number]["t"] | M[K]]: [Extract<M, Record<K, T>>] extends [never]
    ? `${T}: in the catalogue, not a message type`
    : [Extract<C[number], { t: T }>] extends [never]
      ? `${T}: a message type missing in the catalogue`
    : SameNames<
      Exclude<RequiredKeys<Extract<M, Record<K, T>>>, K>,
      RequiredFields<Extract<C[number], { t: T }>["fields"]>
    > extends false ? `${T}: the required fields differ`
    : SameNames<
      Exclude<keyof Extract<M, Record<K, T>>, RequiredKeys<Extract<M, Record<K, T>>> | K>,
      OptionalFields<Extract<C[number], { t: T }>["fields"]>
    > extends false ? `${T}: the optional fields differ`
    : never;
}[C[number]["t"] | M[K]];

/** The required and optional field names of a `fields` string. */
export function fieldNames(fields: string): { required: string[]; optional: string[] } {
  const names = fields.split(",").map((f) => f.trim()).filter((f) => f !== "" && f !== "…");
  return {
    required: names.filter((f) => !f.endsWith("?")),
    optional: names.filter((f) => f.endsWith("?")).map((f) => f.slice(0, -1)),
  };
}

/**
 * What is wrong with `frame` by `catalogue`: `[]` when its type is in the catalogue on one
 * of `routes` (every route when omitted), it carries every required field and nothing
 * undeclared (`t`, `rid` and the fields listed in `ignore` aside; a `…` in the fields
 * allows any others).
 */
export function frameProblems(
  catalogue: readonly FrameSpec[],
  frame: object,
  options: { routes?: readonly string[]; key?: string; ignore?: readonly string[] } = {},
): string[] {
  const key = options.key ?? "t";
  const t = String((frame as Record<string, unknown>)[key]);
  const spec = catalogue.find((f) =>
    f.t === t && (options.routes === undefined || options.routes.includes(f.route))
  );
  if (!spec) return [`${t}: not in the catalogue${options.routes ? ` on ${options.routes}` : ""}`];
  const { required, optional } = fieldNames(spec.fields);
  const skip = new Set([key, "rid", ...(options.ignore ?? [])]);
  const open = spec.fields.includes("…");
  const out: string[] = [];
  for (const f of required) if (!(f in frame)) out.push(`${t}: field ${f} missing`);
  for (const f of Object.keys(frame)) {
    if (!open && !skip.has(f) && !required.includes(f) && !optional.includes(f)) {
      out.push(`${t}: field ${f} not in the catalogue`);
    }
  }
  return out;
}

/**
 * The replies of a catalogue as entries of their own (`"created {user}"` → `t: "created"`,
 * `fields: "user"`), each on the route of its request, so {@linkcode frameProblems} checks
 * replies too. Entries without a reply give none.
 */
export function repliesOf(catalogue: readonly FrameSpec[]): FrameSpec[] {
  const out: FrameSpec[] = [];
  for (const f of catalogue) {
    const m = /^(\S+)(?: \{(.*)\})?$/.exec(f.reply);
    if (m) out.push({ t: m[1], route: f.route, fields: m[2] ?? "", reply: "", note: "" });
  }
  return out;
}
