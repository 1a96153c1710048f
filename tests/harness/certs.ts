/**
 * Test certificates made with `openssl` (tests and benchmarks of TLS): a CA, a node
 * certificate (IP SAN 127.0.0.1, for server and client use) and a client one, as
 * `ca.crt`, `node.crt`/`node.key`, `client.crt`/`client.key` in a directory.
 *
 * @module
 */
const decoder = new TextDecoder();

/** Whether `openssl` runs here. */
export async function haveOpenssl(): Promise<boolean> {
  try {
    const out = await new Deno.Command("openssl", { args: ["version"], stdout: "null" }).output();
    return out.success;
  } catch {
    return false;
  }
}

async function openssl(dir: string, args: string[]): Promise<void> {
  const out = await new Deno.Command("openssl", { args, cwd: dir, stdout: "null", stderr: "piped" })
    .output();
  if (!out.success) throw new Error(`openssl ${args[0]}: ${decoder.decode(out.stderr)}`);
}

/** A CA, a node certificate (IP SAN 127.0.0.1, server and client use) and a client one. */
export async function makeCertificates(dir: string): Promise<void> {
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  await openssl(dir, [
    "req",
    "-x509",
    ...ec,
    "-keyout",
    "ca.key",
    "-out",
    "ca.crt",
    "-days",
    "2",
    "-subj",
    "/CN=peerd-test-ca",
    "-addext",
    "basicConstraints=critical,CA:TRUE",
    "-addext",
    "keyUsage=critical,keyCertSign",
  ]);
  for (const who of ["node", "client"]) {
    await openssl(dir, [
      "req",
      ...ec,
      "-keyout",
      `${who}.key`,
      "-out",
      `${who}.csr`,
      "-subj",
      `/CN=${who}`,
    ]);
    await Deno.writeTextFile(
      `${dir}/${who}.ext`,
      "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth,clientAuth\n",
    );
    await openssl(dir, [
      "x509",
      "-req",
      "-in",
      `${who}.csr`,
      "-CA",
      "ca.crt",
      "-CAkey",
      "ca.key",
      "-CAcreateserial",
      "-out",
      `${who}.crt`,
      "-days",
      "2",
      "-extfile",
      `${who}.ext`,
    ]);
  }
}
