/**
 * Who may log in over AMQP: users listed in the peers file (`"amqpUsers": {"name":
 * "password"}` at the top level), any user name with the cluster secret as password,
 * and `guest`/`guest` from a loopback address only (as RabbitMQ does), unless the peers
 * file gives `guest` a password of its own.
 *
 * @module
 */

/** Options of {@linkcode amqpAuthenticator}. */
export interface AmqpAuthOptions {
  /** Users and passwords (peers file `amqpUsers`). */
  users?: Record<string, string>;
  /** The cluster secret: any user name with it as password is let in. */
  secret?: string;
  /** Let `guest`/`guest` in from loopback. @default {true} */
  guest?: boolean;
}

function constantTimeEqual(a: string, b: string): boolean {
  const x = new TextEncoder().encode(a);
  const y = new TextEncoder().encode(b);
  let diff = x.length ^ y.length;
  for (let i = 0; i < Math.max(x.length, y.length); i++) diff |= (x[i] ?? 0) ^ (y[i] ?? 0);
  return diff === 0;
}

/** Whether `hostname` is a loopback address. */
export function isLoopback(hostname: string): boolean {
  return hostname.startsWith("127.") || hostname === "::1" || hostname === "::ffff:127.0.0.1";
}

/** Builds the login check of the AMQP listener. */
export function amqpAuthenticator(
  options: AmqpAuthOptions,
): (user: string, password: string, mechanism: string, remote: Deno.NetAddr) => boolean {
  const users = options.users ?? {};
  return (user, password, _mechanism, remote) => {
    if (Object.hasOwn(users, user)) return constantTimeEqual(users[user], password);
    if (options.secret && constantTimeEqual(options.secret, password)) return true;
    if ((options.guest ?? true) && user === "guest" && password === "guest") {
      return isLoopback(remote.hostname);
    }
    return false;
  };
}
