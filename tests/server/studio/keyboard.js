// Run by test_browser.py's keyboard tests. With no argument: mark every control a keyboard
// user must reach (data-kb) and answer how many. With "focused": answer the focused
// element's mark, a description, and whether its focus is visible -- an outline of at
// least 2px (or a box shadow) whose colour has 3:1 contrast against what is behind it
// (WCAG 2.2, 1.4.11 and 2.4.7).
function lum(c) {
  var m = c.match(/[\d.]+/g).map(Number);
  var v = m.slice(0, 3).map(function (x) { x /= 255; return x <= 0.03928 ? x / 12.92 : Math.pow((x + 0.055) / 1.055, 2.4); });
  return 0.2126 * v[0] + 0.7152 * v[1] + 0.0722 * v[2];
}
function background(el) {
  for (; el; el = el.parentElement) {
    var bg = getComputedStyle(el).backgroundColor;
    var m = bg.match(/[\d.]+/g);
    if (m && (m.length < 4 || Number(m[3]) > 0.5)) { return bg; }
  }
  return "rgb(255, 255, 255)";
}
if (arguments[0] !== "focused") {
  var sel = 'a[href], button, input:not([type=hidden]), select, textarea, summary, [tabindex]:not([tabindex="-1"])';
  var all = Array.prototype.filter.call(document.querySelectorAll(sel), function (el) {
    return !el.disabled && el.getClientRects().length > 0 && getComputedStyle(el).visibility !== "hidden";
  });
  all.forEach(function (el, i) { el.setAttribute("data-kb", String(i)); });
  return all.length;
}
var el = document.activeElement;
if (!el || el === document.body || el === document.documentElement) { return null; }
var s = getComputedStyle(el);
var what = el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") + " '" + (el.textContent || el.value || el.name || "").trim().slice(0, 30) + "'";
var shown = (s.outlineStyle !== "none" && parseFloat(s.outlineWidth) >= 2) || s.boxShadow !== "none";
var ratio = 21;
if (s.outlineStyle !== "none") {
  var a = lum(s.outlineColor), b = lum(background(el.parentElement || el));
  ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
}
return [el.getAttribute("data-kb"), what, shown, ratio];
