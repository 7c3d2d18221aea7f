// Run by test_browser.py on every page: unlabelled controls and text below WCAG AA contrast.
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
var problems = [];
document.querySelectorAll("input, select, textarea").forEach(function (el) {
  if (el.type === "hidden") { return; }
  var labelled = el.getAttribute("aria-label") || (el.id && document.querySelector('label[for="' + el.id + '"]'));
  if (!labelled) { problems.push("unlabelled " + el.outerHTML.slice(0, 80)); }
});
var walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
while (walker.nextNode()) {
  var node = walker.currentNode, el = node.parentElement;
  if (!node.textContent.trim() || !el || el.closest("svg") || el.closest(".skip")) { continue; }
  if (el.offsetParent === null && getComputedStyle(el).position !== "fixed") { continue; }
  var a = lum(getComputedStyle(el).color), b = lum(background(el));
  var ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
  if (ratio < 4.5) { problems.push("contrast " + ratio.toFixed(2) + " for '" + node.textContent.trim().slice(0, 30) + "'"); }
}
return problems;
