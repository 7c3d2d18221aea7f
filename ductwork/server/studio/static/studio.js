// The studio's live parts; every page reads whole without this file.
// - A run page that is not over holds one server-sent-events stream (data-events)
//   and swaps in the live part the server renders whenever the run changes.
// - The trigger form checks JSON fields before sending (the browser checks numbers
//   and required fields itself; the server checks everything again).
(function () {
  "use strict";
  function follow(live) {
    var source = new EventSource(live.getAttribute("data-events"));
    source.addEventListener("update", function (event) {
      var data = JSON.parse(event.data);
      live.innerHTML = data.html;
      live.setAttribute("data-status", data.status);
    });
    source.addEventListener("end", function () {
      source.close();
      live.removeAttribute("data-events");
      live.setAttribute("data-over", "1");
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
    var trigger = document.getElementById("trigger-form");
    if (trigger) { checkJson(trigger); }
    var compare = document.getElementById("compare-form");
    if (compare) { pickTwo(compare); }
  });
})();
