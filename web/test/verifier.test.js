// The in-page verifier against known answers from outside (node --test):
// - RFC 6962 / RFC 9162 trees, every inclusion and consistency proof of
//   them (transparency-dev/merkle testonly constants, the shared vectors);
// - the C2SP signed-note spec example and Go's sumdb/note example;
// - the C2SP tlog-cosignature spec example and the worked example's
//   checkpoints, consistency proof and cosignature;
// and mutants of each that must fail.
//
// The vectors are the copies under crates/core/tests/data (from
// ../shared/vectors).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import {
  VerifyError, fromHex, fromBase64, toBase64, toHex, sha256, leafHash, nodeHash, rootOf,
  verifyInclusion, verifyConsistency, parseVerifierKey, parseNote, verifyNote,
  verifyCheckpoint, parseTlogProof, verifyTlogProof,
} from '../verifier.js';

const data = (name) =>
  JSON.parse(readFileSync(fileURLToPath(new URL(`../../crates/core/tests/data/${name}`, import.meta.url)), 'utf8'));
const tree = data('rfc6962.json');
const notes = data('signed_note.json');

const rejects = (p, what) => assert.rejects(p, VerifyError, what);

function flip(h) {
  const c = new Uint8Array(h);
  c[0] ^= 1;
  return c;
}

test('hasher known answers', async () => {
  assert.equal(toHex(await sha256(new Uint8Array(0))), tree.hasher.empty_tree_root);
  assert.equal(toHex(await leafHash(new Uint8Array(0))), tree.hasher.empty_leaf);
  const l = tree.hasher.leaf_L123456;
  assert.equal(toHex(await leafHash(fromHex(l.input_hex))), l.hash);
  const n = tree.hasher.node_N123_N456;
  assert.equal(toHex(await nodeHash(fromHex(n.left_hex), fromHex(n.right_hex))), n.hash);
});

const leaves = await Promise.all(tree.leaf_inputs_hex.map((h) => leafHash(fromHex(h))));
const rootAt = (size) => fromHex(tree.roots.find((r) => r.size === size).root);

test('leaf hashes and every root', async () => {
  assert.deepEqual(leaves.map(toHex), tree.leaf_hashes);
  for (const r of tree.roots) {
    assert.equal(toHex(await rootOf(leaves.slice(0, r.size))), r.root, `size ${r.size}`);
    assert.equal(toBase64(fromHex(r.root)), r.root_b64);
  }
});

test('every inclusion proof verifies, and its mutants do not', async () => {
  assert.ok(tree.inclusion.length > 0);
  for (const v of tree.inclusion) {
    const proof = v.proof.map(fromHex);
    const root = rootAt(v.size);
    const leaf = leaves[v.index];
    const what = `index ${v.index} size ${v.size}`;
    await verifyInclusion(BigInt(v.index), BigInt(v.size), leaf, proof, root);
    await rejects(verifyInclusion(v.index, v.size, flip(leaf), proof, root), `${what}: other leaf`);
    await rejects(verifyInclusion(v.index, v.size, leaf, proof, flip(root)), `${what}: other root`);
    await rejects(verifyInclusion(v.index, v.size, leaf, [...proof, leaf], root), `${what}: extra hash`);
    if (proof.length > 0) {
      await rejects(verifyInclusion(v.index, v.size, leaf, proof.slice(1), root), `${what}: missing hash`);
      await rejects(verifyInclusion(v.index, v.size, leaf, [flip(proof[0]), ...proof.slice(1)], root), `${what}: flipped`);
      await rejects(verifyInclusion(v.index + 1, v.size, leaf, proof, root), `${what}: index + 1`);
    }
    // The same proof does not prove the leaf in the next tree (the size
    // is bound through the root: a checkpoint signs both).
    if (v.size < 8) {
      await rejects(verifyInclusion(v.index, v.size + 1, leaf, proof, rootAt(v.size + 1)), `${what}: size + 1`);
    }
  }
  await rejects(verifyInclusion(8, 8, leaves[0], [], rootAt(8)), 'index beyond the tree');
});

