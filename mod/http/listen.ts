/**
 * Parses `--http` values: `HOST:PORT`, `:PORT` or `PORT` (host 127.0.0.1: loopback unless
 * asked otherwise).
 *
 * @module
 */
import { ConfigError, type HostPort, parseHostPort } from "../config/mod.ts";

/** The loopback host `--http` binds when given only a port. */
export const HTTP_DEFAULT_HOST = "127.0.0.1";

/** Parses an `--http` value; throws `ConfigError` naming `where`. */
export function parseHttpListen(text: string, where = "--http"): HostPort {
  const t = text.trim();
  if (/^:?\d+$/.test(t)) {
    return parseHostPort(`${HTTP_DEFAULT_HOST}:${t.replace(/^:/, "")}`, where, {
      allowZero: true,
    });
  }
  if (!t.includes(":")) throw new ConfigError(`${where}: "${text}" is not host:port or a port`);
  return parseHostPort(t, where, { allowZero: true });
}
