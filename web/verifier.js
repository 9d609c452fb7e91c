// Cairn's in-page verifier (issue 22): everything the explorer shows is
// checked here, in the browser, against keys the user trusts. No
// dependencies: SHA-256 and Ed25519 come from WebCrypto (browsers and
// Node 20 have both).
//
// - RFC 9162 §2.1.3.2 inclusion and §2.1.4.2 consistency verification
//   (RFC 6962 hashing: leaf = SHA-256(0x00 || data), node = SHA-256(0x01 ||
//   left || right)).
// - C2SP signed notes (c2sp.org/signed-note, Go's sumdb/note): verifier
//   keys `name+keyid+base64(alg || key)`, key ID = first 4 bytes of
//   SHA-256(name || "\n" || alg || key); signatures by unknown keys are
//   ignored, a bad signature by a known key rejects the note.
// - C2SP checkpoints (c2sp.org/tlog-checkpoint) and cosignatures
//   (c2sp.org/tlog-cosignature: alg 0x04, a signature over
//   "cosignature/v1\ntime <T>\n" || checkpoint body, the timestamp in the
//   first 8 bytes).
// - C2SP tlog-proof (c2sp.org/tlog-proof@v1): an offline receipt.
//
// Sizes and indexes are BigInt (trees may hold up to 2^64 - 1 leaves).
//
// Where WebCrypto lacks Ed25519, signatures are checked with @noble/ed25519
// (vendored in vendor/, loaded only then), with RFC 8032's strict rules.

const subtle = globalThis.crypto.subtle;

/** Tests set `forceFallback` to run every check through @noble/ed25519. */
export const options = { forceFallback: false };

let noble;

/** An Ed25519 verification key in WebCrypto, or null where it has none. */
async function importEd25519(key) {
  if (options.forceFallback) return null;
  try {
    return await subtle.importKey('raw', key, { name: 'Ed25519' }, false, ['verify']);
  } catch {
    return null;
  }
}

/** Ed25519 verification: WebCrypto, else the vendored @noble/ed25519. */
async function ed25519Verify(k, sig, msg) {
  if (k.cryptoKey) return subtle.verify('Ed25519', k.cryptoKey, sig, msg);
  noble ??= import('./vendor/noble-ed25519.js');
  const ed = await noble;
  try {
    return await ed.verifyAsync(sig, msg, k.key, { zip215: false });
  } catch {
    return false;
  }
}
const enc = new TextEncoder();

/** A verification failure, with a message fit to show a person. */
export class VerifyError extends Error {}

function fail(msg) {
  throw new VerifyError(msg);
}

/** Base64 (standard, padded) to bytes; throws VerifyError. */
export function fromBase64(s) {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(s) || s.length % 4 !== 0) {
    fail(`not base64: ${JSON.stringify(s.slice(0, 40))}`);
  }
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/** Bytes to base64 (standard, padded). */
export function toBase64(b) {
  let s = '';
  for (const c of b) s += String.fromCharCode(c);
  return btoa(s);
}

/** Bytes to lowercase hex. */
export function toHex(b) {
  return Array.from(b, (c) => c.toString(16).padStart(2, '0')).join('');
}

/** Lowercase hex to bytes. */
export function fromHex(s) {
  if (!/^([0-9a-f]{2})*$/.test(s)) fail('not hex');
  const out = new Uint8Array(s.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(s.slice(2 * i, 2 * i + 2), 16);
  return out;
}

function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let i = 0;
  for (const p of parts) {
    out.set(p, i);
    i += p.length;
  }
  return out;
}

function equal(a, b) {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a[i] ^ b[i];
  return d === 0;
}

/** SHA-256. */
export async function sha256(bytes) {
  return new Uint8Array(await subtle.digest('SHA-256', bytes));
}

/** RFC 6962 leaf hash: SHA-256(0x00 || data). */
export function leafHash(data) {
  return sha256(concat(new Uint8Array([0]), data));
}

/** RFC 6962 interior node: SHA-256(0x01 || left || right). */
export function nodeHash(left, right) {
  return sha256(concat(new Uint8Array([1]), left, right));
}

/** The root of a list of leaf hashes (RFC 6962 MTH), for small trees. */
export async function rootOf(leafHashes) {
  const n = leafHashes.length;
  if (n === 0) return sha256(new Uint8Array(0));
  if (n === 1) return leafHashes[0];
  let k = 1;
  while (k * 2 < n) k *= 2;
  return nodeHash(await rootOf(leafHashes.slice(0, k)), await rootOf(leafHashes.slice(k)));
}

function big(v, what) {
  const b = typeof v === 'bigint' ? v : BigInt(v);
  if (b < 0n || b >= 1n << 64n) fail(`${what} out of range`);
  return b;
}

/**
 * RFC 9162 §2.1.3.2: is `leaf` (a leaf hash) at `index` in the tree of
 * `size` leaves whose root is `root`? Throws VerifyError if not.
 */
