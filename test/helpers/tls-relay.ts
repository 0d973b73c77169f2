/**
 * A TLS-terminating RTMP ingest for rtmps:// tests: a Node TLS server on a
 * free port that pipes each connection to a plain RTMP server (the test
 * origin), as a CDN's TLS front does before its RTMP ingest. Its key and
 * certificate are made at test time with openssl (Debian's), self-signed for
 * 127.0.0.1: trusted by the service only when given as VLIVE_RTMPS_CA_FILE.
 */
import { connect, type Socket } from 'node:net';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createServer, type TLSSocket } from 'node:tls';
import { run } from './media.js';

export interface TestCert {
  readonly certFile: string;
  readonly keyFile: string;
}

/** A self-signed P-256 certificate for IP 127.0.0.1, valid one day, in `dir` under `name`. */
export async function makeCert(dir: string, name: string): Promise<TestCert> {
  const certFile = join(dir, `${name}.crt`);
  const keyFile = join(dir, `${name}.key`);
  const args = ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1'];
  await run('openssl', [...args, '-subj', `/CN=${name}`, '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', keyFile, '-out', certFile], 20_000);
  return { certFile, keyFile };
}

/** Listens with `cert` on a free port and pipes every connection to 127.0.0.1:`rtmpPort`. */
export async function startTlsRelay(cert: TestCert, rtmpPort: number): Promise<{ port: number; stop: () => Promise<void> }> {
  const sockets = new Set<Socket>();
  const server = createServer({ cert: await readFile(cert.certFile), key: await readFile(cert.keyFile) }, (tls: TLSSocket) => {
    const plain = connect(rtmpPort, '127.0.0.1');
    for (const s of [tls, plain]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => {
        tls.destroy();
        plain.destroy();
      });
    }
    tls.pipe(plain).pipe(tls);
  });
  // A client that refuses our certificate ends its handshake: nothing to do but let it go.
  server.on('tlsClientError', () => undefined);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('the TLS relay has no port');
  return {
    port: address.port,
    stop: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
