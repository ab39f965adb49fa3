// The live view of `netloom emulate --serve`: polls /api/state once a second and draws the
// topology (a force-directed layout computed once per set of nodes), links coloured by recent loss
// and labelled with their throughput. Everything it needs ships with netloom: no other files.
'use strict';
const svgNs = 'http://www.w3.org/2000/svg';
const svg = document.getElementById('topology');
const panel = document.getElementById('panel');
let layout = { key: '', pos: new Map() };
let selected = null;
let last = null;

const $ = (tag, attrs = {}, parent = null) => {
  const e = document.createElementNS(svgNs, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (parent) parent.appendChild(e);
  return e;
};

function rate(bps) {
  if (bps >= 1e9) return (bps / 1e9).toFixed(2) + ' Gbit/s';
  if (bps >= 1e6) return (bps / 1e6).toFixed(2) + ' Mbit/s';
  if (bps >= 1e3) return (bps / 1e3).toFixed(1) + ' kbit/s';
  return Math.round(bps) + ' bit/s';
}
function bytes(b) {
  if (b >= 1 << 30) return (b / (1 << 30)).toFixed(2) + ' GiB';
  if (b >= 1 << 20) return (b / (1 << 20)).toFixed(2) + ' MiB';
  if (b >= 1 << 10) return (b / 1024).toFixed(1) + ' KiB';
  return b + ' B';
}
const pct = x => (x * 100).toFixed(x < 0.01 && x > 0 ? 2 : 1) + '%';
const us = x => x == null ? '' : x >= 1000 ? (x / 1000).toFixed(2) + ' ms' : x.toFixed(1) + ' us';

// Force-directed layout: springs along links, repulsion between all nodes; a fixed number of
// rounds from a circle, so the same topology always gets the same picture.
function computeLayout(nodes, links) {
  const n = nodes.length, W = 1000, H = 640;
  const p = nodes.map((_, i) => ({ x: W / 2 + 250 * Math.cos(2 * Math.PI * i / Math.max(1, n)), y: H / 2 + 220 * Math.sin(2 * Math.PI * i / Math.max(1, n)) }));
  const index = new Map(nodes.map((x, i) => [x.name, i]));
  const edges = links.map(l => [index.get(l.a), index.get(l.b)]);
  const k = Math.min(160, Math.sqrt(W * H / Math.max(1, n)) * 0.75);
  for (let round = 0; round < 300; round++) {
    const d = p.map(() => ({ x: 0, y: 0 }));
    for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) {
      let dx = p[i].x - p[j].x, dy = p[i].y - p[j].y, dist = Math.max(1, Math.hypot(dx, dy));
      const f = k * k / dist;
      d[i].x += dx / dist * f; d[i].y += dy / dist * f; d[j].x -= dx / dist * f; d[j].y -= dy / dist * f;
    }
    for (const [a, b] of edges) {
      let dx = p[a].x - p[b].x, dy = p[a].y - p[b].y, dist = Math.max(1, Math.hypot(dx, dy));
      const f = dist * dist / k;
      d[a].x -= dx / dist * f; d[a].y -= dy / dist * f; d[b].x += dx / dist * f; d[b].y += dy / dist * f;
    }
    const t = 40 * (1 - round / 300) + 1;
    for (let i = 0; i < n; i++) {
      const len = Math.max(1e-9, Math.hypot(d[i].x, d[i].y));
      p[i].x = Math.min(W - 50, Math.max(50, p[i].x + d[i].x / len * Math.min(len, t)));
      p[i].y = Math.min(H - 40, Math.max(40, p[i].y + d[i].y / len * Math.min(len, t)));
    }
  }
  return new Map(nodes.map((x, i) => [x.name, p[i]]));
}

function lossColour(loss) {
  // green (none) through amber (1%) to red (10% and more)
  const t = loss <= 0 ? 0 : Math.min(1, Math.log10(loss * 1000) / 2);
  const hue = 130 * (1 - t);
  return `hsl(${hue}, 70%, 40%)`;
}

