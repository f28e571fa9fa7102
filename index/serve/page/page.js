// The search page: reads the query from the URL (/?q=...&k=...), asks
// /search, and on demand /explain for one result. Every piece of data goes
// into the page through textContent, never as HTML.
(function () {
  'use strict';
  var params = new URLSearchParams(location.search);
  var query = params.get('q') || '';
  var k = params.get('k') || '';
  var box = document.getElementById('q');
  var status = document.getElementById('status');
  var list = document.getElementById('results');

  box.value = query;
  box.focus();
  box.setSelectionRange(box.value.length, box.value.length);
  document.addEventListener('keydown', function (e) {
    var t = e.target;
    if (e.key === '/' && t !== box && !(t instanceof HTMLInputElement) && !(t instanceof HTMLTextAreaElement)) {
      e.preventDefault();
      box.focus();
      box.select();
    }
  });
  if (query.trim() !== '') {
    search(query, k);
  }

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  // fmt shows 4 significant digits without trailing zeros (1, 0.502, 1.502).
  function fmt(x) {
    return Math.abs(x) >= 1e4 ? x.toFixed(0) : String(Number(x.toPrecision(4)));
  }

  function setStatus(text, isError) {
    status.textContent = text;
    status.classList.toggle('error', !!isError);
    status.setAttribute('role', isError ? 'alert' : 'status');
  }

  function getJSON(url) {
    return fetch(url, { headers: { Accept: 'application/json' } }).then(function (resp) {
      return resp.json().catch(function () { return {}; }).then(function (body) {
        if (!resp.ok) throw new Error(body.error || resp.status + ' ' + resp.statusText);
        return body;
      });
    });
  }

  function search(q, k) {
    document.title = q + ' — spladapt search';
    setStatus('Searching…');
    var url = '/search?q=' + encodeURIComponent(q) + (k ? '&k=' + encodeURIComponent(k) : '');
    var t0 = performance.now();
    getJSON(url).then(function (body) {
      var rtt = performance.now() - t0;
      var hits = body.hits || [];
      list.replaceChildren();
      hits.forEach(function (h, i) { list.appendChild(result(q, h, i)); });
      setStatus((hits.length === 1 ? '1 result' : hits.length + ' results') + ' in ' +
        body.took_ms.toFixed(2) + ' ms (server), ' + rtt.toFixed(0) + ' ms round trip');
      document.body.dataset.state = 'results';
    }).catch(function (err) {
      list.replaceChildren();
      setStatus('Search failed: ' + err.message, true);
      document.body.dataset.state = 'error';
    });
  }

  function result(q, h, i) {
    var li = el('li', 'hit');
    li.dataset.doc = h.id;
    var art = el('article');
    var h2 = el('h2');
    h2.appendChild(el('span', 'rank', (i + 1) + '.'));
    h2.appendChild(document.createTextNode(h.title || h.id));
    art.appendChild(h2);
    var meta = el('p', 'meta');
    meta.appendChild(document.createTextNode('doc '));
    meta.appendChild(el('code', 'docid', h.id));
    meta.appendChild(document.createTextNode(' · score '));
    meta.appendChild(el('span', 'score', fmt(h.score)));
    art.appendChild(meta);
    if (h.snippet) art.appendChild(el('p', 'snippet', h.snippet));
    var det = el('details', 'explain');
    var sum = el('summary', '', 'Why this result?');
    sum.setAttribute('aria-label', 'Explain the score of ' + (h.title || h.id));
    det.appendChild(sum);
    var body = el('div', 'explain-body', 'Loading…');
    det.appendChild(body);
    det.addEventListener('toggle', function () {
      if (!det.open || det.dataset.loaded) return;
      det.dataset.loaded = 'loading';
      getJSON('/explain?q=' + encodeURIComponent(q) + '&doc=' + encodeURIComponent(h.id)).then(function (ex) {
        body.replaceChildren(explanation(ex));
        det.dataset.loaded = 'yes';
      }).catch(function (err) {
        body.textContent = 'Explanation failed: ' + err.message;
        delete det.dataset.loaded;
      });
    });
    art.appendChild(det);
    li.appendChild(art);
    return li;
  }

  function explanation(ex) {
    var frag = document.createDocumentFragment();
    var table = el('table');
    table.appendChild(el('caption', 'visually-hidden', 'Matched terms of ' + ex.doc + ', by contribution'));
    var head = el('tr');
    ['term', 'query q\u209c', 'document d\u209c', 'q\u209c\u00b7d\u209c'].forEach(function (c) {
      var th = el('th', '', c);
      th.scope = 'col';
      head.appendChild(th);
    });
    var thead = el('thead');
    thead.appendChild(head);
    table.appendChild(thead);
    var tbody = el('tbody');
    var expansions = 0;
    ex.terms.forEach(function (t) {
      var tr = el('tr', t.expansion ? 'expansion' : '');
      var term = el('td', 'term', t.token || ('#' + t.term));
      if (t.expansion) {
        expansions++;
        term.appendChild(el('span', 'badge', 'expansion'));
      }
      tr.appendChild(term);
      tr.appendChild(el('td', 'q', fmt(t.query)));
      tr.appendChild(el('td', 'd', fmt(t.doc)));
      tr.appendChild(el('td', 'qd', fmt(t.product)));
      tbody.appendChild(tr);
    });
    table.appendChild(tbody);
    var foot = el('tr');
    foot.appendChild(el('th', '', 'score'));
    foot.appendChild(el('td'));
    foot.appendChild(el('td'));
    foot.appendChild(el('td', 'total', fmt(ex.score)));
    var tfoot = el('tfoot');
    tfoot.appendChild(foot);
    table.appendChild(tfoot);
    frag.appendChild(table);
    var note = ex.terms.length + ' of ' + ex.query_terms + ' query terms occur in the document.';
    if (ex.expansion_known) {
      note += ' ' + expansions + ' matched ' + (expansions === 1 ? 'term is an expansion' : 'terms are expansions') +
        ': not among the tokens of the document\u2019s own text.';
    } else {
      note += ' Expansion terms are not marked: the server has no document text or no tokenizer for it.';
    }
    frag.appendChild(el('p', 'note', note));
    return frag;
  }
})();
