// Cairn's log explorer (issue 22). Every checkpoint shown is verified in
// this page with verifier.js against the log's key; every entry shown
// with its inclusion proof checked against that checkpoint; and every
// visit checks that the log extends what this browser saw last time
// (localStorage), showing a fork warning with both checkpoints if not.
// The DOM is built with textContent only: nothing from the server is ever
// parsed as HTML.

import * as v from './verifier.js';

const main = document.getElementById('main');
const PAGE = 20n;

/** Builds an element: el('p', {class: 'ok'}, 'text', child, …). */
function el(tag, attrs = {}, ...kids) {
  const e = document.createElement(tag);
  for (const [k, val] of Object.entries(attrs)) e.setAttribute(k, val);
  for (const k of kids) e.append(k instanceof Node ? k : String(k));
  return e;
}

function show(...kids) {
  main.replaceChildren(...kids);
  main.focus();
}

/** The read token this tab was given (private reads), if any. */
function token() {
  return sessionStorage.getItem('cairn.token');
}

/** The server refused the request for want of a (valid) read token. */
class LoginNeeded extends Error {}

async function get(path, accept) {
  const headers = {};
  if (accept) headers.accept = accept;
  const t = token();
  if (t) headers.authorization = `Bearer ${t}`;
  const r = await fetch(path, { headers });
  const body = await r.text();
  if (r.status === 401) throw new LoginNeeded(t ? 'the token was refused' : 'this server\'s reads are private');
  if (r.status === 403 && t) throw new LoginNeeded('the token was refused: it may not read this log');
  if (!r.ok) throw new Error(`${path}: ${r.status} ${body.trim()}`);
  return body;
}

async function getJSON(path) {
  return JSON.parse(await get(path, 'application/json'));
}

async function getText(path) {
  return get(path);
}

const enc = encodeURIComponent;

/** The log's key: pinned in this browser, else the one the server lists. */
function pinnedKey(origin) {
  return localStorage.getItem(`cairn.key.${origin}`);
}

async function logKey(info) {
  const pinned = pinnedKey(info.origin);
  const witnesses = await Promise.all((info.witnesses ?? []).map((k) => v.parseVerifierKey(k)));
  return { key: await v.parseVerifierKey(pinned || info.vkey), pinned: !!pinned, witnesses };
}

/** The checkpoint this browser last verified for a log. */
function lastSeen(origin) {
  return localStorage.getItem(`cairn.seen.${origin}`);
}

/**
 * Verifies the log's latest checkpoint, then that it extends the last one
 * this browser verified (a consistency proof). Returns the verified
 * checkpoint, or throws; a fork throws ForkError with both notes.
 */
class ForkError extends Error {}

async function verifiedHead(info) {
  const { key, pinned, witnesses } = await logKey(info);
  const note = await getText(`/logs/${enc(info.name)}/checkpoint`);
  const cp = await v.verifyCheckpoint(note, key, witnesses);
  const old = lastSeen(info.origin);
  if (old) {
    const was = await v.verifyCheckpoint(old, key);
    try {
      if (was.size > cp.size) throw new v.VerifyError(`the log shrank from ${was.size} to ${cp.size} entries`);
      if (was.size === cp.size) {
        if (v.toHex(was.root) !== v.toHex(cp.root)) throw new v.VerifyError(`two different roots for size ${cp.size}`);
      } else if (was.size > 0n) {
        const p = await getJSON(`/logs/${enc(info.name)}/proof/consistency?old=${was.size}&new=${cp.size}`);
        await v.verifyConsistency(was.size, cp.size, p.path.map(v.fromBase64), was.root, cp.root);
      }
    } catch (e) {
      throw Object.assign(new ForkError(e.message), { old, now: note });
    }
  }
  localStorage.setItem(`cairn.seen.${info.origin}`, note);
  const hist = history(info.origin);
  if (!hist.length || BigInt(hist[hist.length - 1][1]) !== cp.size) {
    hist.push([Date.now(), cp.size.toString()]);
    localStorage.setItem(`cairn.history.${info.origin}`, JSON.stringify(hist.slice(-50)));
  }
  return { ...cp, pinned, key, quorum: info.witness_quorum ?? 0, witnessCount: witnesses.length };
}