test('every consistency proof verifies, and its mutants do not', async () => {
  assert.ok(tree.consistency.length > 0);
  for (const v of tree.consistency) {
    const proof = v.proof.map(fromHex);
    const [r1, r2] = [rootAt(v.old), rootAt(v.new)];
    const what = `${v.old} -> ${v.new}`;
    await verifyConsistency(BigInt(v.old), BigInt(v.new), proof, r1, r2);
    await rejects(verifyConsistency(v.old, v.new, proof, flip(r1), r2), `${what}: old root`);
    await rejects(verifyConsistency(v.old, v.new, proof, r1, flip(r2)), `${what}: new root`);
    await rejects(verifyConsistency(v.old, v.new, [...proof, r1], r1, r2), `${what}: extra hash`);
    if (proof.length > 0) {
      await rejects(verifyConsistency(v.old, v.new, proof.slice(0, -1), r1, r2), `${what}: missing hash`);
      await rejects(verifyConsistency(v.old, v.new, [flip(proof[0]), ...proof.slice(1)], r1, r2), `${what}: flipped`);
    }
  }
  // The vectors' error cases.
  await rejects(verifyConsistency(0, 3, [], rootAt(0), rootAt(3)), 'from size 0');
  await rejects(verifyConsistency(4, 3, [], rootAt(4), rootAt(3)), 'old > new');
  await rejects(verifyConsistency(3, 3, [leaves[0]], rootAt(3), rootAt(3)), 'equal sizes, a proof');
  await rejects(verifyConsistency(3, 3, [], rootAt(3), rootAt(4)), 'equal sizes, two roots');
  await rejects(verifyConsistency(3, 7, [], rootAt(3), rootAt(7)), 'empty proof');
});

test('signed notes: the C2SP spec example and Go sumdb/note example', async () => {
  const spec = notes.spec_example;
  const k = await parseVerifierKey(spec.vkey);
  const v = await verifyNote(spec.note, [k]);
  assert.equal(v.text, spec.text);
  assert.deepEqual(v.verified, ['example.com/foo']);
  const go = notes.go_sumdb_note_example;
  const gk = await parseVerifierKey(go.vkey);
  const gv = await verifyNote(`${go.text}\n${go.signature_line}`, [gk]);
  assert.equal(gv.text, go.text);
  // Trusting more keys changes nothing for a note only one of them signed.
  assert.deepEqual((await verifyNote(spec.note, [k, gk])).verified, ['example.com/foo']);
});

test('signed notes: unknown signers are ignored, a bad known signature rejects', async () => {
  const spec = notes.spec_example;
  const k = await parseVerifierKey(spec.vkey);
  // An extra signature by a key nobody trusts: ignored.
  const extra = `${spec.note}\u2014 stranger.example ${toBase64(new Uint8Array(68).fill(7))}\n`;
  assert.deepEqual((await verifyNote(extra, [k])).verified, ['example.com/foo']);
  // The text changed: the known signature fails.
  await rejects(verifyNote(spec.note.replace('example message', 'exemplary message'), [k]));
  // A flipped signature byte.
  const sigLine = spec.note.split('\n\n')[1];
  const raw = fromBase64(sigLine.split(' ')[2].trim());
  raw[10] ^= 1;
  await rejects(verifyNote(`${spec.text}\n\u2014 example.com/foo ${toBase64(raw)}\n`, [k]));
  // Only unknown signers: nothing verifies.
  const go = await parseVerifierKey(notes.go_sumdb_note_example.vkey);
  await rejects(verifyNote(spec.note, [go]), /no signature by a trusted log key/);
  // Malformed notes.
  await rejects(Promise.resolve().then(() => parseNote('no newline')));
  await rejects(Promise.resolve().then(() => parseNote('text\n\nnot a signature\n')));
  // A key whose ID does not match it.
  await rejects(parseVerifierKey(spec.vkey.replace('+530d903a+', '+530d903b+')));
});

test('checkpoints, consistency and a cosignature: the worked example', async () => {
  const w = notes.worked_example;
  const logKey = await parseVerifierKey(w.log.vkey);
  const witnessKey = await parseVerifierKey(w.witness.vkey);
  const cp4 = await verifyCheckpoint(w.checkpoint_4.note, logKey);
  const cp8 = await verifyCheckpoint(w.checkpoint_8.note, logKey);
  assert.equal(cp4.size, 4n);
  assert.equal(cp8.size, 8n);
  assert.equal(cp8.origin, 'example.com/audit-log');
  const proof = w.consistency_proof_4_8_b64.map(fromBase64);
  await verifyConsistency(cp4.size, cp8.size, proof, cp4.root, cp8.root);
  await rejects(verifyConsistency(cp4.size, cp8.size, proof, cp4.root, flip(cp8.root)));
  // The cosigned checkpoint: the log's signature and the witness's.
  const cosigned = w.checkpoint_8.note + w.witness.cosignature_line;
  const v = await verifyCheckpoint(cosigned, logKey, [witnessKey]);
  assert.deepEqual(v.cosignatures, [{ name: 'witness.example.com/w1', timestamp: 1700000000n }]);
  // Untrusted, the cosignature is ignored; tampered, it rejects.
  assert.deepEqual((await verifyCheckpoint(cosigned, logKey)).cosignatures, []);
  const line = w.witness.cosignature_line.trim().split(' ');
  const raw = fromBase64(line[2]);
  raw[raw.length - 1] ^= 1;
  await rejects(verifyCheckpoint(`${w.checkpoint_8.note}${line[0]} ${line[1]} ${toBase64(raw)}\n`, logKey, [witnessKey]));
  // The spec's cosignature example: key ID, timestamp, 76-byte blob.
  const ex = notes.cosignature_spec_example;
  const blob = fromBase64(ex.signature_b64);
  assert.equal(blob.length, ex.blob_len);
  assert.equal(toHex(blob.slice(0, 4)), ex.key_id);
  assert.equal(new DataView(blob.buffer, 4, 8).getBigUint64(0), BigInt(ex.timestamp));
  // A checkpoint signed by the log key for another origin is refused.
  await rejects(verifyCheckpoint(notes.spec_example.note, await parseVerifierKey(notes.spec_example.vkey)));
});

