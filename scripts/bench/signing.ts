/**
 * Signing: identity-token (ES256 JWT) mints per second, in this process, each
 * measurement bounded by time:
 *  - credport's mintIdentityToken with the file key (FileKeySigner);
 *  - jose's SignJWT with the same PKCS#8 key, same header and claims: the
 *    baseline for the file key;
 *  - credport's mintIdentityToken with a P-256 key on a SoftHSM2 token
 *    (Pkcs11Signer through the native addon, signing off the main thread).
 *    jose cannot sign with a PKCS#11 key, so this row is compared with the
 *    file key's jose figure, and the report says so.
 * Each is run one at a time (what one refresh does) and with 8 in flight
 * (what a refresh round over many profiles does). One token from each is
 * verified with jose first, so the loop measures tokens that are valid.
 */
import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignJWT, importJWK, importPKCS8, jwtVerify } from 'jose';
import { mintIdentityToken, type MintOptions } from '../../daemon/identity/jwt.js';
import { FileKeySigner } from '../../daemon/keys/file/signer.js';
import { loadAddon } from '../../daemon/keys/native/addon.js';
import { Pkcs11Signer } from '../../daemon/keys/pkcs11/signer.js';
import type { KeySigner } from '../../daemon/keys/signer.js';

export interface SigningRow {
  name: string;
  /** Mints per second, one at a time. */
  serial: number;
  /** Mints per second with CONCURRENCY in flight. */
  concurrent: number;
  /** What this row is compared with, and the ratio (this / baseline, one at a time). */
  baseline?: string;
  ratio?: number;
  note?: string;
}

export interface SigningResults {
  secondsEach: number;
  concurrency: number;
  rows: SigningRow[];
  skipped: Record<string, string>;
}

export interface SigningOptions {
  secondsEach: number;
  log: (line: string) => void;
}

export const CONCURRENCY = 8;

const MINT: MintOptions = {
  issuer: 'https://issuer.example',
  subject: 'device:bench',
  audience: 'sts.amazonaws.com',
  lifetimeSeconds: 300,
};

/** Runs `fn` for `seconds` with `concurrency` calls in flight; returns completed calls per second. */
async function rate(seconds: number, concurrency: number, fn: () => Promise<unknown>): Promise<number> {
  const end = performance.now() + seconds * 1000;
  let done = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < end) {
        await fn();
        done++;
      }
    }),
  );
  return done / ((performance.now() - t0) / 1000);
}

function mintWith(signer: KeySigner): () => Promise<string> {
  return async () => (await mintIdentityToken(signer, MINT)).token;
}

/** The same token as mintIdentityToken makes (header, claims, fresh jti), signed by jose. */
function joseMint(key: Awaited<ReturnType<typeof importPKCS8>>, kid: string): () => Promise<string> {
  return () => {
    const iat = Math.floor(Date.now() / 1000);
    return new SignJWT({
      iss: MINT.issuer,
      sub: MINT.subject,
      aud: MINT.audience,
      iat,
      nbf: iat,
      exp: iat + MINT.lifetimeSeconds,
      jti: randomUUID(),
    })
      .setProtectedHeader({ alg: 'ES256', typ: 'JWT', kid })
      .sign(key);
  };
}

async function verifies(token: string, signer: KeySigner): Promise<void> {
  const key = await importJWK({ ...signer.publicJwk() }, 'ES256');
  await jwtVerify(token, key, { issuer: MINT.issuer, audience: MINT.audience });
}

const SOFTHSM_MODULES = [
  '/usr/lib/softhsm/libsofthsm2.so',
  '/usr/lib64/pkcs11/libsofthsm2.so',
  '/usr/local/lib/softhsm/libsofthsm2.so',
  '/opt/homebrew/lib/softhsm/libsofthsm2.so',
];