/** "quorum met (2 of 3, newest 4 s ago)", or why not; "" without witnesses. */
function quorumText(cp) {
  if (!cp.quorum) return '';
  const n = cp.cosignatures.length;
  const newest = cp.cosignatures.reduce((m, c) => (c.timestamp > m ? c.timestamp : m), 0n);
  const age = newest ? `, newest cosignature ${Math.max(0, Math.round(Date.now() / 1000 - Number(newest)))} s old` : '';
  return n >= cp.quorum
    ? `witness quorum met: ${n} of ${cp.witnessCount} cosigned, ${cp.quorum} needed${age}`
    : `witness quorum NOT met: ${n} of ${cp.quorum} needed${age}`;
}

/** The verified sizes this browser saw for a log, oldest first: [[ms, size]]. */
function history(origin) {
  try {
    const h = JSON.parse(localStorage.getItem(`cairn.history.${origin}`) || '[]');
    return Array.isArray(h) ? h : [];
  } catch {
    return [];
  }
}

function growthSection(info) {
  const rows = history(info.origin).slice().reverse().map(([t, size]) =>
    el('tr', {}, el('td', {}, new Date(t).toISOString().replace('T', ' ').slice(0, 19) + ' UTC'), el('td', {}, size)));
  return el('section', {}, el('h2', {}, 'Growth, as this browser verified it'),
    el('table', {}, el('thead', {}, el('tr', {}, el('th', { scope: 'col' }, 'Seen'), el('th', { scope: 'col' }, 'Entries'))),
      el('tbody', {}, ...rows)));
}

/** The log's verified head, or null once a fork warning is shown instead. */
async function headOrFork(info) {
  try {
    return await verifiedHead(info);
  } catch (e) {
    if (!(e instanceof ForkError)) throw e;
    show(el('h1', {}, info.name), forkWarning(e));
    return null;
  }
}

function forkWarning(e) {
  return el('section', { class: 'warn', role: 'alert' },
    el('h2', {}, 'Fork warning: this log does not extend what this browser saw before'),
    el('p', {}, e.message),
    el('p', {}, 'Keep both checkpoints as evidence (copy them below) and tell the log operator and its auditors.'),
    el('h3', {}, 'Seen before'), el('pre', { class: 'evidence' }, e.old),
    el('h3', {}, 'Served now'), el('pre', { class: 'evidence' }, e.now));
}

async function logsPage() {
  const logs = await getJSON('/logs');
  const rows = [];
  for (const info of logs) {
    let status;
    try {
      const cp = await verifiedHead(info);
      status = el('span', {},
        el('span', { class: 'ok' }, cp.pinned ? 'verified (pinned key)' : 'verified (key as listed)'),
        cp.quorum ? el('br') : '', quorumText(cp));
    } catch (e) {
      if (e instanceof LoginNeeded) throw e;
      status = el('span', { class: 'bad' }, e instanceof ForkError ? 'FORK' : `not verified: ${e.message}`);
    }
    rows.push(el('tr', {},
      el('td', {}, el('a', { href: `#/log/${enc(info.name)}` }, info.name)),
      el('td', {}, info.origin),
      el('td', {}, info.size ?? '—'),
      el('td', {}, info.role ?? ''),
      el('td', {}, status),
      el('td', { class: 'mono' }, info.vkey)));
  }
  show(el('h1', {}, 'Logs'),
    el('table', {},
      el('thead', {}, el('tr', {}, ...['Log', 'Origin', 'Entries', 'Role', 'Checkpoint', 'Verifier key'].map((h) => el('th', { scope: 'col' }, h)))),
      el('tbody', {}, ...rows)));
}

async function findLog(name) {
  const logs = await getJSON('/logs');
  const info = logs.find((l) => l.name === name);
  if (!info) throw new Error(`no log named ${name}`);
  return info;
}

function checkpointSection(info, cp) {
  const pin = el('button', { type: 'button' }, cp.pinned ? 'Key pinned' : 'Pin this key');
  pin.disabled = cp.pinned;
  pin.addEventListener('click', () => {
    localStorage.setItem(`cairn.key.${info.origin}`, info.vkey);
    route();
  });
  return el('section', {},
    el('h2', {}, 'Latest checkpoint'),
    el('p', {}, el('span', { class: 'ok' }, '✓ signature verified'), ` by ${cp.key.name} (key ID ${v.toHex(cp.key.id)}) `, pin),
    ...cp.cosignatures.map((c) => el('p', {}, el('span', { class: 'ok' }, '✓ cosigned'),
      ` by witness ${c.name} at ${new Date(Number(c.timestamp) * 1000).toISOString()}`)),
    cp.quorum ? el('p', { class: cp.cosignatures.length >= cp.quorum ? 'ok' : 'bad' }, quorumText(cp)) : '',
    el('p', {}, `Size ${cp.size}; this browser checked that it extends every checkpoint of this log it saw before.`),
    el('pre', {}, cp.note));
}

