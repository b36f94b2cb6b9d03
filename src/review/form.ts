/**
 * A review packet as a small self-contained HTML form (no network, no library): the reviewer reads
 * each question and answer, clicks the scores, and "Save CSV" downloads the packet's CSV with the
 * entries filled in: byte for byte what `packetRows` + `toCsv` write (the script below mirrors them;
 * test/review-form.test.ts holds the two together).
 */
import { CRITERIA, type PacketData } from './protocol.ts';

const esc = (s: string): string => s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
const scriptJson = (v: unknown): string => JSON.stringify(v).replace(/</g, '\\u003c').replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029');

function radios(item: string, name: string, values: readonly string[], labels: readonly string[] = values): string {
  return values
    .map((v, i) => `<label><input type="radio" name="${esc(`${item}.${name}`)}" value="${esc(v)}"> ${esc(labels[i]!)}</label>`)
    .join(' ');
}

/**
 * The browser side. `buildCsv(data, answers)` is pure (and runs under node:vm in the tests);
 * `collect()` reads the page. Field rules as in csv.ts: all quoted, quotes doubled, a leading
 * = + - @ tab or CR prefixed with ', CRLF between rows and at the end.
 */
const SCRIPT = String.raw`(function (root) {
  'use strict';
  var CRITERIA = ${JSON.stringify(CRITERIA)};
  var FORMULA = /^[=+\-@\t\r]/;
  function field(s) {
    s = String(s);
    if (FORMULA.test(s)) s = "'" + s;
    return '"' + s.replace(/"/g, '""') + '"';
  }
  function buildCsv(d, a) {
    var rows = [['clinilora-review', '1'], ['review', d.review], ['packet', d.packet],
      ['reviewer_name', a.reviewer_name], ['reviewer_role', a.reviewer_role], ['reviewer_credential', a.reviewer_credential],
      ['instructions', d.instructions], d.columns.slice()];
    d.items.forEach(function (it) {
      var x = a.items[it.item] || {};
      var row = [it.item, it.question, it.answer];
      CRITERIA.forEach(function (c) { row.push(x[c] || ''); });
      row.push(x.disclaimer || '', x.violation || '', x.comment || '');
      rows.push(row);
    });
    return rows.map(function (r) { return r.map(field).join(','); }).join('\r\n') + '\r\n';
  }
  root.cliniloraReview = { buildCsv: buildCsv };
  if (typeof document === 'undefined') return;
  var data = JSON.parse(document.getElementById('review-data').textContent);
  var dirty = false;
  function value(name) {
    var checked = document.querySelector('input[name="' + name.replace(/"/g, '\\"') + '"]:checked');
    return checked ? checked.value : '';
  }
  function collect() {
    var a = { reviewer_name: document.getElementById('reviewer_name').value.trim(),
      reviewer_role: document.getElementById('reviewer_role').value.trim(),
      reviewer_credential: document.getElementById('reviewer_credential').value.trim(), items: {} };
    data.items.forEach(function (it) {
      var x = {};
      CRITERIA.concat(['disclaimer', 'violation']).forEach(function (c) { x[c] = value(it.item + '.' + c); });
      x.comment = document.getElementById(it.item + '.comment').value.trim();
      a.items[it.item] = x;
    });
    return a;
  }
  function progress() {
    var a = collect();
    var done = data.items.filter(function (it) {
      var x = a.items[it.item];
      return CRITERIA.every(function (c) { return x[c] !== ''; }) && x.disclaimer !== '';
    }).length;
    document.getElementById('progress').textContent = done + ' of ' + data.items.length + ' items scored';
  }
  function save() {
    var blob = new Blob([buildCsv(data, collect())], { type: 'text/csv;charset=utf-8' });
    var link = document.createElement('a');
    link.href = URL.createObjectURL(blob);
    link.download = data.file + '.csv';
    document.body.appendChild(link);
    link.click();
    link.remove();
    dirty = false;
  }
  root.cliniloraReview.collect = collect;
  root.cliniloraReview.csv = function () { return buildCsv(data, collect()); };
  document.addEventListener('change', function () { dirty = true; progress(); });
  document.getElementById('save').addEventListener('click', save);
  window.addEventListener('beforeunload', function (e) { if (dirty) { e.preventDefault(); e.returnValue = ''; } });
  progress();
})(typeof window !== 'undefined' ? window : globalThis);`;

/** The packet's form page. */
export function renderForm(d: PacketData): string {
  const scale = ['1', '2', '3', '4', '5'];
  const items = d.items
    .map((it, i) => {
      const criteria = CRITERIA.map((c) => `<tr><th scope="row">${c}</th><td>${radios(it.item, c, scale)}</td></tr>`).join('\n');
      return `<section class="item" id="${esc(it.item)}">
<h2>${i + 1}. Item ${esc(it.item)}</h2>
<div class="label">Question</div><div class="text">${esc(it.question)}</div>
<div class="label">Answer</div><div class="text answer">${esc(it.answer)}</div>
<table>
${criteria}
<tr><th scope="row">disclaimer</th><td>${radios(it.item, 'disclaimer', ['yes', 'no'])}</td></tr>
<tr><th scope="row">violation</th><td>${radios(it.item, 'violation', ['yes', 'no'])}</td></tr>
<tr><th scope="row">comment</th><td><textarea id="${esc(`${it.item}.comment`)}" rows="2" cols="70"></textarea></td></tr>
</table>
</section>`;
    })
    .join('\n');
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Review packet ${esc(d.packet)} (${esc(d.review)})</title>
<style>
body { font-family: system-ui, sans-serif; max-width: 900px; margin: 2rem auto; padding: 0 1rem; color: #222; }
.item { border-top: 1px solid #ccc; padding: 0.5rem 0 1rem; }
.label { font-weight: 600; margin-top: 0.5rem; }
.text { white-space: pre-wrap; background: #f7f7f7; padding: 0.5rem; border-radius: 4px; }
th { text-align: left; padding-right: 1rem; font-weight: 500; }
label { margin-right: 0.6rem; }
#reviewer label { display: block; margin: 0.3rem 0; }
.bar { position: sticky; bottom: 0; background: #fff; border-top: 1px solid #ccc; padding: 0.5rem 0; }
</style>
</head>
<body>
<h1>Review packet ${esc(d.packet)}</h1>
<p>${esc(d.instructions)}</p>
<p>Scale: 1 = very poor, 2 = poor, 3 = acceptable, 4 = good, 5 = excellent. When done (or to keep partial work), press <b>Save CSV</b> and send the file back.</p>
<fieldset id="reviewer"><legend>Reviewer</legend>
<label>Name <input id="reviewer_name" size="40"></label>
<label>Role <input id="reviewer_role" size="40" placeholder="physician, nurse, pharmacist"></label>
<label>Credential <input id="reviewer_credential" size="40" placeholder="MD, RN, PharmD"></label>
</fieldset>
${items}
<div class="bar"><button id="save" type="button">Save CSV</button> <span id="progress"></span></div>
<script type="application/json" id="review-data">${scriptJson(d)}</script>
<script>
${SCRIPT}
</script>
</body>
</html>
`;
}
