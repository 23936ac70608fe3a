// Sluice live dashboard.
//
// Polls the Prometheus text exposition at the relative URL "metrics" (override with
// ?metrics=PATH, same origin only), every second (override with ?interval=MS), and
// draws charts of the last five minutes. Rates are the change of counters between two
// consecutive polls divided by the time between them; quantiles come from the change of
// histogram buckets over the last ~10 s, interpolated linearly inside a bucket like
// Prometheus' histogram_quantile. Every chart and tile carries data-latest attributes
// with its latest value, for people and for tests.
'use strict';

(function () {
  const WINDOW_MS = 5 * 60 * 1000; // how much history the charts keep
  const QUANTILE_WINDOW_MS = 10 * 1000; // histogram and cache-ratio window
  const MAX_LINES = 8; // series drawn per chart; the legend lists all of them
  const SVG_NS = 'http://www.w3.org/2000/svg';

  // ---------------------------------------------------------------------------
  // Prometheus text exposition format parser.

  // parseExposition returns {samples: Map(name -> [{labels, value, key}]),
  // types: Map(family -> type), errors: number of lines it could not parse}.
  // It never throws: a line it does not understand is counted and skipped.
  function parseExposition(text) {
    const samples = new Map();
    const types = new Map();
    let errors = 0;
    const lines = String(text).split(/\r?\n/);
    for (const raw of lines) {
      const line = raw.trim();
      if (line === '') continue;
      if (line[0] === '#') {
        const m = /^#\s*(TYPE|HELP|EOF)\b\s*(\S*)\s*(.*)$/.exec(line);
        if (m && m[1] === 'EOF') break;
        if (m && m[1] === 'TYPE' && m[2]) types.set(m[2], m[3].trim());
        continue;
      }
      let s;
      try {
        s = parseSampleLine(line);
      } catch (e) {
        s = null;
      }
      if (!s) {
        errors++;
        continue;
      }
      let list = samples.get(s.name);
      if (!list) samples.set(s.name, (list = []));
      list.push(s);
    }
    return { samples, types, errors };
  }

  const NAME_START = /[A-Za-z_:]/;
  const NAME_CHAR = /[A-Za-z0-9_:]/;

  // parseSampleLine parses `name{l="v",...} value [timestamp] [# exemplar]`, including
  // the quoted-name form `{"name", l="v"} value`. It returns null if the line is bad.
  function parseSampleLine(line) {
    let i = 0;
    const n = line.length;
    const ws = () => {
      while (i < n && (line[i] === ' ' || line[i] === '\t')) i++;
    };
    const ident = () => {
      const start = i;
      if (i < n && NAME_START.test(line[i])) {
        i++;
        while (i < n && NAME_CHAR.test(line[i])) i++;
      }
      return line.slice(start, i);
    };
    const quoted = () => {
      // line[i] === '"'
      i++;
      let out = '';
      while (i < n) {
        const c = line[i];
        if (c === '"') {
          i++;
          return out;
        }
        if (c === '\\' && i + 1 < n) {
          const e = line[i + 1];
          if (e === 'n') out += '\n';
          else if (e === '\\' || e === '"') out += e;
          else out += '\\' + e;
          i += 2;
          continue;
        }
        out += c;
        i++;
      }
      return null; // unterminated
    };

    let name = ident();
    const labels = Object.create(null);
    const afterName = i;
    ws();
    if (line[i] !== '{') i = afterName;
    else {
      i++;
      for (;;) {
        ws();
        if (i >= n) return null;
        if (line[i] === '}') {
          i++;
          break;
        }
        let key;
        const isQuoted = line[i] === '"';
        if (isQuoted) {
          key = quoted();
          if (key === null) return null;
        } else {
          key = ident();
          if (key === '') return null;
        }
        ws();
        if (line[i] === ',' || line[i] === '}') {
          // A bare quoted string is the metric name (UTF-8 names: {"a.b", l="v"}).
          if (!isQuoted || name !== '') return null;
          name = key;
          if (line[i] === ',') i++;
          continue;
        }
        if (line[i] !== '=') return null;
        i++;
        ws();
        if (line[i] !== '"') return null;
        const v = quoted();
        if (v === null) return null;
        labels[key] = v;
        ws();
        if (line[i] === ',') {
          i++;
          continue;
        }
        if (line[i] === '}') {
          i++;
          break;
        }
        return null;
      }
    }
    if (name === '') return null;
    // The value follows after whitespace.
    if (line[i] !== ' ' && line[i] !== '\t') return null;
    ws();
    const start = i;
    while (i < n && line[i] !== ' ' && line[i] !== '\t') i++;
    const value = parseValue(line.slice(start, i));
    if (value === undefined) return null;
    // A timestamp or an exemplar may follow; the dashboard uses its own clock.
    return { name, labels, value, key: labelKey(labels) };
  }

  function parseValue(tok) {
    if (tok === '') return undefined;
    switch (tok.toLowerCase()) {
      case 'nan':
        return NaN;
      case '+inf':
      case 'inf':
        return Infinity;
      case '-inf':
        return -Infinity;
    }
    const v = Number(tok);
    return Number.isNaN(v) ? undefined : v;
  }

  // labelKey identifies a series within a metric: its labels, sorted.
  function labelKey(labels) {
    return Object.keys(labels)
      .sort()
      .map((k) => k + '=' + JSON.stringify(labels[k]))
      .join(',');
  }

  // ---------------------------------------------------------------------------
  // Snapshots and the values computed from them.

  class Snapshot {
    constructor(parsed, t, wall) {
      this.samples = parsed.samples;
      this.t = t; // performance.now(), for intervals
      this.wall = wall; // Date.now(), for display
      this.indexes = new Map();
    }
    has(name) {
      return this.samples.has(name);
    }
    list(name) {
      return this.samples.get(name) || [];
    }
    // index returns Map(series key -> value) for one sample name.
    index(name) {
      let m = this.indexes.get(name);
      if (!m) {
        m = new Map();
        for (const s of this.list(name)) m.set(s.key, s.value);
        this.indexes.set(name, m);
      }
      return m;
    }
  }

  // increases returns the increase of every series of counter `name` from `prev` to
  // `cur`: a series that went down was reset and counts from zero, a series that is new
  // counts from zero.
  function increases(cur, prev, name) {
    const before = prev.index(name);
    const out = [];
    for (const s of cur.list(name)) {
      if (!Number.isFinite(s.value)) continue;
      const p = before.get(s.key);
      let d;
      if (p === undefined || !Number.isFinite(p) || s.value < p) d = s.value;
      else d = s.value - p;
      out.push({ labels: s.labels, delta: d });
    }
    return out;
  }

  // rateBy sums the per-second increase of counter `name` between the two latest polls,
  // grouped by group(labels) (null drops a series). It returns null if the metric is
  // absent, so that the chart says "no data".
  function rateBy(ctx, name, group) {
    if (!ctx.cur.has(name)) return null;
    if (!ctx.prev) return undefined; // one poll only: no rate yet
    const out = {};
    for (const { labels, delta } of increases(ctx.cur, ctx.prev, name)) {
      const g = group(labels);
      if (g === null || g === undefined) continue;
      out[g] = (out[g] || 0) + delta / ctx.dt;
    }
    return out;
  }

  function label(labels, name) {
    const v = labels[name];
    return v === undefined || v === '' ? '(none)' : v;
  }

  // histogramQuantile follows Prometheus' histogram_quantile: buckets are
  // [{le, count}] with cumulative counts; the result is interpolated linearly inside
  // the bucket the rank falls in; a rank in the +Inf bucket yields the highest finite
  // bound.
  function histogramQuantile(q, buckets) {
    if (Number.isNaN(q)) return NaN;
    if (q < 0) return -Infinity;
    if (q > 1) return Infinity;
    const b = buckets.slice().sort((x, y) => x.le - y.le);
    if (b.length < 2 || b[b.length - 1].le !== Infinity) return NaN;
    for (let i = 1; i < b.length; i++) {
      if (b[i].count < b[i - 1].count) b[i] = { le: b[i].le, count: b[i - 1].count };
    }
    const total = b[b.length - 1].count;
    if (!(total > 0)) return NaN;
    let rank = q * total;
    let k = 0;
    while (k < b.length - 1 && b[k].count < rank) k++;
    if (k === b.length - 1) return b[b.length - 2].le;
    if (k === 0 && b[0].le <= 0) return b[0].le;
    let start = 0;
    let count = b[k].count;
    if (k > 0) {
      start = b[k - 1].le;
      count -= b[k - 1].count;
      rank -= b[k - 1].count;
    }
    if (count <= 0) return b[k].le;
    return start + (b[k].le - start) * (rank / count);
  }

  // quantiles aggregates all series of histogram `name` (sum by le) over the window
  // and returns {p50, p99}; {} when nothing was observed in it.
  function quantiles(ctx, name) {
    const bucket = name + '_bucket';
    if (!ctx.cur.has(bucket)) return null;
    if (!ctx.win) return undefined;
    const byLe = new Map();
    for (const { labels, delta } of increases(ctx.cur, ctx.win, bucket)) {
      const le = parseValue(labels.le === undefined ? '' : labels.le.trim());
      if (le === undefined || Number.isNaN(le)) continue;
      byLe.set(le, (byLe.get(le) || 0) + delta);
    }
    const buckets = Array.from(byLe, ([le, count]) => ({ le, count }));
    const out = {};
    for (const [key, q] of [['p50', 0.5], ['p99', 0.99]]) {
      const v = histogramQuantile(q, buckets);
      if (Number.isFinite(v)) out[key] = v;
    }
    return out;
  }

  function gaugeSum(snap, name) {
    if (!snap.has(name)) return null;
    let sum = 0;
    for (const s of snap.list(name)) if (Number.isFinite(s.value)) sum += s.value;
    return sum;
  }

  function scale(obj, f) {
    if (!obj) return obj;
    const out = {};
    for (const k of Object.keys(obj)) out[k] = obj[k] * f;
    return out;
  }

  // ---------------------------------------------------------------------------
  // Formatting.

  function num(v) {
    if (!Number.isFinite(v)) return '—';
    const a = Math.abs(v);
    if (a >= 1e9) return +(v / 1e9).toPrecision(3) + 'G';
    if (a >= 1e6) return +(v / 1e6).toPrecision(3) + 'M';
    if (a >= 1e4) return +(v / 1e3).toPrecision(3) + 'k';
    if (a >= 100) return String(Math.round(v));
    if (a === 0) return '0';
    return String(+v.toPrecision(3));
  }
  const fmt = {
    rate: (v) => num(v) + '/s',
    seconds: (v) => (!Number.isFinite(v) ? '—' : Math.abs(v) < 1 ? num(v * 1000) + ' ms' : num(v) + ' s'),
    usdPerHour: (v) =>
      !Number.isFinite(v) ? '—' : '$' + (Math.abs(v) >= 1 || v === 0 ? v.toFixed(2) : String(+v.toPrecision(3))) + '/h',
    count: (v) => num(v),
    percent: (v) => (!Number.isFinite(v) ? '—' : +(v * 100).toPrecision(3) + '%'),
  };
  // raw is the machine-readable form in data-latest.
  function raw(v) {
    return Number.isFinite(v) ? String(+v.toPrecision(6)) : '';
  }

  // ---------------------------------------------------------------------------
  // Charts.

  function sumValues(v) {
    let s = 0;
    for (const k of Object.keys(v)) s += v[k];
    return s;
  }

  const CHARTS = [
    {
      id: 'requests',
      fmt: fmt.rate,
      order: ['total', 'errors'],
      compute(ctx) {
        const name = 'sluice_requests_total';
        const total = rateBy(ctx, name, () => 'total');
        if (!total) return total;
        const errors = rateBy(ctx, name, (l) => {
          const status = Number(l.status);
          return (Number.isFinite(status) && status >= 400) || (l.code !== undefined && l.code !== '') ? 'errors' : null;
        });
        return { total: total.total || 0, errors: (errors && errors.errors) || 0 };
      },
      headline: (v) => v.total,
      headlineText: (v) => fmt.rate(v.total) + ' · errors ' + fmt.rate(v.errors),
    },
    {
      id: 'tokens-by-team',
      fmt: fmt.rate,
      compute: (ctx) => rateBy(ctx, 'sluice_tokens_total', (l) => label(l, 'team')),
      headline: sumValues,
      headlineText: (v) => fmt.rate(sumValues(v)) + ' total',
    },
    {
      id: 'tokens-by-model',
      fmt: fmt.rate,
      compute: (ctx) => rateBy(ctx, 'sluice_tokens_total', (l) => label(l, 'model')),
      headline: sumValues,
      headlineText: (v) => fmt.rate(sumValues(v)) + ' total',
    },
    {
      id: 'latency',
      fmt: fmt.seconds,
      order: ['p50', 'p99'],
      compute: (ctx) => quantiles(ctx, 'gen_ai_server_request_duration_seconds'),
      headline: (v) => v.p99,
      headlineText: (v) => 'p50 ' + fmt.seconds(v.p50) + ' · p99 ' + fmt.seconds(v.p99),
      empty: 'no requests in the last 10 s',
    },
    {
      id: 'ttft',
      fmt: fmt.seconds,
      order: ['p50', 'p99'],
      compute: (ctx) => quantiles(ctx, 'gen_ai_server_time_to_first_token_seconds'),
      headline: (v) => v.p99,
      headlineText: (v) => 'p50 ' + fmt.seconds(v.p50) + ' · p99 ' + fmt.seconds(v.p99),
      empty: 'no streamed responses in the last 10 s',
    },
    {
      id: 'spend',
      fmt: fmt.usdPerHour,
      compute: (ctx) => scale(rateBy(ctx, 'sluice_usage_cost_usd_total', (l) => label(l, 'team')), 3600),
      headline: sumValues,
      headlineText: (v) => fmt.usdPerHour(sumValues(v)) + ' total',
    },
    {
      id: 'blocks',
      fmt: fmt.rate,
      compute: (ctx) =>
        rateBy(ctx, 'sluice_processor_actions_total', (l) => (l.action === 'block' ? label(l, 'processor') : null)),
      headline: sumValues,
      headlineText: (v) => fmt.rate(sumValues(v)) + ' blocked',
      idle: 'no blocks',
    },
    {
      id: 'ratelimits',
      fmt: fmt.rate,
      compute: (ctx) =>
        rateBy(ctx, 'sluice_ratelimit_decisions_total', (l) => {
          if (l.decision === 'rejected') return label(l, 'rule');
          if (l.decision === 'shadow_rejected') return label(l, 'rule') + ' (shadow)';
          return null;
        }),
      headline: (v) => {
        let s = 0;
        for (const k of Object.keys(v)) if (!k.endsWith(' (shadow)')) s += v[k];
        return s;
      },
      headlineText(v) {
        return fmt.rate(this.headline(v)) + ' rejected';
      },
      idle: 'no rejections',
    },
  ];

  // ---------------------------------------------------------------------------
  // State.

  const params = new URLSearchParams(location.search);
  const interval = clamp(parseInt(params.get('interval') || '', 10), 100, 60000, 1000);
  const metricsURL = sameOriginPath(params.get('metrics')) || 'metrics';

  const state = {
    snaps: [], // recent snapshots, enough to cover QUANTILE_WINDOW_MS
    history: new Map(), // chart id -> [{t, v}] with v: object, null (no data) or undefined (gap)
    colors: new Map(), // chart id -> Map(series -> color index)
    polls: 0,
    failures: 0,
    lastWall: 0,
  };

  // reportError logs a script error and counts it on <body data-script-errors>, where
  // tests look for it.
  function reportError(where, e) {
    console.error('dashboard:', where, e);
    const b = document.body;
    b.dataset.scriptErrors = String(Number(b.dataset.scriptErrors || 0) + 1);
    b.dataset.lastScriptError = where + ': ' + ((e && e.message) || e);
  }
  window.addEventListener('error', (ev) => reportError('uncaught', ev.error || ev.message));
  window.addEventListener('unhandledrejection', (ev) => reportError('unhandled rejection', ev.reason));

  function clamp(v, lo, hi, dflt) {
    if (!Number.isFinite(v)) return dflt;
    return Math.min(hi, Math.max(lo, v));
  }

  function sameOriginPath(p) {
    if (!p) return '';
    try {
      const u = new URL(p, location.href);
      return u.origin === location.origin ? u.pathname + u.search : '';
    } catch (e) {
      return '';
    }
  }

  function push(id, point) {
    let h = state.history.get(id);
    if (!h) state.history.set(id, (h = []));
    h.push(point);
    const cutoff = point.t - WINDOW_MS;
    while (h.length && h[0].t < cutoff) h.shift();
  }

  // record computes every chart's values for the newest snapshot.
  function record(cur) {
    const prev = state.snaps.length ? state.snaps[state.snaps.length - 1] : null;
    state.snaps.push(cur);
    // Keep the newest snapshot at least QUANTILE_WINDOW_MS old, and all newer ones.
    while (state.snaps.length > 2 && state.snaps[1].t <= cur.t - QUANTILE_WINDOW_MS) state.snaps.shift();
    let win = state.snaps[0] !== cur ? state.snaps[0] : null;
    const ctx = { cur, prev, win, dt: prev ? Math.max(cur.t - prev.t, 1) / 1000 : 0 };
    for (const c of CHARTS) {
      let v;
      try {
        v = c.compute(ctx);
      } catch (e) {
        reportError('computing ' + c.id, e);
        v = null;
      }
      push(c.id, { t: cur.t, v });
    }
    push('inflight', { t: cur.t, v: wrap(gaugeSum(cur, 'sluice_requests_in_flight')) });
    push('cache', { t: cur.t, v: cacheRatio(ctx) });
  }

  function wrap(x) {
    return x === null ? null : { value: x };
  }

  function cacheRatio(ctx) {
    const name = 'sluice_cache_lookups_total';
    if (!ctx.cur.has(name)) return null;
    const isHit = (l) => l.result === 'hit' || l.result === 'semantic_hit';
    let hits = 0;
    let all = 0;
    for (const s of ctx.cur.list(name)) {
      if (!Number.isFinite(s.value)) continue;
      all += s.value;
      if (isHit(s.labels)) hits += s.value;
    }
    const out = { lifetime: all > 0 ? hits / all : NaN };
    if (ctx.win) {
      let h = 0;
      let a = 0;
      for (const { labels, delta } of increases(ctx.cur, ctx.win, name)) {
        a += delta;
        if (isHit(labels)) h += delta;
      }
      if (a > 0) out.value = h / a;
    }
    return out;
  }

  // ---------------------------------------------------------------------------
  // Drawing.

  function el(name, attrs, text) {
    const e = document.createElementNS(SVG_NS, name);
    for (const k in attrs) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function colorOf(id, series) {
    let m = state.colors.get(id);
    if (!m) state.colors.set(id, (m = new Map()));
    if (!m.has(series)) m.set(series, m.size % 8);
    return m.get(series);
  }

  // niceMax is the top of a y axis with four gridline steps of 1, 2, 2.5 or 5 × 10^k.
  function niceMax(v) {
    if (!(v > 0) || !Number.isFinite(v)) return 1;
    const raw = v / 4;
    const p = Math.pow(10, Math.floor(Math.log10(raw)));
    for (const f of [1, 2, 2.5, 5, 10]) if (f * p >= raw) return 4 * f * p;
    return 40 * p;
  }

  function svgSize(svg, fallbackH) {
    const r = svg.getBoundingClientRect();
    return { w: Math.max(Math.round(r.width) || 600, 120), h: Math.max(Math.round(r.height) || fallbackH, 40) };
  }

  // drawLines draws series over time into svg: hist is [{t, v}], names the series.
  function drawLines(svg, id, hist, names, format, opts) {
    const { w, h } = svgSize(svg, opts.spark ? 40 : 180);
    svg.setAttribute('viewBox', '0 0 ' + w + ' ' + h);
    svg.replaceChildren();
    const padL = opts.spark ? 2 : 56;
    const padR = opts.spark ? 2 : 8;
    const padT = opts.spark ? 3 : 8;
    const padB = opts.spark ? 3 : 20;
    const now = hist.length ? hist[hist.length - 1].t : 0;
    const first = hist.length ? hist[0].t : 0;
    const span = Math.min(WINDOW_MS, Math.max(30000, now - first));
    const t0 = now - span;
    let max = 0;
    for (const p of hist) {
      if (!p.v) continue;
      for (const n of names) {
        const v = p.v[n];
        if (Number.isFinite(v) && v > max) max = v;
      }
    }
    max = niceMax(max);
    const x = (t) => padL + ((t - t0) / span) * (w - padL - padR);
    const y = (v) => padT + (1 - v / max) * (h - padT - padB);
    if (!opts.spark) {
      for (let i = 0; i <= 4; i++) {
        const v = (max * i) / 4;
        svg.appendChild(el('line', { class: 'grid', x1: padL, x2: w - padR, y1: y(v), y2: y(v) }));
        svg.appendChild(el('text', { class: 'axis', x: padL - 6, y: y(v) + 4, 'text-anchor': 'end' }, format(v)));
      }
      const ago = Math.round(span / 1000);
      const agoText = ago >= 120 ? Math.round(ago / 60) + ' min ago' : ago + ' s ago';
      svg.appendChild(el('text', { class: 'axis', x: padL, y: h - 4, 'text-anchor': 'start' }, agoText));
      svg.appendChild(el('text', { class: 'axis', x: w - padR, y: h - 4, 'text-anchor': 'end' }, 'now'));
    }
    names.forEach((n) => {
      let d = '';
      let pen = false;
      for (const p of hist) {
        const v = p.v ? p.v[n] : undefined;
        if (!Number.isFinite(v)) {
          pen = false;
          continue;
        }
        d += (pen ? 'L' : 'M') + x(p.t).toFixed(1) + ' ' + y(v).toFixed(1);
        pen = true;
      }
      if (d) svg.appendChild(el('path', { class: 'line s' + colorOf(id, n), d }));
    });
    if (opts.message) {
      svg.appendChild(el('text', { class: 'message', x: w / 2, y: h / 2, 'text-anchor': 'middle' }, opts.message));
    }
  }

  // latest is the newest value of a history, skipping the gaps of failed polls.
  function latest(hist) {
    if (!hist) return null;
    for (let i = hist.length - 1; i >= 0; i--) if (!hist[i].gap) return hist[i].v;
    return null;
  }

  function renderChart(c) {
    const section = document.getElementById(c.id);
    if (!section) return;
    const hist = state.history.get(c.id) || [];
    const v = latest(hist);
    const headline = section.querySelector('.headline');
    const svg = section.querySelector('svg');
    const legend = section.querySelector('.legend');

    // Series: every name seen in the window, in a fixed order if the chart has one.
    const seen = new Set(c.order || []);
    for (const p of hist) if (p.v) for (const k of Object.keys(p.v)) seen.add(k);
    let names = Array.from(seen);
    if (!c.order) names.sort();
    const cur = v || {};
    const drawn = names
      .slice()
      .sort((a, b) => (cur[b] || 0) - (cur[a] || 0))
      .slice(0, MAX_LINES);

    let message = '';
    if (v === null) message = 'no data';
    else if (v === undefined) message = 'collecting…';
    else if (c.empty && Object.keys(v).length === 0) message = c.empty;
    else if (names.length === 0) message = c.idle || 'none';

    section.classList.toggle('nodata', v === null || v === undefined);
    if (v) {
      const hv = c.headline(v);
      section.dataset.latest = raw(hv);
      headline.textContent = Object.keys(v).length || !c.empty ? c.headlineText(v) : c.empty;
    } else {
      section.dataset.latest = '';
      headline.textContent = v === null ? 'no data' : 'collecting…';
    }

    drawLines(svg, c.id, hist, drawn, c.fmt, { message });

    const items = names.map((n) => {
      const li = document.createElement('li');
      li.dataset.series = n;
      li.dataset.latest = raw(cur[n]);
      const sw = document.createElement('span');
      sw.className = 'swatch ' + (drawn.includes(n) ? 's' + colorOf(c.id, n) : 'hidden-series');
      const name = document.createElement('span');
      name.className = 'name';
      name.textContent = n;
      const val = document.createElement('span');
      val.className = 'value';
      val.textContent = c.fmt(cur[n]);
      li.append(sw, name, val);
      return li;
    });
    legend.replaceChildren(...items);
  }

  function renderTile(id, format, extra) {
    const section = document.getElementById(id);
    if (!section) return;
    const hist = state.history.get(id) || [];
    const v = latest(hist);
    const headline = section.querySelector('.headline');
    section.classList.toggle('nodata', !v);
    if (!v) {
      section.dataset.latest = '';
      headline.textContent = 'no data';
    } else {
      section.dataset.latest = raw(v.value);
      headline.textContent = Number.isFinite(v.value) ? format(v.value) : '—';
    }
    if (extra) extra(section, v);
    const svg = section.querySelector('svg');
    if (svg) drawLines(svg, id, hist, ['value'], format, { spark: true });
  }

  function renderBackends() {
    const section = document.getElementById('backends');
    const tile = document.getElementById('backends-up');
    const snap = state.snaps[state.snaps.length - 1];
    if (!section || !snap) return;
    const up = new Map();
    const inflight = new Map();
    for (const s of snap.list('sluice_backend_up')) {
      const b = label(s.labels, 'backend');
      up.set(b, (up.get(b) || 0) + (Number.isFinite(s.value) ? s.value : 0));
    }
    for (const s of snap.list('sluice_backend_in_flight')) {
      const b = label(s.labels, 'backend');
      inflight.set(b, (inflight.get(b) || 0) + (Number.isFinite(s.value) ? s.value : 0));
    }
    const names = Array.from(new Set([...up.keys(), ...inflight.keys()])).sort();
    const headline = section.querySelector('.headline');
    const tbody = section.querySelector('tbody');
    let nUp = 0;
    const rows = names.map((b) => {
      const tr = document.createElement('tr');
      const health = !up.has(b) ? 'unknown' : up.get(b) >= 1 ? 'up' : 'down';
      if (health === 'up') nUp++;
      tr.dataset.series = b;
      tr.dataset.latest = health;
      tr.dataset.inFlight = inflight.has(b) ? raw(inflight.get(b)) : '';
      const name = document.createElement('td');
      name.textContent = b;
      const badgeCell = document.createElement('td');
      const badge = document.createElement('span');
      badge.className = 'badge ' + health;
      badge.textContent = health;
      badgeCell.append(badge);
      const fl = document.createElement('td');
      fl.className = 'num';
      fl.textContent = inflight.has(b) ? fmt.count(inflight.get(b)) : '—';
      tr.append(name, badgeCell, fl);
      return tr;
    });
    tbody.replaceChildren(...rows);
    const known = Array.from(up.keys()).length;
    section.classList.toggle('nodata', names.length === 0);
    if (names.length === 0) {
      section.dataset.latest = '';
      section.dataset.total = '';
      headline.textContent = 'no data';
    } else {
      section.dataset.latest = String(nUp);
      section.dataset.total = String(known);
      headline.textContent = nUp + ' of ' + known + ' up';
    }
    if (tile) {
      tile.dataset.latest = section.dataset.latest;
      tile.querySelector('.headline').textContent = names.length ? nUp + ' / ' + known : 'no data';
      tile.classList.toggle('alert', names.length > 0 && nUp < known);
      tile.classList.toggle('nodata', names.length === 0);
    }
  }

  function render() {
    for (const c of CHARTS) {
      try {
        renderChart(c);
      } catch (e) {
        reportError('drawing ' + c.id, e);
      }
    }
    try {
      renderTile('inflight', fmt.count);
      renderTile('cache', fmt.percent, (section, v) => {
        const note = section.querySelector('.note');
        const life = v && Number.isFinite(v.lifetime) ? v.lifetime : NaN;
        section.dataset.lifetime = raw(life);
        if (v && !Number.isFinite(v.value)) {
          section.querySelector('.headline').textContent = 'no lookups';
        }
        note.textContent = 'over the last 10 s' + (Number.isFinite(life) ? ' · ' + fmt.percent(life) + ' since start' : '');
      });
      renderBackends();
    } catch (e) {
      reportError('drawing tiles', e);
    }
  }

  function renderStatus(err) {
    const updated = document.getElementById('updated');
    const banner = document.getElementById('error');
    updated.dataset.polls = String(state.polls);
    if (state.lastWall) {
      const d = new Date(state.lastWall);
      updated.dataset.latest = d.toISOString();
      updated.textContent = 'last updated ' + d.toLocaleTimeString();
    }
    if (err) {
      banner.hidden = false;
      banner.dataset.latest = err;
      banner.textContent = 'Cannot read metrics: ' + err + ' (retrying every ' + fmt.seconds(interval / 1000) + ')';
      document.body.classList.add('stale');
    } else {
      banner.hidden = true;
      banner.dataset.latest = '';
      banner.textContent = '';
      document.body.classList.remove('stale');
    }
  }

  // ---------------------------------------------------------------------------
  // Polling.

  async function poll() {
    const started = performance.now();
    let err = '';
    try {
      const ctl = new AbortController();
      const timer = setTimeout(() => ctl.abort(), Math.max(5000, interval * 2));
      let text;
      try {
        const res = await fetch(metricsURL, { cache: 'no-store', signal: ctl.signal, headers: { Accept: 'text/plain' } });
        if (!res.ok) throw new Error('HTTP ' + res.status + ' ' + res.statusText);
        text = await res.text();
      } finally {
        clearTimeout(timer);
      }
      const parsed = parseExposition(text);
      const perr = document.getElementById('parse-errors');
      perr.hidden = parsed.errors === 0;
      perr.textContent = parsed.errors ? parsed.errors + ' unparsable lines skipped' : '';
      const snap = new Snapshot(parsed, performance.now(), Date.now());
      state.polls++;
      state.lastWall = snap.wall;
      record(snap);
    } catch (e) {
      state.failures++;
      err = e && e.name === 'AbortError' ? 'timed out' : String((e && e.message) || e);
      // A gap in every chart.
      const t = performance.now();
      for (const id of state.history.keys()) push(id, { t, v: undefined, gap: true });
    }
    render();
    renderStatus(err);
    setTimeout(poll, Math.max(0, interval - (performance.now() - started)));
  }

  let resizeTimer = 0;
  window.addEventListener('resize', () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(render, 150);
  });

  document.getElementById('interval').textContent = '· polling every ' + fmt.seconds(interval / 1000);
  // For tests and the curious: the pure functions.
  window.sluiceDashboard = { parseExposition, histogramQuantile, labelKey };
  poll();
})();