test('tlog-proof: parse, verify offline, and refuse mutants', async () => {
  // A tree of the RFC 6962 leaves, signed with the worked example's log
  // key (its seed is in the vectors; Ed25519 signatures are deterministic).
  const w = notes.worked_example;
  const seed = fromHex(w.log.seed_hex);
  const pkcs8 = new Uint8Array([...fromHex('302e020100300506032b657004220420'), ...seed]);
  const sk = await crypto.subtle.importKey('pkcs8', pkcs8, { name: 'Ed25519' }, false, ['sign']);
  const logKey = await parseVerifierKey(w.log.vkey);
  const body = `example.com/audit-log\n8\n${toBase64(rootAt(8))}\n`;
  const sig = new Uint8Array(await crypto.subtle.sign('Ed25519', sk, new TextEncoder().encode(body)));
  const note = `${body}\n\u2014 example.com/audit-log ${toBase64(new Uint8Array([...logKey.id, ...sig]))}\n`;
  const v = tree.inclusion.find((x) => x.size === 8 && x.index === 5);
  const text = `c2sp.org/tlog-proof@v1\nindex 5\n${v.proof.map((h) => toBase64(fromHex(h))).join('\n')}\n\n${note}`;
  const p = parseTlogProof(text);
  assert.equal(p.index, 5n);
  const ok = await verifyTlogProof(text, leaves[5], logKey);
  assert.equal(ok.size, 8n);
  await rejects(verifyTlogProof(text, leaves[4], logKey), 'another leaf');
  await rejects(verifyTlogProof(text.replace('index 5', 'index 4'), leaves[5], logKey), 'another index');
  await rejects(verifyTlogProof(text.replace('\n8\n', '\n9\n'), leaves[5], logKey), 'another size');
  await rejects(Promise.resolve().then(() => parseTlogProof(text.replace('@v1', '@v2'))), 'another version');
  await rejects(Promise.resolve().then(() => parseTlogProof(text.replace('index 5', 'index 05'))), 'leading zero');
});

// The same signature checks where WebCrypto lacks Ed25519: the vendored
// @noble/ed25519 must accept and refuse exactly the same notes.
test('the @noble/ed25519 fallback agrees on every signature vector', async () => {
  const verifier = await import('../verifier.js');
  verifier.options.forceFallback = true;
  try {
    const spec = notes.spec_example;
    const k = await verifier.parseVerifierKey(spec.vkey);
    assert.equal(k.cryptoKey, null, 'the fallback is in use');
    assert.deepEqual((await verifier.verifyNote(spec.note, [k])).verified, ['example.com/foo']);
    const go = notes.go_sumdb_note_example;
    const gk = await verifier.parseVerifierKey(go.vkey);
    assert.equal((await verifier.verifyNote(`${go.text}\n${go.signature_line}`, [gk])).text, go.text);
    await rejects(verifier.verifyNote(spec.note.replace('example message', 'exemplary message'), [k]));
    const sigLine = spec.note.split('\n\n')[1];
    const raw = fromBase64(sigLine.split(' ')[2].trim());
    raw[10] ^= 1;
    await rejects(verifier.verifyNote(`${spec.text}\n\u2014 example.com/foo ${toBase64(raw)}\n`, [k]));
    const w = notes.worked_example;
    const logKey = await verifier.parseVerifierKey(w.log.vkey);
    const witnessKey = await verifier.parseVerifierKey(w.witness.vkey);
    const cosigned = w.checkpoint_8.note + w.witness.cosignature_line;
    const v = await verifier.verifyCheckpoint(cosigned, logKey, [witnessKey]);
    assert.deepEqual(v.cosignatures, [{ name: 'witness.example.com/w1', timestamp: 1700000000n }]);
    const line = w.witness.cosignature_line.trim().split(' ');
    const craw = fromBase64(line[2]);
    craw[craw.length - 1] ^= 1;
    await rejects(verifier.verifyCheckpoint(`${w.checkpoint_8.note}${line[0]} ${line[1]} ${toBase64(craw)}\n`, logKey, [witnessKey]));
  } finally {
    verifier.options.forceFallback = false;
  }
});