async function logPage(name, before) {
  const info = await findLog(name);
  const cp = await headOrFork(info);
  if (!cp) return;
  const end = before === undefined ? cp.size : BigInt(before);
  const start = end > PAGE ? end - PAGE : 0n;
  const got = end > start ? await getJSON(`/logs/${enc(name)}/entries?start=${start}&end=${end}`) : { entries: [] };
  const rows = got.entries.slice().reverse().map((e) => {
    const text = new TextDecoder().decode(v.fromBase64(e.leaf));
    return el('tr', {},
      el('td', {}, el('a', { href: `#/log/${enc(name)}/entry/${e.index}` }, e.index)),
      el('td', { class: 'mono' }, text.length > 160 ? `${text.slice(0, 160)}…` : text));
  });
  const nav = el('p', {});
  if (start > 0n) nav.append(el('a', { href: `#/log/${enc(name)}/before/${start}` }, 'Older entries'));
  show(el('h1', {}, `Log ${info.name}`), el('p', {}, info.origin),
    checkpointSection(info, cp),
    el('section', {}, el('h2', {}, 'Entries, newest first'),
      searchForm(name),
      el('table', { id: 'entries' }, el('thead', {}, el('tr', {}, el('th', { scope: 'col' }, 'Index'), el('th', { scope: 'col' }, 'Masked entry'))), el('tbody', {}, ...rows)),
      nav),
    growthSection(info));
}

function searchForm(name) {
  const input = el('input', { type: 'search', id: 'q', 'aria-label': 'Index, leaf hash (base64) or keyed token (tok:…)', placeholder: 'index, leaf hash or tok:…', size: '40' });
  const go = el('button', { type: 'submit' }, 'Find');
  const form = el('form', { role: 'search' }, input, go);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const q = input.value.trim();
    if (/^[0-9]+$/.test(q)) location.hash = `#/log/${enc(name)}/entry/${q}`;
    else if (q.startsWith('tok:')) location.hash = `#/log/${enc(name)}/search/${enc(q)}`;
    else {
      try {
        const p = await getJSON(`/logs/${enc(name)}/proof/inclusion?leaf_hash=${enc(q)}`);
        location.hash = `#/log/${enc(name)}/entry/${p.index}`;
      } catch (e) {
        form.append(el('p', { class: 'bad', role: 'alert' }, e.message));
      }
    }
  });
  return form;
}

/** The masked leaf, with each masked field marked. */
function renderLeaf(text) {
  let leaf;
  try {
    leaf = JSON.parse(text);
  } catch {
    return el('pre', {}, text);
  }
  const list = el('ul', {});
  for (const [pointer, detector, action] of leaf.masked ?? []) {
    let value;
    try {
      value = pointer.split('/').slice(1).map((p) => p.replaceAll('~1', '/').replaceAll('~0', '~'))
        .reduce((o, k) => (o == null ? undefined : o[k]), leaf.body);
    } catch { value = undefined; }
    const sealed = typeof value === 'string' && value.startsWith('enc:');
    const shown = sealed
      ? el('span', { class: 'encrypted', 'data-kid': value.split(':')[1] ?? '' }, 'encrypted')
      : el('span', { class: 'masked mono' }, JSON.stringify(value));
    list.append(el('li', {}, el('code', {}, pointer), `: ${detector}, ${action} → `, shown));
  }
  return el('div', {}, el('h3', {}, 'Masked fields'), leaf.masked?.length ? list : el('p', {}, 'none'),
    el('h3', {}, 'The leaf, as stored'), el('pre', {}, JSON.stringify(leaf, null, 2)));
}

/** Marks each encrypted value with its subject's state: live or erased. */
async function markSubjects(name, root) {
  for (const span of root.querySelectorAll('.encrypted[data-kid]')) {
    const kid = span.getAttribute('data-kid');
    try {
      const s = await getJSON(`/logs/${enc(name)}/subjects/${enc(kid)}`);
      if (s.state === 'erased') {
        span.replaceChildren('erased: the subject\'s key was destroyed',
          s.erasure_record == null ? '' : el('span', {}, ' (', el('a', { href: `#/log/${enc(name)}/entry/${s.erasure_record}` }, `erasure record ${s.erasure_record}`), ')'));
        span.classList.add('erased');
      } else if (s.state === 'live') {
        span.textContent = 'encrypted (opens only with the subject\'s key, through an audited reveal)';
      } else {
        span.textContent = 'encrypted under a key this log does not hold';
      }
    } catch {
      span.textContent = 'encrypted';
    }
  }
}