/** A throwaway SoftHSM2 token in its own directory (never the machine's tokens), or why there is none. */
function softHsmToken(dir: string): { module: string; label: string; pin: string } | { skipped: string } {
  const module = process.env.SOFTHSM2_MODULE ?? SOFTHSM_MODULES.find((p) => existsSync(p));
  if (!module) return { skipped: 'SoftHSM2 is not installed (apt-get install softhsm2)' };
  const addon = loadAddon();
  if (!addon.available) return { skipped: `the native addon is unavailable: ${addon.reason}` };
  const tokenDir = join(dir, 'tokens');
  mkdirSync(tokenDir);
  const conf = join(dir, 'softhsm2.conf');
  writeFileSync(conf, `directories.tokendir = ${tokenDir}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n`);
  // SoftHSM reads this in C_Initialize, which the addon calls on first use in this process.
  process.env.SOFTHSM2_CONF = conf;
  const label = 'credport-bench';
  const pin = '1234';
  const r = spawnSync('softhsm2-util', ['--init-token', '--free', '--label', label, '--pin', pin, '--so-pin', '5678'], {
    env: process.env,
    encoding: 'utf8',
  });
  if (r.error) return { skipped: `softhsm2-util is not available: ${r.error.message}` };
  if (r.status !== 0) return { skipped: `softhsm2-util --init-token failed: ${(r.stderr || r.stdout).trim()}` };
  return { module, label, pin };
}

export async function runSigning(o: SigningOptions): Promise<SigningResults> {
  const dir = mkdtempSync(join(tmpdir(), 'credport-bench-sign-'));
  const rows: SigningRow[] = [];
  const skipped: Record<string, string> = {};
  const measure = async (name: string, fn: () => Promise<unknown>): Promise<SigningRow> => {
    const serial = await rate(o.secondsEach, 1, fn);
    const concurrent = await rate(o.secondsEach, CONCURRENCY, fn);
    o.log(
      `  ${name.padEnd(48)} ${Math.round(serial).toString().padStart(6)} /s one at a time, ${Math.round(concurrent).toString().padStart(6)} /s with ${CONCURRENCY} in flight`,
    );
    return { name, serial, concurrent };
  };
  try {
    const keyPath = join(dir, 'device-key.pem');
    const file = FileKeySigner.create(keyPath);
    const joseKey = await importPKCS8(readFileSync(keyPath, 'utf8'), 'ES256');
    const fileMint = mintWith(file);
    const jose = joseMint(joseKey, file.thumbprint);
    await verifies(await fileMint(), file);
    await verifies(await jose(), file);
    // A short untimed run of each first, so neither is measured while still being compiled.
    await rate(Math.min(0.5, o.secondsEach / 4), 1, fileMint);
    await rate(Math.min(0.5, o.secondsEach / 4), 1, jose);
    const fileRow = await measure('credport mintIdentityToken, file key', fileMint);
    const joseRow = await measure('jose SignJWT, same file key (baseline)', jose);
    rows.push({ ...fileRow, baseline: joseRow.name, ratio: fileRow.serial / joseRow.serial }, joseRow);

    const hsmDir = join(dir, 'softhsm');
    mkdirSync(hsmDir);
    const token = softHsmToken(hsmDir);
    if ('skipped' in token) {
      skipped.softhsm = token.skipped;
      o.log(`  SoftHSM2 skipped: ${token.skipped}`);
    } else {
      const hsm = await Pkcs11Signer.create({
        module: token.module,
        tokenLabel: token.label,
        keyLabel: 'bench',
        pin: { env: 'CREDPORT_BENCH_PIN', value: token.pin },
      });
      try {
        const hsmMint = mintWith(hsm);
        await verifies(await hsmMint(), hsm);
        await rate(Math.min(0.5, o.secondsEach / 4), 1, hsmMint);
        const row = await measure('credport mintIdentityToken, SoftHSM2 (PKCS#11)', hsmMint);
        rows.push({
          ...row,
          baseline: joseRow.name,
          ratio: row.serial / joseRow.serial,
          note: 'jose cannot sign with a PKCS#11 key: compared with jose on the file key',
        });
      } finally {
        await hsm.close();
      }
    }
    return { secondsEach: o.secondsEach, concurrency: CONCURRENCY, rows, skipped };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
