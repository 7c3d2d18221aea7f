// The studio's live parts; every page reads whole without this file.
// - A run page that is not over holds one server-sent-events stream (data-events)
//   and swaps in the live part the server renders whenever the run changes.
// - A running step's page follows its log (data-follow): new output is appended as the
//   step prints it, and the whole log and the step's state are put in when it ends.
// - The trigger form checks JSON fields before sending (the browser checks numbers
//   and required fields itself; the server checks everything again).
(function () {
  "use strict";
  // The live part is swapped whole: a keyboard user focused inside it would be thrown
  // back to the top of the page, so focus goes back to the same control (by id or link).
  function focusKey(live) {
    var el = document.activeElement;
    if (!el || el === live || !live.contains(el)) { return null; }
    return el.id ? "#" + CSS.escape(el.id)
      : el.getAttribute("href") ? 'a[href="' + CSS.escape(el.getAttribute("href")) + '"]' : null;
  }
  function refocus(live, key) {
    var el = live.querySelector(key);
    if (el) { el.focus({ preventScroll: true }); }
  }
  function follow(live) {
    var source = new EventSource(live.getAttribute("data-events"));
    source.addEventListener("update", function (event) {
      var data = JSON.parse(event.data);
      var back = focusKey(live);
      live.innerHTML = data.html;
      live.setAttribute("data-status", data.status);
      if (back) { refocus(live, back); }
    });
    source.addEventListener("end", function () {
      source.close();
      live.removeAttribute("data-events");
      live.setAttribute("data-over", "1");
    });
  }
  function tail(pre) {
    var source = new EventSource(pre.getAttribute("data-follow"));
    function atBottom() { return pre.scrollHeight - pre.scrollTop - pre.clientHeight < 8; }
    function put(change) {
      var stick = atBottom();
      change();
      if (stick) { pre.scrollTop = pre.scrollHeight; }
    }
    source.addEventListener("append", function (event) {
      var text = JSON.parse(event.data).text;
      put(function () { pre.appendChild(document.createTextNode(text)); });
    });
    source.addEventListener("end", function (event) {
      var data = JSON.parse(event.data);
      source.close();
      pre.removeAttribute("data-follow");
      put(function () { pre.textContent = data.logs || "(no output)"; });
      var state = document.getElementById("step-state");
      if (state) {
        state.setAttribute("data-state", data.state);
        var badge = state.querySelector(".badge");
        if (badge) { badge.className = "badge s-" + data.state; badge.textContent = data.state; }
      }
    });
  }
  function checkJson(form) {
    form.addEventListener("submit", function (event) {
      var fields = form.querySelectorAll("textarea[data-json]");
      for (var i = 0; i < fields.length; i++) {
        var field = fields[i];
        field.setCustomValidity("");
        if (field.value.trim() === "") { continue; }
        try { JSON.parse(field.value); } catch (e) {
          field.setCustomValidity("Not valid JSON: " + e.message);
          field.reportValidity();
          event.preventDefault();
          return;
        }
      }
    });
  }
  function pickTwo(form) {
    var picks = form.querySelectorAll("input.pick");
    for (var i = 0; i < picks.length; i++) {
      picks[i].addEventListener("change", function () {
        var chosen = form.querySelectorAll("input.pick:checked");
        form.querySelector("#cmp-a").value = chosen.length > 0 ? chosen[0].value : "";
        form.querySelector("#cmp-b").value = chosen.length > 1 ? chosen[1].value : "";
      });
    }
  }
  document.addEventListener("DOMContentLoaded", function () {
    var live = document.querySelector("[data-events]");
    if (live) { follow(live); }
    var logs = document.querySelector("pre[data-follow]");
    if (logs) { tail(logs); }
    var trigger = document.getElementById("trigger-form");
    if (trigger) { checkJson(trigger); }
    var compare = document.getElementById("compare-form");
    if (compare) { pickTwo(compare); }
  });
})();