async function entryPage(name, index) {
  const info = await findLog(name);
  const cp = await headOrFork(info);
  if (!cp) return;
  const i = BigInt(index);
  const got = await getJSON(`/logs/${enc(name)}/entries?start=${i}&end=${i + 1n}`);
  if (!got.entries.length) throw new Error(`entry ${i} is not in the log (size ${cp.size})`);
  const leaf = v.fromBase64(got.entries[0].leaf);
  const hash = await v.leafHash(leaf);
  let verdict;
  try {
    const p = await getJSON(`/logs/${enc(name)}/proof/inclusion?index=${i}&size=${cp.size}`);
    await v.verifyInclusion(i, cp.size, hash, p.path.map(v.fromBase64), cp.root);
    verdict = el('p', { class: 'ok', id: 'inclusion' }, `✓ verified: entry ${i} is in the checkpoint of size ${cp.size} (inclusion proof of ${p.path.length} hashes checked in this page)`);
  } catch (e) {
    verdict = el('p', { class: 'bad', id: 'inclusion', role: 'alert' }, `✗ NOT verified: ${e.message}`);
  }
  const rendered = renderLeaf(new TextDecoder().decode(leaf));
  await markSubjects(name, rendered);
  show(el('h1', {}, `Entry ${i} of log ${info.name}`), verdict,
    el('p', {}, 'Leaf hash ', el('code', {}, v.toBase64(hash))),
    rendered,
    el('p', {}, el('a', { href: `#/log/${enc(name)}` }, `Back to ${info.name}`)));
}

async function searchPage(name, tok, before) {
  const q = before === undefined ? '' : `&before=${enc(before)}`;
  const r = await getJSON(`/logs/${enc(name)}/search?token=${enc(tok)}${q}`);
  const items = r.matches.map((i) => el('li', {}, el('a', { href: `#/log/${enc(name)}/entry/${i}` }, `entry ${i}`)));
  const more = r.scanned_from > 0
    ? el('p', {}, el('a', { href: `#/log/${enc(name)}/search/${enc(tok)}/${r.scanned_from}` }, `Search entries before ${r.scanned_from}`))
    : el('p', {}, 'Searched back to the first entry.');
  show(el('h1', {}, `Entries of ${name} holding ${tok}`),
    el('p', {}, `Entries ${r.scanned_from} to ${r.before - 1} searched (exact match on the stored token); ${r.matches.length} found, newest first.`),
    el('ul', { id: 'matches' }, ...items), more,
    el('p', {}, el('a', { href: `#/log/${enc(name)}` }, `Back to ${name}`)));
}

