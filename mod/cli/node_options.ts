/**
 * A node's entry in peers.json may carry the options of its role (`"fail-after": 5`):
 * every key of every node is checked against its role's options, and this node's values
 * apply where no flag or environment variable gave one.
 *
 * @module
 */
import {
  checkValueJson,
  type ClusterConfig,
  ConfigError,
  type NodeEntry,
  ValueError,
} from "../config/mod.ts";
import { optionFlag, type RoleDefinition, type RoleOption } from "../process/mod.ts";

/** The keys of a node entry that are not role options (`http`: where its HTTP endpoints listen). */
export const NODE_KEYS = ["name", "host", "port", "role", "neighbours", "http"];

/** The option of `role` a peers.json key names (`fail-after` or `failAfter`), with its attribute name. */
function optionOf(role: RoleDefinition, key: string): [string, RoleOption] | undefined {
  return Object.entries(role.options ?? {}).find(([attr]) =>
    attr === key || optionFlag(attr) === `--${key}`
  );
}

/**
 * Every key of every node in a peers file must be one of the node keys or an option of
 * the node's role (unknown roles and misspelt keys are config errors, exit 2).
 */
export function checkNodeKeys(
  cluster: ClusterConfig,
  running: RoleDefinition,
  roles: readonly RoleDefinition[],
): void {
  cluster.nodes.forEach((node, i) => {
    const where = `${cluster.source}: nodes[${i}] "${node.name}"`;
    const def = node.role === undefined ? running : roles.find((r) => r.name === node.role);
    if (!def) {
      throw new ConfigError(
        `${where}: unknown role "${node.role}"; roles are ${roles.map((r) => r.name).join(", ")}`,
      );
    }
    for (const key of Object.keys(node.options)) {
      if (NODE_KEYS.includes(key) || optionOf(def, key)) continue;
      const options = Object.keys(def.options ?? {}).map((attr) => optionFlag(attr).slice(2));
      throw new ConfigError(
        `${where}: unknown key "${key}"; a node takes ${NODE_KEYS.join(", ")}${
          options.length ? ` and the options of role ${def.name} (${options.join(", ")})` : ""
        }`,
      );
    }
  });
}

/**
 * This node's role options from the peers file, by attribute name, for the options that
 * no flag or environment variable set (`sourceOf` is commander's `getOptionValueSource`);
 * a value of the wrong type or outside the choices is a config error naming the key.
 */
export function nodeOptionValues(
  role: RoleDefinition,
  self: NodeEntry,
  cluster: ClusterConfig,
  sourceOf: (attribute: string) => string | undefined,
): Record<string, unknown> {
  const values: Record<string, unknown> = {};
  const index = cluster.nodes.indexOf(self);
  for (const [key, value] of Object.entries(self.options)) {
    const found = optionOf(role, key);
    if (!found) continue; // checked by checkNodeKeys
    const [attr, spec] = found;
    const source = sourceOf(attr);
    if (source !== undefined && source !== "default") continue;
    try {
      values[attr] = checkValueJson(spec, value);
    } catch (err) {
      if (err instanceof ValueError) {
        throw new ConfigError(`${cluster.source}: nodes[${index}].${key}: ${err.message}`);
      }
      throw err;
    }
  }
  return values;
}