export async function verifyInclusion(index, size, leaf, proof, root) {
  let fn = big(index, 'index');
  let sn = big(size, 'size');
  if (fn >= sn) fail(`index ${fn} is not in a tree of ${sn} leaves`);
  sn -= 1n;
  let r = leaf;
  for (const p of proof) {
    if (sn === 0n) fail('the inclusion proof is too long');
    if ((fn & 1n) === 1n || fn === sn) {
      r = await nodeHash(p, r);
      if ((fn & 1n) === 0n) {
        while ((fn & 1n) === 0n && fn !== 0n) {
          fn >>= 1n;
          sn >>= 1n;
        }
      }
    } else {
      r = await nodeHash(r, p);
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  if (sn !== 0n) fail('the inclusion proof is too short');
  if (!equal(r, root)) fail('the inclusion proof does not lead to the checkpoint root');
}

/**
 * RFC 9162 §2.1.4.2: is the tree (`size2`, `root2`) an extension of
 * (`size1`, `root1`)? Throws VerifyError if not. Size 0 is refused (there
 * is nothing to prove), as by Cairn's and Go's verifiers.
 */
export async function verifyConsistency(size1, size2, proof, root1, root2) {
  const first = big(size1, 'old size');
  const second = big(size2, 'new size');
  if (first === 0n) fail('consistency from an empty tree proves nothing');
  if (first > second) fail(`old size ${first} is larger than new size ${second}`);
  if (first === second) {
    if (proof.length !== 0) fail('a proof between equal sizes must be empty');
    if (!equal(root1, root2)) fail('two different roots for one size: a fork');
    return;
  }
  if (proof.length === 0) fail('an empty consistency proof between different sizes');
  let path = proof;
  if ((first & (first - 1n)) === 0n) path = [root1, ...proof];
  let fn = first - 1n;
  let sn = second - 1n;
  while ((fn & 1n) === 1n) {
    fn >>= 1n;
    sn >>= 1n;
  }
  let fr = path[0];
  let sr = path[0];
  for (const c of path.slice(1)) {
    if (sn === 0n) fail('the consistency proof is too long');
    if ((fn & 1n) === 1n || fn === sn) {
      fr = await nodeHash(c, fr);
      sr = await nodeHash(c, sr);
      if ((fn & 1n) === 0n) {
        while ((fn & 1n) === 0n && fn !== 0n) {
          fn >>= 1n;
          sn >>= 1n;
        }
      }
    } else {
      sr = await nodeHash(sr, c);
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  if (sn !== 0n) fail('the consistency proof is too short');
  if (!equal(fr, root1)) fail('the consistency proof does not match the old root');
  if (!equal(sr, root2)) fail('the consistency proof does not match the new root: the log forked');
}

const ALG_ED25519 = 0x01;
const ALG_COSIGNATURE = 0x04;

async function keyId(name, alg, key) {
  const h = await sha256(concat(enc.encode(name + '\n'), new Uint8Array([alg]), key));
  return h.slice(0, 4);
}

/**
 * Parses a verifier key `name+keyid+base64(alg || key)`. Ed25519 note keys
 * (alg 1) and cosignature keys (alg 4) are accepted; the key ID must
 * match the key.
 */
export async function parseVerifierKey(vkey) {
  const m = /^([^+\s]+)\+([0-9a-f]{8})\+([A-Za-z0-9+/=]+)$/.exec(vkey.trim());
  if (!m) fail('a verifier key is name+keyid+base64');
  const [, name, idHex, b64] = m;
  const raw = fromBase64(b64);
  if (raw.length !== 33) fail('a verifier key holds one algorithm byte and 32 key bytes');
  const alg = raw[0];
  if (alg !== ALG_ED25519 && alg !== ALG_COSIGNATURE) fail(`unknown key algorithm ${alg}`);
  const key = raw.slice(1);
  const id = await keyId(name, alg, key);
  if (toHex(id) !== idHex) fail(`the key ID of ${name} does not match its key`);
  const cryptoKey = await importEd25519(key);
  return { name, id, alg, key, cryptoKey, text: vkey.trim() };
}

/**
 * Splits a signed note into its text and signature lines (Go's
 * sumdb/note rules: the signatures follow the last blank line, each
 * "— name base64", at most 100).
 */
export function parseNote(note) {
  if (!note.endsWith('\n')) fail('a note ends with a newline');
  const split = note.lastIndexOf('\n\n');
  if (split < 0) fail('a note has a blank line before its signatures');
  const text = note.slice(0, split + 1);
  const lines = note.slice(split + 2, -1).split('\n');
  if (lines.length > 100) fail('too many signatures');
  const sigs = lines.map((l) => {
    const m = /^\u2014 (\S+) ([A-Za-z0-9+/=]+)$/.exec(l);
    if (!m) fail(`not a signature line: ${JSON.stringify(l.slice(0, 60))}`);
    const raw = fromBase64(m[2]);
    if (raw.length < 5) fail('a signature is too short');
    return { name: m[1], id: raw.slice(0, 4), sig: raw.slice(4) };
  });
  return { text, sigs };
}

/**
 * Verifies a note's signatures with the trusted `verifiers` (parsed
 * keys). Returns { text, verified: [names], cosignatures: [{name,
 * timestamp}] }. A signature by a key the caller does not know is ignored;
 * a bad one by a known key rejects the note; at least one known note key
 * (alg 1) must have signed.
 */
export async function verifyNote(note, verifiers) {
  const { text, sigs } = parseNote(note);
  const body = enc.encode(text);
  const verified = [];
  const cosignatures = [];
  for (const s of sigs) {
    const v = verifiers.find((k) => k.name === s.name && equal(k.id, s.id));
    if (!v) continue;
    if (v.alg === ALG_ED25519) {
      if (s.sig.length !== 64 || !(await ed25519Verify(v, s.sig, body))) {
        fail(`the signature by ${v.name} does not verify`);
      }
      verified.push(v.name);
    } else {
      if (s.sig.length !== 72) fail(`the cosignature by ${v.name} is malformed`);
      const ts = new DataView(s.sig.buffer, s.sig.byteOffset, 8).getBigUint64(0);
      const msg = concat(enc.encode(`cosignature/v1\ntime ${ts}\n`), body);
      if (!(await ed25519Verify(v, s.sig.slice(8), msg))) {
        fail(`the cosignature by ${v.name} does not verify`);
      }
      cosignatures.push({ name: v.name, timestamp: ts });
    }
  }
  if (verified.length === 0) fail('no signature by a trusted log key');
  return { text, verified, cosignatures };
}

/** Parses a checkpoint body: origin, size (BigInt), root, extensions. */
export function parseCheckpoint(text) {
  const lines = text.split('\n');
  if (lines.length < 4 || lines[lines.length - 1] !== '') fail('a checkpoint has origin, size and root lines');
  const [origin, sizeText, rootText, ...rest] = lines.slice(0, -1);
  if (!origin) fail('a checkpoint names its origin');
  if (!/^(0|[1-9][0-9]*)$/.test(sizeText)) fail('a checkpoint size is a decimal without leading zeros');
  const root = fromBase64(rootText);
  if (root.length !== 32) fail('a checkpoint root is 32 bytes');
  return { origin, size: big(BigInt(sizeText), 'size'), root, extensions: rest };
}

/**
 * Verifies a signed checkpoint with the log's key (and any witness keys
 * given, whose cosignatures are reported). Returns the checkpoint with
 * `verified` and `cosignatures`.
 */
export async function verifyCheckpoint(note, logKey, witnessKeys = []) {
  const v = await verifyNote(note, [logKey, ...witnessKeys]);
  if (!v.verified.includes(logKey.name)) fail('the checkpoint is not signed by the log key');
  const cp = parseCheckpoint(v.text);
  if (cp.origin !== logKey.name) fail(`the checkpoint's origin ${cp.origin} is not the log key's name`);
  return { ...cp, cosignatures: v.cosignatures, note };
}

/** Parses a c2sp.org/tlog-proof@v1 text (strictly). */
export function parseTlogProof(text) {
  const split = text.indexOf('\n\n');
  if (split < 0) fail('no blank line before the checkpoint');
  const head = text.slice(0, split).split('\n');
  const checkpoint = text.slice(split + 2);
  if (head[0] !== 'c2sp.org/tlog-proof@v1') fail('the first line must be c2sp.org/tlog-proof@v1');
  let i = 1;
  let extra = null;
  if (head[i] && head[i].startsWith('extra ')) {
    extra = fromBase64(head[i].slice(6));
    i++;
  }
  const m = /^index (0|[1-9][0-9]*)$/.exec(head[i] || '');
  if (!m) fail('expected an index line');
  const proof = head.slice(i + 1).map((l) => {
    const h = fromBase64(l);
    if (h.length !== 32) fail('a proof hash is 32 bytes');
    return h;
  });
  if (proof.length > 64) fail('more than 64 proof hashes');
  if (!checkpoint) fail('missing checkpoint');
  return { extra, index: BigInt(m[1]), proof, checkpoint };
}

/**
 * Verifies a tlog-proof offline: the checkpoint with the log key, then the
 * entry's leaf hash at its index. Returns the verified checkpoint.
 */
export async function verifyTlogProof(text, leaf, logKey, witnessKeys = []) {
  const p = parseTlogProof(text);
  const cp = await verifyCheckpoint(p.checkpoint, logKey, witnessKeys);
  await verifyInclusion(p.index, cp.size, leaf, p.proof, cp.root);
  return { ...cp, index: p.index };
}