function verifyPage() {
  const proof = el('textarea', { id: 'proof', 'aria-label': 'Receipt (cairn append output line) or tlog-proof' });
  const leaf = el('input', { id: 'leaf', 'aria-label': 'Leaf hash (base64), for a tlog-proof', size: '50' });
  const key = el('input', { id: 'vkey', 'aria-label': 'Verifier key', placeholder: 'origin+keyid+key', size: '80' });
  const out = el('div', { 'aria-live': 'polite', id: 'verdict' });
  const go = el('button', { type: 'submit' }, 'Verify');
  const file = el('input', { type: 'file', id: 'file', 'aria-label': 'Open a receipt or tlog-proof file' });
  const load = async (f) => {
    if (!f) return;
    if (f.size > 1 << 20) {
      out.replaceChildren(el('p', { class: 'bad', role: 'alert' }, '✗ the file is over 1 MiB: not a receipt'));
      return;
    }
    proof.value = await f.text();
  };
  file.addEventListener('change', () => load(file.files[0]));
  proof.addEventListener('dragover', (ev) => ev.preventDefault());
  proof.addEventListener('drop', (ev) => {
    ev.preventDefault();
    load(ev.dataTransfer?.files?.[0]);
  });
  const form = el('form', {},
    el('p', {}, el('label', { for: 'proof' }, 'A receipt (a line of `cairn append` output) or a c2sp.org/tlog-proof@v1 file: paste it, drop it here, or '), file, proof),
    el('p', {}, el('label', { for: 'leaf' }, 'Leaf hash (base64; a tlog-proof does not carry it) '), leaf),
    el('p', {}, el('label', { for: 'vkey' }, 'The log\'s verifier key '), key),
    go, out);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    try {
      const k = await v.parseVerifierKey(key.value.trim());
      const text = proof.value.trim();
      let cp;
      if (text.startsWith('{')) {
        let r;
        try { r = JSON.parse(text); } catch { throw new v.VerifyError('the receipt is not JSON'); }
        if (!r.checkpoint || !Array.isArray(r.inclusion_proof)) throw new v.VerifyError('the receipt has no checkpoint and inclusion proof');
        cp = await v.verifyCheckpoint(r.checkpoint, k);
        await v.verifyInclusion(BigInt(r.index), cp.size, v.fromBase64(r.leaf_hash), r.inclusion_proof.map(v.fromBase64), cp.root);
        cp = { ...cp, index: BigInt(r.index) };
      } else {
        if (!leaf.value.trim()) throw new v.VerifyError('a tlog-proof does not carry the leaf: give its leaf hash');
        cp = await v.verifyTlogProof(text + '\n', v.fromBase64(leaf.value.trim()), k);
      }
      out.replaceChildren(el('p', { class: 'ok' }, `✓ verified: entry ${cp.index} is in ${cp.origin}, in the checkpoint of size ${cp.size} signed by ${k.name}`));
    } catch (e) {
      out.replaceChildren(el('p', { class: 'bad', role: 'alert' }, `✗ not verified: ${e.message}`));
    }
  });
  show(el('h1', {}, 'Verify a receipt offline'),
    el('p', {}, 'Checked in this page only: nothing is sent to the server.'), form);
}

function loginPage(why) {
  const input = el('input', { type: 'password', id: 'token', autocomplete: 'off', 'aria-label': 'Read token' });
  const form = el('form', {},
    el('p', { role: 'alert' }, `${why}: give a token with the read scope. It is kept in this tab only (sessionStorage) and sent to this server alone.`),
    el('label', { for: 'token' }, 'Token '), input, el('button', { type: 'submit' }, 'Sign in'));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    sessionStorage.setItem('cairn.token', input.value.trim());
    route();
  });
  show(el('h1', {}, 'Sign in'), form);
  input.focus();
}

function aboutPage() {
  const li = (t) => el('li', {}, t);
  show(el('h1', {}, 'What these pages check'),
    el('ul', {},
      li('Every checkpoint: its signature by the log\'s key (the key you pinned, or the one the server lists until you pin one), its origin, and its syntax (C2SP signed-note and tlog-checkpoint).'),
      li('On every visit: that the log\'s new checkpoint extends the last one this browser verified (an RFC 9162 consistency proof); if not, a fork warning with both checkpoints to keep as evidence.'),
      li('Every entry page: the entry\'s leaf hash, computed here from the stored bytes, and its RFC 9162 inclusion proof against the verified checkpoint.'),
      li('Receipts pasted on the Verify page: offline, against the key you give.')),
    el('h2', {}, 'What they do not prove'),
    el('ul', {},
      li('That the log shows everyone the same history: only witnesses and auditors who compare checkpoints can show that. This browser only compares with what it saw itself.'),
      li('That a key listed by the server is the log\'s real key: pin the key you got from the log\'s operator.'),
      li('What a masked value was: masking happened before the entry was stored.')));
}

async function route() {
  const parts = location.hash.replace(/^#\/?/, '').split('/').map(decodeURIComponent);
  try {
    if (parts[0] === 'log' && parts[2] === 'entry') return await entryPage(parts[1], parts[3]);
    if (parts[0] === 'log' && parts[2] === 'before') return await logPage(parts[1], parts[3]);
    if (parts[0] === 'log' && parts[2] === 'search') return await searchPage(parts[1], parts[3], parts[4]);
    if (parts[0] === 'log') return await logPage(parts[1]);
    if (parts[0] === 'verify') return verifyPage();
    if (parts[0] === 'about') return aboutPage();
    return await logsPage();
  } catch (e) {
    if (e instanceof LoginNeeded) return loginPage(e.message);
    show(el('h1', {}, 'Error'), el('p', { class: 'bad', role: 'alert' }, e.message));
  }
}

window.addEventListener('hashchange', route);
route();
