/**
 * The bearer token of a node's HTTP endpoints when the cluster has a secret:
 * hex HMAC-SHA256(secret, "peerd-http"). `peerd http-token` prints it.
 *
 * @module
 */

/** The message the token is the HMAC of. */
export const HTTP_TOKEN_CONTEXT = "peerd-http";

const encoder = new TextEncoder();

/** Derives the HTTP bearer token from the cluster secret. */
export async function httpToken(secret: string): Promise<string> {
  const key = await crypto.subtle.importKey(
    "raw",
    encoder.encode(secret),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  const mac = new Uint8Array(
    await crypto.subtle.sign("HMAC", key, encoder.encode(HTTP_TOKEN_CONTEXT)),
  );
  return Array.from(mac, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Whether the request's `Authorization: Bearer …` matches `token` (compared in full). */
export function bearerMatches(request: Request, token: string): boolean {
  const header = request.headers.get("authorization") ?? "";
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
  if (!m) return false;
  const given = m[1];
  let diff = given.length ^ token.length;
  for (let i = 0; i < token.length; i++) {
    diff |= token.charCodeAt(i) ^ (given.charCodeAt(i % Math.max(1, given.length)) || 0);
  }
  return diff === 0;
}
