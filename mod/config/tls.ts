/**
 * TLS settings from files: `--tls-cert`, `--tls-key`, `--tls-ca` (PEM) read into the texts
 * the wire needs, with errors that name the option (exit code 2).
 *
 * @module
 */
import { ConfigError } from "./peers.ts";

/** The three TLS options, as paths (commander attribute names). */
export interface TlsFileOptions {
  /** `--tls-cert`: this end's certificate chain. */
  tlsCert?: string;
  /** `--tls-key`: its private key. */
  tlsKey?: string;
  /** `--tls-ca`: the CA peers' certificates must chain to (mutual TLS on servers). */
  tlsCa?: string;
}

/** PEM texts loaded from {@linkcode TlsFileOptions} (the wire's `TlsConfig`). */
export interface LoadedTls {
  /** Certificate chain (PEM). */
  cert?: string;
  /** Private key (PEM). */
  key?: string;
  /** CA certificates (PEM). */
  caCerts?: string[];
}

function readPem(path: string, option: string, want: RegExp, what: string): string {
  let text: string;
  try {
    text = Deno.readTextFileSync(path);
  } catch (err) {
    throw new ConfigError(
      `${option} ${path}: cannot read: ${err instanceof Error ? err.message : String(err)}`,
    );
  }
  if (!want.test(text)) {
    throw new ConfigError(`${option} ${path}: not a PEM file with ${what}`);
  }
  return text;
}

/**
 * Reads the TLS files; undefined when none is given. `node`: the caller serves TLS, so a
 * certificate and its key are required whenever any TLS option is set (a node never falls
 * back to plaintext on its own port).
 */
export function loadTlsFiles(o: TlsFileOptions, options: { node: boolean }): LoadedTls | undefined {
  if (!o.tlsCert && !o.tlsKey && !o.tlsCa) return undefined;
  if (Boolean(o.tlsCert) !== Boolean(o.tlsKey)) {
    throw new ConfigError("--tls-cert and --tls-key go together: give both or neither");
  }
  if (options.node && !o.tlsCert) {
    throw new ConfigError(
      "--tls-ca needs --tls-cert and --tls-key on a node: it serves TLS on its own port",
    );
  }
  const tls: LoadedTls = {};
  if (o.tlsCert) {
    tls.cert = readPem(o.tlsCert, "--tls-cert", /-----BEGIN CERTIFICATE-----/, "a certificate");
  }
  if (o.tlsKey) {
    tls.key = readPem(o.tlsKey, "--tls-key", /-----BEGIN [A-Z ]*PRIVATE KEY-----/, "a private key");
  }
  if (o.tlsCa) {
    tls.caCerts = [readPem(o.tlsCa, "--tls-ca", /-----BEGIN CERTIFICATE-----/, "a CA certificate")];
  }
  return tls;
}