function draw(state) {
  const key = state.nodes.map(n => n.name).join(',') + '|' + state.links.map(l => l.name).join(',');
  if (key !== layout.key) layout = { key, pos: computeLayout(state.nodes, state.links) };
  const pos = layout.pos;
  svg.replaceChildren();
  const maxBps = Math.max(1, ...state.links.map(l => l.directions[0].throughput_bps + l.directions[1].throughput_bps));
  for (const l of state.links) {
    const a = pos.get(l.a), b = pos.get(l.b);
    const bps = l.directions[0].throughput_bps + l.directions[1].throughput_bps;
    const loss = Math.max(l.directions[0].recent_loss, l.directions[1].recent_loss);
    const g = $('g', { class: 'link-group', 'data-link': l.name }, svg);
    const line = $('line', { x1: a.x, y1: a.y, x2: b.x, y2: b.y, class: 'link' + (l.up ? '' : ' down') + (selected === l.name ? ' selected' : ''),
      stroke: lossColour(loss), 'stroke-width': 2 + 8 * Math.sqrt(bps / maxBps) }, g);
    const title = $('title', {}, line);
    title.textContent = `${l.name}: ${rate(bps)}, loss ${pct(loss)}`;
    const label = $('text', { x: (a.x + b.x) / 2, y: (a.y + b.y) / 2 - 6, 'text-anchor': 'middle', class: 'link-label',
      'data-link': l.name, 'data-bps': Math.round(bps), 'data-loss': loss }, g);
    label.textContent = l.up ? rate(bps) + (loss > 0 ? ' · ' + pct(loss) + ' lost' : '') : 'down';
    g.addEventListener('click', () => { selected = l.name; showLink(); draw(last); });
  }
  for (const n of state.nodes) {
    const p = pos.get(n.name);
    const g = $('g', { class: `node ${n.kind}${n.up ? '' : ' crashed'}`, 'data-node': n.name, transform: `translate(${p.x},${p.y})` }, svg);
    if (n.kind === 'router' || n.kind === 'switch') $('rect', { x: -26, y: -16, width: 52, height: 32, rx: n.kind === 'router' ? 16 : 4 }, g);
    else $('circle', { r: 20 }, g);
    const t = $('text', { y: 5, class: 'node-label' }, g);
    t.textContent = n.name;
    g.addEventListener('click', () => showNode(n));
  }
}

function showNode(n) {
  selected = null;
  panel.dataset.link = '';
  panel.innerHTML = `<h3>${n.kind} ${n.name}</h3><p>${n.up ? 'up' : 'crashed'} · ${n.addresses.join(', ') || 'no address'}</p>
    <p>links: ${n.links.join(', ')}</p>
    <div class="buttons"><button id="crash">crash</button><button id="restart">restart</button></div><p id="result" class="hint"></p>`;
  panel.querySelector('#crash').onclick = () => call('POST', `/api/nodes/${encodeURIComponent(n.name)}/crash`);
  panel.querySelector('#restart').onclick = () => call('POST', `/api/nodes/${encodeURIComponent(n.name)}/restart`);
}

function showApps(state) {
  const body = document.querySelector('#apps tbody');
  body.replaceChildren();
  for (const a of state.apps) {
    const tr = document.createElement('tr');
    const cells = [a.name, a.kind, a.host, a.target || '', a.bytes != null ? bytes(a.bytes) : '',
      a.throughput_bits_per_second != null ? rate(a.throughput_bits_per_second) : '',
      a.sent != null || a.received != null ? `${a.sent ?? '-'}/${a.received ?? '-'}` : '',
      a.loss != null ? pct(a.loss) : '', us(a.latency?.p50_us), us(a.latency?.p99_us),
      a.error ? a.error : a.completed ? 'done' : 'running'];
    for (const c of cells) { const td = document.createElement('td'); td.textContent = c; tr.appendChild(td); }
    // Both actions; the server says when one does not apply (a client that ran cannot start again).
    const td = document.createElement('td');
    for (const action of ['stop', 'start']) {
      const b = document.createElement('button');
      b.textContent = action;
      b.onclick = () => call('POST', `/api/apps/${encodeURIComponent(a.name)}/${action}`);
      td.appendChild(b);
    }
    tr.appendChild(td);
    body.appendChild(tr);
  }
}

