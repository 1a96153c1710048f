/**
 * Names of exchanges, queues and consumer tags: what the engine accepts.
 *
 * @module
 */
import { ProtocolError } from "../wire/mod.ts";
import { MAX_NAME_LENGTH, QueueErrorCode } from "./protocol.ts";

const NAME_RE = /^[\w.:\-/@]*$/;

/** Throws 403 when `name` is too long or holds other than letters, digits and `- _ . : / @`. */
export function checkName(name: string, what: string): void {
  if (name.length > MAX_NAME_LENGTH) {
    throw new ProtocolError(
      QueueErrorCode.AccessRefused,
      `Cannot use ${what} name: longer than ${MAX_NAME_LENGTH}`,
    );
  }
  if (!NAME_RE.test(name)) {
    throw new ProtocolError(
      QueueErrorCode.AccessRefused,
      `Cannot use ${what} "${name.slice(0, 40)}": only letters, digits and - _ . : / @`,
    );
  }
}
