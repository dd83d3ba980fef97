// trailmill validate --report: renders the page's JSON data block into
// #app. The page works from disk with no network access.
//
// Only textContent and setAttribute put data into the page: the data holds
// object keys and trail names, which whoever can write to the bucket
// chooses, and none of it may ever become markup.
//
// The fragment #open=DAY[,DAY...] (YYYY-MM-DD), #open=all or #open=none says
// which days' hours are shown; by default, the days with findings (up to a
// dozen panels).
(function () {
  "use strict";
  var CODES = { n: "none", v: "valid", g: "gap", u: "unattested", m: "missing", i: "invalid" };
  var ORDER = ["invalid", "missing", "unattested", "gap", "valid", "none"];
  var RANK = { none: 0, valid: 1, gap: 2, unattested: 3, missing: 4, invalid: 5 };
  var GLYPH = { none: "", valid: "\u2713", gap: "\u2013", unattested: "!", missing: "?", invalid: "\u2715" };
  var MEANING = {
    invalid: "a digest or log file failed: hash mismatch, bad signature, broken chain link, unreadable, \u2026",
    missing: "a digest file is missing (deleted or never delivered), or a chain ends early",
    unattested: "a log file that no digest lists",
    gap: "no log files were delivered (logging was off); not an error",
    valid: "every file verified",
    none: "no digest covers this hour"
  };
  var DAY_MS = 86400000;
  var MAX_DEFAULT_PANELS = 12;
  var INLINE_QUIET_CHAINS = 24;

  var data = JSON.parse(document.getElementById("trailmill-report-data").textContent);
  var app = document.getElementById("app");
  var axisStart = Date.parse(data.axis_start + "T00:00:00Z");
  var rangeStart = Date.parse(data.start);
  var rangeEnd = Date.parse(data.end);
  var weekly = data.axis_days > 31;
  var chains = data.chains;
  var views = []; // chain index -> rendered view {section, tokens, panels, open}
  var findingRows = [];
  var filterInput = null;

  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    if (attrs) {
      for (var k in attrs) {
        if (Object.prototype.hasOwnProperty.call(attrs, k) && attrs[k] !== null && attrs[k] !== undefined) {
          e.setAttribute(k, String(attrs[k]));
        }
      }
    }
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function add(parent) {
    for (var i = 1; i < arguments.length; i++) {
      var c = arguments[i];
      if (c === null || c === undefined) continue;
      parent.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
    }
    return parent;
  }
  function pad2(n) { return (n < 10 ? "0" : "") + n; }
  function dayLabel(i) { return new Date(axisStart + i * DAY_MS).toISOString().slice(0, 10); }
  function hourLabel(i, h) { return dayLabel(i) + "T" + pad2(h); }
  function hourStatus(token, h) { return CODES[token.length === 1 ? token : token.charAt(h)] || "none"; }
  function tokenStatus(token) {
    var worst = "none";
    for (var h = 0; h < token.length; h++) {
      var s = CODES[token.charAt(h)] || "none";
      if (RANK[s] > RANK[worst]) worst = s;
    }
    return worst;
  }
  function chainAttrs(c) {
    return {
      "data-account": c.account, "data-region": c.region, "data-trail": c.trail,
      "data-org": c.org_id || "", "data-prefix": c.prefix || "", "data-bucket": c.bucket
    };
  }
  function merge(a, b) { var o = {}, k; for (k in a) o[k] = a[k]; for (k in b) o[k] = b[k]; return o; }
  function badge(status, cls) {
    return el("span", { "class": "cell " + (cls || "badge") + " s-" + status, "aria-hidden": "true" }, GLYPH[status]);
  }
  function chainName(c) { return c.account + " \u00b7 " + c.region + " \u00b7 " + c.trail; }
  function chainPlace(c) {
    return "s3://" + c.bucket + "/" + (c.prefix ? c.prefix + "/" : "") + "AWSLogs/" +
      (c.org_id ? c.org_id + "/" : "") + c.account + "/";
  }

  // ---- Summary and legend ----
  function renderSummary() {
    var sec = el("section", { id: "summary" });
    add(sec, el("h2", null, "Summary"));
    var valid = data.verdict === "VALID";
    var problems = 0, gaps = 0;
    data.kinds.forEach(function (k) { if (k.status === "gap") gaps += k.count; else problems += k.count; });
    var v = el("p", { "class": "verdict s-" + (valid ? "valid" : "invalid"), "data-verdict": data.verdict },
      (valid ? "\u2713 " : "\u2715 ") + data.verdict);
    var grid = el("div", { "class": "summary-grid" });
    var left = el("div");
    add(left, v, el("p", null, valid
      ? "No file was changed, deleted or forged" + (gaps ? " (" + gaps + " gaps in delivery, which are not errors)." : ".")
      : problems + " finding" + (problems === 1 ? "" : "s") + (gaps ? " and " + gaps + " gaps" : "") + "."));
    var dl = el("dl", { "class": "meta" });
    function row(k, vnode) { add(dl, el("dt", null, k), add(el("dd"), vnode)); }
    row("Validated", data.what);
    row("Range (UTC)", data.start + " \u2192 " + data.end);
    var keys = el("span", { "class": "mono" }, data.key_fingerprints.length ? data.key_fingerprints.join(", ") : "(none)");
    row("Public keys", keys);
    row("trailmill", data.version);
    row(data.follow ? "Monitoring" : "Generated",
      data.follow ? "validate --follow, last poll at " + data.generated : data.generated);
    row("Verified", data.valid_digests + " digests, " + data.valid_logs + " log files");
    row("Chains", String(chains.length));
    add(left, dl);
    add(grid, left);
    if (data.kinds.length) {
      var t = el("table", { "class": "kinds" });
      add(t, add(el("tr"), el("th", null, "Kind"), el("th", null, "Status"), el("th", null, "Count")));
      var kinds = data.kinds.slice().sort(function (a, b) { return RANK[b.status] - RANK[a.status] || (a.kind < b.kind ? -1 : 1); });
      kinds.forEach(function (k) {
        add(t, add(el("tr", { "data-kind": k.kind, "data-status": k.status }),
          el("td", null, k.kind), add(el("td"), badge(k.status), k.status), el("td", null, k.count)));
      });
      add(grid, add(el("div"), el("h3", null, "Findings by kind"), t));
    }
    add(grid, renderLegend());
    add(sec, grid);
    if (data.omitted) add(sec, el("p", { "class": "muted" }, data.omitted + " findings beyond the first " +
      data.findings.length + " are counted but not listed; the timeline shows them all."));
    return sec;
  }
  function renderLegend() {
    var sec = el("div", { id: "legend" });
    add(sec, el("h3", null, "Legend"));
    var ul = el("ul", { "class": "legend" });
    ORDER.forEach(function (s) {
      add(ul, add(el("li", { "data-status": s }), badge(s, "swatch"),
        add(el("span"), el("b", null, s), " \u2014 " + MEANING[s])));
    });
    add(sec, ul, el("p", { "class": "muted" },
      "Worst first: a day shows the worst of its hours. Okabe\u2013Ito colours, and a glyph per status."));
    return sec;
  }

  // ---- Timeline ----
  function renderChain(ci) {
    var c = chains[ci];
    var tokens = c.days.split(",");
    var attrs = chainAttrs(c);
    var sec = el("section", merge(attrs, { "class": "chain", id: "chain-" + ci, "data-status": c.worst }));
    sec.chainText = chainText(c);
    var head = add(el("div", { "class": "chain-head" }), badge(c.worst), el("strong", null, chainName(c)),
      el("span", { "class": "count" }, c.findings ? c.findings + " finding" + (c.findings === 1 ? "" : "s") : "no findings"),
      el("div", { "class": "place muted mono", title: c.arn }, chainPlace(c)));
    var cal = el("div", { "class": "cal " + (weekly ? "weeks" : "row"), role: "group", "aria-label": "days of " + chainName(c) });
    // Weekly: one column per week, Monday at the top, month names above.
    var wd = (new Date(axisStart).getUTCDay() + 6) % 7;
    var labelled = false;
    var MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    var view = { section: sec, tokens: tokens, panels: el("div", { "class": "panels" }), open: {}, buttons: [], chain: ci };
    tokens.forEach(function (tok, i) {
      var st = tokenStatus(tok);
      var day = dayLabel(i);
      var b = el("button", merge(attrs, {
        type: "button", "class": "cell day s-" + st, "data-day": day, "data-status": st,
        "aria-pressed": "false", title: day + ": " + st + (tok.length > 1 ? " (hours differ; click for hours)" : "")
      }));
      if (weekly) {
        var col = Math.floor((wd + i) / 7) + 1;
        b.style.gridColumn = String(col);
        b.style.gridRow = String((wd + i) % 7 + 2);
        // A month's name where it starts (or at the start, unless the next
        // month's name would collide with it), with the year on the first
        // and on January.
        if ((i === 0 && Number(day.slice(8)) <= 10) || (i > 0 && day.slice(8) === "01")) {
          var m = el("span", { "class": "month", "aria-hidden": "true" },
            MONTHS[Number(day.slice(5, 7)) - 1] + (!labelled || day.slice(5, 7) === "01" ? " " + day.slice(0, 4) : ""));
          labelled = true;
          m.style.gridColumn = col + " / span 4";
          m.style.gridRow = "1";
          cal.appendChild(m);
        }
      } else {
        add(b, el("span", { "class": "dnum" }, day.slice(8)));
      }
      add(b, el("span", { "aria-hidden": "true" }, GLYPH[st]));
      // The index, for the one click handler per calendar (a year of 850
      // chains is 310,000 days).
      b.dayIndex = i;
      view.buttons.push(b);
      cal.appendChild(b);
    });
    cal.addEventListener("click", function (e) {
      var b = e.target.closest("button.day");
      if (b) toggleDay(view, b.dayIndex);
    });
    add(sec, head, cal, view.panels);
    views[ci] = view;
    return sec;
  }
  function toggleDay(view, i, want) {
    var isOpen = !!view.open[i];
    var open = want === undefined ? !isOpen : want;
    if (open === isOpen) return;
    var b = view.buttons[i];
    b.setAttribute("aria-pressed", open ? "true" : "false");
    b.classList.toggle("open", open);
    if (!open) {
      view.panels.removeChild(view.open[i]);
      delete view.open[i];
      return;
    }
    var c = chains[view.chain];
    var attrs = chainAttrs(c);
    var day = dayLabel(i);
    var panel = el("div", merge(attrs, { "class": "panel", "data-day": day }));
    panel.dayIndex = i;
    var close = el("button", { type: "button", title: "hide this day", "aria-label": "hide " + day }, "\u00d7");
    close.addEventListener("click", function () { toggleDay(view, i, false); });
    add(panel, add(el("div", { "class": "panel-head", title: chainName(c) }), el("strong", null, day), close));
    var hours = el("div", { "class": "hours" });
    for (var h = 0; h < 24; h++) {
      var st = hourStatus(view.tokens[i], h);
      var label = hourLabel(i, h);
      var t = axisStart + i * DAY_MS + h * 3600000;
      var outside = t + 3600000 <= rangeStart || t >= rangeEnd;
      var cell = el("span", merge(attrs, {
        "class": "cell hour s-" + st + (RANK[st] > RANK.valid ? " has-findings" : "") + (outside ? " outside" : ""),
        "data-hour": label, "data-status": st, role: "img",
        title: label + ":00Z \u2013 " + st + (outside ? " (outside the range validated)" : ""),
        "aria-label": label + " " + st + (outside ? ", outside the range" : "")
      }));
      add(cell, el("span", { "class": "hnum" }, pad2(h)), el("span", { "aria-hidden": "true" }, GLYPH[st]));
      if (RANK[st] > RANK.valid) {
        cell.setAttribute("tabindex", "0");
        cell.addEventListener("click", showFindingsFor.bind(null, c, label));
      }
      hours.appendChild(cell);
    }
    panel.appendChild(hours);
    // Keep panels in day order.
    var before = null;
    for (var n = view.panels.firstChild; n; n = n.nextSibling) {
      if (n.dayIndex > i) { before = n; break; }
    }
    view.panels.insertBefore(panel, before);
    view.open[i] = panel;
  }
  function renderTimeline() {
    var sec = el("section", { id: "timeline" });
    add(sec, el("h2", null, "Timeline"));
    add(sec, el("p", { "class": "muted" }, "One row per chain of digests (account, region, trail). Each cell is a UTC day from " +
      data.axis_start + " (" + data.axis_days + " day" + (data.axis_days === 1 ? "" : "s") + ")" +
      (weekly ? ", one column per week, Monday at the top" : "") +
      ", coloured by its worst hour; click a day to show its 24 hours."));
    if (data.axis_note) add(sec, el("p", { "class": "muted" }, data.axis_note));
    var loud = [], quiet = [];
    chains.forEach(function (c, i) { (RANK[c.worst] > RANK.valid ? loud : quiet).push(i); });
    var list = el("div", { id: "chains" });
    if (chains.length > INLINE_QUIET_CHAINS) {
      var filter = el("input", { type: "search", placeholder: "filter chains: account, region, trail\u2026", "aria-label": "filter chains" });
      filter.addEventListener("input", function () {
        var terms = filter.value.toLowerCase().split(/\s+/).filter(Boolean);
        list.querySelectorAll("section.chain, details.chain-quiet").forEach(function (n) {
          n.hidden = !terms.every(function (t) { return n.chainText.indexOf(t) >= 0; });
        });
        if (quietBox && terms.length && !quietBox.open) quietBox.open = true;
      });
      add(sec, add(el("div", { "class": "filters" }), filter));
    }
    loud.forEach(function (i) { list.appendChild(renderChain(i)); });
    var quietBox = null;
    if (quiet.length <= INLINE_QUIET_CHAINS || !loud.length) {
      quiet.forEach(function (i) { list.appendChild(renderChain(i)); });
    } else {
      // Hundreds of all-valid chains would bury the few that matter, and
      // their 300,000 day cells would take seconds to draw: each is one line
      // that draws its calendar when opened.
      quietBox = el("details", { "class": "quiet", id: "quiet-chains" });
      add(quietBox, el("summary", null, quiet.length + " chains without findings"));
      var drawn = false;
      quietBox.addEventListener("toggle", function () {
        if (!quietBox.open || drawn) return;
        drawn = true;
        quiet.forEach(function (i) { quietBox.appendChild(renderQuietChain(i)); });
      });
      list.appendChild(quietBox);
    }
    add(sec, list);
    return sec;
  }
  function chainText(c) {
    return [c.account, c.region, c.trail, c.org_id || "", c.bucket, c.prefix || "", c.arn].join(" ").toLowerCase();
  }
  function renderQuietChain(ci) {
    var c = chains[ci];
    var counts = {};
    c.days.split(",").forEach(function (t) { var s = tokenStatus(t); counts[s] = (counts[s] || 0) + 1; });
    var days = ORDER.filter(function (s) { return counts[s]; }).map(function (s) { return counts[s] + " " + s; });
    var d = el("details", merge(chainAttrs(c), { "class": "chain-quiet", "data-status": c.worst }));
    add(d, add(el("summary"), badge(c.worst), el("strong", null, chainName(c)), " ",
      el("span", { "class": "muted" }, "days: " + days.join(" \u00b7 ")), " ",
      el("span", { "class": "muted mono" }, chainPlace(c))));
    d.chainText = chainText(c);
    d.addEventListener("toggle", function () {
      if (!d.open || views[ci]) return;
      d.appendChild(renderChain(ci));
      applyFragment(false, [views[ci]]);
    });
    return d;
  }

  // ---- Findings ----
  function renderFindings() {
    var sec = el("section", { id: "findings" });
    add(sec, el("h2", null, "Findings (" + data.findings.length + (data.omitted ? " listed of " + (data.findings.length + data.omitted) : "") + ")"));
    if (!data.findings.length) {
      add(sec, el("p", { "class": "none-found" }, "None: every digest and log file in the range verified."));
      return sec;
    }
    filterInput = el("input", { type: "search", placeholder: "filter: account, region, hour, kind, key, reason\u2026", "aria-label": "filter findings" });
    var count = el("span", { "class": "muted" });
    var clear = el("button", { type: "button" }, "clear");
    add(sec, add(el("div", { "class": "filters" }), filterInput, clear, count));
    var t = el("table", { "class": "findings" });
    add(t, add(el("thead"), add(el("tr"), el("th", null, "Status"), el("th", null, "Account"), el("th", null, "Region"),
      el("th", null, "Trail"), el("th", null, "Hour (UTC)"), el("th", null, "Kind"), el("th", null, "Object"), el("th", null, "Reason"))));
    var body = el("tbody");
    data.findings.forEach(function (f) {
      var c = chains[f.chain];
      var tr = el("tr", merge(chainAttrs(c), {
        "class": "finding", "data-hour": f.hour || "", "data-kind": f.kind, "data-key": f.uri, "data-status": f.status
      }));
      var hour = f.hour ? (f.until ? f.hour + " \u2026 " + f.until : f.hour) : "\u2014";
      add(tr, add(el("td"), badge(f.status), f.status), el("td", null, c.account), el("td", null, c.region),
        el("td", null, c.trail), el("td", { "class": "mono" }, hour), el("td", null, f.kind),
        add(el("td", { "class": "obj" }), el("code", null, f.uri || "\u2014")), el("td", null, f.reason));
      tr.haystack = [c.account, c.region, c.trail, c.org_id || "", hour, f.kind, f.status, f.uri, f.reason].join(" ").toLowerCase();
      body.appendChild(tr);
      findingRows.push(tr);
    });
    add(t, body);
    add(sec, t);
    function apply() {
      var terms = filterInput.value.toLowerCase().split(/\s+/).filter(Boolean);
      var shown = 0;
      findingRows.forEach(function (tr) {
        var ok = terms.every(function (term) { return tr.haystack.indexOf(term) >= 0; });
        tr.hidden = !ok;
        if (ok) shown++;
      });
      count.textContent = terms.length ? shown + " of " + findingRows.length + " shown" : "";
    }
    filterInput.addEventListener("input", apply);
    clear.addEventListener("click", function () { filterInput.value = ""; apply(); });
    filterInput.applyFilter = apply;
    return sec;
  }
  function showFindingsFor(c, hour) {
    if (!filterInput) return;
    filterInput.value = c.account + " " + c.region + " " + hour;
    filterInput.applyFilter();
    document.getElementById("findings").scrollIntoView();
  }

  // ---- Which days are open ----
  function applyFragment(fromHashChange, only) {
    var m = /(?:^#|&)open=([^&]*)/.exec(location.hash);
    var spec = m ? decodeURIComponent(m[1]) : "findings";
    var wanted = {};
    if (spec !== "all" && spec !== "none" && spec !== "findings") {
      spec.split(",").forEach(function (d) { wanted[d] = true; });
    }
    var budget = MAX_DEFAULT_PANELS;
    (only || views).forEach(function (view) {
      if (!view) return;
      view.tokens.forEach(function (tok, i) {
        var open;
        if (spec === "all") open = true;
        else if (spec === "none") open = false;
        else if (spec === "findings") open = RANK[tokenStatus(tok)] > RANK.valid && budget > 0;
        else open = !!wanted[dayLabel(i)];
        if (spec === "findings" && open) budget--;
        if (open || fromHashChange) toggleDay(view, i, open);
      });
    });
  }

  add(app, renderSummary(), renderTimeline(), renderFindings());
  applyFragment(false);
  window.addEventListener("hashchange", function () { applyFragment(true); });
  app.setAttribute("data-rendered", "js");
})();