function showLink() {
  if (!selected || !last) return;
  const l = last.links.find(x => x.name === selected);
  if (!l) { panel.innerHTML = '<p class="hint">That link is gone.</p>'; return; }
  // Keep the form the user is typing in; refresh only the counters.
  let counters = panel.querySelector('#counters');
  if (!counters || panel.dataset.link !== l.name) {
    panel.dataset.link = l.name;
    const i = l.directions[0].impairments;
    panel.innerHTML = `<h3>${l.name}: ${l.a} ⇄ ${l.b}</h3><div id="counters"></div>
      <h4>impairments (both directions)</h4>
      <form class="imp">
        <label>delay</label><input name="delay" value="${i.delay_us / 1000}ms">
        <label>jitter</label><input name="jitter" value="${i.jitter_us / 1000}ms">
        <label>loss</label><input name="loss" value="${+(i.loss * 100).toFixed(4)}%">
        <label>rate</label><input name="rate" value="${i.rate_bps ? i.rate_bps / 1000 + 'kbit' : '0'}">
        <span></span><button>apply</button>
      </form>
      <div class="buttons"><button id="down">take down</button><button id="up">bring up</button>
      <a id="capture" href="/api/links/${encodeURIComponent(l.name)}/capture?frames=1000" download="${l.name}.pcapng">capture 1000 frames</a>
      <a href="/api/links/${encodeURIComponent(l.name)}/capture" download="${l.name}.pcapng">capture until stopped</a></div>
      <p id="result" class="hint"></p>`;
    const form = panel.querySelector('form');
    form.addEventListener('submit', async e => {
      e.preventDefault();
      const body = {};
      for (const [k, v] of new FormData(form)) if (v.trim()) body[k] = v.trim();
      await call('PATCH', `/api/links/${encodeURIComponent(l.name)}`, body);
    });
    panel.querySelector('#down').onclick = () => call('POST', `/api/links/${encodeURIComponent(l.name)}/down`);
    panel.querySelector('#up').onclick = () => call('POST', `/api/links/${encodeURIComponent(l.name)}/up`);
    counters = panel.querySelector('#counters');
  }
  const rows = ['sent', 'delivered', 'delivered_bytes', 'total_drops', 'duplicated', 'corrupted', 'reordered', 'queued'];
  const [ab, ba] = l.directions;
  counters.innerHTML = `<table><tr><th></th><th>${ab.from}→${ab.to}</th><th>${ba.from}→${ba.to}</th></tr>
    <tr><td>throughput</td><td>${rate(ab.throughput_bps)}</td><td>${rate(ba.throughput_bps)}</td></tr>
    <tr><td>recent loss</td><td>${pct(ab.recent_loss)}</td><td>${pct(ba.recent_loss)}</td></tr>
    ${rows.map(r => `<tr><td>${r.replace('_', ' ')}</td><td>${ab[r]}</td><td>${ba[r]}</td></tr>`).join('')}
    <tr><td>drops</td><td>${Object.entries(ab.drops).map(([k, v]) => `${k} ${v}`).join(', ')}</td><td>${Object.entries(ba.drops).map(([k, v]) => `${k} ${v}`).join(', ')}</td></tr></table>`;
}

async function call(method, url, body) {
  const r = await fetch(url, { method, headers: body ? { 'Content-Type': 'application/json' } : {}, body: body ? JSON.stringify(body) : undefined });
  const out = document.getElementById('result') || document.getElementById('error');
  if (!r.ok) out.textContent = (await r.json()).error; else if (out) out.textContent = 'done';
  refresh();
}

async function refresh() {
  try {
    const r = await fetch('/api/state');
    last = await r.json();
    document.getElementById('name').textContent = last.name;
    document.getElementById('clock').textContent =
      `${last.state} · ${last.virtual_seconds.toFixed(2)} s of network time (${last.mode}) · ${last.packet_hops.toLocaleString('en')} packet-hops`;
    document.getElementById('error').textContent = '';
    draw(last);
    showApps(last);
    showLink();
  } catch (e) {
    document.getElementById('error').textContent = 'cannot reach the emulator: ' + e;
  }
}

document.getElementById('pause').onclick = () => call('POST', '/api/pause');
document.getElementById('resume').onclick = () => call('POST', '/api/resume');
document.getElementById('step').onclick = () => call('POST', '/api/step', { duration: '100ms' });
refresh();
setInterval(refresh, 1000);
