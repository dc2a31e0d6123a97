/* Dozor dashboard: live updates over Server-Sent Events, "select all", confirmations.
   Every page works without this script; it formats nothing itself (texts come from the
   server in data-t-* attributes of <body>). */
(function () {
  'use strict';

  var body = document.body;
  var lang = body.getAttribute('data-lang') || 'en';

  function text(key) {
    return body.getAttribute('data-t-' + key) || '';
  }

  // Plural form index: English one|other, Russian one|few|many.
  function pluralIndex(n) {
    if (lang === 'ru') {
      var d = n % 10;
      var h = n % 100;
      if (d === 1 && h !== 11) { return 0; }
      if (d >= 2 && d <= 4 && (h < 12 || h > 14)) { return 1; }
      return 2;
    }
    return n === 1 ? 0 : 1;
  }

  function plural(forms, n) {
    var list = forms.split('|');
    return list[Math.min(pluralIndex(n), list.length - 1)].replace('{n}', String(n));
  }

  function each(selector, fn, root) {
    Array.prototype.forEach.call((root || document).querySelectorAll(selector), fn);
  }

  // "Select all" boxes tick every alert checkbox of their form.
  each('input.select-all', function (box) {
    box.addEventListener('change', function () {
      var form = box.form || box.closest('form');
      if (!form) { return; }
      each('input[type="checkbox"][name="id"]', function (c) { c.checked = box.checked; }, form);
    });
  });

  // Bulk changes and destructive buttons ask first.
  each('form[data-confirm]', function (form) {
    form.addEventListener('submit', function (ev) {
      // A second button of the form (e.g. "Create incident" on the bulk bar) may need no question.
      if (ev.submitter && ev.submitter.hasAttribute('data-no-confirm')) { return; }
      if (!window.confirm(form.getAttribute('data-confirm'))) { ev.preventDefault(); }
    });
  });
  each('[data-confirm-click]', function (button) {
    button.addEventListener('click', function (ev) {
      if (!window.confirm(button.getAttribute('data-confirm-click'))) { ev.preventDefault(); }
    });
  });

  if (!window.EventSource) { return; }

  // New alerts: the overview and the alert list show a "N new alerts — refresh" banner.
  var banner = document.getElementById('live-banner');
  if (banner) {
    var fresh = 0;
    var link = banner.querySelector('a');
    var show = function () {
      link.textContent = plural(text('new-alerts'), fresh);
      banner.hidden = false;
    };
    var alerts = new EventSource('/api/v1/alerts/stream');
    alerts.addEventListener('alert', function (ev) {
      var data;
      try { data = JSON.parse(ev.data); } catch (e) { return; }
      if (!data || data.change !== 'created') { return; }
      fresh += 1;
      show();
    });
    alerts.addEventListener('lagged', function (ev) {
      var data;
      try { data = JSON.parse(ev.data); } catch (e) { return; }
      if (data && typeof data.skipped === 'number' && data.skipped > 0) {
        fresh += data.skipped;
        show();
      }
    });
  }

  // Agent heartbeats: dots and status texts of elements with data-agent-id follow the stream.
  var agentsShown = document.querySelector('[data-agent-id]');
  if (agentsShown) {
    var note = document.getElementById('live-note');
    var noteText = note ? note.textContent : '';
    var agents = new EventSource('/api/v1/agents/stream');
    agents.addEventListener('open', function () {
      if (note) { note.textContent = noteText; note.className = 'live-note on'; }
    });
    agents.addEventListener('error', function () {
      if (note) { note.textContent = text('live-lost'); note.className = 'live-note off'; }
    });
    agents.addEventListener('agent', function (ev) {
      var data;
      try { data = JSON.parse(ev.data); } catch (e) { return; }
      if (!data || typeof data.id !== 'string') { return; }
      var status = /^(online|degraded|offline|revoked)$/.test(data.status) ? data.status : '';
      each('[data-agent-id]', function (el) {
        if (el.getAttribute('data-agent-id') !== data.id) { return; }
        if (status) {
          each('[data-role="dot"]', function (dot) { dot.className = 'dot ag-' + status; }, el);
          each('[data-role="status"]', function (s) { s.textContent = text(status); }, el);
        }
        each('[data-role="seen"]', function (s) {
          s.textContent = text('just-now');
          if (typeof data.last_seen === 'number') {
            s.setAttribute('datetime', new Date(data.last_seen).toISOString());
          }
        }, el);
      });
    });
  }
}());
