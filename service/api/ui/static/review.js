/* Reviewer page: calls the JSON API with the reviewer's key (sessionStorage, this tab only). */
(function () {
  "use strict";

  var KEY = "iccs.reviewer.key";
  var NAME = "iccs.reviewer.name";
  var FILTERS = "iccs.reviewer.filters";
  var PAGE_SIZE = 25;

  function $(sel) { return document.querySelector(sel); }
  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text !== undefined && text !== null) { node.textContent = String(text); }
    return node;
  }
  function pct(x) { return x === null || x === undefined ? "–" : (x * 100).toFixed(1) + "%"; }
  function when(iso) { return iso ? iso.replace("T", " ").slice(0, 19) : ""; }

  // How the item's records were coded: an entry of a list coded as a table is re-scored as one.
  function codedAs(it) {
    var target = it.min_precision === null ? "service default" : "target " + it.min_precision;
    return it.table_precision === null ? "a record, " + target :
      "an entry of a list coded as a table, table target " + it.table_precision;
  }

  function say(message) {
    var alert = $("#alert");
    if (alert) { alert.hidden = true; alert.textContent = ""; }
    $("#status").textContent = message;
  }
  function fail(err) {
    if (err.status === 401) { signOut(); return; }
    var alert = $("#alert");
    $("#status").textContent = "";
    alert.textContent = err.message + (err.code ? " (" + err.code + ")" : "");
    alert.hidden = false;
  }

  function api(method, path, body) {
    var headers = { "Authorization": "Bearer " + sessionStorage.getItem(KEY),
                    "Accept": "application/json" };
    var init = { method: method, headers: headers };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    return fetch(path, init).then(function (res) {
      return res.json().catch(function () { return null; }).then(function (data) {
        if (!res.ok) {
          var err = new Error((data && data.detail) || res.statusText);
          err.status = res.status;
          err.code = data && data.error;
          throw err;
        }
        return data;
      });
    });
  }

  function signOut() {
    sessionStorage.removeItem(KEY);
    sessionStorage.removeItem(NAME);
    var next = location.pathname + location.search;
    location.assign("/review/login" + (next.indexOf("/review/login") === 0 ? "" :
                    "?next=" + encodeURIComponent(next)));
  }

  function sections() {
    var node = $("#sections-data");
    var out = {};
    if (node) { JSON.parse(node.textContent).forEach(function (p) { out[p[0]] = p[1]; }); }
    return out;
  }

  // --- login --------------------------------------------------------------------------------

  function initLogin() {
    var form = $("#login-form");
    $("#api-key").focus();
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var key = $("#api-key").value.trim();
      if (!key) { fail(new Error("Enter your API key.")); $("#api-key").focus(); return; }
      sessionStorage.setItem(KEY, key);
      api("GET", "/v1/reviews/stats").then(function (stats) {
        sessionStorage.setItem(NAME, stats.reviewer || "");
        var next = new URLSearchParams(location.search).get("next");
        // Only same-site paths under /review: never an open redirect.
        location.assign(next && /^\/review(\/|$|\?)/.test(next) ? next : "/review");
      }).catch(function (err) {
        sessionStorage.removeItem(KEY);
        if (err.status === 401) { err = new Error("Unknown or revoked API key."); }
        else if (err.status === 403) { err = new Error("This key may not review items; use a reviewer key."); }
        fail(err);
        $("#api-key").focus();
      });
    });
  }

  // --- queue --------------------------------------------------------------------------------

  var offset = 0;

  function filterParams() {
    var params = new URLSearchParams();
    new FormData($("#filters")).forEach(function (value, name) {
      if (String(value).trim() !== "") { params.set(name, String(value).trim()); }
    });
    return params;
  }

  function loadCounts() {
    return api("GET", "/v1/reviews/stats").then(function (s) {
      Object.keys(s.by_status).forEach(function (st) {
        var dd = document.querySelector('[data-count="' + st + '"]');
        if (dd) { dd.textContent = s.by_status[st]; }
      });
      document.querySelector('[data-count="reviewed_today"]').textContent = s.reviewed_today;
    });
  }

  function loadItems() {
    var params = filterParams();
    params.set("limit", PAGE_SIZE);
    params.set("offset", offset);
    return api("GET", "/v1/reviews?" + params.toString()).then(function (page) {
      var body = $("#items tbody");
      body.textContent = "";
      page.items.forEach(function (it) {
        var tr = el("tr");
        var link = el("a", { href: "/review/items/" + it.id }, "#" + it.id);
        var first = el("td"); first.appendChild(link); tr.appendChild(first);
        tr.appendChild(el("td", {}, it.text));
        var top = it.suggestions[0];
        tr.appendChild(el("td", {}, top ? top.code + " " + top.label : "none"));
        tr.appendChild(el("td", { "class": "num" }, pct(it.top_confidence)));
        tr.appendChild(el("td", { "class": "num" }, it.occurrences));
        tr.appendChild(el("td", {}, it.status));
        tr.appendChild(el("td", { "class": "num" },
          it.priority === null || it.priority === undefined ? "–" : it.priority.toFixed(1)));
        body.appendChild(tr);
      });
      if (!page.items.length) {
        var tr = el("tr"); var td = el("td", { colspan: "7" }, "No items match these filters.");
        tr.appendChild(td); body.appendChild(tr);
      }
      var last = Math.min(page.offset + page.items.length, page.total);
      $("#total").textContent = "(" + (page.total ? page.offset + 1 : 0) + "–" + last + " of " +
        page.total + ")";
      $("#prev-page").disabled = page.offset === 0;
      $("#next-page").disabled = last >= page.total;
      say(page.total + (page.total === 1 ? " item matches." : " items match."));
    });
  }

  function restoreFilters() {
    var params = new URLSearchParams(location.search);
    var form = $("#filters");
    if (!params.toString()) { return; }
    Array.prototype.forEach.call(form.elements, function (field) {
      if (field.name && params.has(field.name)) { field.value = params.get(field.name); }
      else if (field.name === "status") { field.value = ""; }
    });
  }

  function saveFilters() {
    var params = filterParams();
    history.replaceState(null, "", "/review" + (params.toString() ? "?" + params : ""));
    sessionStorage.setItem(FILTERS, params.toString());
  }

  function claimNext() {
    var saved = new URLSearchParams(sessionStorage.getItem(FILTERS) || "");
    var body = {};
    ["section", "batch", "origin", "order"].forEach(function (k) {
      if (saved.get(k)) { body[k] = saved.get(k); }
    });
    ["min_confidence", "max_confidence"].forEach(function (k) {
      if (saved.get(k)) { body[k] = Number(saved.get(k)); }
    });
    return api("POST", "/v1/reviews/claim-next", body).then(function (res) {
      if (res.item) { location.assign("/review/items/" + res.item.id); }
      else { say("Nothing left for you to review with these filters."); }
    });
  }

  function initQueue() {
    restoreFilters();
    saveFilters();
    $("#filters").addEventListener("submit", function (ev) {
      ev.preventDefault();
      offset = 0;
      saveFilters();
      loadItems().catch(fail);
    });
    $("#filters").addEventListener("reset", function () {
      setTimeout(function () {
        $("#f-status").value = "";
        offset = 0; saveFilters(); loadItems().catch(fail);
      }, 0);
    });
    $("#prev-page").addEventListener("click", function () {
      offset = Math.max(0, offset - PAGE_SIZE); loadItems().catch(fail);
    });
    $("#next-page").addEventListener("click", function () {
      offset += PAGE_SIZE; loadItems().catch(fail);
    });
    $("#review-next").addEventListener("click", function () { claimNext().catch(fail); });
    Promise.all([loadCounts(), loadItems()]).catch(fail);
  }

  // --- item ---------------------------------------------------------------------------------

  var item = null;
  var canAct = false;

  function me() { return sessionStorage.getItem(NAME) || ""; }

  function decisionText(it) {
    if (it.decision === "reject") { return "rejected: not an offence"; }
    if (it.status === "auto_coded") {
      return "coded " + it.decided_code + " " + (it.decided_label || "") +
        " by the model after a decision on a similar item";
    }
    return (it.decision === "accept" ? "accepted " : "corrected to ") + it.decided_code + " " +
      (it.decided_label || "");
  }

  function renderItem(it) {
    item = it;
    $("#item-text").textContent = it.text;
    var status = it.status;
    if (it.status === "decided") { status += " (" + decisionText(it) + " by " + it.decided_by + ")"; }
    if (it.status === "auto_coded") { status += " (" + decisionText(it) + ")"; }
    if (it.reviews_required > 1 && it.status !== "decided") {
      status += " · double review: " + it.reviews_done + " of " + it.reviews_required;
    }
    $("#item-status").textContent = status;
    $("#item-occurrences").textContent = it.occurrences;
    $("#item-origin").textContent = it.origin + (it.batch ? " · " + it.batch : "");
    $("#item-model").textContent = it.model_version || "";
    $("#item-coded-as").textContent = codedAs(it);
    $("#item-lease").textContent = it.claimed_by ?
      it.claimed_by + " until " + when(it.claim_expires_at) : "free";
    var mine = it.decisions.some(function (d) { return d.reviewer === me() && d.action !== "skip"; });
    canAct = it.status !== "decided" && it.status !== "auto_coded" && !mine &&
      (it.status !== "claimed" || it.claimed_by === me());
    var list = $("#suggestions");
    list.textContent = "";
    it.suggestions.slice(0, 5).forEach(function (s, i) {
      var li = el("li");
      var btn = el("button", { type: "button", "data-code": s.code,
        "aria-keyshortcuts": String(i + 1),
        "aria-label": "Accept " + s.code + " " + s.label + ", confidence " + pct(s.confidence) +
          " (key " + (i + 1) + ")" });
      btn.appendChild(el("span", { "class": "key", "aria-hidden": "true" }, i + 1));
      var main = el("span");
      main.appendChild(el("strong", {}, s.code + " " + s.label));
      main.appendChild(el("span", { "class": "path" },
        s.path.map(function (p) { return p.code + " " + p.label; }).join(" › ")));
      btn.appendChild(main);
      btn.appendChild(el("span", { "class": "conf" }, pct(s.confidence)));
      btn.addEventListener("click", function () { decide("accept", s.code); });
      btn.disabled = !canAct;
      li.appendChild(btn);
      list.appendChild(li);
    });
    if (!it.suggestions.length) { list.appendChild(el("li", {}, "The model made no suggestion.")); }
    renderNonOffence(it);
    $("#reject").disabled = !canAct;
    $("#skip").disabled = !canAct;
    Array.prototype.forEach.call(document.querySelectorAll("#search-results button"),
      function (b) { b.disabled = !canAct; });
  }

  // From this P(not an offence) the item is flagged: well under the service's reject bar (0.5
  // at least), where warrants, registrations and found property still land in the queue.
  var NON_OFFENCE_FLAG = 0.2;

  function renderNonOffence(it) {
    var p = $("#non-offence");
    var x = it.non_offence_probability;
    var show = x !== null && x !== undefined && x >= NON_OFFENCE_FLAG;
    p.textContent = show ? "May not be an offence (" + Math.round(x * 100) + "%)" : "";
    p.hidden = !show;
  }

  function renderNeighbours(list) {
    var ul = $("#neighbours");
    ul.textContent = "";
    (list || []).forEach(function (n) {
      var li = el("li");
      li.appendChild(el("a", { href: "/review/items/" + n.item_id }, "#" + n.item_id));
      li.appendChild(document.createTextNode(" " + n.text + " → "));
      li.appendChild(el("strong", {}, n.code));
      li.appendChild(el("span", { "class": "muted" }, " (similarity " + n.similarity.toFixed(2) + ")"));
      ul.appendChild(li);
    });
    if (!ul.children.length) { ul.appendChild(el("li", { "class": "muted" }, "None decided yet.")); }
  }

  // The pending items of the item's list: reloaded after every decision, because a decision
  // re-scores them on the server (some leave the queue, others get new suggestions).
  function loadListItems() {
    var params = new URLSearchParams({ status: "pending", order: "value", limit: "10" });
    if (item.batch) { params.set("batch", item.batch); } else { params.set("origin", item.origin); }
    return api("GET", "/v1/reviews?" + params.toString()).then(function (page) {
      var body = $("#list-items tbody");
      body.textContent = "";
      page.items.forEach(function (it) {
        if (it.id === item.id) { return; }
        var tr = el("tr", { "data-item-id": String(it.id) });
        var first = el("td");
        first.appendChild(el("a", { href: "/review/items/" + it.id }, "#" + it.id));
        tr.appendChild(first);
        tr.appendChild(el("td", {}, it.text));
        var top = it.suggestions[0];
        tr.appendChild(el("td", { "class": "top-code" }, top ? top.code + " " + top.label : "none"));
        tr.appendChild(el("td", { "class": "num" }, pct(it.top_confidence)));
        tr.appendChild(el("td", { "class": "num" }, it.occurrences));
        body.appendChild(tr);
      });
      if (!body.children.length) {
        var tr = el("tr"); tr.appendChild(el("td", { colspan: "5" }, "No other pending items."));
        body.appendChild(tr);
      }
      var others = page.total - (page.items.some(function (i) { return i.id === item.id; }) ? 1 : 0);
      $("#list-total").textContent = "(" + others + ")";
    });
  }

  function rescoredText(r) {
    if (!r) { return ""; }
    if (r.failed) { return " Similar items could not be re-scored this time."; }
    if (!r.considered) { return ""; }
    var out = " " + r.considered + " similar pending " + (r.considered === 1 ? "item" : "items") +
      " re-scored";
    if (r.auto_coded.length) { out += ", " + r.auto_coded.length + " now coded by the model"; }
    if (r.moved.length) { out += ", " + r.moved.length + " with a new top suggestion"; }
    return out + ".";
  }

  function loadHistory() {
    return api("GET", "/v1/reviews/" + item.id + "/history").then(function (h) {
      var body = $("#history tbody");
      body.textContent = "";
      h.entries.forEach(function (e) {
        var tr = el("tr");
        [when(e.at), e.actor, e.action,
         (e.from_status || "") + " → " + (e.to_status || ""),
         (e.from_code || "") + (e.to_code ? " → " + e.to_code : ""),
         e.model_version || "", e.note || ""].forEach(function (v) { tr.appendChild(el("td", {}, v)); });
        body.appendChild(tr);
      });
    });
  }

  function decide(action, code) {
    if (!canAct) { fail(new Error("You cannot decide this item now.")); return; }
    var body = { action: action };
    if (code) { body.code = code; }
    var note = $("#note").value.trim();
    if (note) { body.note = note; }
    api("POST", "/v1/reviews/" + item.id + "/decision", body).then(function (it) {
      $("#note").value = "";
      renderItem(it);
      var done = {
        accept: "Accepted " + code + ".", correct: "Corrected to " + code + ".",
        reject: "Rejected as not an offence.", skip: "Skipped; the item is back in the queue."
      }[action];
      if (it.status === "pending" && action !== "skip") {
        done += " A second reviewer will review it too.";
      }
      say(done + rescoredText(it.rescoring) + " Press n for the next item.");
      $("#next-item").focus();
      return Promise.all([loadHistory(), loadListItems()]);
    }).catch(fail);
  }

  function search(ev) {
    ev.preventDefault();
    var q = $("#search-q").value.trim();
    if (!q) { $("#search-q").focus(); return; }
    var params = new URLSearchParams({ q: q, limit: "20" });
    if ($("#search-level").value) { params.set("level", $("#search-level").value); }
    api("GET", "/v1/taxonomy/search?" + params.toString()).then(function (res) {
      var list = $("#search-results");
      list.textContent = "";
      res.results.forEach(function (c) {
        var li = el("li");
        li.appendChild(el("span", {}, c.code + " " + c.label + " (" + c.level_name + ")"));
        var btn = el("button", { type: "button", "data-code": c.code }, "Correct to " + c.code);
        btn.disabled = !canAct;
        btn.addEventListener("click", function () { decide("correct", c.code); });
        li.appendChild(btn);
        list.appendChild(li);
      });
      say(res.results.length ? res.results.length + " categories found." : "No category matches.");
    }).catch(fail);
  }

  // Viewing an item does not claim it (browsing the queue must not lock items for the lease
  // time): "Review next item" claims on the server, and a decision on a free item claims it
  // in the same step.
  function openItem(id) {
    return api("GET", "/v1/reviews/" + id).then(function (it) {
      renderItem(it);
      renderNeighbours(it.neighbours);
      if (it.status === "claimed" && it.claimed_by === me() && canAct) {
        say("Claimed for you until " + when(it.claim_expires_at) + " UTC.");
      } else if (canAct) {
        say("Not claimed: your decision claims it.");
      }
      if (it.status === "claimed" && it.claimed_by !== me()) {
        fail(new Error("Claimed by " + it.claimed_by + "; you can read it but not decide it."));
      }
      return null;
    }).then(function () { return Promise.all([loadHistory(), loadListItems()]); });
  }

  function initItem() {
    var id = document.body.getAttribute("data-item-id");
    $("#reject").addEventListener("click", function () { decide("reject"); });
    $("#skip").addEventListener("click", function () { decide("skip"); });
    $("#next-item").addEventListener("click", function () { claimNext().catch(fail); });
    $("#code-search").addEventListener("submit", search);
    document.addEventListener("keydown", function (ev) {
      var tag = (ev.target.tagName || "").toLowerCase();
      if (ev.ctrlKey || ev.metaKey || ev.altKey || tag === "input" || tag === "textarea" ||
          tag === "select" || !item) { return; }
      if (ev.key >= "1" && ev.key <= "5") {
        var s = item.suggestions[Number(ev.key) - 1];
        if (s) { ev.preventDefault(); decide("accept", s.code); }
      } else if (ev.key === "r") { ev.preventDefault(); decide("reject"); }
      else if (ev.key === "s") { ev.preventDefault(); decide("skip"); }
      else if (ev.key === "n") { ev.preventDefault(); claimNext().catch(fail); }
      else if (ev.key === "/") { ev.preventDefault(); $("#search-q").focus(); }
    });
    openItem(id).catch(fail);
  }

  // --- progress -----------------------------------------------------------------------------

  function initProgress() {
    var titles = sections();
    api("GET", "/v1/reviews/stats").then(function (s) {
      Object.keys(s).forEach(function (k) {
        var dd = document.querySelector('[data-stat="' + k + '"]');
        if (!dd) { return; }
        dd.textContent = k === "model_agreement" ?
          pct(s[k]) + " of " + s.model_agreement_n : (s[k] === null ? "–" : s[k]);
      });
      var a = s.inter_reviewer;
      document.querySelector('[data-agree="pairs"]').textContent = a.pairs;
      document.querySelector('[data-agree="rate"]').textContent = pct(a.rate);
      document.querySelector('[data-agree="kappa"]').textContent =
        a.kappa === null ? "–" : a.kappa.toFixed(2);
      var body = $("#by-section tbody");
      body.textContent = "";
      Object.keys(s.pending_by_section).forEach(function (sec) {
        var tr = el("tr");
        tr.appendChild(el("td", {}, sec === "none" ? "No suggestion" : sec + " " + (titles[sec] || "")));
        tr.appendChild(el("td", { "class": "num" }, s.pending_by_section[sec]));
        body.appendChild(tr);
      });
      say("Progress updated.");
    }).catch(fail);
  }

  // --- start --------------------------------------------------------------------------------

  document.addEventListener("DOMContentLoaded", function () {
    var page = document.body.getAttribute("data-page");
    if (page === "login") { initLogin(); return; }
    if (!sessionStorage.getItem(KEY)) { signOut(); return; }
    var who = $("#whoami");
    if (who) { who.textContent = "Signed in as " + me(); }
    var out = $("#logout");
    if (out) { out.addEventListener("click", signOut); }
    if (page === "queue") { initQueue(); }
    else if (page === "item") { initItem(); }
    else if (page === "progress") { initProgress(); }
  });
}());
